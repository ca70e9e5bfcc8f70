import IMAPCore
import MailTesting
import NIOCore
import Testing

private typealias Item = IMAPCommandParser.Item

private func command(_ tag: String, _ c: IMAPCommand) -> Item { .command(TaggedCommand(tag: tag, command: c)) }
private let noop2 = command("a2", .noop)

@Suite("IMAPCommandParser literals, APPEND, modes and limits")
struct IMAPCommandParserFlowTests {
    static let splittings = WriteSplitting.all(randomSeeds: 1...6)

    // MARK: Literals

    @Test func synchronisingLiteralWaitsForTheDecision() {
        var parser = IMAPCommandParser()
        parser.append(ByteBuffer(string: "a1 LOGIN {4}\r\nuser {4}\r\npass\r\n"))
        #expect(parser.next() == .continuationRequested(tag: "a1", size: 4))
        #expect(parser.isAwaitingLiteralDecision)
        #expect(parser.next() == nil)  // nothing happens before the decision
        parser.literalAccepted()
        #expect(parser.next() == .continuationRequested(tag: "a1", size: 4))
        parser.literalAccepted()
        #expect(parser.next() == command("a1", .login(user: "user", password: "pass")))
        #expect(parser.next() == nil)
        #expect(parser.bufferedByteCount == 0)
    }

