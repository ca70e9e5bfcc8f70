// The IMAP server's input path: the command parser (commands, literals, streamed APPEND, IDLE and SASL
// lines) driven the way the session machine drives it — every literal accepted, IDLE answered with
// the idle mode, AUTHENTICATE with one SASL line. Invariants: buffering stays bounded by the command
// limit plus one read; APPEND data adds up to the announced size; a LOGIN's strings written back by
// the response encoder parse to the same strings.
import FuzzSupport
import IMAPCore
import NIOCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIMAPCommand(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let configuration = IMAPCommandParser.Configuration(maxCommandSize: 1024, maxAppendSize: 4096, maxDepth: 8)
    var parser = IMAPCommandParser(configuration: configuration)
    var appendRemaining: Int?
    var decisions = 0
    for read in input.reads {
        parser.append(ByteBuffer(bytes: read))
        while let item = parser.next() {
            switch item {
            case .continuationRequested(_, let size):
                fuzzCheck(size <= configuration.maxCommandSize, "literal of \(size) asked for")
                decisions += 1
                if input.answer(decisions) { parser.literalAccepted() } else { parser.literalRejected() }
            case .appendStarted(_, _, let message, let synchronizing):
                fuzzCheck(appendRemaining == nil || appendRemaining == 0, "APPEND started inside a message")
                fuzzCheck(message.size <= configuration.maxAppendSize, "message of \(message.size) started")
                appendRemaining = message.size
                if synchronizing {
                    decisions += 1
                    if input.answer(decisions) {
                        parser.literalAccepted()
                    } else {
                        parser.literalRejected()
                        appendRemaining = nil
                    }
                }
            case .appendData(let chunk):
                fuzzCheck(chunk.readableBytes > 0, "empty APPEND chunk")
                fuzzCheck(appendRemaining.map { chunk.readableBytes <= $0 } ?? false, "APPEND data outside a message")
                appendRemaining = appendRemaining.map { $0 - chunk.readableBytes }
            case .appendFinished:
                fuzzCheck(appendRemaining == 0, "APPEND finished with \(String(describing: appendRemaining)) octets missing")
                appendRemaining = nil
            case .command(let tagged):
                fuzzCheck(appendRemaining == nil || appendRemaining == 0, "command inside an APPEND message")
                switch tagged.command {
                case .idle: parser.setMode(.idle)
                case .authenticate(_, nil): parser.setMode(.saslResponse)
                case .login(let user, let password): checkRoundTrip(user, password)
                default: break
                }
            case .error(let error):
                fuzzCheck(!error.message.isEmpty, "error without a message")
                appendRemaining = nil
            case .saslResponse, .idleDone:
                break
            }
        }
        fuzzCheck(parser.bufferedByteCount <= configuration.maxCommandSize + read.count, "\(parser.bufferedByteCount) octets held")
    }
    return 0
}

/// The encoder's astring and string forms of `user`/`password` parse back to the same strings.
private func checkRoundTrip(_ user: String, _ password: String) {
    for utf8 in [false, true] {
        let encoder = IMAPResponseEncoder(options: .init(utf8: utf8))
        var b = ByteBuffer(string: "t LOGIN ")
        encoder.writeAstring(user, into: &b)
        b.writeString(" ")
        encoder.writeString(password, into: &b)
        b.writeString("\r\n")
        var parser = IMAPCommandParser(configuration: .init(maxCommandSize: 1 << 20))
        parser.append(b)
        var result: IMAPCommandParser.Item?
        while let item = parser.next() {
            if case .continuationRequested = item { parser.literalAccepted() } else { result = item }
        }
        fuzzCheck(result == .command(TaggedCommand(tag: "t", command: .login(user: user, password: password))),
                  "LOGIN strings do not round-trip: \(String(describing: result))")
    }
}
