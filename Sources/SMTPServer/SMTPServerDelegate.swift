import MailCore
import NIOCore
import SMTPCore

/// What the SMTP server needs from the rest of the mail system: recipient checks and a place to put
/// messages. The composition root (intake) implements it.
public protocol SMTPServerDelegate: Sendable {
    /// Decides whether `recipient` is acceptable in this transaction. Return to accept; throw
    /// ``SMTPRejection`` to refuse with a specific reply; any other error becomes `451 4.3.0`.
    func verifyRecipient(_ recipient: ForwardPath, envelope: SMTPEnvelope, connection: SMTPConnectionInfo) async throws

    /// Returns a sink for one message's content. Called when content starts; must not block.
    func makeMessageSink(connection: SMTPConnectionInfo) -> any SMTPMessageSink

    /// Checks AUTH credentials (RFC 4954). Return the canonical login name on success; throw
    /// ``SMTPRejection`` for a specific refusal (e.g. `454 4.7.0` when throttled); any other error or
    /// `nil` answers `535 5.7.8`. Implementations delay failures and answer the same way whether or
    /// not the user exists.
    func authenticate(user: String, password: String, connection: SMTPConnectionInfo) async throws -> String?
}

extension SMTPServerDelegate {
    /// No accounts: every AUTH fails (listeners without AUTH never ask).
    public func authenticate(user: String, password: String, connection: SMTPConnectionInfo) async throws -> String? { nil }
}

/// Receives one message's content, in order, then commits or aborts it.
public protocol SMTPMessageSink: AnyObject, Sendable {
    /// Takes the next part of the content (CRLF line ends, unstuffed). Called with large slices only.
    func write(_ bytes: ByteBuffer) async throws
    /// Takes the last part of the content and makes the message durable. Returns the queue ID shown
    /// in the `250` reply. Must not return before the message is safe on disk.
    /// Throw ``SMTPRejection`` for a specific reply (e.g. `452 4.3.1` when the disk is full).
    func commit(_ bytes: ByteBuffer, envelope: SMTPEnvelope, connection: SMTPConnectionInfo) async throws -> String
    /// Drops everything written; called at most once, instead of `commit`.
    func abort() async
}

/// A refusal with a specific SMTP reply, thrown by delegate methods.
public struct SMTPRejection: Error, Hashable, Sendable {
    /// The reply sent to the client.
    public var reply: SMTPReply

    /// Creates a refusal.
    public init(_ reply: SMTPReply) { self.reply = reply }
}

/// Facts about the connection handed to the delegate.
public struct SMTPConnectionInfo: Hashable, Sendable {
    /// The client's IP address, textual.
    public var remoteIP: String
    /// The client's port.
    public var remotePort: Int
    /// The listener's name (`smtp`, `submission`, …).
    public var listener: String
    /// HELO name, TLS and authentication facts.
    public var session: SMTPSessionFacts

    /// Creates connection facts.
    public init(remoteIP: String, remotePort: Int, listener: String, session: SMTPSessionFacts) {
        self.remoteIP = remoteIP
        self.remotePort = remotePort
        self.listener = listener
        self.session = session
    }
}
