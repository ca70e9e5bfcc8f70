import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// A connection handler the listener can ask to wind down. Called on the channel's event loop.
public protocol DrainableConnection: AnyObject {
    /// Finish the current transaction, then close (idle sessions close at once).
    func shutdownRequested()
    /// Close now.
    func shutdownDeadlinePassed()
}

/// What every protocol listener shares: binding, connection limits, implicit TLS, and a graceful
/// drain at shutdown. SMTP and POP3 give it a factory for their connection handler.
public final class TCPListener: Service, Sendable {
    /// Makes the protocol handler for a new connection.
    public typealias HandlerFactory = @Sendable () -> any ChannelHandler & DrainableConnection

    private let endpoint: ListenerEndpoint
    /// Sent (then close) when a connection is over the limits.
    private let refusal: String
    private let registry: ConnectionRegistry
    private let group: any EventLoopGroup
    private let logger: Logger
    private let makeHandler: HandlerFactory
    private let boundChannels = NIOLockedValueBox<[any Channel]>([])

    /// Creates a listener for `endpoint`; nothing is bound until ``bind()`` or ``run()``. `refusal` is
    /// the one line (CRLF included) a connection over the limits gets.
    public init(endpoint: ListenerEndpoint, refusal: String, registry: ConnectionRegistry, group: any EventLoopGroup,
                logger: Logger, makeHandler: @escaping HandlerFactory) {
        self.endpoint = endpoint
        self.refusal = refusal
        self.registry = registry
        self.group = group
        self.logger = logger
        self.makeHandler = makeHandler
    }

    /// Creates a listener for a protocol's `configuration`; each connection's handler gets the one
    /// ``ListenerContext`` that shares it.
    public convenience init<C: ListenerConfiguration>(
        _ configuration: C, refusal: String, registry: ConnectionRegistry, group: any EventLoopGroup, logger: Logger,
        makeHandler: @escaping @Sendable (ListenerContext<C>) -> any ChannelHandler & DrainableConnection
    ) {
        let context = ListenerContext(configuration)
        self.init(endpoint: configuration.endpoint, refusal: refusal, registry: registry, group: group, logger: logger) {
            makeHandler(context)
        }
    }

    /// Binds every address; returns the bound addresses (useful with port 0).
    @discardableResult
    public func bind() async throws -> [SocketAddress] {
        if let existing = boundChannels.withLockedValue({ $0.isEmpty ? nil : $0 }) {
            return existing.compactMap(\.localAddress)
        }
        let registry = self.registry
        let logger = self.logger
        let makeHandler = self.makeHandler
        let tls = endpoint.implicitTLS ? endpoint.tls : nil
        let refusal = self.refusal
        let name = endpoint.name
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.autoRead, value: false)
            // Each connection keeps one receive buffer for its life: 1 KiB to start (NIO's default is
            // 2 KiB), doubling as reads fill it. Idle sessions (IMAP IDLE, many thousands) hold less.
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 1024, maximum: 65536))
            .childChannelInitializer { channel in
                let ip = channel.remoteAddress?.ipAddress ?? "?"
                let loop = channel.eventLoop
                let handler = NIOLoopBound(makeHandler(), eventLoop: loop)
                let admitted = registry.admit(channel, ip: ip, shutdown: {
                    loop.execute { handler.value.shutdownRequested() }
                }, deadline: {
                    loop.execute { handler.value.shutdownDeadlinePassed() }
                })
                guard admitted else {
                    logger.warning("connection limit reached; refusing", metadata: ["client": "\(ip)", "listener": "\(name)"])
                    // On an implicit-TLS listener the refusal would need a handshake first (work and
                    // time for a connection we do not want): close at once instead.
                    return loop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(RefusingHandler(text: tls == nil ? refusal : nil))
                    }
                }
                channel.closeFuture.whenComplete { _ in registry.remove(channel) }
                return loop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.addHandler(handler.value)
                }
            }
        var channels: [any Channel] = []
        do {
            for a in endpoint.addresses {
                channels.append(try await bootstrap.bind(host: a.host, port: a.port).get())
            }
        } catch {
            for c in channels { try? await c.close() }
            throw error
        }
        boundChannels.withLockedValue { $0 = channels }
        let addresses = channels.compactMap(\.localAddress)
        for a in addresses { logger.info("listening", metadata: ["listener": "\(name)", "address": "\(a)"]) }
        return addresses
    }

    /// Binds (if needed), serves until graceful shutdown, then drains.
    public func run() async throws {
        try await bind()
        try? await gracefulShutdown()
        await drain()
    }

    /// Stops accepting, asks sessions to finish, and closes what remains after the grace period.
    public func drain() async {
        let channels = boundChannels.withLockedValue { c in
            defer { c = [] }
            return c
        }
        for c in channels { try? await c.close() }
        registry.requestShutdown()
        let deadline = NIODeadline.now() + endpoint.shutdownGrace
        while registry.count > 0 && NIODeadline.now() < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if registry.count > 0 {
            logger.notice("closing \(registry.count) connections at the shutdown deadline", metadata: ["listener": "\(endpoint.name)"])
            registry.deadlinePassed()
            let hard = NIODeadline.now() + .seconds(2)
            while registry.count > 0 && NIODeadline.now() < hard { try? await Task.sleep(for: .milliseconds(20)) }
        }
    }
}