    @Test(arguments: splittings)
    func literalPlusIsReadAtOnce(_ splitting: WriteSplitting) {
        #expect(parseItems("a1 LOGIN {4+}\r\nuser {4+}\r\npass\r\na2 NOOP\r\n", splitting: splitting, accept: false)
            == [command("a1", .login(user: "user", password: "pass")), noop2])
    }

    @Test(arguments: splittings)
    func rejectedLiteralThenNextCommand(_ splitting: WriteSplitting) {
        // The client gets NO/BAD instead of "+" and sends no literal.
        #expect(parseItems("a1 LOGIN {4}\r\na2 NOOP\r\n", splitting: splitting, accept: false)
            == [.continuationRequested(tag: "a1", size: 4), noop2])
    }

    @Test(arguments: splittings)
    func oversizedSynchronisingLiteralIsRefusedWithoutAskingForIt(_ splitting: WriteSplitting) {
        let items = parseItems("a1 LOGIN {70000}\r\na2 NOOP\r\n", splitting: splitting)
        #expect(items == [.error(IMAPParseError(tag: "a1", kind: .literalTooLarge(70000), message: "literal of 70000 octets is too large")), noop2])
    }

    @Test(arguments: splittings)
    func oversizedNonSynchronisingLiteralIsSkippedUnbuffered(_ splitting: WriteSplitting) {
        let literal = [UInt8](repeating: 0x41, count: 200_000)
        let writes = [Array("a1 LOGIN {200000+}\r\n".utf8), literal, Array(" {5+}\r\nab\r\nc\r\na2 NOOP\r\n".utf8)]
        let items = parseItems(writes, splitting: splitting, maxBuffered: 70_000)
        #expect(items.count == 2)
        if case .error(let e) = items.first {
            #expect(e.kind == .literalTooLarge(200_000))
            #expect(e.tag == "a1")
        } else {
            Issue.record("\(items)")
        }
        #expect(items.last == noop2)
    }

    @Test(arguments: [WriteSplitting.asWritten, .byteByByte, .random(seed: 3)])
    func largeNonSynchronisingLiteralWithinTheLimitIsFine(_ splitting: WriteSplitting) {
        let text = String(repeating: "x", count: 10_000)
        #expect(parseItems("a1 SEARCH SUBJECT {10000+}\r\n\(text)\r\n", splitting: splitting)
            == [command("a1", .search(SearchCommand(key: .subject(text)), uid: false))])
    }

    @Test func literalsCountTowardsTheCommandSize() {
        let config = IMAPCommandParser.Configuration(maxCommandSize: 100)
        let items = parseItems("a1 LOGIN {40+}\r\n\(String(repeating: "u", count: 40)) {40+}\r\n\(String(repeating: "p", count: 40))\r\na2 NOOP\r\n",
                               configuration: config)
        #expect(items.count == 2)
        if case .error(let e) = items.first { #expect(e.kind == .literalTooLarge(40)) } else { Issue.record("\(items)") }
        #expect(items.last == noop2)
    }

    @Test func literalsContainingCRLFAndBracesAreOpaque() {
        #expect(parseItems("a1 LOGIN {8+}\r\n{3}\r\nabc {1+}\r\n}\r\n")
            == [command("a1", .login(user: "{3}\r\nabc", password: "}"))])
    }

    // MARK: APPEND

    static let message = Array("Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nFrom: Fred Foobar <foobar@Blurdybloop.example>\r\nSubject: afternoon meeting\r\nTo: mooch@owatagu.siam.edu.example\r\nMessage-Id: <B27397-0100000@Blurdybloop.example>\r\nMIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\nHello Joe, do you think we can meet at 3:30 tomorrow?\r\n".utf8)

    @Test(arguments: splittings)
    func appendStreamsTheMessage(_ splitting: WriteSplitting) {
        let head = "A003 APPEND saved-messages (\\Seen) \" 7-Feb-1994 21:52:25 -0800\" {\(Self.message.count)}\r\n"
        let items = parseItems([Array(head.utf8), Self.message, Array("\r\na2 NOOP\r\n".utf8)], splitting: splitting)
        let appended = AppendMessage(flags: [.seen], internalDate: IMAPDateTime(date: date(7, 2, 1994), hour: 21, minute: 52, second: 25, zoneMinutes: -480),
                                     size: Self.message.count)
        #expect(items == [
            .appendStarted(tag: "A003", mailbox: MailboxName("saved-messages"), message: appended, synchronizing: true),
            .appendData(ByteBuffer(bytes: Self.message)),
            .appendFinished(tag: "A003"),
            noop2,
        ])
    }

    @Test func appendChunksAreSlicesOfWhatArrived() {
        var parser = IMAPCommandParser()
        parser.append(ByteBuffer(string: "a1 APPEND INBOX {10+}\r\n01234"))
        guard case .appendStarted(_, _, let m, synchronizing: false)? = parser.next() else { Issue.record("no start"); return }
        #expect(m.size == 10)
        #expect(parser.next() == .appendData(ByteBuffer(string: "01234")))
        #expect(parser.next() == nil)
        parser.append(ByteBuffer(string: "56789\r\n"))
        #expect(parser.next() == .appendData(ByteBuffer(string: "56789")))
        #expect(parser.next() == .appendFinished(tag: "a1"))
        #expect(parser.bufferedByteCount == 0)
    }

    @Test func appendWithSynchronisingLiteralWaits() {
        var parser = IMAPCommandParser()
        parser.append(ByteBuffer(string: "a1 APPEND INBOX {3}\r\n"))
        #expect(parser.next() == .appendStarted(tag: "a1", mailbox: MailboxName("INBOX"), message: AppendMessage(size: 3), synchronizing: true))
        parser.append(ByteBuffer(string: "abc\r\n"))
        #expect(parser.next() == nil)
        parser.literalAccepted()
        #expect(parser.next() == .appendData(ByteBuffer(string: "abc")))
        #expect(parser.next() == .appendFinished(tag: "a1"))
    }

    @Test(arguments: splittings)
    func rejectedAppendThenNextCommand(_ splitting: WriteSplitting) {
        let items = parseItems("a1 APPEND INBOX {3}\r\na2 NOOP\r\n", splitting: splitting, accept: false)
        #expect(items == [.appendStarted(tag: "a1", mailbox: MailboxName("INBOX"), message: AppendMessage(size: 3), synchronizing: true), noop2])
    }

    @Test(arguments: splittings)
    func appendVariants(_ splitting: WriteSplitting) {
        // Mailbox as a literal, literal8, MULTIAPPEND, an empty message.
        let items = parseItems("a1 APPEND {5}\r\nDraft ~{3+}\r\na\u{0}c {2+}\r\nde\r\na3 APPEND x {0+}\r\n\r\n", splitting: splitting)
        #expect(items == [
            .continuationRequested(tag: "a1", size: 5),
            .appendStarted(tag: "a1", mailbox: MailboxName("Draft"), message: AppendMessage(size: 3, isBinary: true), synchronizing: false),
            .appendData(ByteBuffer(string: "a\u{0}c")),
            .appendStarted(tag: "a1", mailbox: MailboxName("Draft"), message: AppendMessage(size: 2), synchronizing: false),
            .appendData(ByteBuffer(string: "de")),
            .appendFinished(tag: "a1"),
            .appendStarted(tag: "a3", mailbox: MailboxName("x"), message: AppendMessage(size: 0), synchronizing: false),
            .appendFinished(tag: "a3"),
        ])
    }

    @Test(arguments: splittings)
    func appendOverTheLimit(_ splitting: WriteSplitting) {
        let config = IMAPCommandParser.Configuration(maxAppendSize: 1000)
        let big = String(repeating: "m", count: 5000)
        let items = parseItems("a1 APPEND INBOX {5000}\r\na2 NOOP\r\na3 APPEND INBOX {5000+}\r\n\(big)\r\na4 NOOP\r\n",
                               splitting: splitting, configuration: config)
        #expect(items.map(\.errorKind) == [.literalTooLarge(5000), nil, .literalTooLarge(5000), nil])
        #expect(items[1] == noop2)
        #expect(items[3] == command("a4", .noop))
    }

    @Test func appendMessageDoesNotCountTowardsTheCommandSize() {
        let config = IMAPCommandParser.Configuration(maxCommandSize: 100)
        let body = [UInt8](repeating: 0x61, count: 10_000)
        let items = parseItems([Array("a1 APPEND INBOX {10000+}\r\n".utf8), body, Array("\r\n".utf8)], configuration: config)
        #expect(items.count == 3)
        #expect(items[1] == .appendData(ByteBuffer(bytes: body)))
    }

    @Test(arguments: splittings)
    func badLineAfterAppendMessage(_ splitting: WriteSplitting) {
        let items = parseItems("a1 APPEND INBOX {1+}\r\nx junk\r\na2 NOOP\r\n", splitting: splitting)
        #expect(items.count == 4)
        if case .error(let e) = items[2] { #expect(e.tag == "a1") } else { Issue.record("\(items)") }
        #expect(items[3] == noop2)
    }

    // MARK: Modes

    @Test(arguments: splittings)
    func idleEndsWithDone(_ splitting: WriteSplitting) {
        let items = parseItems("a1 IDLE\r\nnope\r\ndone\r\na2 NOOP\r\n", splitting: splitting)
        #expect(items == [command("a1", .idle), .error(IMAPParseError(tag: nil, kind: .syntax, message: "expected DONE")), .idleDone, noop2])
    }

    @Test func saslResponseIsOneLine() {
        var parser = IMAPCommandParser()
        parser.append(ByteBuffer(string: "a1 AUTHENTICATE PLAIN\r\n"))
        #expect(parser.next() == command("a1", .authenticate(mechanism: "PLAIN", initialResponse: nil)))
        parser.setMode(.saslResponse)
        parser.append(ByteBuffer(string: "dGVz"))
        #expect(parser.next() == nil)
        parser.append(ByteBuffer(string: "dA==\r\na2 NOOP\r\n"))
        #expect(parser.next() == .saslResponse("dGVzdA=="))
        #expect(parser.mode == .commands)
        #expect(parser.next() == noop2)
        parser.setMode(.saslResponse)
        parser.append(ByteBuffer(string: "*\r\n"))
        #expect(parser.next() == .saslResponse("*"))
    }

    @Test func startTLSWithPipelinedPlaintext() {
        var parser = IMAPCommandParser()
        parser.append(ByteBuffer(string: "a1 STARTTLS\r\na2 LOGIN user pass\r\n"))
        #expect(parser.next() == command("a1", .startTLS))
        #expect(parser.bufferedByteCount == 20)
        parser.discardBufferedBytes()
        #expect(parser.bufferedByteCount == 0)
        #expect(parser.next() == nil)
    }

    @Test func bufferedByteCountIncludesAPartialCommand() {
        var parser = IMAPCommandParser()
        parser.append(ByteBuffer(string: "a1 STARTTLS\r\na2 NO"))
        #expect(parser.next() == command("a1", .startTLS))
        #expect(parser.bufferedByteCount == 5)
    }

    // MARK: Limits

    @Test func hugeLineStaysBoundedAndFailsAtItsEnd() {
        var parser = IMAPCommandParser()
        parser.append(ByteBuffer(string: "a1 LOGIN "))
        let chunk = ByteBuffer(repeating: 0x78, count: 65_536)
        for _ in 0..<160 {  // 10 MiB
            parser.append(chunk)
            #expect(parser.next() == nil)
            #expect(parser.bufferedByteCount <= 2 * 65_536)
        }
        parser.append(ByteBuffer(string: "\r\na2 NOOP\r\n"))
        #expect(parser.next() == .error(IMAPParseError(tag: "a1", kind: .commandTooLong, message: "command too long")))
        #expect(parser.next() == noop2)
    }

    @Test(arguments: [WriteSplitting.asWritten, .random(seed: 9)])
    func longLineEndingInLiteralPlusSkipsTheLiteral(_ splitting: WriteSplitting) {
        let config = IMAPCommandParser.Configuration(maxCommandSize: 1000)
        let items = parseItems("a1 SEARCH SUBJECT \(String(repeating: "y", count: 5000)) {7+}\r\nNOOP\r\n\r\na2 NOOP\r\n",
                               splitting: splitting, configuration: config)
        #expect(items.map(\.errorKind) == [.commandTooLong, nil])
        #expect(items.last == noop2)
    }

    @Test(arguments: ["(", "NOT ", "OR ALL "])
    func deepNestingIsRefused(_ opener: String) {
        let key = opener == "(" ? String(repeating: "(", count: 1000) + "ALL" + String(repeating: ")", count: 1000)
                                : String(repeating: opener, count: 1000) + "ALL"
        let items = parseItems("a1 SEARCH \(key)\r\na2 NOOP\r\n")
        #expect(items.map(\.errorKind) == [.tooDeep, nil])
        #expect(items.last == noop2)
    }

    @Test func nestingWithinTheLimitIsFine() {
        let items = parseItems("a1 SEARCH " + String(repeating: "NOT ", count: 31) + "ALL\r\n")
        guard case .command = items.first else { Issue.record("\(items)"); return }
    }
}

extension IMAPCommandParser.Item {
    var errorKind: IMAPParseError.Kind? {
        if case .error(let e) = self { e.kind } else { nil }
    }
}
