import MailCore
import MailTesting
import NIOCore
import SMTPCore
import Testing

private let alice = EmailAddress(localPart: "alice", domain: "example.test")
private let bob = EmailAddress(localPart: "bob", domain: "example.test")

@Suite("SMTPCommandParser")
struct SMTPCommandParserTests {
    // MARK: Command lines

    @Test("a pipelined command group", arguments: allSplittings)
    func pipelinedGroup(_ splitting: WriteSplitting) {
        let input = bytes("EHLO client.example.test\r\nMAIL FROM:<alice@example.test> SIZE=10\r\nRCPT TO:<bob@example.test>\r\nNOOP\r\nQUIT\r\n")
        #expect(ParserDriver.run(input, splitting) == [
            .command(.ehlo("client.example.test")),
            .command(.mail(.mailbox(alice), [ESMTPParameter("SIZE", "10")])),
            .command(.rcpt(.mailbox(bob), [])),
            .command(.noop),
            .command(.quit),
        ])
    }

    @Test("a bare LF also ends a command line (lenient, like Postfix)", arguments: allSplittings)
    func bareLFCommand(_ splitting: WriteSplitting) {
        #expect(ParserDriver.run(bytes("NOOP\nRSET\r\nQUIT\n"), splitting) == [.command(.noop), .command(.rset), .command(.quit)])
    }

    @Test("a bare CR does not end a command line")
    func bareCRCommand() {
        #expect(ParserDriver.run(bytes("NOOP\rQUIT\r\n"), .asWritten) == [.invalid(.invalidCharacters)])
    }

    @Test("nothing is returned before the line feed; CRLF split across appends")
    func needMoreBytes() {
        var d = ParserDriver()
        d.feed(bytes("NOO"))
        #expect(d.events.isEmpty)
        #expect(d.parser.bufferedByteCount == 3)
        d.feed(bytes("P\r"))
        #expect(d.events.isEmpty)
        #expect(d.parser.bufferedByteCount == 5)
        d.feed(bytes("\n"))
        #expect(d.events == [.command(.noop)])
        #expect(d.parser.bufferedByteCount == 0)
        #expect(d.parser.next() == nil)
    }

    @Test("empty lines and invalid lines are items too; the parser carries on")
    func invalidLines() {
        let input = bytes("\r\nFOO\r\nEHLO\r\nMAIL FROM:<bad>\r\nNOOP\r\n")
        let events = ParserDriver.run(input, .asWritten)
        #expect(events == [
            .invalid(.unknownCommand("")), .invalid(.unknownCommand("FOO")),
            .invalid(.syntax(verb: "EHLO", reason: "EHLO requires a domain name")),
            .invalid(.badAddress(verb: "MAIL", .syntax)), .command(.noop),
        ])
    }

    // MARK: Line length limits

    @Test("command line length: 512 octets including CRLF, counted as if a bare LF were CRLF", arguments: allSplittings)
    func commandLineLimit(_ splitting: WriteSplitting) {
        let ok = "NOOP " + String(repeating: "x", count: 505) + "\r\n"  // 512
        let tooLong = "NOOP " + String(repeating: "x", count: 506) + "\r\n"  // 513
        let okLF = "NOOP " + String(repeating: "x", count: 505) + "\n"  // 511 + 1 = 512
        let tooLongLF = "NOOP " + String(repeating: "x", count: 506) + "\n"  // 512 + 1 = 513
        #expect(ok.utf8.count == 512)
        let input = bytes(ok + tooLong + "QUIT\r\n" + okLF + tooLongLF + "RSET\r\n")
        #expect(ParserDriver.run(input, splitting) == [
            .command(.noop), .invalid(.lineTooLong), .command(.quit), .command(.noop), .invalid(.lineTooLong), .command(.rset),
        ])
    }

    @Test("MAIL and RCPT lines may be 1024 octets, AUTH lines 12288", arguments: [WriteSplitting.asWritten, .byteByByte, .random(seed: 7)])
    func extendedLimits(_ splitting: WriteSplitting) {
        func line(_ prefix: String, total: Int) -> String {
            prefix + String(repeating: "p", count: total - prefix.utf8.count - 2) + "\r\n"
        }
        let mailOK = line("MAIL FROM:<alice@example.test> X-PAD=", total: 1024)
        let mailLong = line("MAIL FROM:<alice@example.test> X-PAD=", total: 1025)
        let rcptOK = line("rcpt TO:<bob@example.test> X-PAD=", total: 1024)
        let rcptLong = line("rcpt TO:<bob@example.test> X-PAD=", total: 1025)
        let authOK = line("AUTH PLAIN ", total: 12288)
        let authLong = line("AUTH PLAIN ", total: 12289)
        let noopLong = line("NOOP ", total: 1024)
        let events = ParserDriver.run(bytes(mailOK + mailLong + rcptOK + rcptLong + authOK + authLong + noopLong + "QUIT\r\n"), splitting)
        #expect(events.count == 8)
        guard events.count == 8 else { return }
        if case .command(.mail(_, let p)) = events[0] { #expect(p.first?.keyword == "X-PAD") } else { Issue.record("\(events[0])") }
        #expect(events[1] == .invalid(.lineTooLong))
        if case .command(.rcpt) = events[2] {} else { Issue.record("\(events[2])") }
        #expect(events[3] == .invalid(.lineTooLong))
        if case .command(.auth) = events[4] {} else { Issue.record("\(events[4])") }
        #expect(events[5] == .invalid(.lineTooLong))
        #expect(events[6] == .invalid(.lineTooLong))
        #expect(events[7] == .command(.quit))
    }

    @Test("a line with no LF beyond the hard limit is refused at once and skipped up to the next LF")
    func hardLimitWithoutLF() {
        var d = ParserDriver()
        d.feed([UInt8](repeating: UInt8(ascii: "A"), count: 12288))
        #expect(d.events.isEmpty)  // still within the hard limit: might be an AUTH line
        d.feed(bytes("A"))
        #expect(d.events == [.invalid(.lineTooLong)])
        #expect(d.parser.bufferedByteCount == 0)  // nothing is kept
        for _ in 0..<100 { d.feed([UInt8](repeating: UInt8(ascii: "B"), count: 1000)) }
        #expect(d.events == [.invalid(.lineTooLong)])  // reported once
        #expect(d.parser.bufferedByteCount == 0)  // memory stays bounded
        d.feed(bytes("tail of the long line\r\nQUIT\r\n"))
        #expect(d.events == [.invalid(.lineTooLong), .command(.quit)])
    }

    @Test("a huge line is reported once whatever the splitting", arguments: allSplittings)
    func hugeLineAnySplit(_ splitting: WriteSplitting) {
        let input = [UInt8](repeating: UInt8(ascii: "Z"), count: 30000) + bytes("\r\nNOOP\r\n")
        #expect(ParserDriver.run(input, splitting) == [.invalid(.lineTooLong), .command(.noop)])
    }

    // MARK: Pipelined bytes

    @Test("bufferedByteCount after a pipelined STARTTLS, and discarding it")
    func pipelinedAfterSTARTTLS() {
        var parser = SMTPCommandParser()
        parser.append(ByteBuffer(string: "STARTTLS\r\nEHLO evil\r\nMAIL FROM:<a@evil.test>\r\n"))
        #expect(parser.next() == .command(.startTLS))
        #expect(parser.bufferedByteCount == "EHLO evil\r\nMAIL FROM:<a@evil.test>\r\n".utf8.count)
        parser.discardBufferedBytes()
        #expect(parser.bufferedByteCount == 0)
        #expect(parser.next() == nil)
        parser.append(ByteBuffer(string: "EHLO good\r\n"))
        #expect(parser.next() == .command(.ehlo("good")))
    }

    @Test("discarding also ends the skipping of an over-long line")
    func discardResetsLongLine() {
        var parser = SMTPCommandParser()
        parser.append(ByteBuffer(bytes: [UInt8](repeating: 0x41, count: 13000)))
        #expect(parser.next() == .invalidCommand(.lineTooLong))
        parser.discardBufferedBytes()
        parser.append(ByteBuffer(string: "NOOP\r\n"))
        #expect(parser.next() == .command(.noop))
    }

    @Test("STARTTLS alone leaves nothing buffered")
    func startTLSAlone() {
        var parser = SMTPCommandParser()
        parser.append(ByteBuffer(string: "STARTTLS\r\n"))
        #expect(parser.next() == .command(.startTLS))
        #expect(parser.bufferedByteCount == 0)
    }

    @Test("bufferedByteCount after DATA shows content sent before 354")
    func pipelinedAfterDATA() {
        var parser = SMTPCommandParser()
        parser.append(ByteBuffer(string: "DATA\r\nSubject: x\r\n"))
        #expect(parser.next() == .command(.data))
        #expect(parser.bufferedByteCount == 12)
    }

    // MARK: DATA

    static let message = "Subject: hello\r\n\r\nbody line\r\n"

    @Test("DATA content, end of data, then commands again", arguments: allSplittings)
    func dataHappyPath(_ splitting: WriteSplitting) {
        let input = bytes("DATA\r\n" + Self.message + ".\r\nQUIT\r\n")
        #expect(ParserDriver.run(input, splitting) == [
            .command(.data), .data(bytes(Self.message)), .end(flags(octets: Self.message.utf8.count)), .command(.quit),
        ])
    }

    @Test("an empty message")
    func emptyMessage() {
        for splitting in allSplittings {
            #expect(ParserDriver.run(bytes("DATA\r\n.\r\nNOOP\r\n"), splitting) == [.command(.data), .end(flags(octets: 0)), .command(.noop)])
        }
    }

    @Test("CRLF.CRLF and every other byte boundary split across two appends")
    func everySplitPoint() {
        let input = bytes("DATA\r\nline one\r\n..stuffed\r\n.\r\nQUIT\r\n")
        let expected: [ParserEvent] = [
            .command(.data), .data(bytes("line one\r\n.stuffed\r\n")), .end(flags(octets: 20)), .command(.quit),
        ]
        for i in 1..<input.count {
            #expect(ParserDriver.run(input, splitAt: i) == expected, "split at \(i)")
        }
    }

    @Test("the end of data arrives in three appends: \\r | \\n. | \\r\\n, and other mandatory cuts", arguments: [
        ["line\r", "\n.", "\r\n"], ["line\r\n", ".\r\n"], ["line\r", "\n.\r\n"], ["line\r\n.", "\r\n"], ["line\r\n.\r", "\n"],
        ["line", "\r", "\n", ".", "\r", "\n"],
    ])
    func mandatoryCuts(_ pieces: [String]) {
        var d = ParserDriver()
        d.feed(bytes("DATA\r\n"))
        for p in pieces { d.feed(bytes(p)) }
        #expect(d.events == [.command(.data), .data(bytes("line\r\n")), .end(flags(octets: 6))])
        #expect(d.parser.mode == .commands)
        #expect(d.parser.bufferedByteCount == 0)
    }

    @Test("while the end is undecided nothing is returned")
    func undecided() {
        var d = ParserDriver()
        d.feed(bytes("DATA\r\nx\r\n"))
        let before = d.events
        d.feed(bytes("."))
        #expect(d.events == before)
        d.feed(bytes("\r"))
        #expect(d.events == before)
        #expect(d.parser.mode == .data)
        d.feed(bytes("\n"))
        #expect(d.events == before + [.end(flags(octets: 3))])
    }

    @Test("dot-unstuffing (RFC 5321 §4.5.2)", arguments: [
        (".hidden\r\n", "hidden\r\n"),
        ("..leading\r\n", ".leading\r\n"),
        ("...\r\n", "..\r\n"),
        ("..\r\n", ".\r\n"),
        (". \r\n", " \r\n"),
        ("a.b\r\n.\tx\r\n", "a.b\r\n\tx\r\n"),
        ("x\r\n.x\r\n..y\r\nz.\r\n", "x\r\nx\r\n.y\r\nz.\r\n"),
        ("no dot\r\n \r\n.\r\n", "no dot\r\n \r\n"),  // the message ends at the ".\r\n" line; the rest is not content
    ])
    func unstuffing(_ content: String, _ expected: String) {
        for splitting in allSplittings {
            let events = ParserDriver.run(bytes("DATA\r\n" + content + ".\r\n"), splitting)
            #expect(events.prefix(2) == [.command(.data), .data(bytes(expected))], "\(splitting)")
            #expect(events.contains(.end(flags(octets: expected.utf8.count))), "\(splitting)")
        }
    }

    @Test("a line that is only '.' plus other text never ends data", arguments: [". \r\n", ".x\r\n", "..\r\n", ".\t\r\n"])
    func notAnEnd(_ line: String) {
        let events = ParserDriver.run(bytes("DATA\r\na\r\n" + line + "b\r\n.\r\n"), .asWritten)
        #expect(events.filter { if case .end = $0 { true } else { false } }.count == 1)
        #expect(events.last.map { if case .end = $0 { true } else { false } } == true)
    }

    /// Published SMTP smuggling end-of-data variants (SEC Consult 2023, Postfix smtpd_forbid_bare_newline,
    /// CVE-2023-51764/51765/51766): each must stay content, and all but the NUL ones contain a bare line ending.
    static let smugglingVariants: [String] = [
        "\n.\n", "\n.\r\n", "\r.\r", "\r.\r\n", "\r\n.\r", "\r\n.\n", "\n.\r", "\r.\n",
        "\n\n.\n\n", "\r\r.\r\r", "\r\n.\r\r\n", "\r\n.\n\r\n", "\r\n\r.\r\n", "\n\r.\r\n", ".\n", ".\r",
    ]

    @Test("SMTP smuggling: no variant ends DATA, and the bare line ending is flagged", arguments: smugglingVariants)
    func smuggling(_ variant: String) {
        let smuggled = "MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\nforged\r\n"
        let input = bytes("DATA\r\nSubject: x\r\n\r\nbody" + variant + smuggled + ".\r\nQUIT\r\n")
        for splitting in allSplittings {
            let events = ParserDriver.run(input, splitting)
            #expect(events.count == 4, "\(splitting): \(events)")
            guard events.count == 4 else { continue }
            #expect(events[0] == .command(.data))
            guard case .data(let content) = events[1], case .end(let f) = events[2] else {
                Issue.record("\(splitting): \(events)")
                continue
            }
            #expect(f.bareLineEnding, "\(splitting)")
            #expect(f.octets == content.count)
            // The smuggled commands stayed content.
            #expect(show(content).contains("MAIL FROM:<evil@attacker.test>\\r\\nRCPT TO:<victim@example.test>"))
            #expect(events[3] == .command(.quit))
        }
    }

    @Test("NUL smuggling variants stay content (no bare line ending, nothing ends early)", arguments: [
        "\r\n\u{0}.\r\n", "\r\n.\u{0}\r\n", "\r\n\u{0}.\u{0}\r\n",
    ])
    func nulSmuggling(_ variant: String) {
        let input = bytes("DATA\r\nbody" + variant + "MAIL FROM:<evil@attacker.test>\r\n.\r\nQUIT\r\n")
        for splitting in allSplittings {
            let events = ParserDriver.run(input, splitting)
            #expect(events.count == 4, "\(splitting): \(events)")
            guard events.count == 4, case .data(let content) = events[1], case .end(let f) = events[2] else { continue }
            #expect(content.contains(0))
            #expect(!f.bareLineEnding)
            #expect(show(content).contains("MAIL FROM:<evil@attacker.test>\\r\\n"))
            #expect(events[3] == .command(.quit))
        }
    }

    @Test("a bare CR or LF anywhere in the content is flagged", arguments: [
        "a\rb\r\n", "a\nb\r\n", "a\r\r\n", "\n", "\r\r\n", "a\r\n\r", "x\r\n.\rX\r\n", "x\r\n.\nX\r\n",
    ])
    func bareLineEndings(_ content: String) {
        for splitting in allSplittings {
            let events = ParserDriver.run(bytes("DATA\r\n" + content + "\r\n.\r\n"), splitting)
            guard let last = events.last, case .end(let f) = last else {
                Issue.record("\(splitting): \(events)")
                continue
            }
            #expect(f.bareLineEnding, "\(splitting)")
        }
    }

    @Test("clean content is not flagged")
    func cleanContent() {
        let events = ParserDriver.run(bytes("DATA\r\nA\r\n\r\nB\tC\r\n\r\n.\r\n"), .byteByByte)
        #expect(events.last == .end(flags(octets: 12)))
    }

    @Test("lines longer than 1000 octets including CRLF are flagged", arguments: [
        (998, false), (999, true), (1500, true), (10, false),
    ])
    func longDataLines(_ length: Int, _ flagged: Bool) {
        let line = String(repeating: "x", count: length) + "\r\n"
        for splitting in [WriteSplitting.asWritten, .byteByByte, .random(seed: 3), .random(seed: 4)] {
            let events = ParserDriver.run(bytes("DATA\r\nshort\r\n" + line + "short\r\n.\r\n"), splitting)
            #expect(events.last == .end(flags(octets: 7 + length + 2 + 7, long: flagged)), "\(splitting)")
        }
    }

    @Test("a stuffed dot does not count towards the line length")
    func stuffedDotLength() {
        let line = "." + String(repeating: "x", count: 998) + "\r\n"  // 1001 on the wire, 1000 after unstuffing
        let events = ParserDriver.run(bytes("DATA\r\n" + line + ".\r\n"), .asWritten)
        #expect(events.last == .end(flags(octets: 1000)))
    }

    @Test("DATA mode and large content keep memory bounded: data is returned as it arrives")
    func streaming() {
        var d = ParserDriver()
        d.feed(bytes("DATA\r\n"))
        let line = bytes(String(repeating: "y", count: 78) + "\r\n")
        for _ in 0..<1000 {
            d.feed(line)
            #expect(d.parser.bufferedByteCount <= 2)
        }
        d.feed(bytes(".\r\n"))
        #expect(d.events.count == 3)
        #expect(d.events.last == .end(flags(octets: 80_000)))
    }

    @Test("two messages back to back, pipelined commands after the end", arguments: allSplittings)
    func twoMessages(_ splitting: WriteSplitting) {
        let input = bytes("DATA\r\nfirst\r\n.\r\nMAIL FROM:<>\r\nDATA\r\n.second\r\n.\r\nRSET\r\n")
        #expect(ParserDriver.run(input, splitting) == [
            .command(.data), .data(bytes("first\r\n")), .end(flags(octets: 7)), .command(.mail(.null, [])),
            .command(.data), .data(bytes("second\r\n")), .end(flags(octets: 8)), .command(.rset),
        ])
    }

    // MARK: BDAT

    @Test("BDAT chunks are raw: command-like bytes, dots and bare LFs are content", arguments: allSplittings)
    func bdatChunks(_ splitting: WriteSplitting) {
        let chunk1 = "QUIT\r\nRSET\r\n.\r\n"  // 15 octets
        let chunk2 = "\n..x\r\nDATA\r\n"  // 12 octets
        let input = bytes("BDAT 15\r\n" + chunk1 + "BDAT 12 LAST\r\n" + chunk2 + "NOOP\r\n")
        #expect(ParserDriver.run(input, splitting) == [
            .command(.bdat(size: 15, last: false)), .chunk(bytes(chunk1)), .endOfChunk,
            .command(.bdat(size: 12, last: true)), .chunk(bytes(chunk2)), .endOfChunk,
            .command(.noop),
        ])
    }

    @Test("BDAT 0 yields an end of chunk at once")
    func bdatZero() {
        var d = ParserDriver()
        d.feed(bytes("BDAT 0 LAST\r\n"))
        #expect(d.events == [.command(.bdat(size: 0, last: true)), .endOfChunk])
        #expect(d.parser.mode == .commands)
    }

    @Test("chunk mode counts down and waits for the rest")
    func chunkCountdown() {
        var d = ParserDriver()
        d.feed(bytes("BDAT 10\r\n1234"))
        #expect(d.parser.mode == .chunk(remaining: 6))
        #expect(d.events == [.command(.bdat(size: 10, last: false)), .chunk(bytes("1234"))])
        d.feed(bytes("567890NOOP\r\n"))
        #expect(d.events == [.command(.bdat(size: 10, last: false)), .chunk(bytes("1234567890")), .endOfChunk, .command(.noop)])
    }

    @Test("without the mode switch, the bytes after BDAT are read as commands (the caller decides)")
    func bdatNoModeSwitch() {
        var d = ParserDriver(followModes: false)
        d.feed(bytes("BDAT 6\r\nQUIT\r\n"))
        #expect(d.events == [.command(.bdat(size: 6, last: false)), .command(.quit)])
    }

    @Test("mode changes are explicit")
    func modes() {
        var parser = SMTPCommandParser()
        #expect(parser.mode == .commands)
        parser.beginData()
        #expect(parser.mode == .data)
        parser.append(ByteBuffer(string: ".\r\n"))
        #expect(parser.next() == .endOfMessage(flags(octets: 0)))
        #expect(parser.mode == .commands)
        parser.beginChunk(size: 3)
        #expect(parser.mode == .chunk(remaining: 3))
    }
}

