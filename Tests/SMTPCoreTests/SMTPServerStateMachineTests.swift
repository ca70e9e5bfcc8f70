import MailCore
import NIOCore
import SMTPCore
import Testing

typealias Machine = SMTPServerStateMachine

private let host = "mx.example.test"
private let alice = EmailAddress(localPart: "alice", domain: "example.test")
private let bob = EmailAddress(localPart: "bob", domain: "example.test")
private let carol = EmailAddress(localPart: "carol", domain: "example.test")
private let utf8User = EmailAddress(localPart: "用户", domain: "例子.测试")

private func reply(_ code: Int, _ e: EnhancedStatusCode?, _ text: String) -> SMTPReply { SMTPReply(code: code, e, text) }
private func send(_ replies: SMTPReply..., then: Machine.Continuation = .readCommands) -> Machine.Action {
    .send(replies, then: then)
}
private func send(_ code: Int, _ e: EnhancedStatusCode?, _ text: String, then: Machine.Continuation = .readCommands) -> Machine.Action {
    .send([reply(code, e, text)], then: then)
}

private let ok = send(250, .init(2, 0, 0), "Ok")
private let mailOK = send(250, .init(2, 1, 0), "Ok")
private let rcptOK = send(250, .init(2, 1, 5), "Ok")
private let goAhead = send(354, nil, "End data with <CR><LF>.<CR><LF>", then: .readData)
private let bye = send(221, .init(2, 0, 0), "\(host) closing connection", then: .close)
private let sendHELOFirst = send(503, .init(5, 5, 1), "send HELO/EHLO first")
private let tooBig = reply(552, .init(5, 3, 4), "Message size exceeds fixed limit")
private let shuttingDown = reply(421, .init(4, 3, 2), "\(host) Service shutting down, closing connection")
private let timeout = reply(421, .init(4, 4, 2), "\(host) Error: timeout exceeded")
private let defaultEHLOLines = [host, "PIPELINING", "SIZE 26214400", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING"]

private func config(_ change: (inout Machine.Configuration) -> Void = { _ in }) -> Machine.Configuration {
    var c = Machine.Configuration(hostname: host)
    change(&c)
    return c
}

private func buffer(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }

private func contentFlags(octets: Int, bare: Bool = false, long: Bool = false) -> ContentFlags {
    var f = ContentFlags()
    f.octets = octets
    f.bareLineEnding = bare
    f.overlongLine = long
    return f
}

private func facts(_ helo: String = "client.example.test", extended: Bool = true, tls: TLSFacts? = nil) -> SMTPSessionFacts {
    SMTPSessionFacts(heloName: helo, isExtended: extended, tls: tls)
}

/// A machine after EHLO.
private func greeted(_ c: Machine.Configuration = config()) -> Machine {
    var m = Machine(configuration: c)
    _ = m.commandReceived(.ehlo("client.example.test"))
    return m
}

/// A machine after EHLO, MAIL FROM:<alice> and accepted recipients.
private func inTransaction(_ c: Machine.Configuration = config(), recipients: [EmailAddress] = [bob], params: [ESMTPParameter] = []) -> Machine {
    var m = greeted(c)
    #expect(m.commandReceived(.mail(.mailbox(alice), params)) == mailOK)
    for r in recipients {
        _ = m.commandReceived(.rcpt(.mailbox(r), []))
        #expect(m.recipientAccepted() == rcptOK)
    }
    return m
}

@Suite("SMTPServerStateMachine: greeting, EHLO, HELO and simple commands")
struct StateMachineSessionTests {
    @Test func greeting() {
        let m = Machine(configuration: config())
        #expect(m.connectionEstablished() == send(220, nil, "\(host) ESMTP Swallow"))
    }

    @Test("EHLO lists exactly the extensions offered", arguments: [
        (config(), defaultEHLOLines),
        (config { $0.startTLSAvailable = true }, defaultEHLOLines + ["STARTTLS"]),
        (config { $0.maximumMessageSize = 0 }, [host, "PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING"]),
        (config { $0.maximumMessageSize = 1000; $0.chunking = false; $0.smtpUTF8 = false },
         [host, "PIPELINING", "SIZE 1000", "8BITMIME", "ENHANCEDSTATUSCODES"]),
    ])
    func ehlo(_ c: Machine.Configuration, _ lines: [String]) {
        var m = Machine(configuration: c)
        #expect(m.commandReceived(.ehlo("client.example.test")) == .send([SMTPReply(code: 250, nil, lines)], then: .readCommands))
        #expect(m.sessionFacts == facts())
        #expect(!m.isInTransaction)
    }

    @Test("EHLO wire form")
    func ehloWire() {
        var m = Machine(configuration: config { $0.startTLSAvailable = true })
        guard case .send(let replies, _) = m.commandReceived(.ehlo("c")) else { Issue.record(); return }
        #expect(replies.flatMap { $0.encodedLines() } == [
            "250-mx.example.test", "250-PIPELINING", "250-SIZE 26214400", "250-8BITMIME", "250-ENHANCEDSTATUSCODES",
            "250-SMTPUTF8", "250-CHUNKING", "250 STARTTLS",
        ])
    }

    @Test("STARTTLS is not offered on an implicit-TLS listener")
    func ehloImplicitTLS() {
        var m = Machine(configuration: config { $0.startTLSAvailable = true }, implicitTLS: true)
        #expect(m.commandReceived(.ehlo("c")) == .send([SMTPReply(code: 250, nil, defaultEHLOLines)], then: .readCommands))
        #expect(m.commandReceived(.startTLS) == send(554, .init(5, 5, 1), "TLS already active"))
    }

    @Test("HELO: one line, no extensions, no parameters, no BDAT")
    func helo() {
        var m = Machine(configuration: config())
        #expect(m.commandReceived(.helo("client.example.test")) == send(250, nil, host))
        #expect(m.sessionFacts == facts(extended: false))
        #expect(m.commandReceived(.mail(.mailbox(alice), [ESMTPParameter("SIZE", "10")]))
            == send(555, .init(5, 5, 4), "Parameters not allowed after HELO"))
        #expect(m.commandReceived(.mail(.mailbox(alice), [])) == mailOK)
        #expect(m.commandReceived(.bdat(size: 4, last: true)) == .send([], then: .readChunk(4)))
        #expect(m.chunkDataReceived(buffer("abcd")) == .none)
        #expect(m.endOfChunkReceived() == send(503, .init(5, 5, 1), "BDAT not available"))
    }

    @Test("EHLO again replaces the HELO name")
    func ehloTwice() {
        var m = greeted()
        _ = m.commandReceived(.helo("other"))
        #expect(m.sessionFacts == facts("other", extended: false))
    }

    @Test("NOOP, HELP, VRFY, EXPN, AUTH, RSET and QUIT")
    func simpleCommands() {
        var m = Machine(configuration: config())
        #expect(m.commandReceived(.noop) == ok)
        #expect(m.commandReceived(.help(nil)) == send(214, .init(2, 0, 0), "See RFC 5321 and https://swallow.invalid/help; commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY STARTTLS"))
        #expect(m.commandReceived(.help("MAIL")) == m.commandReceived(.help(nil)))
        #expect(m.commandReceived(.vrfy("bob")) == send(252, .init(2, 5, 0), "Cannot VRFY user, but will accept message and attempt delivery"))
        #expect(m.commandReceived(.expn("staff")) == send(502, .init(5, 5, 1), "EXPN not available"))
        #expect(m.commandReceived(.auth("PLAIN")) == send(503, .init(5, 5, 1), "Authentication not enabled"))
        #expect(m.commandReceived(.rset) == ok)
        // RSET before HELO does not count as HELO.
        #expect(m.commandReceived(.mail(.null, [])) == sendHELOFirst)
        #expect(m.commandReceived(.quit) == bye)
        #expect(m.commandReceived(.noop) == .none)
        #expect(m.invalidCommandReceived(.unknownCommand("X")) == .none)
        #expect(m.timeoutFired() == .none)
        #expect(m.shutdownRequestedEvent() == .none)
        #expect(m.shutdownDeadlinePassed() == .none)
    }

    @Test("QUIT is accepted in every command state", arguments: [0, 1, 2])
    func quitAnywhere(_ stage: Int) {
        var m = stage == 0 ? Machine(configuration: config()) : stage == 1 ? greeted() : inTransaction()
        #expect(m.commandReceived(.quit) == bye)
        #expect(!m.isInTransaction)
    }
}

