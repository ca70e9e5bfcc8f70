import MailCore
import ClientSupport
import NIOCore
import NIOSSL
import NIOTLS
import POP3Core

/// Parses server output and hands items to the waiting client; multi-line bodies are delivered in
/// chunks of about 64 KiB (CRLF line ends, unstuffed).
final class POP3ClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    enum Item: Sendable {
        case status(POP3Response)
        case continuation(String)
        case body(ByteBuffer)
        case end
    }

    private var parser = POP3ResponseParser()
    private var multiLineExpectations: [Bool] = []
    private let items = ResponseQueue<Item>()
    private var pendingBody = ByteBuffer()
    private var tlsPromise: EventLoopPromise<Void>?
    private var context: ChannelHandlerContext?
    static let chunk = 1 << 16

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// The next status line answers a command whose `+OK` is followed by a multi-line body.
    func expect(multiLine: Bool) { multiLineExpectations.append(multiLine) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        parser.append(unwrapInboundIn(data))
        while let next = parser.next() {
            switch next {
            case .success(.status(let r)):
                let multi = multiLineExpectations.isEmpty ? false : multiLineExpectations.removeFirst()
                if multi && r.ok { parser.expectMultiLine() }
                items.deliver(.status(r))
            case .success(.continuation(let c)):
                items.deliver(.continuation(c))
            case .success(.line(let bytes)):
                pendingBody.writeBytes(bytes)
                pendingBody.writeStaticString("\r\n")
                if pendingBody.readableBytes >= Self.chunk { flushBody() }
            case .success(.end):
                flushBody()
                items.deliver(.end)
            case .failure:
                fail(POP3ClientError(kind: .malformedResponse, isPermanent: false))
                context.close(promise: nil)
                return
            }
        }
        flushBody()
    }

    private func flushBody() {
        guard pendingBody.readableBytes > 0 else { return }
        let b = pendingBody
        pendingBody = ByteBuffer()
        items.deliver(.body(b))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? TLSUserEvent, case .handshakeCompleted = e {
            tlsPromise?.succeed()
            tlsPromise = nil
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(POP3ClientError(kind: .connectionClosed, isPermanent: false))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let e = error as? NIOSSLError, case .uncleanShutdown = e { return }
        let kind: POP3ClientError.Kind = (error is NIOSSLError || error is BoringSSLError || tlsPromise != nil) ? .tls(NetworkErrorText.describe(error)) : .connectionClosed
        fail(POP3ClientError(kind: kind, isPermanent: false))
        context.close(promise: nil)
    }

    private func fail(_ e: POP3ClientError) {
        tlsPromise?.fail(e)
        tlsPromise = nil
        items.fail(e)
    }

    func next(timeout: TimeAmount, eventLoop: any EventLoop, command: String) -> EventLoopFuture<Item> {
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        return items.next(on: eventLoop, timeout: timeout, annotate: { error in
            guard var e = error as? POP3ClientError else { return error }
            e.command = e.command ?? command
            return e
        }, timeoutError: {
            POP3ClientError(kind: .timeout, command: command, isPermanent: false)
        }, onTimeout: {
            bound.value.context?.close(promise: nil)
        })
    }

    /// Inserts TLS after `+OK` to STLS; anything already buffered was sent in plaintext and is dropped.
    func startTLS(tls: NIOSSLContext, serverHostname: String?, eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        guard let context else { return eventLoop.makeFailedFuture(POP3ClientError(kind: .connectionClosed, isPermanent: false)) }
        parser.discardBufferedBytes()
        items.removeAll()
        multiLineExpectations.removeAll()
        let p = eventLoop.makePromise(of: Void.self)
        tlsPromise = p
        do {
            try context.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: serverHostname), position: .first)
        } catch {
            tlsPromise = nil
            p.fail(POP3ClientError(kind: .tls("\(error)"), isPermanent: true))
        }
        return p.futureResult
    }
}
