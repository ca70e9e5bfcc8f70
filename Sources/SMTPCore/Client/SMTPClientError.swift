/// A failure of an SMTP client operation: what went wrong, the server's reply if there was one, the
/// command it answered, and whether retrying later could help.
public struct SMTPClientError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure.
    public enum Kind: Hashable, Sendable {
        /// The server refused with `reply`.
        case refused
        /// The connection closed unexpectedly.
        case connectionClosed
        /// The server did not answer in time (RFC 5321 §4.5.3.2).
        case timeout
        /// The server's bytes were not valid SMTP (malformed or oversized reply).
        case malformedReply
        /// TLS was required but is not available, or the handshake failed.
        case tls(String)
        /// Authentication is impossible as configured (no mechanism in common, plaintext refused).
        case authenticationUnavailable(String)
        /// The message cannot be sent to this server as it is (too big, 8-bit without 8BITMIME,
        /// UTF-8 addresses without SMTPUTF8, a line over 998 octets).
        case messageNotSendable(String)
        /// Could not connect.
        case connectFailed(String)
    }

    /// The kind.
    public var kind: Kind
    /// The server's reply, for ``Kind/refused``.
    public var reply: SMTPReply?
    /// The command the reply answered (AUTH data is never included).
    public var command: String?
    /// `true` when the same attempt will fail again (5xx, or a local refusal); `false` for 4xx,
    /// timeouts and lost connections.
    public var isPermanent: Bool

    /// Creates an error.
    public init(kind: Kind, reply: SMTPReply? = nil, command: String? = nil, isPermanent: Bool) {
        self.kind = kind
        self.reply = reply
        self.command = command
        self.isPermanent = isPermanent
    }

    /// A refusal by `reply` to `command`.
    public static func refused(_ reply: SMTPReply, command: String?) -> SMTPClientError {
        SMTPClientError(kind: .refused, reply: reply, command: command, isPermanent: reply.isPermanent)
    }

    public var description: String {
        switch kind {
        case .refused:
            let r = reply.map { "\($0.code)\($0.enhancedCode.map { " \($0)" } ?? "") \($0.lines.joined(separator: " "))" } ?? "?"
            return "the server refused\(command.map { " \($0)" } ?? ""): \(r)"
        case .connectionClosed: return "the server closed the connection\(command.map { " after \($0)" } ?? "")"
        case .timeout: return "the server did not answer in time\(command.map { " (\($0))" } ?? "")"
        case .malformedReply: return "the server sent a malformed reply"
        case .tls(let s): return "TLS: \(s)"
        case .authenticationUnavailable(let s): return "cannot authenticate: \(s)"
        case .messageNotSendable(let s): return "the message cannot be sent: \(s)"
        case .connectFailed(let s): return "cannot connect: \(s)"
        }
    }
}