@Suite("SMTPServerStateMachine: mail transactions")
struct StateMachineTransactionTests {
    @Test("MAIL, RCPT, DATA, content, end, stored")
    func happyPath() {
        var m = greeted()
        #expect(!m.isInTransaction)
        #expect(m.commandReceived(.mail(.mailbox(alice), [ESMTPParameter("SIZE", "100"), ESMTPParameter("BODY", "8bitmime")])) == mailOK)
        #expect(m.isInTransaction)
        let envelope0 = SMTPEnvelope(reversePath: .mailbox(alice), eightBitMIME: true, declaredSize: 100)
        #expect(m.commandReceived(.rcpt(.mailbox(bob), [])) == .verifyRecipient(.mailbox(bob), envelope0, facts()))
        #expect(m.recipientAccepted() == rcptOK)
        var envelope1 = envelope0
        envelope1.recipients = [.mailbox(bob)]
        #expect(m.commandReceived(.rcpt(.postmaster, [])) == .verifyRecipient(.postmaster, envelope1, facts()))
        #expect(m.recipientAccepted() == rcptOK)
        #expect(!m.isReceivingContent)
        #expect(m.commandReceived(.data) == goAhead)
        #expect(m.isReceivingContent)
        let content = buffer("Subject: x\r\n\r\nhello\r\n")
        #expect(m.messageDataReceived(content) == .appendMessageData(content))
        var envelope2 = envelope1
        envelope2.recipients.append(.postmaster)
        #expect(m.endOfMessageReceived(contentFlags(octets: 21)) == .storeMessage(envelope2, facts()))
        #expect(!m.isReceivingContent)
        #expect(m.isInTransaction)
        #expect(m.messageStored(queueID: "4ABC") == send(250, .init(2, 0, 0), "Ok: queued as 4ABC"))
        #expect(!m.isInTransaction)
        // A second transaction on the same session.
        #expect(m.commandReceived(.mail(.null, [])) == mailOK)
        #expect(m.commandReceived(.rcpt(.mailbox(carol), [])) == .verifyRecipient(.mailbox(carol), SMTPEnvelope(reversePath: .null), facts()))
        #expect(m.recipientAccepted() == rcptOK)
        #expect(m.commandReceived(.quit) == bye)
    }

    @Test("MAIL parameters fill the envelope", arguments: [
        ([ESMTPParameter("BODY", "7BIT")], SMTPEnvelope(reversePath: .mailbox(alice))),
        ([ESMTPParameter("BODY", "8BITMIME")], SMTPEnvelope(reversePath: .mailbox(alice), eightBitMIME: true)),
        ([ESMTPParameter("SMTPUTF8")], SMTPEnvelope(reversePath: .mailbox(alice), smtpUTF8: true)),
        ([ESMTPParameter("SIZE", "0")], SMTPEnvelope(reversePath: .mailbox(alice), declaredSize: 0)),
        ([ESMTPParameter("SIZE", "26214400"), ESMTPParameter("SMTPUTF8"), ESMTPParameter("BODY", "8BITMIME")],
         SMTPEnvelope(reversePath: .mailbox(alice), eightBitMIME: true, smtpUTF8: true, declaredSize: 26_214_400)),
    ])
    func mailParameters(_ params: [ESMTPParameter], _ envelope: SMTPEnvelope) {
        var m = greeted()
        #expect(m.commandReceived(.mail(.mailbox(alice), params)) == mailOK)
        #expect(m.commandReceived(.rcpt(.mailbox(bob), [])) == .verifyRecipient(.mailbox(bob), envelope, facts()))
    }

    @Test("bad MAIL parameters", arguments: [
        (ESMTPParameter("SIZE"), send(501, .init(5, 5, 4), "Bad SIZE parameter")),
        (ESMTPParameter("SIZE", "abc"), send(501, .init(5, 5, 4), "Bad SIZE parameter")),
        (ESMTPParameter("SIZE", "-1"), send(501, .init(5, 5, 4), "Bad SIZE parameter")),
        (ESMTPParameter("SIZE", "1000000000000000000"), send(501, .init(5, 5, 4), "Bad SIZE parameter")),
        (ESMTPParameter("SIZE", "26214401"), .send([tooBig], then: .readCommands)),
        (ESMTPParameter("SIZE", "999999999999999999"), .send([tooBig], then: .readCommands)),
        (ESMTPParameter("BODY"), send(501, .init(5, 5, 4), "Bad BODY parameter (7BIT or 8BITMIME)")),
        (ESMTPParameter("BODY", "BINARYMIME"), send(501, .init(5, 5, 4), "Bad BODY parameter (7BIT or 8BITMIME)")),
        (ESMTPParameter("SMTPUTF8", "yes"), send(501, .init(5, 5, 4), "SMTPUTF8 takes no value")),
        (ESMTPParameter("FOO", "1"), send(555, .init(5, 5, 4), "Unsupported parameter FOO")),
        (ESMTPParameter("RET", "HDRS"), send(555, .init(5, 5, 4), "Unsupported parameter RET")),
        (ESMTPParameter("AUTH", "<>"), send(555, .init(5, 5, 4), "Unsupported parameter AUTH")),
    ])
    func badMailParameter(_ p: ESMTPParameter, _ expected: Machine.Action) {
        var m = greeted()
        #expect(m.commandReceived(.mail(.mailbox(alice), [p])) == expected)
        #expect(!m.isInTransaction)
        #expect(m.commandReceived(.mail(.mailbox(alice), [])) == mailOK)  // the session goes on
    }

    @Test("declared SIZE: equal to the limit is fine; no limit accepts anything")
    func declaredSize() {
        var m = greeted(config { $0.maximumMessageSize = 1000 })
        #expect(m.commandReceived(.mail(.null, [ESMTPParameter("SIZE", "1001")])) == .send([tooBig], then: .readCommands))
        #expect(m.commandReceived(.mail(.null, [ESMTPParameter("SIZE", "1000")])) == mailOK)
        var unlimited = greeted(config { $0.maximumMessageSize = 0 })
        #expect(unlimited.commandReceived(.mail(.null, [ESMTPParameter("SIZE", "999999999999999999")])) == mailOK)
    }

