import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// The channel handler every protocol adapter (SMTP, POP3) is built on: it turns channel events into
/// ``ConnectionLifecycle`` events and performs the lifecycle's actions (explicit reads, the idle
/// timer, STARTTLS/STLS with buffered plaintext discarded, flush-then-close, drain). A protocol
/// subclasses it and overrides the hooks below: its parser, its state machine and its own `run`.
///
/// Reads are explicit (`autoRead` off): nothing is read or parsed while off-loop work is in flight
/// (``offLoop(_:_:ifClosed:restartTimer:then:)``) or while the channel is not writable, so a client
/// cannot make us buffer without bound. One subclass object per connection and no other allocation:
/// the lifecycle is a value, the timer one scheduled task.
///
/// Event loop only. The hooks are called on the channel's event loop.
open class ServerConnection<Configuration: ListenerConfiguration>: ChannelInboundHandler, RemovableChannelHandler, DrainableConnection {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer
    /// Where the idle deadline passed.
    public typealias TimeoutPhase = ConnectionLifecycle<NIODeadline>.TimeoutPhase

    /// The listener's logger with this connection's client and user.
    public var logger: ConnectionLogger
    /// What this connection shares with every other of its listener.
    public let listener: ListenerContext<Configuration>
    /// The client's address, once the channel is active.
    public private(set) var remoteIP = "?"
    /// The client's port, once the channel is active.
    public private(set) var remotePort = 0
    private var lifecycle: ConnectionLifecycle<NIODeadline>
    private var timerTask: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    /// A handler for a connection of `listener`.
    /// `shutdownWaitsForWork`: see ``ConnectionLifecycle/init(implicitTLS:shutdownWaitsForWork:)``.
    public init(listener: ListenerContext<Configuration>, logger: Logger, shutdownWaitsForWork: Bool = false) {
        self.listener = listener
        self.logger = ConnectionLogger(logger)
        self.lifecycle = ConnectionLifecycle(implicitTLS: listener.configuration.endpoint.implicitTLS,
                                             shutdownWaitsForWork: shutdownWaitsForWork)
    }

    /// The listener's configuration.
    @inlinable public final var configuration: Configuration { listener.configuration }

    // MARK: Hooks for the protocol

    /// The protocol's name for its TLS command, for logs (`STARTTLS`, `STLS`).
    open var startTLSCommand: String { "STARTTLS" }
    /// How long the session may stay without progress from now.
    open var idleTimeout: TimeAmount { .minutes(5) }
    /// Bytes the protocol's parser holds (plaintext behind STARTTLS/STLS is discarded).
    open var bufferedByteCount: Int { 0 }
    /// Drops what the parser holds.
    open func discardBufferedBytes() {}
    /// The channel is up (the `connect` record is written).
    open func connectionStarted(context: ChannelHandlerContext) {}
    /// Sends the greeting (flushed by the caller).
    open func greet(context: ChannelHandlerContext) {}
    /// Bytes arrived; the caller processes them next.
    open func received(_ bytes: ByteBuffer, context: ChannelHandlerContext) {}
    /// Handles the next parsed item; `false` when the parser needs more bytes.
    open func handleNext(context: ChannelHandlerContext) -> Bool { false }
    /// The TLS handshake completed with this version (`TLSv1.3`).
    open func tlsEstablished(version: String, context: ChannelHandlerContext) {}
    /// The idle deadline passed.
    open func timedOut(_ phase: TimeoutPhase, context: ChannelHandlerContext) {
        closeNow(context: context)
    }
    /// The server drains: finish the session (``shutdownRequested()``).
    open func drainRequested(context: ChannelHandlerContext) {}
    /// The drain deadline passed with the session open.
    open func drainDeadlinePassed(context: ChannelHandlerContext) { closeNow(context: context) }
    /// The session ended without the protocol's own close (error, timeout, the peer left).
    open func sessionAbandoned() {}
    /// The channel is inactive (after ``sessionAbandoned()``); for the `disconnect` record.
    open func disconnected(context: ChannelHandlerContext) {}

