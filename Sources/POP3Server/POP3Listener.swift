import ListenerSupport
import Logging
import NIOCore
import NIOSSL
import POP3Core
import ServiceLifecycle

/// Accepts POP3 connections (110-style with STLS, or 995-style implicit TLS) and serves each with a
/// ``POP3ServerConnection``. A ServiceLifecycle `Service`.
public final class POP3Listener: Service, Sendable {
    /// Listener settings.
    public struct Configuration: Sendable {
        /// `pop3` or `pop3s`, for logs.
        public var name: String
        /// Addresses to bind.
        public var addresses: [(host: String, port: Int)]
        /// Protocol behaviour.
        public var machine: POP3ServerStateMachine.Configuration
        /// TLS context (STLS or implicit TLS).
        public var tls: NIOSSLContext?
        /// Implicit TLS (RFC 8314).
        public var implicitTLS: Bool
        /// RFC 1939 autologout timer (at least 10 minutes).
        public var autologout: TimeAmount
        /// Read size when streaming messages.
        public var chunkSize: Int
        /// Messages up to this size already in the page cache are read and sent without leaving the
        /// event loop (`preadv2(RWF_NOWAIT)`); larger or uncached ones stream from the thread pool.
        public var inlineLimit = 256 * 1024
        /// Grace period at shutdown.
        public var shutdownGrace: TimeAmount

        /// Creates settings.
        public init(name: String, addresses: [(host: String, port: Int)], machine: POP3ServerStateMachine.Configuration,
                    tls: NIOSSLContext?, implicitTLS: Bool, autologout: TimeAmount = .minutes(10), chunkSize: Int = 1 << 16,
                    shutdownGrace: TimeAmount = .seconds(10)) {
            self.name = name
            self.addresses = addresses
            self.machine = machine
            self.tls = tls
            self.implicitTLS = implicitTLS
            self.autologout = autologout
            self.chunkSize = chunkSize
            self.shutdownGrace = shutdownGrace
        }
    }

    private let listener: TCPListener

    /// Creates a listener; nothing is bound until ``bind()`` or ``run()``.
    public init(configuration c: Configuration, delegate: any POP3ServerDelegate, registry: ConnectionRegistry,
                group: any EventLoopGroup, logger: Logger) {
        let settings = POP3ServerConnection.Settings(machine: c.machine, listener: c.name, implicitTLS: c.implicitTLS, tls: c.tls,
                                                     autologout: c.autologout, chunkSize: c.chunkSize, inlineLimit: c.inlineLimit)
        listener = TCPListener(
            configuration: .init(name: c.name, addresses: c.addresses, implicitTLS: c.implicitTLS ? c.tls : nil,
                                 refusal: "-ERR [SYS/TEMP] Too many connections, try again later\r\n", shutdownGrace: c.shutdownGrace),
            registry: registry, group: group, logger: logger,
            makeHandler: { POP3ServerConnection(settings: settings, delegate: delegate, logger: logger) })
    }

    /// Binds every address.
    @discardableResult
    public func bind() async throws -> [SocketAddress] { try await listener.bind() }

    /// Serves until graceful shutdown, then drains.
    public func run() async throws { try await listener.run() }

    /// Stops accepting and closes sessions.
    public func drain() async { await listener.drain() }
}
