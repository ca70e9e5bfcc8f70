import MailCore
import MailTesting
import NIOCore
import SMTPCore
import Testing

@Suite struct SMTPReplyParserTests {
    static let ehlo = "250-mx.example.test greets you\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-AUTH=LOGIN\r\n250-AUTH PLAIN SCRAM-SHA-256\r\n250 CHUNKING\r\n"

    func parseAll(_ pieces: [[UInt8]]) -> [Result<SMTPReply, SMTPReplyParser.ParseError>] {
        var p = SMTPReplyParser()
        var out: [Result<SMTPReply, SMTPReplyParser.ParseError>] = []
        for piece in pieces {
            p.append(ByteBuffer(bytes: piece))
            while let r = p.next() { out.append(r) }
        }
        return out
    }

    @Test func multiLineEHLOSplitAnywhere() throws {
        let bytes = Array(Self.ehlo.utf8) + Array("250 2.1.0 Ok\r\n".utf8)
        let whole = parseAll([bytes])
        #expect(whole.count == 2)
        let ehlo = try whole[0].get()
        #expect(ehlo.code == 250 && ehlo.lines.count == 6)
        let caps = SMTPCapabilities(ehloReply: ehlo)
        #expect(caps.pipelining && caps.chunking && caps.sizeLimit == 1000)
        #expect(caps.authMechanisms == ["LOGIN", "PLAIN", "SCRAM-SHA-256"])
        #expect(try whole[1].get() == SMTPReply(code: 250, .init(2, 1, 0), "Ok"))
        // Byte by byte and at every single split point: the same replies.
        #expect(parseAll(bytes.map { [$0] }).map { try? $0.get() } == whole.map { try? $0.get() })
        for cut in 1..<bytes.count {
            #expect(parseAll([Array(bytes[..<cut]), Array(bytes[cut...])]).map { try? $0.get() } == whole.map { try? $0.get() })
        }
        var rng = SplitMix64(seed: 7)
        for _ in 0..<50 {
            let pieces = WriteSplitting.random(seed: rng.next()).pieces(of: [bytes])
            #expect(parseAll(pieces).map { try? $0.get() } == whole.map { try? $0.get() })
        }
    }

    @Test(arguments: [
        ("220 ok\r\n", SMTPReply(code: 220, nil, "ok")),
        ("250\r\n", SMTPReply(code: 250, nil, "")),
        ("550 5.1.1 <x@y>: unknown\r\n", SMTPReply(code: 550, .init(5, 1, 1), "<x@y>: unknown")),
        ("451-4.3.0 first\r\n451 4.3.0 second\r\n", SMTPReply(code: 451, .init(4, 3, 0), ["first", "second"])),
        ("250 2.0.0\r\n", SMTPReply(code: 250, .init(2, 0, 0), "")),
        ("250 LF only\n", SMTPReply(code: 250, nil, "LF only")),
        ("550 2.1.1 class mismatch is text\r\n", SMTPReply(code: 550, nil, "2.1.1 class mismatch is text")),
    ])
    func replies(text: String, expected: SMTPReply) throws {
        #expect(try parseAll([Array(text.utf8)]).first?.get() == expected)
    }

    @Test(arguments: ["hello\r\n", "25 short\r\n", "250-a\r\n251 b\r\n", "2500 no\r\n", "999 bad code\r\n"])
    func malformed(text: String) {
        let r = parseAll([Array(text.utf8)])
        #expect(r.contains { if case .failure = $0 { true } else { false } })
    }

    @Test func unboundedRepliesAreCut() {
        // CVE-2020-8794 shape: an endless multi-line reply, and a line without end.
        var p = SMTPReplyParser()
        p.append(ByteBuffer(string: String(repeating: "250-x\r\n", count: 1000)))
        var failed = false
        while let r = p.next() { if case .failure(.tooLong) = r { failed = true; break } }
        #expect(failed)
        var q = SMTPReplyParser()
        q.append(ByteBuffer(string: "250 " + String(repeating: "y", count: 5000)))
        if case .failure(.tooLong)? = q.next() {} else { Issue.record("an endless line was not refused") }
    }
}

