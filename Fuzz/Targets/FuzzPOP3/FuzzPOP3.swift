// POP3 both ways: the server's line parser, command grammar and state machine on what a client sends;
// and the client's response parser on what a server sends (the same bytes, read as a response stream).
import FuzzSupport
import NIOCore
import POP3Core

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPOP3(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)

    // Server side.
    var lines = POP3LineParser(maximumLineLength: 255)
    var machine = POP3ServerStateMachine(configuration: .init(hostname: "pop.example.test", tlsAvailable: true,
                                                              allowPlaintextAuthentication: input.answer(7)))
    let messages = (0..<5).map { POP3ServerStateMachine.MessageInfo(size: 100 * ($0 + 1), uid: "uid\($0)") }
    var closed = false
    var decisions = 0
    func handle(_ first: POP3ServerStateMachine.Action) {
        var action = first
        while !closed {
            switch action {
            case .send(_, let then):
                switch then {
                case .close: closed = true
                case .startTLS:
                    lines.discardBufferedBytes()
                    action = machine.tlsEstablished()
                    continue
                case .readCommands, .readSASLResponse: break
                }
                return
            case .sendLines:
                return
            case .authenticate:
                decisions += 1
                action = input.answer(decisions) ? machine.authenticationSucceeded() : machine.authenticationFailed()
            case .openMaildrop:
                decisions += 1
                action = input.answer(decisions) ? machine.maildropOpened(messages) : machine.maildropUnavailable(inUse: true)
            case .sendMessage(let index, _):
                fuzzCheck(messages.indices.contains(index), "message index \(index) out of range")
                return
            case .update(let deleted):
                fuzzCheck(deleted.allSatisfy(messages.indices.contains), "deleted \(deleted)")
                fuzzCheck(Set(deleted).count == deleted.count, "a message deleted twice: \(deleted)")
                action = machine.updateFinished(success: input.answer(decisions + 1))
            case .close:
                closed = true
            case .none:
                return
            }
        }
    }
    for read in input.reads where !closed {
        lines.append(ByteBuffer(bytes: read))
        while !closed, let item = lines.next() {
            switch item {
            case .line(let line):
                handle(machine.commandReceived(POP3Command.parse(line)))
            case .lineTooLong:
                handle(machine.lineTooLong())
            }
        }
    }
    if !closed { handle(machine.timeoutFired()) }

    // Client side.
    var responses = POP3ResponseParser()
    var multiLine = input.answer(3)
    reading: for read in input.reads {
        responses.append(ByteBuffer(bytes: read))
        while let result = responses.next() {
            switch result {
            case .success(.status(let status)):
                if multiLine, status.ok { responses.expectMultiLine() }
                multiLine.toggle()
            case .success:
                break
            case .failure:
                break reading
            }
        }
        fuzzCheck(responses.bufferedByteCount <= responses.maximumLineLength + 64, "\(responses.bufferedByteCount) bytes held")
    }
    return 0
}