    @Test("SMTPUTF8 is unsupported when not offered")
    func smtpUTF8NotOffered() {
        var m = greeted(config { $0.smtpUTF8 = false })
        #expect(m.commandReceived(.mail(.mailbox(alice), [ESMTPParameter("SMTPUTF8")])) == send(555, .init(5, 5, 4), "Unsupported parameter SMTPUTF8"))
        #expect(m.commandReceived(.mail(.mailbox(utf8User), [])) == send(553, .init(5, 6, 7), "Non-ASCII address requires SMTPUTF8"))
    }

    @Test("553 5.6.7 for UTF-8 addresses without SMTPUTF8 (RFC 6531 §3.4)")
    func utf8Addresses() {
        var m = greeted()
        #expect(m.commandReceived(.mail(.mailbox(utf8User), [])) == send(553, .init(5, 6, 7), "Non-ASCII address requires SMTPUTF8"))
        #expect(!m.isInTransaction)
        #expect(m.commandReceived(.mail(.mailbox(alice), [])) == mailOK)
        #expect(m.commandReceived(.rcpt(.mailbox(utf8User), [])) == send(553, .init(5, 6, 7), "Non-ASCII address requires SMTPUTF8"))
        #expect(m.commandReceived(.rset) == ok)
        #expect(m.commandReceived(.mail(.mailbox(utf8User), [ESMTPParameter("SMTPUTF8")])) == mailOK)
        let envelope = SMTPEnvelope(reversePath: .mailbox(utf8User), smtpUTF8: true)
        #expect(m.commandReceived(.rcpt(.mailbox(utf8User), [])) == .verifyRecipient(.mailbox(utf8User), envelope, facts()))
    }

    @Test("RCPT parameters are not supported")
    func rcptParameters() {
        var m = inTransaction()
        #expect(m.commandReceived(.rcpt(.mailbox(carol), [ESMTPParameter("NOTIFY", "NEVER")])) == send(555, .init(5, 5, 4), "Unsupported parameter NOTIFY"))
    }

    @Test("a duplicate RCPT is answered 250 without asking the delegate and kept once")
    func duplicateRecipient() {
        var m = inTransaction()
        #expect(m.commandReceived(.rcpt(.mailbox(bob), [])) == rcptOK)
        #expect(m.commandReceived(.data) == goAhead)
        #expect(m.endOfMessageReceived(contentFlags(octets: 0))
            == .storeMessage(SMTPEnvelope(reversePath: .mailbox(alice), recipients: [.mailbox(bob)]), facts()))
    }

    @Test("a message already carrying maximumHops Received: fields is refused as a loop (554 5.4.6)")
    func mailLoop() {
        var m = inTransaction(config { $0.maximumHops = 3 })
        #expect(m.commandReceived(.data) == goAhead)
        var flags = contentFlags(octets: 10)
        flags.receivedFields = 3
        #expect(m.endOfMessageReceived(flags)
            == .discardMessage(SMTPReply(code: 554, .init(5, 4, 6), "Mail loop: too many hops (3 Received: fields)"), then: .readCommands))
        var ok = inTransaction(config { $0.maximumHops = 3 })
        _ = ok.commandReceived(.data)
        flags.receivedFields = 2
        #expect(ok.endOfMessageReceived(flags) == .storeMessage(SMTPEnvelope(reversePath: .mailbox(alice), recipients: [.mailbox(bob)]), facts()))
    }

    @Test("452 4.5.3 past maximumRecipients; duplicates still fine; not counted as errors")
    func tooManyRecipients() {
        var m = inTransaction(config { $0.maximumRecipients = 2; $0.maximumErrors = 1 }, recipients: [bob, carol])
        let tooMany = send(452, .init(4, 5, 3), "Too many recipients")
        #expect(m.commandReceived(.rcpt(.mailbox(alice), [])) == tooMany)
        #expect(m.commandReceived(.rcpt(.postmaster, [])) == tooMany)
        #expect(m.commandReceived(.rcpt(.mailbox(alice), [])) == tooMany)
        #expect(m.commandReceived(.rcpt(.mailbox(carol), [])) == rcptOK)
        #expect(m.commandReceived(.data) == goAhead)
        #expect(m.endOfMessageReceived(contentFlags(octets: 0))
            == .storeMessage(SMTPEnvelope(reversePath: .mailbox(alice), recipients: [.mailbox(bob), .mailbox(carol)]), facts()))
    }

    @Test("a rejected recipient: the delegate's reply is passed through")
    func recipientRejected() {
        var m = inTransaction()
        _ = m.commandReceived(.rcpt(.mailbox(carol), []))
        #expect(m.recipientRejected(.unknownUser) == .send([.unknownUser], then: .readCommands))
        #expect(m.commandReceived(.data) == goAhead)
        #expect(m.endOfMessageReceived(contentFlags(octets: 0))
            == .storeMessage(SMTPEnvelope(reversePath: .mailbox(alice), recipients: [.mailbox(bob)]), facts()))
    }

    @Test("DATA after all recipients were rejected: 554 5.5.1")
    func allRejected() {
        var m = inTransaction(recipients: [])
        _ = m.commandReceived(.rcpt(.mailbox(carol), []))
        #expect(m.recipientRejected(.relayDenied) == .send([.relayDenied], then: .readCommands))
        #expect(m.commandReceived(.data) == send(554, .init(5, 5, 1), "No valid recipients"))
        #expect(m.isInTransaction)
        // A later accepted recipient makes DATA possible again.
        _ = m.commandReceived(.rcpt(.mailbox(bob), []))
        #expect(m.recipientAccepted() == rcptOK)
        #expect(m.commandReceived(.data) == goAhead)
    }

    @Test("EHLO and RSET abandon the transaction")
    func resetTransaction() {
        var m = inTransaction()
        #expect(m.commandReceived(.rset) == ok)
        #expect(!m.isInTransaction)
        #expect(m.commandReceived(.rcpt(.mailbox(bob), [])) == send(503, .init(5, 5, 1), "need MAIL before RCPT"))
        m = inTransaction()
        #expect(m.commandReceived(.ehlo("again")) == .send([SMTPReply(code: 250, nil, defaultEHLOLines)], then: .readCommands))
        #expect(!m.isInTransaction)
        #expect(m.commandReceived(.data) == send(503, .init(5, 5, 1), "need MAIL before DATA"))
    }

    @Test("messageStoreFailed passes the reply through and ends the transaction")
    func storeFailed() {
        var m = inTransaction()
        _ = m.commandReceived(.data)
        _ = m.endOfMessageReceived(contentFlags(octets: 0))
        #expect(m.messageStoreFailed(.insufficientStorage) == .send([.insufficientStorage], then: .readCommands))
        #expect(!m.isInTransaction)
        #expect(m.commandReceived(.mail(.null, [])) == mailOK)
        m = inTransaction()
        _ = m.commandReceived(.data)
        _ = m.endOfMessageReceived(contentFlags(octets: 0))
        let policy = reply(554, .init(5, 7, 1), "Message refused by policy")
        #expect(m.messageStoreFailed(policy) == .send([policy], then: .readCommands))
    }
}

