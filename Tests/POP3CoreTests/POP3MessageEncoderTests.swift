import MailTesting
import NIOCore
import POP3Core
import Testing

/// Encodes `pieces` in order with one encoder, then finishes; returns the wire bytes and `octets`.
func encodeMessage(_ pieces: [[UInt8]], topLines: Int? = nil) -> (wire: [UInt8], octets: Int) {
    var encoder = POP3MessageEncoder(topLines: topLines)
    var out = ByteBuffer()
    for piece in pieces {
        piece.withUnsafeBytes { encoder.encode($0, into: &out) }
    }
    encoder.finish(into: &out)
    return (Array(out.readableBytesView), encoder.octets)
}

/// The size LIST reports for stored content: LF → CRLF, a bare CR → CRLF, nothing added at the end.
/// (The same rule as the maildrop's computed size and Dovecot's `W=`.)
func crlfSize(_ stored: [UInt8]) -> Int {
    var size = 0
    for (i, b) in stored.enumerated() {
        size += 1
        if b == 0x0A && (i == 0 || stored[i - 1] != 0x0D) { size += 1 }
        if b == 0x0D && (i + 1 == stored.count || stored[i + 1] != 0x0A) { size += 1 }
    }
    // A last line without a line end is sent with CRLF, and counted (RETR sends exactly LIST's size).
    if let last = stored.last, last != 0x0A, last != 0x0D { size += 2 }
    return size
}

/// RETR/TOP bodies (RFC 1939 §3 byte-stuffing, §7 TOP): CRLF, dot-stuffed, terminated, in any chunking.
@Suite struct POP3MessageEncoderTests {
    struct Fixture: CustomStringConvertible, Sendable {
        var name: String
        var stored: String
        var topLines: Int? = nil
        var wire: String
        var description: String { name }
    }

    static let message = "A: 1\nB: 2\n\nl1\n.l2\nl3\n"
    static let messageWire = "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n"

    static let fixtures: [Fixture] = [
        Fixture(name: "LF", stored: "Subject: a\nTo: b\n\nline 1\nline 2\n",
                wire: "Subject: a\r\nTo: b\r\n\r\nline 1\r\nline 2\r\n.\r\n"),
        Fixture(name: "CRLF", stored: "Subject: a\r\nTo: b\r\n\r\nline 1\r\nline 2\r\n",
                wire: "Subject: a\r\nTo: b\r\n\r\nline 1\r\nline 2\r\n.\r\n"),
        Fixture(name: "dot-stuffing at line starts only", stored: "S: x\n\n.\n..\n.a\na.b\n. \nend.\n",
                wire: "S: x\r\n\r\n..\r\n...\r\n..a\r\na.b\r\n.. \r\nend.\r\n.\r\n"),
        Fixture(name: "dot-stuffing with CRLF", stored: "S: x\r\n\r\n.\r\n.x\r\n",
                wire: "S: x\r\n\r\n..\r\n..x\r\n.\r\n"),
        Fixture(name: "dot at the very start", stored: ".H: x\n\nb\n", wire: "..H: x\r\n\r\nb\r\n.\r\n"),
        Fixture(name: "missing final newline", stored: "S: x\n\nlast", wire: "S: x\r\n\r\nlast\r\n.\r\n"),
        Fixture(name: "missing final newline after a dot", stored: "S: x\n\n.", wire: "S: x\r\n\r\n..\r\n.\r\n"),
        Fixture(name: "empty message", stored: "", wire: ".\r\n"),
        Fixture(name: "header only", stored: "S: x\n", wire: "S: x\r\n.\r\n"),
        Fixture(name: "bare CR gets a line end", stored: "S: x\r\n\r\na\rb\r\n", wire: "S: x\r\n\r\na\r\nb\r\n.\r\n"),
        Fixture(name: "bare CR before a dot", stored: "S: x\n\na\r.b\n", wire: "S: x\r\n\r\na\r\n..b\r\n.\r\n"),
        Fixture(name: "final bare CR", stored: "S: x\n\na\r", wire: "S: x\r\n\r\na\r\n.\r\n"),
        Fixture(name: "CR CR LF", stored: "S: x\n\na\r\r\nb\n", wire: "S: x\r\n\r\na\r\n\r\nb\r\n.\r\n"),
        Fixture(name: "8-bit content untouched", stored: "S: é\n\nÄÖÜ\n", wire: "S: é\r\n\r\nÄÖÜ\r\n.\r\n"),
        Fixture(name: "RETR", stored: message, wire: messageWire),
        Fixture(name: "TOP 0", stored: message, topLines: 0, wire: "A: 1\r\nB: 2\r\n\r\n.\r\n"),
        Fixture(name: "TOP 1", stored: message, topLines: 1, wire: "A: 1\r\nB: 2\r\n\r\nl1\r\n.\r\n"),
        Fixture(name: "TOP 2 stuffs", stored: message, topLines: 2, wire: "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\n.\r\n"),
        Fixture(name: "TOP 3 = whole", stored: message, topLines: 3, wire: messageWire),
        Fixture(name: "TOP more than the body", stored: message, topLines: 100, wire: messageWire),
        Fixture(name: "TOP 0 with CRLF", stored: "A: 1\r\n\r\nl1\r\n", topLines: 0, wire: "A: 1\r\n\r\n.\r\n"),
        Fixture(name: "TOP on a header-only message", stored: "A: 1\n", topLines: 5, wire: "A: 1\r\n.\r\n"),
        Fixture(name: "TOP 0 on a header-only message", stored: "A: 1\nB: 2", topLines: 0, wire: "A: 1\r\nB: 2\r\n.\r\n"),
        Fixture(name: "TOP past a missing final newline", stored: "A: 1\n\nl1", topLines: 5, wire: "A: 1\r\n\r\nl1\r\n.\r\n"),
        Fixture(name: "TOP 1 with a missing final newline", stored: "A: 1\n\nl1", topLines: 1, wire: "A: 1\r\n\r\nl1\r\n.\r\n"),
        Fixture(name: "TOP 2 with empty body lines", stored: "A: 1\n\n\n\nx\n", topLines: 2, wire: "A: 1\r\n\r\n\r\n\r\n.\r\n"),
    ]

