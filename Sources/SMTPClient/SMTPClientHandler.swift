import MailCore
import NIOCore
import NIOSSL
import NIOTLS
import SMTPCore

/// The NIO side of the client: parses replies and hands them to whoever waits; switches to TLS and
/// discards anything the server sent before the handshake (STARTTLS response injection).
final class SMTPClientHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var parser = SMTPReplyParser()
    private var queue: [Result<SMTPReply, SMTPClientError>] = []
    private var waiter: EventLoopPromise<SMTPReply>?
    private var tlsPromise: EventLoopPromise<Void>?
    private var failure: SMTPClientError?
    private var context: ChannelHandlerContext?
    private(set) var discardedInjectedBytes = 0

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        parser.append(unwrapInboundIn(data))
        while let next = parser.next() {
            switch next {
            case .success(let reply): deliver(.success(reply))
            case .failure:
                fail(SMTPClientError(kind: .malformedReply, isPermanent: false))
                context.close(promise: nil)
                return
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? TLSUserEvent, case .handshakeCompleted = e {
            tlsPromise?.succeed()
            tlsPromise = nil
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(SMTPClientError(kind: .connectionClosed, isPermanent: false))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let e = error as? NIOSSLError, case .uncleanShutdown = e { return }
        let kind: SMTPClientError.Kind = (error is NIOSSLError || error is BoringSSLError || tlsPromise != nil)
            ? .tls(NetworkErrorText.describe(error)) : .connectionClosed
        fail(SMTPClientError(kind: kind, isPermanent: false))
        context.close(promise: nil)
    }

    private func deliver(_ r: Result<SMTPReply, SMTPClientError>) {
        if let w = waiter {
            waiter = nil
            switch r {
            case .success(let reply): w.succeed(reply)
            case .failure(let e): w.fail(e)
            }
        } else {
            queue.append(r)
        }
    }

    private func fail(_ e: SMTPClientError) {
        if failure == nil { failure = e }
        tlsPromise?.fail(e)
        tlsPromise = nil
        deliver(.failure(e))
    }

    /// The next reply, failing after `timeout`.
    func nextReply(timeout: TimeAmount, eventLoop: any EventLoop, command: String?) -> EventLoopFuture<SMTPReply> {
        if !queue.isEmpty {
            switch queue.removeFirst() {
            case .success(let r): return eventLoop.makeSucceededFuture(r)
            case .failure(var e):
                e.command = e.command ?? command
                return eventLoop.makeFailedFuture(e)
            }
        }
        if var f = failure {
            f.command = command
            return eventLoop.makeFailedFuture(f)
        }
        let p = eventLoop.makePromise(of: SMTPReply.self)
        waiter = p
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        let timer = eventLoop.scheduleTask(in: timeout) {
            let handler = bound.value
            guard let w = handler.waiter, w.futureResult === p.futureResult else { return }
            handler.waiter = nil
            w.fail(SMTPClientError(kind: .timeout, command: command, isPermanent: false))
            handler.context?.close(promise: nil)
        }
        p.futureResult.whenComplete { _ in timer.cancel() }
        return p.futureResult
    }

    /// Inserts TLS; whatever the server sent after its 220 is discarded (it was sent in plaintext).
    func startTLS(tls: NIOSSLContext, serverHostname: String?, eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        guard let context else {
            return eventLoop.makeFailedFuture(SMTPClientError(kind: .connectionClosed, isPermanent: false))
        }
        discardedInjectedBytes = parser.bufferedByteCount + queue.count
        parser.discardBufferedBytes()
        queue.removeAll()
        let p = context.eventLoop.makePromise(of: Void.self)
        tlsPromise = p
        do {
            let handler = try NIOSSLClientHandler(context: tls, serverHostname: serverHostname)
            try context.pipeline.syncOperations.addHandler(handler, position: .first)
        } catch {
            tlsPromise = nil
            p.fail(SMTPClientError(kind: .tls("\(error)"), isPermanent: true))
        }
        return p.futureResult
    }
}

