import MailCore
import ClientSupport
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
    /// Pipelined commands are answered before they are read (at most one reply per recipient plus a
    /// few); far more unread replies than that is a flood.
    private let replies = ResponseQueue<SMTPReply>(maximumUnrequested: 20_000)
    private var tlsPromise: EventLoopPromise<Void>?
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        parser.append(unwrapInboundIn(data))
        while let next = parser.next() {
            switch next {
            case .success(let reply):
                guard replies.deliver(reply) else {  // a flood of replies nobody asked for
                    fail(SMTPClientError(kind: .malformedReply, isPermanent: false))
                    context.close(promise: nil)
                    return
                }
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

    private func fail(_ e: SMTPClientError) {
        // Whatever ends the connection during the handshake is a TLS failure to the caller.
        if let p = tlsPromise {
            tlsPromise = nil
            if case .tls = e.kind { p.fail(e) } else { p.fail(Self.handshakeFailed("\(e)")) }
        }
        replies.fail(e)
    }

    static func handshakeFailed(_ why: String) -> SMTPClientError {
        SMTPClientError(kind: .tls(why), command: "STARTTLS", isPermanent: false)
    }

    /// A reply that has already arrived (or the failure that ended the connection), without waiting.
    func receivedReply(command: String?) -> Result<SMTPReply, any Error>? {
        replies.takeReceived(annotate: { Self.annotate($0, command: command) })
    }

    private static func annotate(_ error: any Error, command: String?) -> any Error {
        guard var e = error as? SMTPClientError else { return error }
        e.command = e.command ?? command
        return e
    }

    /// The next reply, failing after `timeout`.
    func nextReply(timeout: TimeAmount, eventLoop: any EventLoop, command: String?) -> EventLoopFuture<SMTPReply> {
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        return replies.next(on: eventLoop, timeout: timeout, annotate: { Self.annotate($0, command: command) }, timeoutError: {
            SMTPClientError(kind: .timeout, command: command, isPermanent: false)
        }, onTimeout: {
            bound.value.context?.close(promise: nil)
        })
    }

    /// Inserts TLS; whatever the server sent after its 220 is discarded (it was sent in plaintext).
    /// Fails when the connection is already gone (a server that closes right after its 220) or the
    /// handshake does not finish within `timeout`.
    func startTLS(tls: NIOSSLContext, serverHostname: String?, eventLoop: any EventLoop, timeout: TimeAmount) -> EventLoopFuture<Void> {
        guard let context, context.channel.isActive else {
            return eventLoop.makeFailedFuture(Self.handshakeFailed("the server closed the connection after its 220"))
        }
        parser.discardBufferedBytes()
        replies.removeAll()
        let p = context.eventLoop.makePromise(of: Void.self)
        tlsPromise = p
        do {
            let handler = try NIOSSLClientHandler(context: tls, serverHostname: serverHostname)
            try context.pipeline.syncOperations.addHandler(handler, position: .first)
        } catch {
            tlsPromise = nil
            p.fail(SMTPClientError(kind: .tls("\(error)"), isPermanent: true))
            return p.futureResult
        }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let timer = context.eventLoop.scheduleTask(in: timeout) {
            let handler = bound.value
            guard let pending = handler.tlsPromise, pending.futureResult === p.futureResult else { return }
            handler.tlsPromise = nil
            pending.fail(Self.handshakeFailed("no TLS handshake within \(timeout.nanoseconds / 1_000_000_000) s"))
            handler.context?.close(promise: nil)
        }
        p.futureResult.whenComplete { _ in timer.cancel() }
        return p.futureResult
    }
}

