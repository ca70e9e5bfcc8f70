import NIOCore

/// What ends a request or a connection, as ``ClientChannelHandler`` and ``ClientConnection`` see it; each
/// client turns it into its own error (``ClientFailures``).
public enum ClientFailure: Hashable, Sendable {
    /// The connection ended: the server closed it, or an I/O error that is not TLS.
    case connectionClosed
    /// No response to `command` in time.
    case timeout(command: String?)
    /// A TLS failure; `permanent` when retrying cannot help (no handler could be built).
    case tls(String, permanent: Bool)
    /// The connection could not be made (refused, unresolvable, timed out), in a few words.
    case connectFailed(String)
    /// The connection was gone before a STARTTLS/STLS upgrade started (a server that closes right
    /// after accepting it).
    case closedBeforeHandshake
    /// The STARTTLS/STLS handshake did not finish within this time.
    case handshakeTimedOut(TimeAmount)
}

/// How a protocol client turns a ``ClientFailure`` into its own error type: each client declares one
/// (an enum without cases).
public protocol ClientFailures: Sendable {
    /// The client's error type.
    associatedtype Failure: Error
    /// The client's error for `failure`.
    static func error(_ failure: ClientFailure) -> Failure
    /// Where the error names the command it answers (filled in for a request when it names none).
    static var command: WritableKeyPath<Failure, String?> { get }
    /// What the STARTTLS/STLS future fails with when `error` ends the connection during the handshake.
    /// Default: `error` itself.
    static func handshakeFailed(_ error: Failure) -> Failure
}

extension ClientFailures {
    public static func handshakeFailed(_ error: Failure) -> Failure { error }
}