@Suite("SMTPServerStateMachine: sequencing errors (503)")
struct StateMachineSequencingTests {
    @Test("before HELO/EHLO")
    func beforeHello() {
        var m = Machine(configuration: config())
        #expect(m.commandReceived(.mail(.mailbox(alice), [])) == sendHELOFirst)
        #expect(m.commandReceived(.rcpt(.mailbox(bob), [])) == sendHELOFirst)
        #expect(m.commandReceived(.data) == sendHELOFirst)
        // BDAT before EHLO: the chunk is consumed, then refused.
        #expect(m.commandReceived(.bdat(size: 3, last: false)) == .send([], then: .readChunk(3)))
        #expect(m.chunkDataReceived(buffer("abc")) == .none)
        #expect(m.endOfChunkReceived() == send(503, .init(5, 5, 1), "BDAT not available"))
        #expect(m.commandReceived(.mail(.mailbox(alice), [])) == sendHELOFirst)
    }

    @Test("after EHLO, before MAIL")
    func beforeMail() {
        var m = greeted()
        #expect(m.commandReceived(.rcpt(.mailbox(bob), [])) == send(503, .init(5, 5, 1), "need MAIL before RCPT"))
        #expect(m.commandReceived(.data) == send(503, .init(5, 5, 1), "need MAIL before DATA"))
        #expect(m.commandReceived(.bdat(size: 5, last: true)) == .send([], then: .readChunk(5)))
        #expect(m.isReceivingContent)
        #expect(m.chunkDataReceived(buffer("QUIT\r")) == .none)
        #expect(m.endOfChunkReceived() == send(503, .init(5, 5, 1), "need MAIL and RCPT before BDAT"))
        #expect(!m.isReceivingContent)
        #expect(m.commandReceived(.mail(.mailbox(alice), [])) == mailOK)  // still greeted
    }

    @Test("after MAIL, before RCPT")
    func beforeRcpt() {
        var m = inTransaction(recipients: [])
        #expect(m.commandReceived(.mail(.mailbox(alice), [])) == send(503, .init(5, 5, 1), "nested MAIL command"))
        #expect(m.commandReceived(.data) == send(503, .init(5, 5, 1), "need RCPT before DATA"))
        #expect(m.isInTransaction)
        #expect(m.commandReceived(.bdat(size: 2, last: false)) == .send([], then: .readChunk(2)))
        #expect(m.chunkDataReceived(buffer("xy")) == .none)
        #expect(m.endOfChunkReceived() == send(503, .init(5, 5, 1), "need RCPT before BDAT"))
        // A refused BDAT ends the transaction (RFC 3030 §2: the transaction has failed).
        #expect(!m.isInTransaction)
    }

    @Test("BDAT after all recipients were rejected: 554 5.5.1 after the chunk")
    func bdatAllRejected() {
        var m = inTransaction(recipients: [])
        _ = m.commandReceived(.rcpt(.mailbox(carol), []))
        _ = m.recipientRejected(.unknownUser)
        #expect(m.commandReceived(.bdat(size: 1, last: true)) == .send([], then: .readChunk(1)))
        #expect(m.chunkDataReceived(buffer("x")) == .none)
        #expect(m.endOfChunkReceived() == send(554, .init(5, 5, 1), "No valid recipients"))
    }

    @Test("STARTTLS inside a transaction")
    func startTLSInTransaction() {
        var m = inTransaction(config { $0.startTLSAvailable = true })
        #expect(m.commandReceived(.startTLS) == send(503, .init(5, 5, 1), "STARTTLS not allowed during a mail transaction"))
        #expect(m.isInTransaction)
    }

    @Test("DATA after BDAT")
    func dataAfterBDAT() {
        var m = inTransaction()
        #expect(m.commandReceived(.bdat(size: 3, last: false)) == .send([], then: .readChunk(3)))
        #expect(m.chunkDataReceived(buffer("abc")) == .appendMessageData(buffer("abc")))
        #expect(m.endOfChunkReceived() == send(250, .init(2, 0, 0), "3 octets received"))
        #expect(m.commandReceived(.data) == send(503, .init(5, 5, 1), "DATA not allowed after BDAT"))
        #expect(m.commandReceived(.mail(.null, [])) == send(503, .init(5, 5, 1), "nested MAIL command"))
    }
}

@Suite("SMTPServerStateMachine: syntax errors and the error limit")
struct StateMachineErrorTests {
    @Test("each parse problem maps to its reply", arguments: [
        (SMTPCommandError.unknownCommand("FOO"), reply(500, .init(5, 5, 2), "Command unrecognized")),
        (.invalidCharacters, reply(500, .init(5, 5, 2), "Invalid characters in command")),
        (.lineTooLong, reply(500, .init(5, 5, 6), "Line too long")),
        (.syntax(verb: "MAIL", reason: "missing closing '>'"), reply(501, .init(5, 5, 4), "Syntax error: missing closing '>'")),
        (.badAddress(verb: "MAIL", .syntax), reply(501, .init(5, 1, 7), "Bad sender address: invalid address syntax")),
        (.badAddress(verb: "MAIL", .badDomain), reply(501, .init(5, 1, 7), "Bad sender address: invalid domain")),
        (.badAddress(verb: "MAIL", .localPartTooLong), reply(501, .init(5, 1, 7), "Bad sender address: local part longer than 64 octets")),
        (.badAddress(verb: "RCPT", .syntax), reply(501, .init(5, 1, 3), "Bad recipient address: invalid address syntax")),
        (.badAddress(verb: "RCPT", .domainTooLong), reply(501, .init(5, 1, 3), "Bad recipient address: domain longer than 255 octets")),
        (.badAddress(verb: "RCPT", .nonASCIIWithoutSMTPUTF8), reply(553, .init(5, 6, 7), "Non-ASCII address requires SMTPUTF8")),
    ])
    func invalidCommand(_ problem: SMTPCommandError, _ expected: SMTPReply) {
        var m = greeted()
        #expect(m.invalidCommandReceived(problem) == .send([expected], then: .readCommands))
        var fresh = Machine(configuration: config())
        #expect(fresh.invalidCommandReceived(problem) == .send([expected], then: .readCommands))
    }

    @Test("past maximumErrors the session ends with 421 4.7.0")
    func errorLimit() {
        var m = greeted(config { $0.maximumErrors = 3 })
        let unknown = reply(500, .init(5, 5, 2), "Command unrecognized")
        #expect(m.invalidCommandReceived(.unknownCommand("A")) == .send([unknown], then: .readCommands))
        #expect(m.commandReceived(.data) == send(503, .init(5, 5, 1), "need MAIL before DATA"))
        #expect(m.commandReceived(.noop) == ok)  // successes do not reset the count
        #expect(m.commandReceived(.expn("x")) == send(502, .init(5, 5, 1), "EXPN not available"))
        #expect(m.invalidCommandReceived(.unknownCommand("B"))
            == .send([unknown, reply(421, .init(4, 7, 0), "\(host) Error: too many errors")], then: .close))
        #expect(m.commandReceived(.noop) == .none)
    }

    @Test("rejected recipients count as errors")
    func rejectionsCount() {
        var m = inTransaction(config { $0.maximumErrors = 1 })
        _ = m.commandReceived(.rcpt(.mailbox(carol), []))
        #expect(m.recipientRejected(.unknownUser) == .send([.unknownUser], then: .readCommands))
        _ = m.commandReceived(.rcpt(.mailbox(alice), []))
        #expect(m.recipientRejected(.unknownUser)
            == .send([.unknownUser, reply(421, .init(4, 7, 0), "\(host) Error: too many errors")], then: .close))
    }
}

