import MailTesting
import NIOCore
import POP3Core
import Testing

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Feeds `pieces` one `append` at a time and drains the parser after each.
func lines(_ pieces: [[UInt8]], parser: POP3LineParser = POP3LineParser()) -> (items: [POP3LineParser.Item], buffered: Int) {
    var parser = parser
    var items: [POP3LineParser.Item] = []
    for piece in pieces {
        parser.append(ByteBuffer(bytes: piece))
        while let item = parser.next() { items.append(item) }
    }
    return (items, parser.bufferedByteCount)
}

/// Framing of client input (RFC 1939 §3, RFC 2449 §4), whole, byte by byte and at random splits.
@Suite struct POP3LineParserTests {
    struct Fixture: CustomStringConvertible, Sendable {
        var name: String
        var input: [UInt8]
        var maximumLineLength: Int = 2048
        var expected: [POP3LineParser.Item]
        var buffered: Int = 0
        var description: String { name }
    }

    static let fixtures: [Fixture] = [
        Fixture(name: "two CRLF lines", input: bytes("CAPA\r\nSTAT\r\n"), expected: [.line(bytes("CAPA")), .line(bytes("STAT"))]),
        Fixture(name: "LF-only lines", input: bytes("USER a\nPASS b c\n"), expected: [.line(bytes("USER a")), .line(bytes("PASS b c"))]),
        Fixture(name: "mixed line ends", input: bytes("NOOP\nNOOP\r\nQUIT\n"),
                expected: [.line(bytes("NOOP")), .line(bytes("NOOP")), .line(bytes("QUIT"))]),
        Fixture(name: "empty lines", input: bytes("\r\n\n"), expected: [.line([]), .line([])]),
        Fixture(name: "CR inside a line is kept", input: bytes("A\rB\r\n"), expected: [.line(bytes("A\rB"))]),
        Fixture(name: "incomplete last line stays buffered", input: bytes("STAT\r\nLIST 1"),
                expected: [.line(bytes("STAT"))], buffered: 6),
        Fixture(name: "a lone CR stays buffered", input: bytes("STAT\r"), expected: [], buffered: 5),
        Fixture(name: "STLS injection: the pipelined CAPA stays buffered", input: bytes("STLS\r\nCAPA\r\n"),
                expected: [.line(bytes("STLS")), .line(bytes("CAPA"))]),
        Fixture(name: "pipelined transaction", input: bytes("STAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nDELE 1\r\nQUIT\r\n"),
                expected: ["STAT", "LIST", "UIDL", "RETR 1", "DELE 1", "QUIT"].map { .line(bytes($0)) }),
        Fixture(name: "overlong line recovered", input: bytes(String(repeating: "A", count: 40) + "\r\nCAPA\r\n"),
                maximumLineLength: 16, expected: [.lineTooLong, .line(bytes("CAPA"))]),
        Fixture(name: "overlong LF-only line recovered", input: bytes("PASS " + String(repeating: "x", count: 100) + "\nNOOP\n"),
                maximumLineLength: 16, expected: [.lineTooLong, .line(bytes("NOOP"))]),
        Fixture(name: "two overlong lines", input: bytes(String(repeating: "A", count: 30) + "\r\n" + String(repeating: "B", count: 30) + "\r\nQUIT\r\n"),
                maximumLineLength: 16, expected: [.lineTooLong, .lineTooLong, .line(bytes("QUIT"))]),
        Fixture(name: "line exactly at the limit (14 + CRLF = 16)", input: bytes("AUTH 123456789\r\n"),
                maximumLineLength: 16, expected: [.line(bytes("AUTH 123456789"))]),
        Fixture(name: "one octet over the limit", input: bytes("AUTH 1234567890\r\nSTAT\r\n"),
                maximumLineLength: 16, expected: [.lineTooLong, .line(bytes("STAT"))]),
        Fixture(name: "overlong line without end keeps being discarded", input: bytes("CAPA\r\n" + String(repeating: "Z", count: 100)),
                maximumLineLength: 16, expected: [.line(bytes("CAPA")), .lineTooLong]),
    ]

    @Test(arguments: fixtures, WriteSplitting.all(randomSeeds: 1...16))
    func framesLines(_ f: Fixture, _ splitting: WriteSplitting) {
        let result = lines(splitting.pieces(of: [f.input]), parser: POP3LineParser(maximumLineLength: f.maximumLineLength))
        #expect(result.items == f.expected)
        #expect(result.buffered == f.buffered)
    }

    @Test(arguments: fixtures) func everySplitPointGivesTheSameLines(_ f: Fixture) {
        let whole = lines([f.input], parser: POP3LineParser(maximumLineLength: f.maximumLineLength)).items
        for i in 0...f.input.count {
            let split = lines([Array(f.input[..<i]), Array(f.input[i...])], parser: POP3LineParser(maximumLineLength: f.maximumLineLength))
            #expect(split.items == whole, "split at \(i)")
        }
    }

    @Test func crlfSplitAcrossAppends() {
        let result = lines([bytes("CAPA\r"), bytes("\nSTAT\r"), bytes("\n"), bytes("\r"), bytes("\n")])
        #expect(result.items == [.line(bytes("CAPA")), .line(bytes("STAT")), .line([])])
        #expect(result.buffered == 0)
    }

    @Test func bufferedBytesAfterSTLSInOneSegment() {
        var parser = POP3LineParser()
        parser.append(ByteBuffer(string: "STLS\r\nCAPA\r\n"))
        #expect(parser.next() == .line(bytes("STLS")))
        // The adapter checks this right after STLS: six plaintext octets must be thrown away.
        #expect(parser.bufferedByteCount == 6)
        parser.discardBufferedBytes()
        #expect(parser.bufferedByteCount == 0)
        #expect(parser.next() == nil)
        // After the handshake the parser works normally again.
        parser.append(ByteBuffer(string: "CAPA\r\n"))
        #expect(parser.next() == .line(bytes("CAPA")))
        #expect(parser.next() == nil)
    }

    @Test func nothingBufferedAfterAPlainSTLS() {
        var parser = POP3LineParser()
        parser.append(ByteBuffer(string: "STLS\r\n"))
        #expect(parser.next() == .line(bytes("STLS")))
        #expect(parser.bufferedByteCount == 0)
    }

    @Test func discardResetsAnOverlongLine() {
        var parser = POP3LineParser(maximumLineLength: 8)
        parser.append(ByteBuffer(string: String(repeating: "A", count: 20)))
        #expect(parser.next() == .lineTooLong)
        #expect(parser.next() == nil)
        parser.discardBufferedBytes()
        parser.append(ByteBuffer(string: "CAPA\r\n"))
        #expect(parser.next() == .line(bytes("CAPA")))
    }

    @Test func overlongLineReportedOnceWhileDripping() {
        var parser = POP3LineParser(maximumLineLength: 8)
        var items: [POP3LineParser.Item] = []
        for b in bytes(String(repeating: "A", count: 50) + "\r\nNOOP\r\n") {
            parser.append(ByteBuffer(bytes: [b]))
            while let item = parser.next() { items.append(item) }
            #expect(parser.bufferedByteCount <= 9, "memory stays bounded while discarding")
        }
        #expect(items == [.lineTooLong, .line(bytes("NOOP"))])
    }

    @Test func defaultLimitLeavesRoomForAuthPlain() {
        // RFC 5034: an AUTH PLAIN line with a long password must still fit.
        let line = "AUTH PLAIN " + String(repeating: "QUFB", count: 300)
        let result = lines([bytes(line + "\r\n")])
        #expect(result.items == [.line(bytes(line))])
    }
}
