// The SMTP server's input path: the command parser (commands, DATA, BDAT, SASL lines) driven by the
// server state machine, with a simulated delegate, exactly as the NIO adapter drives them.
import FuzzSupport
import MailCore
import NIOCore
import SMTPCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSMTPCommand(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    var parser = SMTPCommandParser(maximumCommandLength: 512)
    var machine = SMTPServerStateMachine(configuration: .init(hostname: "mx.example.test", maximumMessageSize: 4096,
                                                              maximumRecipients: 5))
    var decisions = 0
    var closed = false
    var content = 0

    func handle(_ first: SMTPServerStateMachine.Action) {
        var action = first
        while !closed {
            switch action {
            case .send(let replies, let then):
                for reply in replies {
                    fuzzCheck((200...599).contains(reply.code), "reply code \(reply.code)")
                }
                switch then {
                case .close: closed = true
                case .readCommands: break
                case .readData: parser.beginData()
                case .readChunk(let size):
                    fuzzCheck(size >= 0, "negative chunk size \(size)")
                    parser.beginChunk(size: size)
                case .readSASLResponse: parser.beginSASLLine()
                case .startTLS:
                    parser.discardBufferedBytes()
                    action = machine.tlsEstablished(TLSFacts(version: "TLSv1.3"))
                    continue
                }
                return
            case .verifySender:
                decisions += 1
                action = input.answer(decisions) ? machine.senderAccepted()
                    : machine.senderRejected(SMTPReply(code: 553, .init(5, 7, 1), "not yours"))
            case .verifyRecipient:
                decisions += 1
                action = input.answer(decisions) ? machine.recipientAccepted()
                    : machine.recipientRejected(SMTPReply(code: 550, .init(5, 1, 1), "no such user"))
            case .appendMessageData(let bytes):
                content += bytes.readableBytes
                return
            case .storeMessage:
                decisions += 1
                action = input.answer(decisions) ? machine.messageStored(queueID: "Q1")
                    : machine.messageStoreFailed(SMTPReply(code: 452, .init(4, 3, 1), "full"))
            case .discardMessage(_, let then):
                action = .send([], then: then)
            case .authenticate(_, let user, _):
                decisions += 1
                action = input.answer(decisions) ? machine.authenticationSucceeded(user: user) : machine.authenticationFailed()
            case .saslResponse(_, _, let first):
                decisions += 1
                action = first && input.answer(decisions) ? machine.saslChallenge([0x72, 0x3D])
                    : machine.authenticationFailed()
            case .none:
                return
            }
        }
    }

    handle(machine.connectionEstablished())
    for read in input.reads where !closed {
        parser.append(ByteBuffer(bytes: read))
        while !closed, let item = parser.next() {
            switch item {
            case .command(let command):
                handle(machine.commandReceived(command, pipelinedBytes: parser.bufferedByteCount))
            case .invalidCommand(let problem):
                handle(machine.invalidCommandReceived(problem))
            case .messageData(let bytes):
                handle(machine.messageDataReceived(bytes))
            case .endOfMessage(let flags):
                handle(machine.endOfMessageReceived(flags))
            case .chunkData(let bytes):
                handle(machine.chunkDataReceived(bytes))
            case .endOfChunk:
                handle(machine.endOfChunkReceived())
            case .saslLine(let line):
                handle(machine.saslResponseReceived(line))
            }
        }
    }
    if !closed { handle(machine.timeoutFired()) }
    _ = machine.connectionClosed()

    // The line grammar on its own, on the whole payload as one line.
    if case .success(let command) = SMTPCommandLineParser.parse(input.payload.prefix(1024)) {
        if case .mail(.mailbox(let address), _) = command {
            fuzzCheck(!address.description.utf8.contains(where: { $0 < 0x20 }), "control byte in a parsed address")
        }
    }
    return 0
}