@Suite("SMTPServerStateMachine: DATA content")
struct StateMachineDataTests {
    @Test("DATA with pipelined bytes: 503 5.5.0 and close (RFC 2920 §3.1)")
    func pipelinedData() {
        var m = inTransaction()
        #expect(m.commandReceived(.data, pipelinedBytes: 12)
            == send(503, .init(5, 5, 0), "Improper use of SMTP command pipelining", then: .close))
        #expect(m.commandReceived(.quit) == .none)
    }

    @Test("the size limit is enforced while DATA flows; the rest is dropped and the message discarded")
    func sizeExceeded() {
        var m = inTransaction(config { $0.maximumMessageSize = 10 })
        _ = m.commandReceived(.data)
        #expect(m.messageDataReceived(buffer("123456")) == .appendMessageData(buffer("123456")))
        #expect(m.messageDataReceived(buffer("7890")) == .appendMessageData(buffer("7890")))  // exactly 10
        #expect(m.messageDataReceived(buffer("x")) == .none)
        #expect(m.messageDataReceived(buffer("more")) == .none)
        #expect(m.endOfMessageReceived(contentFlags(octets: 15)) == .discardMessage(tooBig, then: .readCommands))
        #expect(!m.isInTransaction)
        #expect(m.commandReceived(.rcpt(.mailbox(bob), [])) == send(503, .init(5, 5, 1), "need MAIL before RCPT"))
    }

    @Test("a bare CR or LF in the content: 550 5.5.2, message discarded")
    func bareLineEnding() {
        var m = inTransaction()
        _ = m.commandReceived(.data)
        _ = m.messageDataReceived(buffer("a\nb\r\n"))
        #expect(m.endOfMessageReceived(contentFlags(octets: 5, bare: true))
            == .discardMessage(reply(550, .init(5, 5, 2), "Message contains bare CR or LF; lines must end with CRLF"), then: .readCommands))
        #expect(!m.isInTransaction)
    }

    @Test("a line over 1000 octets: 500 5.5.6, message discarded")
    func overlongLine() {
        var m = inTransaction()
        _ = m.commandReceived(.data)
        #expect(m.endOfMessageReceived(contentFlags(octets: 2000, long: true))
            == .discardMessage(reply(500, .init(5, 5, 6), "Line too long (over 1000 octets)"), then: .readCommands))
    }

    @Test("size beats content flags when both apply")
    func sizeFirst() {
        var m = inTransaction(config { $0.maximumMessageSize = 1 })
        _ = m.commandReceived(.data)
        _ = m.messageDataReceived(buffer("ab"))
        #expect(m.endOfMessageReceived(contentFlags(octets: 2, bare: true, long: true)) == .discardMessage(tooBig, then: .readCommands))
    }

    @Test("content refusals count towards the error limit")
    func contentErrorsCount() {
        var m = inTransaction(config { $0.maximumErrors = 1 })
        _ = m.commandReceived(.data)
        _ = m.endOfMessageReceived(contentFlags(octets: 1, bare: true))
        #expect(m.invalidCommandReceived(.unknownCommand("X"))
            == .send([reply(500, .init(5, 5, 2), "Command unrecognized"), reply(421, .init(4, 7, 0), "\(host) Error: too many errors")], then: .close))
    }

    @Test("connection lost during DATA discards the message")
    func connectionLost() {
        var m = inTransaction()
        _ = m.commandReceived(.data)
        #expect(m.connectionClosed() == .discardMessage(reply(421, .init(4, 4, 0), "connection lost"), then: .close))
        var idle = greeted()
        #expect(idle.connectionClosed() == .none)
    }
}

@Suite("SMTPServerStateMachine: BDAT (RFC 3030)")
struct StateMachineBDATTests {
    @Test("chunks, then LAST stores the message")
    func chunks() {
        var m = inTransaction()
        #expect(m.commandReceived(.bdat(size: 5, last: false)) == .send([], then: .readChunk(5)))
        #expect(m.isReceivingContent)
        #expect(m.chunkDataReceived(buffer("ab")) == .appendMessageData(buffer("ab")))
        #expect(m.chunkDataReceived(buffer("c\r\n")) == .appendMessageData(buffer("c\r\n")))
        #expect(m.endOfChunkReceived() == send(250, .init(2, 0, 0), "5 octets received"))
        #expect(!m.isReceivingContent)
        #expect(m.isInTransaction)
        #expect(m.commandReceived(.bdat(size: 4, last: false)) == .send([], then: .readChunk(4)))
        #expect(m.chunkDataReceived(buffer("de\r\n")) == .appendMessageData(buffer("de\r\n")))
        #expect(m.endOfChunkReceived() == send(250, .init(2, 0, 0), "9 octets received"))
        #expect(m.commandReceived(.bdat(size: 0, last: true)) == .send([], then: .readChunk(0)))
        #expect(m.endOfChunkReceived() == .storeMessage(SMTPEnvelope(reversePath: .mailbox(alice), recipients: [.mailbox(bob)]), facts()))
        #expect(m.messageStored(queueID: "Q") == send(250, .init(2, 0, 0), "Ok: queued as Q"))
    }

    @Test("a BDAT message may end without CRLF")
    func noFinalCRLF() {
        var m = inTransaction()
        _ = m.commandReceived(.bdat(size: 3, last: true))
        _ = m.chunkDataReceived(buffer("abc"))
        #expect(m.endOfChunkReceived() == .storeMessage(SMTPEnvelope(reversePath: .mailbox(alice), recipients: [.mailbox(bob)]), facts()))
    }

    @Test("bare line endings and long lines are checked across chunks", arguments: [
        (["a\r", "\nb\r\n"], nil as SMTPReply?),
        (["a\r", "b\r\n"], reply(550, .init(5, 5, 2), "Message contains bare CR or LF; lines must end with CRLF")),
        (["a\n"], reply(550, .init(5, 5, 2), "Message contains bare CR or LF; lines must end with CRLF")),
        (["a\r"], reply(550, .init(5, 5, 2), "Message contains bare CR or LF; lines must end with CRLF")),
        ([String(repeating: "x", count: 600), String(repeating: "x", count: 400) + "\r\n"], reply(500, .init(5, 5, 6), "Line too long (over 1000 octets)")),
    ])
    func chunkContent(_ chunks: [String], _ refusal: SMTPReply?) {
        var m = inTransaction()
        for (i, c) in chunks.enumerated() {
            let last = i == chunks.count - 1
            #expect(m.commandReceived(.bdat(size: c.utf8.count, last: last)) == .send([], then: .readChunk(c.utf8.count)))
            _ = m.chunkDataReceived(buffer(c))
            let action = m.endOfChunkReceived()
            if !last { continue }
            if let refusal {
                #expect(action == .discardMessage(refusal, then: .readCommands))
            } else if case .storeMessage = action {} else {
                Issue.record("expected storeMessage, got \(action)")
            }
        }
    }

    @Test("a chunk beyond the size limit is consumed and the message discarded with 552 5.3.4")
    func chunkTooBig() {
        var m = inTransaction(config { $0.maximumMessageSize = 10 })
        #expect(m.commandReceived(.bdat(size: 6, last: false)) == .send([], then: .readChunk(6)))
        #expect(m.chunkDataReceived(buffer("123456")) == .appendMessageData(buffer("123456")))
        #expect(m.endOfChunkReceived() == send(250, .init(2, 0, 0), "6 octets received"))
        #expect(m.commandReceived(.bdat(size: 5, last: true)) == .send([], then: .readChunk(5)))
        #expect(m.chunkDataReceived(buffer("78901")) == .none)
        #expect(m.endOfChunkReceived() == .discardMessage(tooBig, then: .readCommands))
        #expect(!m.isInTransaction)
    }