@Suite struct SMTPMessageEncoderTests {
    @Test func canonicalisesLineEndsAndStuffsDots() {
        let e = SMTPMessageEncoder(ByteBuffer(string: "A: 1\nB: 2\r\r\n.dot\rbare cr\n..two\nlast"))
        #expect(String(buffer: e.canonical) == "A: 1\r\nB: 2\r\n\r\n.dot\r\nbare cr\r\n..two\r\nlast\r\n")
        #expect(String(buffer: e.dataEncoding()) == "A: 1\r\nB: 2\r\n\r\n..dot\r\nbare cr\r\n...two\r\nlast\r\n.\r\n")
        #expect(!e.hasEightBit)
        #expect(SMTPMessageEncoder(ByteBuffer(string: "ü\r\n")).hasEightBit)
        #expect(SMTPMessageEncoder(ByteBuffer(string: String(repeating: "x", count: 999))).longestLine == 999)
        #expect(String(buffer: SMTPMessageEncoder(ByteBuffer()).canonical) == "\r\n")
    }

    @Test func noBareLineEndEverReachesTheWire() {
        var rng = SplitMix64(seed: 42)
        let alphabet: [UInt8] = [0x0D, 0x0A, UInt8(ascii: "."), UInt8(ascii: "a"), 0x00]
        for _ in 0..<500 {
            let bytes = (0..<Int(rng.next() % 40)).map { _ in alphabet[Int(rng.next() % 5)] }
            let wire = Array(SMTPMessageEncoder(ByteBuffer(bytes: bytes)).dataEncoding().readableBytesView)
            for (i, b) in wire.enumerated() {
                if b == 0x0A { #expect(i > 0 && wire[i - 1] == 0x0D) }
                if b == 0x0D { #expect(i + 1 < wire.count && wire[i + 1] == 0x0A) }
            }
            #expect(wire.suffix(5) == Array("\r\n.\r\n".utf8) || wire == Array(".\r\n".utf8) || wire.suffix(3) == Array(".\r\n".utf8))
        }
    }
}

/// The client transaction machine against the server state machine, with no sockets: bytes from one
/// are fed to the other's parser.
@Suite struct ClientServerMachinesTests {
    struct Outcome {
        var client: SMTPClientTransaction.Outcome
        var stored: [UInt8]?
        var serverSaw: [String]
    }

    func run(recipients: [String], rejected: Set<String> = [], pipelining: Bool, chunking: Bool,
             message: String = "Subject: t\r\n\r\n.dot\r\nbody\r\n") throws -> Outcome {
        var server = SMTPServerStateMachine(configuration: .init(hostname: "mx.test", chunking: chunking))
        var parser = SMTPCommandParser()
        var serverSaw: [String] = []
        var content: [UInt8] = []
        var stored: [UInt8]?
        var replies: [SMTPReply] = []
        // EHLO to learn the capabilities.
        _ = server.connectionEstablished()
        guard case .send(let ehlo, _) = server.commandReceived(.ehlo("client.test")) else { throw Failure() }
        var caps = SMTPCapabilities(ehloReply: ehlo[0])
        if !pipelining { caps.keywords["PIPELINING"] = nil }
        var tx = try SMTPClientTransaction(
            from: .mailbox(EmailAddress(localPart: "a", domain: "client.test")),
            to: recipients.map { .init(.mailbox(try EmailAddress.parse($0, allowUTF8: true).get())) },
            message: SMTPMessageEncoder(ByteBuffer(string: message)), capabilities: caps)
        func serve(_ bytes: ByteBuffer) {
            parser.append(bytes)
            while let item = parser.next() {
                var action: SMTPServerStateMachine.Action
                switch item {
                case .command(let c):
                    serverSaw.append(c.verb)
                    action = server.commandReceived(c)
                case .invalidCommand(let e): action = server.invalidCommandReceived(e)
                case .messageData(let b): action = server.messageDataReceived(b)
                case .endOfMessage(let f): action = server.endOfMessageReceived(f)
                case .chunkData(let b): action = server.chunkDataReceived(b)
                case .endOfChunk: action = server.endOfChunkReceived()
                case .saslLine(let l): action = server.saslResponseReceived(l)
                }
                while true {
                    switch action {
                    case .send(let r, let then):
                        replies += r
                        if then == .readData { parser.beginData() }
                        if case .readChunk(let n) = then { parser.beginChunk(size: n) }
                        action = .none
                    case .verifyRecipient(let path, _, _):
                        action = rejected.contains(path.description)
                            ? server.recipientRejected(.unknownUser) : server.recipientAccepted()
                    case .appendMessageData(let b):
                        content += b.readableBytesView
                        action = .none
                    case .storeMessage:
                        stored = content
                        action = server.messageStored(queueID: "Q1")
                    case .authenticate, .saslResponse:
                        action = server.authenticationFailed()
                    case .verifySender:
                        action = server.senderAccepted()
                    case .discardMessage(let r, _):
                        content = []
                        replies.append(r)
                        action = .none
                    case .none:
                        break
                    }
                    if case .none = action { break }
                }
            }
        }
        var step = tx.start()
        var rounds = 0
        while rounds < 100 {
            rounds += 1
            switch step {
            case .send(let bytes):
                serve(bytes)
                step = .wait
            case .wait:
                guard !replies.isEmpty else { throw Failure() }
                step = tx.replyReceived(replies.removeFirst())
            case .finished(let o):
                return Outcome(client: o, stored: stored, serverSaw: serverSaw)
            }
        }
        throw Failure()
    }

    struct Failure: Error {}

    @Test(arguments: [(true, true), (true, false), (false, true), (false, false)])
    func deliversWithEveryCombination(pipelining: Bool, chunking: Bool) throws {
        let o = try run(recipients: ["b@x.test", "c@x.test"], rejected: ["<c@x.test>"], pipelining: pipelining, chunking: chunking)
        #expect(o.client.error == nil)
        #expect(o.client.accepted?.code == 250)
        #expect(o.client.acceptedRecipients.map(\.description) == ["<b@x.test>"])
        #expect(o.client.refusedRecipients.map(\.reply.code) == [550])
        #expect(o.stored.map { String(decoding: $0, as: UTF8.self) } == "Subject: t\r\n\r\n.dot\r\nbody\r\n")
        #expect(o.serverSaw.last == (chunking ? "BDAT" : "DATA"))
    }

    @Test(arguments: [true, false])
    func allRecipientsRefused(pipelining: Bool) throws {
        let o = try run(recipients: ["b@x.test"], rejected: ["<b@x.test>"], pipelining: pipelining, chunking: false)
        #expect(o.stored == nil)
        #expect(o.client.error?.reply?.code == 550)
        #expect(o.client.error?.isPermanent == true)
        #expect(o.client.needsReset)
    }

    @Test func refusesWhatTheServerCannotTake() {
        var caps = SMTPCapabilities()
        caps.isExtended = true
        caps.keywords = ["SIZE": ["10"]]
        let from = ReversePath.mailbox(EmailAddress(localPart: "a", domain: "x.test"))
        let to = [SMTPClientTransaction.Recipient(.mailbox(EmailAddress(localPart: "b", domain: "x.test")))]
        #expect(throws: SMTPClientError.self) {
            _ = try SMTPClientTransaction(from: from, to: to, message: SMTPMessageEncoder(ByteBuffer(string: "Subject: long enough\r\n")), capabilities: caps)
        }
        caps.keywords = [:]
        #expect(throws: SMTPClientError.self) {
            _ = try SMTPClientTransaction(from: from, to: to, message: SMTPMessageEncoder(ByteBuffer(string: "ü\r\n")), capabilities: caps)
        }
        let utf8 = [SMTPClientTransaction.Recipient(.mailbox(EmailAddress(localPart: "用户", domain: "x.test")))]
        #expect(throws: SMTPClientError.self) {
            _ = try SMTPClientTransaction(from: from, to: utf8, message: SMTPMessageEncoder(ByteBuffer(string: "x\r\n")), capabilities: caps)
        }
    }
}