@Suite("ContentChecker")
struct ContentCheckerTests {
    func check(_ pieces: [String]) -> ContentFlags {
        var c = ContentChecker()
        for p in pieces { Array(p.utf8).withUnsafeBytes { c.feed($0) } }
        c.finish()
        return c.flags
    }

    @Test("flags", arguments: [
        (["a\r\nb\r\n"], flags(octets: 6)),
        (["a\r", "\nb\r\n"], flags(octets: 6)),
        (["a\nb\r\n"], flags(octets: 5, bare: true)),
        (["a\rb\r\n"], flags(octets: 5, bare: true)),
        (["a\r\nb\r"], flags(octets: 5, bare: true, missingFinalCRLF: true)),
        (["a\r\nb"], flags(octets: 4, missingFinalCRLF: true)),
        ([""], flags(octets: 0)),
        ([String(repeating: "x", count: 998) + "\r\n"], flags(octets: 1000)),
        ([String(repeating: "x", count: 998) + "\r", "\n"], flags(octets: 1000)),
        ([String(repeating: "x", count: 999) + "\r\n"], flags(octets: 1001, long: true)),
        ([String(repeating: "x", count: 500), String(repeating: "x", count: 499), "\r\n"], flags(octets: 1001, long: true)),
        ([String(repeating: "x", count: 998) + "\r\r\n"], flags(octets: 1001, bare: true, long: true)),
        ([String(repeating: "x", count: 999)], flags(octets: 999, long: true, missingFinalCRLF: true)),
    ])
    func flagsTable(_ pieces: [String], _ expected: ContentFlags) {
        #expect(check(pieces) == expected)
        // The same bytes one at a time give the same flags.
        #expect(check(pieces.joined().map { String($0) }.flatMap { $0 == "\r\n" ? ["\r", "\n"] : [$0] }) == expected)
    }
}