/// Answers a connection over the limits with one line and closes it (or just closes it when `text` is
/// nil: on an implicit-TLS listener the line would need a handshake first).
final class RefusingHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let text: String?

    init(text: String?) { self.text = text }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { refuse(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        refuse(context: context)
    }

    private func refuse(context: ChannelHandlerContext) {
        guard let text else { return context.close(promise: nil) }
        context.write(wrapOutboundOut(ByteBuffer(string: text)), promise: nil)
        // The refusal is one short line; a peer that does not take it within a second is cut off.
        context.flushThenClose(deadline: .seconds(1))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

extension ChannelHandlerContext {
    /// Flushes what was written, then closes the connection — or closes it anyway after `deadline`,
    /// so that a peer that does not take the last reply cannot keep it open.
    ///
    /// On a plaintext connection the close lingers: after the last reply our side is shut down for
    /// output (a FIN), and whatever the peer still sends is read and dropped until it closes too, at
    /// most for ``lingerTime``. Closing a socket with unread input makes the kernel answer with a
    /// reset, and a reset can reach the peer before it has read our last reply (`421 4.4.2`), so the
    /// reply would be lost to a client that pipelined or dribbled one more byte. A TLS connection
    /// closes at once (its close_notify already tells the peer the session is over).
    public func flushThenClose(deadline: TimeAmount) {
        let channel = self.channel
        let plaintext = (try? channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)) == nil
        writeAndFlush(NIOAny(channel.allocator.buffer(capacity: 0))).whenComplete { result in
            guard plaintext, case .success = result, channel.isActive,
                  (try? channel.pipeline.syncOperations.addHandler(LingeringCloseHandler(), position: .first)) != nil
            else { return channel.close(promise: nil) }
            channel.close(mode: .output, promise: nil)
            channel.eventLoop.scheduleTask(in: ChannelHandlerContext.lingerTime) { channel.close(promise: nil) }
        }
        eventLoop.scheduleTask(in: deadline) { channel.close(promise: nil) }
    }

    /// How long a lingering close waits for the peer to close after our FIN.
    public static var lingerTime: TimeAmount { .seconds(2) }
}

/// Put in front of the pipeline once our side of a plaintext connection is shut down: reads and
/// drops what the peer still sends, so that the final close finds no unread input (no reset). The
/// peer's own close ends the channel (remote half-closure is not allowed on our listeners).
final class LingeringCloseHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    func handlerAdded(context: ChannelHandlerContext) { context.read() }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
    func channelReadComplete(context: ChannelHandlerContext) { context.read() }
}
