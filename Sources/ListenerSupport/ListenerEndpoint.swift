import NIOCore
import NIOSSL
import ServiceLifecycle

/// What the configuration of every protocol listener (SMTP, POP3) has: where it listens, its TLS, and
/// how long its sessions may take to finish at shutdown.
public struct ListenerEndpoint: Sendable {
    /// A name for logs (`smtp`, `submission`, `pop3`, …).
    public var name: String
    /// Addresses to bind, `host:port` already split.
    public var addresses: [(host: String, port: Int)]
    /// TLS context for STARTTLS/STLS or implicit TLS; `nil` disables both.
    public var tls: NIOSSLContext?
    /// `true` for implicit TLS (RFC 8314: ports 465, 995).
    public var implicitTLS: Bool
    /// How long sessions in flight may take to finish at shutdown.
    public var shutdownGrace: TimeAmount

    /// Creates an endpoint.
    public init(name: String, addresses: [(host: String, port: Int)], tls: NIOSSLContext?, implicitTLS: Bool,
                shutdownGrace: TimeAmount) {
        self.name = name
        self.addresses = addresses
        self.tls = tls
        self.implicitTLS = implicitTLS
        self.shutdownGrace = shutdownGrace
    }
}

/// A protocol listener's configuration: its endpoint, and the protocol's own settings.
public protocol ListenerConfiguration: Sendable {
    /// Where it listens, its TLS and its shutdown grace.
    var endpoint: ListenerEndpoint { get }
}

/// A listener's configuration as its connections see it: one object per listener, referenced (not
/// copied) by each connection.
public final class ListenerContext<Configuration: ListenerConfiguration>: Sendable {
    /// The listener's configuration.
    public let configuration: Configuration

    /// Shares `configuration` with every connection of the listener.
    public init(_ configuration: Configuration) {
        self.configuration = configuration
    }
}

/// A protocol's listener built on a ``TCPListener``: a ServiceLifecycle `Service` that binds, serves
/// until graceful shutdown and drains.
public protocol TCPListenerService: Service {
    /// The listener that binds, limits and drains.
    var tcpListener: TCPListener { get }
}

extension TCPListenerService {
    /// Binds every address; returns the bound socket addresses (useful with port 0).
    @discardableResult
    public func bind() async throws -> [SocketAddress] { try await tcpListener.bind() }

    /// Binds (if not yet bound), serves until graceful shutdown, then drains.
    public func run() async throws { try await tcpListener.run() }

    /// Stops accepting, asks sessions to finish, and closes what remains after the grace period.
    public func drain() async { await tcpListener.drain() }
}