    @Test("a non-last chunk beyond the limit is refused at once")
    func nonLastTooBig() {
        var m = inTransaction(config { $0.maximumMessageSize = 10 })
        _ = m.commandReceived(.bdat(size: 11, last: false))
        #expect(m.chunkDataReceived(buffer("12345678901")) == .none)
        #expect(m.endOfChunkReceived() == .discardMessage(tooBig, then: .readCommands))
    }

    @Test("BDAT when CHUNKING is not offered")
    func chunkingOff() {
        var m = inTransaction(config { $0.chunking = false })
        #expect(m.commandReceived(.bdat(size: 2, last: true)) == .send([], then: .readChunk(2)))
        #expect(m.chunkDataReceived(buffer("ab")) == .none)
        #expect(m.endOfChunkReceived() == send(503, .init(5, 5, 1), "BDAT not available"))
    }

    // After non-last chunks the sink holds content; abandoning the transaction must discard it, or the
    // adapter would prepend it to the next message (bug fixed in SMTPServerStateMachine).
    private func afterOneChunk(_ c: Machine.Configuration = config()) -> Machine {
        var m = inTransaction(c)
        _ = m.commandReceived(.bdat(size: 2, last: false))
        _ = m.chunkDataReceived(buffer("ab"))
        #expect(m.endOfChunkReceived() == send(250, .init(2, 0, 0), "2 octets received"))
        return m
    }

    @Test("RSET after a non-last chunk discards the partial message")
    func rsetAfterChunk() {
        var m = afterOneChunk()
        #expect(m.commandReceived(.rset) == .discardMessage(reply(250, .init(2, 0, 0), "Ok"), then: .readCommands))
        #expect(m.commandReceived(.rset) == ok)
        #expect(!m.isInTransaction)
    }

    @Test("EHLO after a non-last chunk discards the partial message")
    func ehloAfterChunk() {
        var m = afterOneChunk()
        #expect(m.commandReceived(.ehlo("c")) == .discardMessage(SMTPReply(code: 250, nil, defaultEHLOLines), then: .readCommands))
    }

    @Test("QUIT, timeout, shutdown and a lost connection after a non-last chunk discard the partial message")
    func closeAfterChunk() {
        var m = afterOneChunk()
        #expect(m.commandReceived(.quit) == .discardMessage(reply(221, .init(2, 0, 0), "\(host) closing connection"), then: .close))
        m = afterOneChunk()
        #expect(m.timeoutFired() == .discardMessage(timeout, then: .close))
        m = afterOneChunk()
        #expect(m.shutdownRequestedEvent() == .discardMessage(shuttingDown, then: .close))
        m = afterOneChunk()
        #expect(m.shutdownDeadlinePassed() == .discardMessage(shuttingDown, then: .close))
        m = afterOneChunk()
        #expect(m.connectionClosed() == .discardMessage(reply(421, .init(4, 4, 0), "connection lost"), then: .close))
        m = afterOneChunk(config { $0.maximumErrors = 0 })
        #expect(m.invalidCommandReceived(.unknownCommand("X")) == .discardMessage(reply(500, .init(5, 5, 2), "Command unrecognized"), then: .close))
    }

    @Test("errors that keep the transaction keep the partial message")
    func errorsKeepChunks() {
        var m = afterOneChunk()
        #expect(m.commandReceived(.noop) == ok)
        #expect(m.commandReceived(.data) == send(503, .init(5, 5, 1), "DATA not allowed after BDAT"))
        #expect(m.commandReceived(.bdat(size: 1, last: true)) == .send([], then: .readChunk(1)))
        #expect(m.chunkDataReceived(buffer("c")) == .appendMessageData(buffer("c")))
        if case .storeMessage = m.endOfChunkReceived() {} else { Issue.record("expected storeMessage") }
    }
}

@Suite("SMTPServerStateMachine: STARTTLS (RFC 3207)")
struct StateMachineTLSTests {
    static let tls = TLSFacts(version: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256")

    @Test("STARTTLS resets the session; EHLO is required again and STARTTLS is no longer offered")
    func startTLS() {
        var m = greeted(config { $0.startTLSAvailable = true })
        #expect(m.commandReceived(.startTLS) == send(220, .init(2, 0, 0), "Ready to start TLS", then: .startTLS))
        #expect(m.tlsEstablished(Self.tls) == .none)
        #expect(m.sessionFacts == SMTPSessionFacts(heloName: "", isExtended: false, tls: Self.tls))
        #expect(m.commandReceived(.mail(.mailbox(alice), [])) == sendHELOFirst)
        #expect(m.commandReceived(.ehlo("client.example.test")) == .send([SMTPReply(code: 250, nil, defaultEHLOLines)], then: .readCommands))
        #expect(m.sessionFacts == facts(tls: Self.tls))
        #expect(m.commandReceived(.startTLS) == send(554, .init(5, 5, 1), "TLS already active"))
        #expect(m.commandReceived(.mail(.mailbox(alice), [])) == mailOK)
        _ = m.commandReceived(.rcpt(.mailbox(bob), []))
        _ = m.recipientAccepted()
        _ = m.commandReceived(.data)
        #expect(m.endOfMessageReceived(contentFlags(octets: 0))
            == .storeMessage(SMTPEnvelope(reversePath: .mailbox(alice), recipients: [.mailbox(bob)]), facts(tls: Self.tls)))
    }

    @Test("STARTTLS before EHLO is allowed")
    func startTLSBeforeEHLO() {
        var m = Machine(configuration: config { $0.startTLSAvailable = true })
        #expect(m.commandReceived(.startTLS) == send(220, .init(2, 0, 0), "Ready to start TLS", then: .startTLS))
    }

    @Test("STARTTLS when the listener has no certificate: 454 4.7.0")
    func notAvailable() {
        var m = greeted()
        #expect(m.commandReceived(.startTLS) == send(454, .init(4, 7, 0), "TLS not available"))
        #expect(m.commandReceived(.mail(.null, [])) == mailOK)  // the session is unchanged
    }

    @Test("the forgotten session after STARTTLS forgets the transaction too")
    func forgetsTransaction() {
        var m = greeted(config { $0.startTLSAvailable = true })
        _ = m.commandReceived(.startTLS)
        _ = m.tlsEstablished(Self.tls)
        #expect(m.commandReceived(.rcpt(.mailbox(bob), [])) == sendHELOFirst)
        #expect(!m.isInTransaction)
    }
}

@Suite("SMTPServerStateMachine: timeouts and shutdown")
struct StateMachineLifecycleTests {
    @Test("timeout when idle: 421 4.4.2 and close")
    func timeoutIdle() {
        var m = greeted()
        #expect(m.timeoutFired() == .send([timeout], then: .close))
        #expect(m.commandReceived(.noop) == .none)
        var fresh = Machine(configuration: config())
        #expect(fresh.timeoutFired() == .send([timeout], then: .close))
        var tx = inTransaction()
        #expect(tx.timeoutFired() == .send([timeout], then: .close))
    }

    @Test("timeout during DATA or a chunk discards the message")
    func timeoutContent() {
        var m = inTransaction()
        _ = m.commandReceived(.data)
        #expect(m.timeoutFired() == .discardMessage(timeout, then: .close))
        m = inTransaction()
        _ = m.commandReceived(.bdat(size: 10, last: true))
        #expect(m.timeoutFired() == .discardMessage(timeout, then: .close))
    }