    @Test(arguments: fixtures) func encodesWhole(_ f: Fixture) {
        let result = encodeMessage([bytes(f.stored)], topLines: f.topLines)
        #expect(String(decoding: result.wire, as: UTF8.self) == f.wire)
    }

    @Test(arguments: fixtures) func everySplitPointGivesIdenticalOutput(_ f: Fixture) {
        let stored = bytes(f.stored)
        let whole = encodeMessage([stored], topLines: f.topLines)
        for i in 0...stored.count {
            let split = encodeMessage([Array(stored[..<i]), Array(stored[i...])], topLines: f.topLines)
            #expect(split.wire == whole.wire, "split at \(i)")
            #expect(split.octets == whole.octets, "split at \(i)")
        }
        for i in 0...stored.count {
            for j in i...stored.count where j - i <= 3 {
                let split = encodeMessage([Array(stored[..<i]), Array(stored[i..<j]), Array(stored[j...])], topLines: f.topLines)
                #expect(split.wire == whole.wire, "split at \(i), \(j)")
            }
        }
    }

    @Test(arguments: fixtures, WriteSplitting.all(randomSeeds: 1...8))
    func dripFeedGivesIdenticalOutput(_ f: Fixture, _ splitting: WriteSplitting) {
        let stored = bytes(f.stored)
        let whole = encodeMessage([stored], topLines: f.topLines)
        let dripped = encodeMessage(splitting.pieces(of: [stored]), topLines: f.topLines)
        #expect(dripped.wire == whole.wire)
        #expect(dripped.octets == whole.octets)
    }

    /// `octets` is what LIST reports: the CRLF size of the stored message including the CRLF added to a
    /// last line without one, without stuffing dots or the terminating `.` line.
    @Test(arguments: fixtures.filter { $0.topLines == nil })
    func octetsEqualListSize(_ f: Fixture) {
        let stored = bytes(f.stored)
        let result = encodeMessage([stored])
        #expect(result.octets == crlfSize(stored))
        // Cross-check against the wire: remove the terminator, the added final CRLF and the stuffing.
        var wire = result.wire
        wire.removeLast(3)
        var stuffing = 0
        var atLineStart = true
        var i = 0
        while i < wire.count {
            if atLineStart && wire[i] == UInt8(ascii: ".") { stuffing += 1; i += 1 }
            atLineStart = false
            while i < wire.count && wire[i] != 0x0A { i += 1 }
            i += 1
            atLineStart = true
        }
        #expect(result.octets == wire.count - stuffing)
    }

    @Test func lfAndCRLFStorageGiveIdenticalWireAndSize() {
        let lf = encodeMessage([bytes("From: a@b\nSubject: s\n\n.hidden\nbody\n")])
        let crlf = encodeMessage([bytes("From: a@b\r\nSubject: s\r\n\r\n.hidden\r\nbody\r\n")])
        #expect(lf.wire == crlf.wire)
        #expect(lf.octets == crlf.octets)
        #expect(lf.octets == 40)
    }

    @Test func topStopsEarlyAndIgnoresFurtherInput() {
        var encoder = POP3MessageEncoder(topLines: 1)
        var out = ByteBuffer()
        bytes("A: 1\n\nl1\nl2\n").withUnsafeBytes { encoder.encode($0, into: &out) }
        #expect(encoder.isComplete)
        bytes("more\n").withUnsafeBytes { encoder.encode($0, into: &out) }
        encoder.finish(into: &out)
        #expect(String(buffer: out) == "A: 1\r\n\r\nl1\r\n.\r\n")
    }

    @Test func retrIsNeverCompleteEarly() {
        var encoder = POP3MessageEncoder()
        var out = ByteBuffer()
        bytes("A: 1\n\n").withUnsafeBytes { encoder.encode($0, into: &out) }
        #expect(!encoder.isComplete)
    }

    @Test func largeMessageInChunksMatchesWhole() {
        var rng = SplitMix64(seed: 42)
        var stored: [UInt8] = Array("Subject: big\n\n".utf8)
        let alphabet = Array("ab.\r\n .x".utf8)
        for _ in 0..<200_000 { stored.append(alphabet[Int.random(in: 0..<alphabet.count, using: &rng)]) }
        let whole = encodeMessage([stored])
        for chunkSize in [1, 2, 3, 7, 64, 4096, 65536] {
            var pieces: [[UInt8]] = []
            var i = 0
            while i < stored.count {
                pieces.append(Array(stored[i..<min(stored.count, i + chunkSize)]))
                i += chunkSize
            }
            let chunked = encodeMessage(pieces)
            #expect(chunked.wire == whole.wire, "chunk size \(chunkSize)")
            #expect(chunked.octets == whole.octets)
        }
        #expect(whole.octets == crlfSize(stored))
    }
}
