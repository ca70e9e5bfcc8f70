import ListenerSupport
import Logging
import NIOCore
import NIOSSL
import SMTPCore
import ServiceLifecycle

/// Accepts SMTP connections on a set of addresses and serves each with an ``SMTPServerConnection``.
/// Runs as a ServiceLifecycle `Service` (`bind`, `run` and `drain` come from `TCPListenerService`): on
/// graceful shutdown it stops accepting, lets transactions in flight finish until the endpoint's
/// `shutdownGrace`, then closes the rest with `421 4.3.2`.
public final class SMTPListener: TCPListenerService, Sendable {
    /// The shared listener that binds, limits and drains.
    public let tcpListener: TCPListener

    /// Creates a listener; nothing is bound until ``bind()`` or ``run()``.
    public init(configuration c: Configuration, delegate: any SMTPServerDelegate, registry: ConnectionRegistry,
                group: any EventLoopGroup, logger: Logger) {
        var refusal = ByteBuffer()
        refusal.writeSMTPReply(.tooManyConnections(c.machine.hostname))
        tcpListener = TCPListener(c, refusal: String(buffer: refusal), registry: registry, group: group,
                                  logger: logger) {
            SMTPServerConnection(listener: $0, delegate: delegate, logger: logger)
        }
    }

    /// How one listener behaves.
    public struct Configuration: ListenerConfiguration {
        /// Name, addresses, TLS (STARTTLS, or implicit TLS on port 465) and shutdown grace.
        public var endpoint: ListenerEndpoint
        /// SMTP behaviour.
        public var machine: SMTPServerStateMachine.Configuration
        /// Waiting for a command (RFC 5321 §4.5.3.2.7: at least 5 minutes).
        public var commandTimeout: TimeAmount
        /// Waiting for more content during DATA/BDAT.
        public var dataTimeout: TimeAmount
        /// Message content is handed to storage in slices of at least this size.
        public var spillThreshold: Int

        /// Creates a configuration.
        public init(name: String, addresses: [(host: String, port: Int)], machine: SMTPServerStateMachine.Configuration,
                    tls: NIOSSLContext? = nil, implicitTLS: Bool = false, commandTimeout: TimeAmount = .seconds(300),
                    dataTimeout: TimeAmount = .seconds(180), shutdownGrace: TimeAmount = .seconds(10),
                    spillThreshold: Int = 1 << 20) {
            endpoint = ListenerEndpoint(name: name, addresses: addresses, tls: tls, implicitTLS: implicitTLS,
                                        shutdownGrace: shutdownGrace)
            self.machine = machine
            self.commandTimeout = commandTimeout
            self.dataTimeout = dataTimeout
            self.spillThreshold = spillThreshold
        }
    }
}
