import ListenerSupport
import Logging
import NIOCore
import NIOSSL
import SMTPCore
import ServiceLifecycle

/// Accepts SMTP connections on a set of addresses and serves each with an ``SMTPServerConnection``.
/// Runs as a ServiceLifecycle `Service`: on graceful shutdown it stops accepting, lets transactions in
/// flight finish until ``Configuration/shutdownGrace``, then closes the rest with `421 4.3.2`.
public final class SMTPListener: Service, Sendable {
    /// How one listener behaves.
    public struct Configuration: Sendable {
        /// A name for logs (`smtp`, `submission`, …).
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
        /// Waiting for more content during DATA/BDAT.
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

    private let listener: TCPListener

    /// Creates a listener; nothing is bound until ``bind()`` or ``run()``.
    public init(configuration c: Configuration, delegate: any SMTPServerDelegate, registry: ConnectionRegistry,
                group: any EventLoopGroup, logger: Logger) {
        let settings = SMTPServerConnection.Settings(
            machine: c.machine, listener: c.name, implicitTLS: c.implicitTLS, tls: c.tls,
            commandTimeout: c.commandTimeout, dataTimeout: c.dataTimeout, spillThreshold: c.spillThreshold)
        var refusal = ByteBuffer()
        refusal.writeSMTPReply(.tooManyConnections(c.machine.hostname))
        listener = TCPListener(
            configuration: .init(name: c.name, addresses: c.addresses, implicitTLS: c.implicitTLS ? c.tls : nil,
                                 refusal: String(buffer: refusal), shutdownGrace: c.shutdownGrace),
            registry: registry, group: group, logger: logger,
            makeHandler: { SMTPServerConnection(settings: settings, delegate: delegate, logger: logger) })
    }

    /// Binds every address; returns the bound socket addresses (useful with port 0).
    @discardableResult
    public func bind() async throws -> [SocketAddress] { try await listener.bind() }

    /// Binds (if not yet bound), serves until graceful shutdown, then drains.
    public func run() async throws { try await listener.run() }

    /// Stops accepting, asks sessions to finish, and closes what remains after the grace period.
    public func drain() async { await listener.drain() }
}
