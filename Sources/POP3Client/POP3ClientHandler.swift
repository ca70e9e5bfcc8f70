import ClientSupport
import NIOCore
import POP3Core

/// Parses server output and hands items to the waiting client; multi-line bodies are delivered in
/// chunks of about 64 KiB (CRLF line ends, unstuffed). What it shares with the SMTP client (the item
/// queue, errors and closing, the STLS upgrade that discards anything the server sent before the
/// handshake) is ``ClientChannelHandler``.
final class POP3ClientHandler: ClientChannelHandler<POP3ClientHandler.Item, POP3ClientFailures> {
    enum Item: Sendable {
        case status(POP3Response)
        case continuation(String)
        case body(ByteBuffer)
        case end
    }

    private var parser = POP3ResponseParser()
    private var multiLineExpectations: [Bool] = []
    private var pendingBody = ByteBuffer()
    static let chunk = 1 << 16

    init() { super.init() }

    /// The next status line answers a command whose `+OK` is followed by a multi-line body.
    func expect(multiLine: Bool) { multiLineExpectations.append(multiLine) }

    override func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        parser.append(unwrapInboundIn(data))
        while let next = parser.next() {
            switch next {
            case .success(.status(let r)):
                let multi = multiLineExpectations.isEmpty ? false : multiLineExpectations.removeFirst()
                if multi && r.ok { parser.expectMultiLine() }
                responses.deliver(.status(r))
            case .success(.continuation(let c)):
                responses.deliver(.continuation(c))
            case .success(.line(let bytes)):
                pendingBody.writeBytes(bytes)
                pendingBody.writeStaticString("\r\n")
                if pendingBody.readableBytes >= Self.chunk { flushBody() }
            case .success(.end):
                flushBody()
                responses.deliver(.end)
            case .failure:
                return close(context: context, failing: POP3ClientError(kind: .malformedResponse, isPermanent: false))
            }
        }
        flushBody()
    }

    private func flushBody() {
        guard pendingBody.readableBytes > 0 else { return }
        let b = pendingBody
        pendingBody = ByteBuffer()
        responses.deliver(.body(b))
    }

    /// Anything buffered after `+OK` to STLS was sent in plaintext and is dropped.
    override func discardBufferedInput() {
        parser.discardBufferedBytes()
        multiLineExpectations.removeAll()
    }
}

/// The POP3 client's errors for what ``ClientChannelHandler`` sees; a handshake failure is reported
/// as what ended it.
enum POP3ClientFailures: ClientFailures {
    static var command: WritableKeyPath<POP3ClientError, String?> { \.command }

    static func error(_ failure: ClientFailure) -> POP3ClientError {
        switch failure {
        case .connectionClosed, .closedBeforeHandshake: POP3ClientError(kind: .connectionClosed, isPermanent: false)
        case .timeout(let command): POP3ClientError(kind: .timeout, command: command, isPermanent: false)
        case .tls(let why, let permanent): POP3ClientError(kind: .tls(why), isPermanent: permanent)
        case .connectFailed(let why): POP3ClientError(kind: .connectFailed(why), isPermanent: false)
        case .handshakeTimedOut(let t):
            POP3ClientError(kind: .tls("no TLS handshake within \(t.nanoseconds / 1_000_000_000) s"), command: "STLS", isPermanent: false)
        }
    }
}
