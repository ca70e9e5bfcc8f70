import POP3Core

/// A failure of a POP3 client operation.
public struct POP3ClientError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure.
    public enum Kind: Hashable, Sendable {
        /// The server answered `-ERR` (see ``response``).
        case refused
        case connectionClosed
        case timeout
        case malformedResponse
        case tls(String)
        case authenticationUnavailable(String)
        case connectFailed(String)
    }

    /// The kind.
    public var kind: Kind
    /// The server's `-ERR` response.
    public var response: POP3Response?
    /// The command (never the password).
    public var command: String?
    /// `true` when retrying will not help (`[AUTH]`, `[SYS/PERM]`, a plain `-ERR` to a command);
    /// `false` for `[IN-USE]`, `[SYS/TEMP]`, `[LOGIN-DELAY]`, timeouts and lost connections.
    public var isPermanent: Bool

    /// Creates an error.
    public init(kind: Kind, response: POP3Response? = nil, command: String? = nil, isPermanent: Bool) {
        self.kind = kind
        self.response = response
        self.command = command
        self.isPermanent = isPermanent
    }

    /// A `-ERR` to `command`.
    public static func refused(_ r: POP3Response, command: String) -> POP3ClientError {
        let transient = ["IN-USE", "SYS/TEMP", "LOGIN-DELAY"].contains(r.code ?? "")
        return POP3ClientError(kind: .refused, response: r, command: command, isPermanent: !transient)
    }

    public var description: String {
        switch kind {
        case .refused: "the server refused \(command ?? "the command"): \(response?.description ?? "-ERR")"
        case .connectionClosed: "the server closed the connection\(command.map { " during \($0)" } ?? "")"
        case .timeout: "the server did not answer in time\(command.map { " (\($0))" } ?? "")"
        case .malformedResponse: "the server sent a malformed response"
        case .tls(let s): "TLS: \(s)"
        case .authenticationUnavailable(let s): "cannot log in: \(s)"
        case .connectFailed(let s): "cannot connect: \(s)"
        }
    }
}
