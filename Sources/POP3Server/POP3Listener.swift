import ListenerSupport
import Logging
import NIOCore
import NIOSSL
import POP3Core
import ServiceLifecycle

/// Accepts POP3 connections (110-style with STLS, or 995-style implicit TLS) and serves each with a
/// ``POP3ServerConnection``. A ServiceLifecycle `Service`; `bind`, `run` and `drain` come from
/// `TCPListenerService`.
public final class POP3Listener: TCPListenerService, Sendable {
    /// The shared listener that binds, limits and drains.
    public let tcpListener: TCPListener

    /// Creates a listener; nothing is bound until ``bind()`` or ``run()``.
    public init(configuration c: Configuration, delegate: any POP3ServerDelegate, registry: ConnectionRegistry,
                group: any EventLoopGroup, logger: Logger) {
        tcpListener = TCPListener(c, refusal: "-ERR [SYS/TEMP] Too many connections, try again later\r\n",
                                  registry: registry, group: group, logger: logger) {
            POP3ServerConnection(listener: $0, delegate: delegate, logger: logger)
        }
    }

    /// Listener settings.
    public struct Configuration: ListenerConfiguration {
        /// `pop3` or `pop3s`, its addresses, TLS (STLS or implicit TLS, RFC 8314) and shutdown grace.
        public var endpoint: ListenerEndpoint
        /// Protocol behaviour.
        public var machine: POP3ServerStateMachine.Configuration
        /// RFC 1939 autologout timer (at least 10 minutes).
        public var autologout: TimeAmount
        /// Read size when streaming messages.
        public var chunkSize: Int
        /// Messages up to this size already in the page cache are read and sent without leaving the
        /// event loop (`preadv2(RWF_NOWAIT)`); larger or uncached ones stream from the thread pool.
        public var inlineLimit = 256 * 1024

        /// Creates settings.
        public init(name: String, addresses: [(host: String, port: Int)], machine: POP3ServerStateMachine.Configuration,
                    tls: NIOSSLContext?, implicitTLS: Bool, autologout: TimeAmount = .minutes(10), chunkSize: Int = 1 << 16,
                    shutdownGrace: TimeAmount = .seconds(10)) {
            endpoint = ListenerEndpoint(name: name, addresses: addresses, tls: tls, implicitTLS: implicitTLS,
                                        shutdownGrace: shutdownGrace)
            self.machine = machine
            self.autologout = autologout
            self.chunkSize = chunkSize
        }
    }
}