    @Test("timeout while storing waits for the store")
    func timeoutStoring() {
        var m = inTransaction()
        _ = m.commandReceived(.data)
        _ = m.endOfMessageReceived(contentFlags(octets: 0))
        #expect(m.timeoutFired() == .none)
        #expect(m.messageStored(queueID: "Q") == send(250, .init(2, 0, 0), "Ok: queued as Q"))
    }

    @Test("shutdown closes idle sessions at once", arguments: [0, 1, 2])
    func shutdownIdle(_ stage: Int) {
        var m = stage == 0 ? Machine(configuration: config()) : stage == 1 ? greeted() : inTransaction()
        #expect(m.shutdownRequestedEvent() == .send([shuttingDown], then: .close))
        #expect(m.shutdownRequestedEvent() == .none)
        #expect(m.commandReceived(.noop) == .none)
    }

    @Test("shutdown while storing: 250 then 421 and close")
    func shutdownStoring() {
        var m = inTransaction()
        _ = m.commandReceived(.data)
        _ = m.endOfMessageReceived(contentFlags(octets: 0))
        #expect(m.shutdownRequestedEvent() == .none)
        #expect(m.messageStored(queueID: "Q1") == .send([reply(250, .init(2, 0, 0), "Ok: queued as Q1"), shuttingDown], then: .close))
    }

    @Test("shutdown while storing, store fails: the failure, then 421")
    func shutdownStoreFails() {
        var m = inTransaction()
        _ = m.commandReceived(.data)
        _ = m.endOfMessageReceived(contentFlags(octets: 0))
        #expect(m.shutdownRequestedEvent() == .none)
        #expect(m.messageStoreFailed(.localError) == .send([.localError, shuttingDown], then: .close))
    }

    @Test("shutdown during DATA lets the message finish")
    func shutdownDuringData() {
        var m = inTransaction()
        _ = m.commandReceived(.data)
        #expect(m.shutdownRequestedEvent() == .none)
        #expect(m.messageDataReceived(buffer("x\r\n")) == .appendMessageData(buffer("x\r\n")))
        if case .storeMessage = m.endOfMessageReceived(contentFlags(octets: 3)) {} else { Issue.record("expected storeMessage") }
        #expect(m.messageStored(queueID: "Q2") == .send([reply(250, .init(2, 0, 0), "Ok: queued as Q2"), shuttingDown], then: .close))
    }

    @Test("shutdown while a recipient is being verified lets the session go on")
    func shutdownVerifying() {
        var m = inTransaction()
        _ = m.commandReceived(.rcpt(.mailbox(carol), []))
        #expect(m.shutdownRequestedEvent() == .none)
        #expect(m.recipientAccepted() == rcptOK)
    }

    @Test("the shutdown deadline closes whatever is in progress")
    func shutdownDeadline() {
        var m = inTransaction()
        _ = m.commandReceived(.data)
        _ = m.shutdownRequestedEvent()
        #expect(m.shutdownDeadlinePassed() == .discardMessage(shuttingDown, then: .close))
        var idle = greeted()
        #expect(idle.shutdownDeadlinePassed() == .send([shuttingDown], then: .close))
    }
}

@Suite("SMTP server: AUTH exchanges run by the delegate, authenticated senders")
struct SMTPServerAuthenticatedSessionTests {
    private func submission() -> Machine {
        var m = Machine(configuration: config {
            $0.authMechanisms = ["PLAIN", "SCRAM-SHA-256"]
            $0.requireAuthentication = true
        }, implicitTLS: true)
        _ = m.tlsEstablished(TLSFacts(version: "TLSv1.3"))
        _ = m.commandReceived(.ehlo("client.example.test"))
        return m
    }

    private func authenticated() -> Machine {
        var m = submission()
        _ = m.commandReceived(.auth("PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ="))
        _ = m.authenticationSucceeded(user: "alice@example.test")
        return m
    }

    @Test("a delegate mechanism: initial response, challenge, success with data, empty answer, 235")
    func delegateExchange() {
        var m = submission()
        #expect(m.commandReceived(.auth("SCRAM-SHA-256 AQID")) == .saslResponse(mechanism: "SCRAM-SHA-256", response: [1, 2, 3], first: true))
        #expect(m.saslChallenge([4, 5]) == send(334, nil, Base64.encode([4, 5]), then: .readSASLResponse))
        #expect(m.saslResponseReceived(Array("Bgc=".utf8)) == .saslResponse(mechanism: "SCRAM-SHA-256", response: [6, 7], first: false))
        #expect(m.authenticationSucceeded(user: "alice@example.test", additionalData: [8]) == send(334, nil, "CA==", then: .readSASLResponse))
        #expect(m.sessionFacts.authenticatedAs == nil)
        #expect(m.saslResponseReceived([]) == send(235, .init(2, 7, 0), "Authentication successful"))
        #expect(m.sessionFacts.authenticatedAs == "alice@example.test")
    }

    @Test("a mechanism the delegate runs no exchange for: 504 5.5.4, and the session is ready again")
    func delegateExchangeUnavailable() {
        var m = submission()
        #expect(m.commandReceived(.auth("SCRAM-SHA-256 AQID")) == .saslResponse(mechanism: "SCRAM-SHA-256", response: [1, 2, 3], first: true))
        #expect(m.saslExchangeUnavailable() == send(504, .init(5, 5, 4), "Unrecognized authentication type"))
        #expect(m.commandReceived(.auth("PLAIN")) == send(334, nil, "", then: .readSASLResponse))
    }

    @Test("no initial response: an empty 334 first; bad base64 and * end the exchange")
    func delegateExchangeWithoutInitialResponse() {
        var m = submission()
        #expect(m.commandReceived(.auth("SCRAM-SHA-256")) == send(334, nil, "", then: .readSASLResponse))
        #expect(m.saslResponseReceived(Array("AQ==".utf8)) == .saslResponse(mechanism: "SCRAM-SHA-256", response: [1], first: true))
        _ = m.saslChallenge([2])
        #expect(m.saslResponseReceived(Array("*".utf8)) == send(501, .init(5, 7, 0), "Authentication cancelled"))
        _ = m.commandReceived(.auth("SCRAM-SHA-256"))
        #expect(m.saslResponseReceived(Array("!!".utf8)) == send(501, .init(5, 5, 2), "Invalid base64 in AUTH response"))
        #expect(m.sessionFacts.authenticatedAs == nil)
    }

