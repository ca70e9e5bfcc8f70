import IMAPCore
import ListenerSupport
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle

/// Accepts IMAP connections (143-style with STARTTLS, or 993-style implicit TLS) and serves each with
/// an ``IMAPServerConnection``. A ServiceLifecycle `Service`; `bind`, `run` and `drain` come from
/// `TCPListenerService`.
public final class IMAPListener: TCPListenerService, Sendable {
    /// The shared listener that binds, limits and drains.
    public let tcpListener: TCPListener

    /// Creates a listener; nothing is bound until ``bind()`` or ``run()``.
    public init(configuration c: Configuration, delegate: any IMAPServerDelegate, registry: ConnectionRegistry,
                group: any EventLoopGroup, logger: Logger) {
        tcpListener = TCPListener(c, refusal: "* BYE [UNAVAILABLE] Too many connections, try again later\r\n",
                                  registry: registry, group: group, logger: logger) {
            IMAPServerConnection(listener: $0, delegate: delegate, logger: logger)
        }
    }

    /// Listener settings.
    public struct Configuration: ListenerConfiguration {
        /// `imap` or `imaps`, its addresses, TLS (STARTTLS or implicit TLS, RFC 8314) and shutdown grace.
        public var endpoint: ListenerEndpoint
        /// Protocol behaviour.
        public var machine: IMAPServerStateMachine.Configuration
        /// Parser limits (command size, APPEND size, nesting).
        public var parser: IMAPCommandParser.Configuration
        /// RFC 9051 §5.4 autologout timer (at least 30 minutes once logged in).
        public var autologout: TimeAmount
        /// How long a client may take to log in.
        public var loginTimeout: TimeAmount
        /// Buffered FETCH output before the connection waits for the client to read.
        public var fetchChunk = 256 * 1024

        /// Creates settings.
        public init(name: String, addresses: [(host: String, port: Int)], machine: IMAPServerStateMachine.Configuration,
                    parser: IMAPCommandParser.Configuration = .init(), tls: NIOSSLContext?, implicitTLS: Bool,
                    autologout: TimeAmount = .minutes(30), loginTimeout: TimeAmount = .minutes(1),
                    shutdownGrace: TimeAmount = .seconds(10)) {
            endpoint = ListenerEndpoint(name: name, addresses: addresses, tls: tls, implicitTLS: implicitTLS,
                                        shutdownGrace: shutdownGrace)
            self.machine = machine
            self.parser = parser
            self.autologout = autologout
            self.loginTimeout = loginTimeout
        }
    }
}
