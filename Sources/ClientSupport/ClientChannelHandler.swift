import MailCore
import NIOCore
import NIOSSL
import NIOTLS

/// The part of a protocol client's channel handler that does not depend on the protocol: the
/// ``ResponseQueue`` that hands parsed items to the waiting client, what ends the connection (the
/// server closing it, I/O and TLS errors, a timeout), and the STARTTLS/STLS upgrade, which discards
/// whatever the server sent after accepting it and before the handshake (it came in plaintext: the
/// response injection of CVE-2011-0411's class).
///
/// A subclass parses in ``channelRead(context:data:)`` and hands items to ``responses``; it discards its
/// parser's buffered bytes in ``discardBufferedInput()``.
///
/// Event loop only.
open class ClientChannelHandler<Item: Sendable, Failures: ClientFailures>: ChannelInboundHandler, ClientResponseHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    /// Items parsed and not yet taken, and the waiter.
    public let responses: ResponseQueue<Item>
    /// The handler's context while it is in a pipeline.
    public private(set) var context: ChannelHandlerContext?
    /// Set from the start of a STARTTLS/STLS upgrade until its handshake ends.
    private var tlsPromise: EventLoopPromise<Void>?

    /// A handler whose queue keeps at most `maximumUnrequested` items nobody asked for.
    public init(maximumUnrequested: Int = .max) {
        self.responses = ResponseQueue(maximumUnrequested: maximumUnrequested)
    }

    public func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    public func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// Parses `data`; a subclass overrides it (this one passes the bytes on).
    open func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    /// Forgets what the parser buffers; called when a STARTTLS/STLS upgrade starts.
    open func discardBufferedInput() {}

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? TLSUserEvent, case .handshakeCompleted = e {
            tlsPromise?.succeed()
            tlsPromise = nil
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        fail(Failures.error(.connectionClosed))
        context.fireChannelInactive()
    }

    /// TLS errors, and any error during a handshake, are TLS failures; others end the connection. An
    /// unclean TLS shutdown is ignored (the close that follows ends the connection).
    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let e = error as? NIOSSLError, case .uncleanShutdown = e { return }
        let tls = error is NIOSSLError || error is BoringSSLError || tlsPromise != nil
        close(context: context, failing: Failures.error(tls ? .tls(NetworkErrorText.describe(error), permanent: false) : .connectionClosed))
    }

    /// Fails the pending upgrade (as ``ClientFailures/handshakeFailed(_:)`` says), the waiter and
    /// every later request.
    public func fail(_ error: Failures.Failure) {
        if let p = tlsPromise {
            tlsPromise = nil
            p.fail(Failures.handshakeFailed(error))
        }
        responses.fail(error)
    }

    /// ``fail(_:)``, then closes the connection (unreadable or unwanted input).
    public func close(context: ChannelHandlerContext, failing error: Failures.Failure) {
        fail(error)
        context.close(promise: nil)
    }

    /// An item that has already arrived (or the failure that ended the connection), without waiting.
    public func takeReceived(command: String?) -> Result<Item, any Error>? {
        responses.takeReceived(annotate: { Self.annotate($0, command: command) })
    }

    /// The next item, failing with ``ClientFailure/timeout(command:)`` and closing the connection
    /// after `timeout`.
    public func next(timeout: TimeAmount, eventLoop: any EventLoop, command: String?) -> EventLoopFuture<Item> {
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        return responses.next(on: eventLoop, timeout: timeout, annotate: { Self.annotate($0, command: command) },
                              timeoutError: { Failures.error(.timeout(command: command)) },
                              onTimeout: { bound.value.context?.close(promise: nil) })
    }

    private static func annotate(_ error: any Error, command: String?) -> any Error {
        guard var e = error as? Failures.Failure else { return error }
        if e[keyPath: Failures.command] == nil { e[keyPath: Failures.command] = command }
        return e
    }

    /// Inserts TLS first in the pipeline once the server accepted STARTTLS/STLS; whatever it sent
    /// after that reply is discarded (it was sent in plaintext). The future completes with the
    /// handshake; it fails when the connection is already gone, when the handshake fails, or when it
    /// does not finish within `timeout` (then the connection is closed; `nil`: no limit).
    ///
    /// - SeeAlso: RFC 3207 §4.2, RFC 2595 §4.
    public func startTLS(_ tls: ClientTLS, eventLoop: any EventLoop, timeout: TimeAmount?) -> EventLoopFuture<Void> {
        guard let context, context.channel.isActive else {
            return eventLoop.makeFailedFuture(Failures.error(.closedBeforeHandshake))
        }
        discardBufferedInput()
        responses.removeAll()
        let p = context.eventLoop.makePromise(of: Void.self)
        tlsPromise = p
        do {
            try context.pipeline.syncOperations.addHandler(tls.makeHandler(), position: .first)
        } catch {
            tlsPromise = nil
            p.fail(Failures.error(.tls("\(error)", permanent: true)))
            return p.futureResult
        }
        guard let timeout else { return p.futureResult }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let timer = context.eventLoop.scheduleTask(in: timeout) {
            let handler = bound.value
            guard let pending = handler.tlsPromise, pending.futureResult === p.futureResult else { return }
            handler.tlsPromise = nil
            pending.fail(Failures.error(.handshakeTimedOut(timeout)))
            handler.context?.close(promise: nil)
        }
        p.futureResult.whenComplete { _ in timer.cancel() }
        return p.futureResult
    }
}