    @Test("an unreadable SASL response (too long) ends the exchange: the next command is a command again")
    func overlongResponseEndsTheExchange() {
        var m = submission()
        #expect(m.commandReceived(.auth("SCRAM-SHA-256")) == send(334, nil, "", then: .readSASLResponse))
        #expect(m.invalidCommandReceived(.lineTooLong) == send(500, .init(5, 5, 6), "Line too long"))
        #expect(m.commandReceived(.noop) == send(250, .init(2, 0, 0), "Ok"))
        #expect(m.commandReceived(.auth("PLAIN")) == send(334, nil, "", then: .readSASLResponse))
        #expect(m.invalidCommandReceived(.lineTooLong) == send(500, .init(5, 5, 6), "Line too long"))
        #expect(m.commandReceived(.mail(.mailbox(EmailAddress(localPart: "alice", domain: "example.test")), []))
                == send(530, .init(5, 7, 0), "Authentication required"))
    }

    @Test("a non-empty answer to the final 334 fails the exchange")
    func finalAcknowledgementMustBeEmpty() {
        var m = submission()
        _ = m.commandReceived(.auth("SCRAM-SHA-256 AQID"))
        _ = m.authenticationSucceeded(user: "alice@example.test", additionalData: [8])
        #expect(m.saslResponseReceived(Array("AA==".utf8)) == send(535, .init(5, 7, 8), "Authentication credentials invalid"))
        #expect(m.sessionFacts.authenticatedAs == nil)
    }

    @Test("throttled: 454 keeps the session, 421 closes it")
    func throttledReplies() {
        var m = submission()
        _ = m.commandReceived(.auth("PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ="))
        let r454 = reply(454, .init(4, 7, 0), "Too many failed logins for this account, try again later")
        #expect(m.authenticationFailed(r454) == .send([r454], then: .readCommands))
        _ = m.commandReceived(.auth("PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ="))
        let r421 = reply(421, .init(4, 7, 0), "Too many failed logins from your address, try again later")
        #expect(m.authenticationFailed(r421) == .send([r421], then: .close))
        #expect(m.commandReceived(.noop) == .none)
    }

    @Test("MAIL of an authenticated session asks the delegate; a refusal ends the transaction")
    func senderVerification() {
        var m = authenticated()
        let path = ReversePath.mailbox(bob)
        guard case .verifySender(path, _, let f) = m.commandReceived(.mail(path, [])) else {
            Issue.record("expected verifySender")
            return
        }
        #expect(f.authenticatedAs == "alice@example.test")
        #expect(m.isInTransaction)
        let notOwned = reply(553, .init(5, 7, 1), "Sender address rejected: not owned by user alice@example.test")
        #expect(m.senderRejected(notOwned) == .send([notOwned], then: .readCommands))
        #expect(m.commandReceived(.rcpt(.mailbox(carol), [])) == send(503, .init(5, 5, 1), "need MAIL before RCPT"))
        if case .verifySender = m.commandReceived(.mail(.mailbox(alice), [])) {} else { Issue.record("expected verifySender") }
        #expect(m.senderAccepted() == mailOK)
        if case .verifyRecipient = m.commandReceived(.rcpt(.mailbox(carol), [])) {} else { Issue.record("expected verifyRecipient") }
    }

    @Test("unauthenticated sessions are not asked about senders; shutdown waits for a sender check")
    func noSenderCheckWithoutAuth() {
        var m = greeted()
        #expect(m.commandReceived(.mail(.mailbox(alice), [])) == mailOK)
        var a = authenticated()
        _ = a.commandReceived(.mail(.mailbox(alice), []))
        #expect(a.shutdownRequestedEvent() == .none)
        #expect(a.senderAccepted() == mailOK)
    }
}

@Suite("SMTP server: PLAIN and LOGIN framing through the SASL server machine")
struct SMTPServerPasswordMechanismTests {
    private static let invalidBase64 = send(501, .init(5, 5, 2), "Invalid base64 in AUTH response")
    private static let malformedPlain = send(501, .init(5, 5, 2), "Malformed AUTH PLAIN response")
    private static let invalidCredentials = send(535, .init(5, 7, 8), "Authentication credentials invalid")

    private func session() -> Machine {
        var m = Machine(configuration: config { $0.authMechanisms = ["PLAIN", "LOGIN"] }, implicitTLS: true)
        _ = m.tlsEstablished(TLSFacts(version: "TLSv1.3"))
        _ = m.commandReceived(.ehlo("client.example.test"))
        return m
    }

    private func base64(_ bytes: [UInt8]) -> String { Base64.encode(bytes) }
    private func plain(_ authzid: String, _ user: String, _ password: String) -> String {
        base64(Array(authzid.utf8) + [0] + Array(user.utf8) + [0] + Array(password.utf8))
    }

    /// (AUTH argument, lines after it, the last action).
    static let cases: [(String, [String], Machine.Action)] = [
        ("PLAIN =", [], malformedPlain),
        ("PLAIN", ["="], malformedPlain),
        ("PLAIN", ["not base64"], invalidBase64),
        ("PLAIN \(Base64.encode(Array("alice secret".utf8)))", [], malformedPlain),
        ("PLAIN \(Base64.encode([0, 0] + Array("pw".utf8)))", [], malformedPlain),
        ("PLAIN \(Base64.encode(Array("bob".utf8) + [0] + Array("alice".utf8) + [0] + Array("pw".utf8)))", [], invalidCredentials),
        ("PLAIN \(Base64.encode([0] + Array("alice".utf8) + [0]))", [], .authenticate(mechanism: "PLAIN", user: "alice", password: "")),
        ("plain \(Base64.encode(Array("ALICE".utf8) + [0] + Array("alice".utf8) + [0] + Array("pw".utf8)))", [],
         .authenticate(mechanism: "PLAIN", user: "alice", password: "pw")),
        ("LOGIN =", [], invalidBase64),
        ("LOGIN", ["="], invalidBase64),
        ("LOGIN \(Base64.encode(Array("alice".utf8)))", ["="], invalidBase64),
        ("LOGIN \(Base64.encode(Array("alice".utf8)))", [""], .authenticate(mechanism: "LOGIN", user: "alice", password: "")),
        ("LOGIN \(Base64.encode(Array("alice".utf8)))", [Base64.encode([0xFF])], invalidBase64),
        ("LOGIN", [Base64.encode(Array("alice".utf8)), "*"], send(501, .init(5, 7, 0), "Authentication cancelled")),
        ("LOGIN a b", [], send(501, .init(5, 5, 4), "Syntax error in AUTH parameters")),
    ]

    @Test("replies byte for byte", arguments: cases.indices)
    func framing(_ i: Int) {
        let (argument, lines, expected) = Self.cases[i]
        var m = session()
        var action = m.commandReceived(.auth(argument))
        for line in lines { action = m.saslResponseReceived(Array(line.utf8)) }
        #expect(action == expected, "AUTH \(argument) then \(lines)")
    }

    @Test("LOGIN's prompts, then 235; a failed exchange leaves the session ready for another AUTH")
    func loginThenPlain() {
        var m = session()
        #expect(m.commandReceived(.auth("LOGIN")) == send(334, nil, "VXNlcm5hbWU6", then: .readSASLResponse))
        #expect(m.saslResponseReceived(Array(base64(Array("alice".utf8)).utf8)) == send(334, nil, "UGFzc3dvcmQ6", then: .readSASLResponse))
        #expect(m.saslResponseReceived(Array(base64(Array("wrong".utf8)).utf8)) == .authenticate(mechanism: "LOGIN", user: "alice", password: "wrong"))
        #expect(m.authenticationFailed() == Self.invalidCredentials)
        #expect(m.commandReceived(.auth("PLAIN")) == send(334, nil, "", then: .readSASLResponse))
        #expect(m.saslResponseReceived(Array(plain("", "alice", "secret").utf8)) == .authenticate(mechanism: "PLAIN", user: "alice", password: "secret"))
        #expect(m.shutdownRequestedEvent() == .none, "shutdown waits for the delegate's verdict")
        #expect(m.authenticationSucceeded(user: "alice@example.test") == send(235, .init(2, 7, 0), "Authentication successful"))
        #expect(m.sessionFacts.authenticatedAs == "alice@example.test")
    }
}
