import ClientSupport
import NIOCore
import SMTPCore

/// The NIO side of the client: parses replies and hands them to whoever waits. What it shares with
/// the POP3 client (the reply queue, errors and closing, the STARTTLS upgrade that discards anything
/// the server sent before the handshake) is ``ClientChannelHandler``.
final class SMTPClientHandler: ClientChannelHandler<SMTPReply, SMTPClientFailures>, RemovableChannelHandler {
    private var parser = SMTPReplyParser()

    /// Pipelined commands are answered before they are read (at most one reply per recipient plus a
    /// few); far more unread replies than that is a flood.
    init() { super.init(maximumUnrequested: 20_000) }

    override func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        parser.append(unwrapInboundIn(data))
        while let next = parser.next() {
            // A reply that does not parse, or a flood of replies nobody asked for, ends the connection.
            guard case .success(let reply) = next, responses.deliver(reply) else {
                return close(context: context, failing: SMTPClientError(kind: .malformedReply, isPermanent: false))
            }
        }
    }

    override func discardBufferedInput() { parser.discardBufferedBytes() }
}

/// The SMTP client's errors for what ``ClientChannelHandler`` sees.
enum SMTPClientFailures: ClientFailures {
    static var command: WritableKeyPath<SMTPClientError, String?> { \.command }

    static func error(_ failure: ClientFailure) -> SMTPClientError {
        switch failure {
        case .connectionClosed: SMTPClientError(kind: .connectionClosed, isPermanent: false)
        case .timeout(let command): SMTPClientError(kind: .timeout, command: command, isPermanent: false)
        case .tls(let why, let permanent): SMTPClientError(kind: .tls(why), isPermanent: permanent)
        case .connectFailed(let why): SMTPClientError(kind: .connectFailed(why), isPermanent: false)
        case .closedBeforeHandshake: handshakeFailed("the server closed the connection after its 220")
        case .handshakeTimedOut(let t): handshakeFailed("no TLS handshake within \(t.nanoseconds / 1_000_000_000) s")
        }
    }

    /// Whatever ends the connection during the handshake is a TLS failure of STARTTLS to the caller.
    static func handshakeFailed(_ error: SMTPClientError) -> SMTPClientError {
        if case .tls = error.kind { return error }
        return handshakeFailed("\(error)")
    }

    static func handshakeFailed(_ why: String) -> SMTPClientError {
        SMTPClientError(kind: .tls(why), command: "STARTTLS", isPermanent: false)
    }
}
