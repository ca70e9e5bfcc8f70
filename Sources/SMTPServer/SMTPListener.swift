import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import SMTPCore
import ServiceLifecycle

/// Accepts SMTP connections on a set of addresses and serves each with an ``SMTPServerConnection``.
/// Runs as a ServiceLifecycle `Service`: on graceful shutdown it stops accepting, lets transactions in
/// flight finish until ``Configuration/shutdownGrace``, then closes the rest with `421 4.3.2`.
public final class SMTPListener: Service, Sendable {
    /// How one listener behaves.
    public struct Configuration: Sendable {
        /// A name for logs and `Received:` (`smtp`, `submission`, `submissions`).
        public var name: String
        /// Addresses to bind, `host:port` already split.
        public var addresses: [(host: String, port: Int)]
        /// SMTP behaviour.
        public var machine: SMTPServerStateMachine.Configuration
        /// TLS context for STARTTLS or implicit TLS; `nil` disables both.
        public var tls: NIOSSLContext?
        /// `true` for implicit TLS (RFC 8314, port 465).
        public var implicitTLS: Bool
        /// Waiting for a command (RFC 5321 §4.5.3.2.7: at least 5 minutes).
        public var commandTimeout: TimeAmount
        /// Waiting for more content during DATA/BDAT (RFC 5321 §4.5.3.2.6 client side: 3 minutes).
        public var dataTimeout: TimeAmount
        /// How long transactions in flight may take to finish at shutdown.
        public var shutdownGrace: TimeAmount
        /// Message content is handed to storage in slices of at least this size.
        public var spillThreshold: Int

        /// Creates a configuration.
        public init(name: String, addresses: [(host: String, port: Int)], machine: SMTPServerStateMachine.Configuration,
                    tls: NIOSSLContext? = nil, implicitTLS: Bool = false, commandTimeout: TimeAmount = .seconds(300),
                    dataTimeout: TimeAmount = .seconds(180), shutdownGrace: TimeAmount = .seconds(10),
                    spillThreshold: Int = 1 << 20) {
            self.name = name
            self.addresses = addresses
            self.machine = machine
            self.tls = tls
            self.implicitTLS = implicitTLS
            self.commandTimeout = commandTimeout
            self.dataTimeout = dataTimeout
            self.shutdownGrace = shutdownGrace
            self.spillThreshold = spillThreshold
        }
    }

    private let configuration: Configuration
    private let delegate: any SMTPServerDelegate
    private let registry: ConnectionRegistry
    private let group: any EventLoopGroup
    private let logger: Logger
    private let boundChannels = NIOLockedValueBox<[any Channel]>([])

    /// Creates a listener; nothing is bound until ``bind()`` or ``run()``.
    public init(configuration: Configuration, delegate: any SMTPServerDelegate, registry: ConnectionRegistry,
                group: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.delegate = delegate
        self.registry = registry
        self.group = group
        self.logger = logger
    }

    /// Binds every address; returns the bound socket addresses (useful with port 0).
    @discardableResult
    public func bind() async throws -> [SocketAddress] {
        if let existing = boundChannels.withLockedValue({ $0.isEmpty ? nil : $0 }) {
            return existing.compactMap(\.localAddress)
        }
        let settings = SMTPServerConnection.Settings(
            machine: configuration.machine, listener: configuration.name, implicitTLS: configuration.implicitTLS,
            tls: configuration.tls, commandTimeout: configuration.commandTimeout,
            dataTimeout: configuration.dataTimeout, spillThreshold: configuration.spillThreshold)
        let delegate = self.delegate
        let registry = self.registry
        let logger = self.logger
        let hostname = configuration.machine.hostname
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { channel in
                let ip = channel.remoteAddress?.ipAddress ?? "?"
                let handler = SMTPServerConnection(settings: settings, delegate: delegate, logger: logger, registry: registry)
                let loop = channel.eventLoop
                let bound = NIOLoopBound(handler, eventLoop: loop)
                let admitted = registry.admit(channel, ip: ip, shutdown: { [weak channel] in
                    guard let channel else { return }
                    loop.execute {
                        if let ctx = try? channel.pipeline.syncOperations.context(handlerType: SMTPServerConnection.self) {
                            bound.value.shutdownRequested(context: ctx)
                        }
                    }
                }, deadline: { [weak channel] in
                    guard let channel else { return }
                    loop.execute {
                        if let ctx = try? channel.pipeline.syncOperations.context(handlerType: SMTPServerConnection.self) {
                            bound.value.shutdownDeadlinePassed(context: ctx)
                        } else {
                            channel.close(promise: nil)
                        }
                    }
                })
                guard admitted else {
                    logger.warning("connection limit reached; refusing", metadata: ["client": "\(ip)"])
                    return loop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(RefusingHandler(reply: .tooManyConnections(hostname)))
                    }
                }
                channel.closeFuture.whenComplete { _ in registry.remove(channel) }
                return loop.makeCompletedFuture {
                    if settings.implicitTLS, let tls = settings.tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    try channel.pipeline.syncOperations.addHandler(bound.value)
                }
            }
        var channels: [any Channel] = []
        do {
            for a in configuration.addresses {
                channels.append(try await bootstrap.bind(host: a.host, port: a.port).get())
            }
        } catch {
            for c in channels { try? await c.close() }
            throw error
        }
        boundChannels.withLockedValue { $0 = channels }
        let addresses = channels.compactMap(\.localAddress)
        for a in addresses { logger.info("listening", metadata: ["listener": "\(configuration.name)", "address": "\(a)"]) }
        return addresses
    }

    /// Binds (if not yet bound), serves until graceful shutdown, then drains.
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
        let deadline = NIODeadline.now() + configuration.shutdownGrace
        while registry.count > 0 && NIODeadline.now() < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if registry.count > 0 {
            logger.notice("closing \(registry.count) connections at the shutdown deadline")
            registry.deadlinePassed()
            let hard = NIODeadline.now() + .seconds(2)
            while registry.count > 0 && NIODeadline.now() < hard { try? await Task.sleep(for: .milliseconds(20)) }
        }
    }
}

/// Answers a connection over the limits with one reply and closes it.
final class RefusingHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let reply: SMTPReply

    init(reply: SMTPReply) { self.reply = reply }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { refuse(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        refuse(context: context)
    }

    private func refuse(context: ChannelHandlerContext) {
        var buf = context.channel.allocator.buffer(capacity: 96)
        buf.writeSMTPReply(reply)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buf)).whenComplete { _ in channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}
