import MailCore
import NIOCore
import NIOPosix

/// A client's connection: its channel, its handler (which lives on the channel's event loop) and its
/// TLS settings, and the hops to that event loop the client's async methods make. Every failure is the
/// client's own error (``ClientFailures``).
public struct ClientConnection<Handler: ClientResponseHandler>: Sendable {
    /// The client's error type.
    public typealias Failure = Handler.Failures.Failure

    /// The connected channel.
    public let channel: any Channel
    /// The protocol's handler, usable on ``channel``'s event loop.
    public let handler: NIOLoopBound<Handler>
    /// The TLS context and name for implicit TLS or a later STARTTLS/STLS; `nil` for plaintext only.
    public let tls: ClientTLS?

    /// Builds the TLS context when `verification` is given, then connects to `host:port` on one event
    /// loop of `eventLoopGroup`, with `connectTimeout` and TCP_NODELAY (a client writes short command
    /// lines and waits for each reply). With `implicitTLS` (RFC 8314, ports 465 and 995) TLS is the
    /// first handler of the pipeline; the protocol's handler, created on the connection's event loop
    /// by `makeHandler`, comes behind it.
    ///
    /// - Parameters:
    ///   - verification: how the certificate is checked; `nil` for plaintext (no TLS at all).
    ///   - serverName: the name for SNI and the certificate; `nil` for `host` (see ``ClientTLS``).
    /// - Throws: ``ClientFailure/tls(_:permanent:)`` (permanent) when the context cannot be built,
    ///   ``ClientFailure/connectFailed(_:)`` when the connection cannot be made, as the client's errors.
    public static func connect(host: String, port: Int, eventLoopGroup: any EventLoopGroup, connectTimeout: TimeAmount,
                               verification: ClientTLS.Verification?, serverName: String?, implicitTLS: Bool,
                               makeHandler: @escaping @Sendable () -> Handler) async throws(Failure) -> ClientConnection
    where Handler: ChannelHandler {
        let tls: ClientTLS?
        do {
            tls = try verification.map { try ClientTLS(verification: $0, host: host, serverName: serverName) }
        } catch {
            throw Handler.Failures.error(.tls("\(error)", permanent: true))
        }
        let first = implicitTLS ? tls : nil
        let loop = eventLoopGroup.any()
        do {
            let handler = try await loop.submit { NIOLoopBound(makeHandler(), eventLoop: loop) }.get()
            let channel = try await ClientBootstrap(group: loop)
                .connectTimeout(connectTimeout)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture {
                        if let first { try ch.pipeline.syncOperations.addHandler(first.makeHandler()) }
                        try ch.pipeline.syncOperations.addHandler(handler.value)
                    }
                }
                .connect(host: host, port: port).get()
            return ClientConnection(channel: channel, handler: handler, tls: tls)
        } catch {
            throw Handler.Failures.error(.connectFailed(NetworkErrorText.describe(error)))
        }
    }

    /// Runs `body` with the handler on the event loop and waits for the future it returns.
    public func submit<T: Sendable>(_ body: @escaping @Sendable (Handler, any EventLoop) -> EventLoopFuture<T>) async throws -> T {
        let handler = self.handler
        let loop = channel.eventLoop
        return try await loop.flatSubmit { body(handler.value, loop) }.get()
    }

    /// The next item the server sent, failing after `timeout` (see ``ClientChannelHandler/next(timeout:eventLoop:command:)``);
    /// any other failure than the client's own error is a closed connection during `command`.
    public func next(timeout: TimeAmount, command: String?) async throws(Failure) -> Handler.Item {
        do {
            return try await submit { handler, loop in handler.next(timeout: timeout, eventLoop: loop, command: command) }
        } catch let e as Failure {
            throw e
        } catch {
            var e = Handler.Failures.error(.connectionClosed)
            e[keyPath: Handler.Failures.command] = command
            throw e
        }
    }

    /// Upgrades to TLS with ``tls`` once the server accepted STARTTLS/STLS (see
    /// ``ClientChannelHandler/startTLS(_:eventLoop:timeout:)``); any other failure than the client's own
    /// error is a TLS failure.
    public func startTLS(timeout: TimeAmount?) async throws(Failure) {
        guard let tls else { preconditionFailure("STARTTLS/STLS on a connection without TLS settings") }
        do {
            try await submit { handler, loop in handler.startTLS(tls, eventLoop: loop, timeout: timeout) }
        } catch let e as Failure {
            throw e
        } catch {
            throw Handler.Failures.error(.tls("\(error)", permanent: false))
        }
    }

    /// Runs `body` (the session's setup: greeting, capabilities, TLS, login); when it fails, closes the
    /// connection and rethrows.
    public func closingOnFailure<T>(_ body: () async throws(Failure) -> T) async throws(Failure) -> T {
        do {
            return try await body()
        } catch {
            await close()
            throw error
        }
    }

    /// Closes the connection; an error (already closed) is ignored.
    public func close() async {
        try? await channel.close()
    }
}

/// What ``ClientConnection`` needs of its handler; ``ClientChannelHandler`` and its subclasses have it.
public protocol ClientResponseHandler: AnyObject, SendableMetatype {
    /// What the handler hands to the client (a reply, a response line or body chunk).
    associatedtype Item: Sendable
    /// The client's errors.
    associatedtype Failures: ClientFailures
    /// See ``ClientChannelHandler/next(timeout:eventLoop:command:)``.
    func next(timeout: TimeAmount, eventLoop: any EventLoop, command: String?) -> EventLoopFuture<Item>
    /// See ``ClientChannelHandler/startTLS(_:eventLoop:timeout:)``.
    func startTLS(_ tls: ClientTLS, eventLoop: any EventLoop, timeout: TimeAmount?) -> EventLoopFuture<Void>
}