    // MARK: Channel events

    public final func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { perform(lifecycle.channelActive(), context: context) }
    }

    public final func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    public final func channelActive(context: ChannelHandlerContext) {
        perform(lifecycle.channelActive(), context: context)
        context.fireChannelActive()
    }

    public final func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received(unwrapInboundIn(data), context: context)
        process(context: context)
    }

    public final func channelReadComplete(context: ChannelHandlerContext) {
        perform(lifecycle.readComplete(), context: context)
    }

    public final func channelWritabilityChanged(context: ChannelHandlerContext) {
        perform(lifecycle.writabilityChanged(isWritable: context.channel.isWritable), context: context)
        context.fireChannelWritabilityChanged()
    }

    public final func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent {
            perform(lifecycle.tlsHandshakeCompleted(), context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    public final func channelInactive(context: ChannelHandlerContext) {
        timerTask?.cancel()  // the task holds this handler
        timerTask = nil
        if case .close(abandon: true) = lifecycle.channelInactive() { sessionAbandoned() }
        disconnected(context: context)
        context.fireChannelInactive()
    }

    public final func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let e = error as? NIOSSLError, case .uncleanShutdown = e {
            logger.debug("peer closed without TLS close_notify")
        } else {
            logger.notice("connection error: \(error)")
        }
        closeNow(context: context)
    }

    // MARK: Shutdown (called on this channel's event loop by the listener)

    public final func shutdownRequested() {
        guard let context else { return }
        perform(lifecycle.shutdownRequested(), context: context)
    }

    public final func shutdownDeadlinePassed() {
        guard let context else { return }
        perform(lifecycle.shutdownDeadlinePassed(), context: context)
    }

    // MARK: For the protocol's run(action)

    /// The connection is closing or closed.
    public final var isClosed: Bool { lifecycle.isClosed }

    /// Parses and hands input to the protocol while the lifecycle allows it and the channel takes
    /// writes; flushes when it stops.
    public final func process(context: ChannelHandlerContext) {
        var handled = false
        defer { if handled { restartIdleTimer(context: context) } }
        while lifecycle.mayProcess {
            // Not writable: wait for the peer to take our replies (channelWritabilityChanged resumes).
            guard context.channel.isWritable, handleNext(context: context) else {
                context.flush()
                return
            }
            handled = true
        }
    }

    /// Progress: the idle period starts again (``idleTimeout`` from now).
    public final func restartIdleTimer(context: ChannelHandlerContext) {
        perform(lifecycle.activity(deadline: context.eventLoop.now + idleTimeout), context: context)
    }

    /// Marks off-loop work as started: nothing is read or parsed until ``finishWork()``.
    public final func beginWork() { lifecycle.workStarted() }

    /// Marks off-loop work as finished; `true` when the session goes on (then call ``resume(context:)``).
    public final func finishWork() -> Bool { lifecycle.workFinished() == .resume }

    /// Processes what is buffered, then reads if the lifecycle allows it.
    public final func resume(context: ChannelHandlerContext) {
        process(context: context)
        perform(lifecycle.readComplete(), context: context)
    }

    /// Runs `work` off the event loop with reads paused, then `then` on the loop (or `ifClosed` when
    /// the connection closed meanwhile), then resumes.
    public final func offLoop<T: Sendable>(_ context: ChannelHandlerContext, _ work: @escaping @Sendable () async -> T,
                                           ifClosed: @escaping @Sendable (T) -> Void = { _ in }, restartTimer: Bool = false,
                                           then: @escaping (T) -> Void) {
        beginWork()
        let bound = NIOLoopBound((self, context, then), eventLoop: context.eventLoop)
        let promise = context.eventLoop.makePromise(of: T.self)
        promise.completeWithTask(work)
        promise.futureResult.whenSuccess { value in
            let (handler, context, then) = bound.value
            guard handler.finishWork() else { return ifClosed(value) }
            then(value)
            if restartTimer { handler.restartIdleTimer(context: context) }
            handler.resume(context: context)
        }
    }

    /// STARTTLS/STLS accepted and its reply queued: flush it, insert TLS before any further read, and
    /// discard plaintext pipelined behind the command (RFC 3207 §4.2, RFC 2595 §4; CVE-2011-0411).
    public final func startTLS(context: ChannelHandlerContext) {
        perform(lifecycle.tlsUpgradeRequested(), context: context)
    }

    /// Closes once what is queued has been written (or after 10 s if the peer does not read).
    public final func closeAfterFlush(context: ChannelHandlerContext) {
        perform(lifecycle.closeRequested(flush: true), context: context)
    }

    /// Closes at once.
    public final func closeNow(context: ChannelHandlerContext) {
        perform(lifecycle.closeRequested(flush: false), context: context)
    }

    /// How long the last reply may take to leave before the connection is closed anyway.
    public static var closeDeadline: TimeAmount { .seconds(10) }

    /// The name of a TLS version in logs and trace headers (`TLSv1.3`).
    public static func name(of version: TLSVersion) -> String {
        switch version {
        case .tlsv1: "TLSv1"
        case .tlsv11: "TLSv1.1"
        case .tlsv12: "TLSv1.2"
        case .tlsv13: "TLSv1.3"
        }
    }

    // MARK: The one place that runs lifecycle actions

    private func perform(_ action: ConnectionLifecycle<NIODeadline>.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .start(let greet):
            if let address = context.channel.remoteAddress {
                remoteIP = address.ipAddress ?? "?"
                remotePort = address.port ?? 0
            }
            logger.client = "\(remoteIP):\(remotePort)"
            logger.info("connect", metadata: ["listener": "\(configuration.endpoint.name)"])
            connectionStarted(context: context)
            if greet {
                self.greet(context: context)
                context.flush()
            }
            restartIdleTimer(context: context)
            context.read()
        case .read:
            if context.channel.isWritable { context.read() }
        case .resume:
            resume(context: context)
        case .startTLS:
            guard let tls = configuration.endpoint.tls else { preconditionFailure("\(startTLSCommand) accepted without a TLS context") }
            context.flush()  // the reply leaves in plaintext, before the TLS handler exists
            do {
                try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: .first)
            } catch {
                logger.error("cannot start TLS: \(error)")
                return closeNow(context: context)
            }
            if bufferedByteCount > 0 {
                logger.warning("discarding \(bufferedByteCount) plaintext bytes pipelined after \(startTLSCommand)")
                discardBufferedBytes()
            }
            context.read()
        case .tlsEstablished(let greet):
            let version = (try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self))?.tlsVersion
            tlsEstablished(version: version.map(Self.name(of:)) ?? "TLS", context: context)
            if greet {
                self.greet(context: context)
                context.flush()
            }
            resume(context: context)
        case .armTimer(let deadline):
            timerTask?.cancel()
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            timerTask = context.eventLoop.scheduleTask(deadline: deadline) {
                let (handler, context) = bound.value
                handler.timerTask = nil
                handler.perform(handler.lifecycle.idleTimerFired(now: context.eventLoop.now), context: context)
            }
        case .cancelTimer:
            timerTask?.cancel()
            timerTask = nil
        case .timedOut(let phase):
            timedOut(phase, context: context)
        case .flushThenClose:
            timerTask?.cancel()
            timerTask = nil
            context.flushThenClose(deadline: Self.closeDeadline)
        case .close(let abandon):
            if abandon { sessionAbandoned() }
            context.close(promise: nil)
        case .shutdown:
            drainRequested(context: context)
        case .shutdownDeadline:
            drainDeadlinePassed(context: context)
        }
    }
}