@Suite("HopCounter: Received: fields of the header section")
struct HopCounterTests {
    private func count(_ text: String, splits: [Int] = []) -> Int {
        var counter = HopCounter()
        let bytes = Array(text.utf8)
        var start = 0
        for cut in splits + [bytes.count] where cut >= start {
            bytes[start..<cut].withUnsafeBytes { counter.feed($0) }
            start = cut
        }
        return counter.hops
    }

    @Test("counts Received: at line starts in the header only, any case, across every split")
    func counts() {
        let message = "Received: from a\r\nRECEIVED: from b\r\n\tby c\r\nX-Received: no\r\nSubject: Received: no\r\nreceived:x\r\n\r\nReceived: in the body\r\n"
        #expect(count(message) == 3)
        for cut in 0...message.utf8.count { #expect(count(message, splits: [cut]) == 3) }
        #expect(count("Received: a\n\nReceived: b\n") == 1)          // LF line ends
        #expect(count("Subject: x\r\n\r\n") == 0)
        #expect(count("\r\nReceived: body only\r\n") == 0)            // no header section at all
        #expect(count("Receive: a\r\nReceived a\r\n\r\n") == 0)
    }
}

@Suite("ContentChecker: Received: fields")
struct ContentCheckerHopTests {
    @Test("DATA content reports the Received: fields of its header section")
    func dataReportsHops() {
        var p = SMTPCommandParser()
        p.beginData()
        p.append(ByteBuffer(string: "Received: from a\r\nReceived: from b\r\nSubject: x\r\n\r\nReceived: body\r\n.\r\n"))
        var flags: ContentFlags?
        while let item = p.next() { if case .endOfMessage(let f) = item { flags = f } }
        #expect(flags?.receivedFields == 2)
    }
}
