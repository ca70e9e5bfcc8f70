import MailCore
import NIOCore
import SMTPCore

/// What the SMTP server needs from the rest of the mail system: recipient checks and a place to put
/// messages. The composition root (intake) implements it.
public protocol SMTPServerDelegate: Sendable {
    /// Decides whether `recipient` is acceptable in this transaction. Return to accept; throw
    /// ``SMTPRejection`` to refuse with a specific reply; any other error becomes `451 4.3.0`.
    func verifyRecipient(_ recipient: ForwardPath, envelope: SMTPEnvelope, connection: SMTPConnectionInfo) async throws

    /// The verdict on `recipient` when it is known without waiting (e.g. from a cache); `nil` means:
    /// call ``verifyRecipient(_:envelope:connection:)``. Saves a hop off the event loop per RCPT.
    func immediateRecipientVerdict(_ recipient: ForwardPath, envelope: SMTPEnvelope, connection: SMTPConnectionInfo) -> SMTPRecipientVerdict?

    /// Returns a sink for one message's content. Called when content starts; must not block.
    func makeMessageSink(connection: SMTPConnectionInfo) -> any SMTPMessageSink

    /// Checks AUTH credentials (RFC 4954). Return the canonical login name on success; throw
    /// ``SMTPRejection`` for a specific refusal (e.g. `454 4.7.0` when throttled); any other error or
    /// `nil` answers `535 5.7.8`. Implementations delay failures and answer the same way whether or
    /// not the user exists.
    func authenticate(user: String, password: String, connection: SMTPConnectionInfo) async throws -> String?

    /// Starts a server-side SASL exchange for a mechanism other than PLAIN and LOGIN (e.g.
    /// `SCRAM-SHA-256`); `nil` refuses the mechanism with `504 5.5.4`.
    func makeSASLExchange(mechanism: String, connection: SMTPConnectionInfo) -> (any SMTPSASLExchange)?

    /// Decides whether an *authenticated* session may send from `sender` (called for MAIL FROM only
    /// when the session authenticated). Return to accept; throw ``SMTPRejection`` to refuse (e.g.
    /// `553 5.7.1` for an address the user does not own, `450 4.7.1` past a sending limit).
    func verifySender(_ sender: ReversePath, envelope: SMTPEnvelope, connection: SMTPConnectionInfo) async throws
}

/// A recipient decision made without waiting.
public enum SMTPRecipientVerdict: Hashable, Sendable {
    case accept
    case reject(SMTPReply)
}

extension SMTPServerDelegate {
    /// Always ask ``verifyRecipient(_:envelope:connection:)``.
    public func immediateRecipientVerdict(_ recipient: ForwardPath, envelope: SMTPEnvelope,
                                          connection: SMTPConnectionInfo) -> SMTPRecipientVerdict? { nil }
    /// No accounts: every AUTH fails (listeners without AUTH never ask).
    public func authenticate(user: String, password: String, connection: SMTPConnectionInfo) async throws -> String? { nil }
    /// No delegate-run mechanisms.
    public func makeSASLExchange(mechanism: String, connection: SMTPConnectionInfo) -> (any SMTPSASLExchange)? { nil }
    /// Every sender is accepted.
    public func verifySender(_ sender: ReversePath, envelope: SMTPEnvelope, connection: SMTPConnectionInfo) async throws {}
}

/// One server-side SASL exchange (RFC 4422), driven by the connection one response at a time.
public protocol SMTPSASLExchange: AnyObject, Sendable {
    /// Takes the client's next (decoded) response. Throw ``SMTPRejection`` for a specific refusal
    /// (`454 4.7.0`, `421 4.7.0`); any other error answers `535 5.7.8`.
    func respond(to response: [UInt8]) async throws -> SMTPSASLStep
}

/// What a SASL exchange answers to a client response.
public enum SMTPSASLStep: Hashable, Sendable {
    /// Another round: send this challenge.
    case challenge([UInt8])
    /// Authenticated as `user` (canonical login name); `additionalData` is sent before `235`.
    case success(user: String, additionalData: [UInt8]?)
    /// The credentials do not verify: `535 5.7.8`.
    case failure
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
    /// `commit`, started on the connection's event loop; the future completes on it. The default runs
    /// `commit` in a task; a sink that can go straight from the event loop to its blocking file work
    /// (and back) saves the hops through Swift's cooperative threads.
    func commit(_ bytes: ByteBuffer, envelope: SMTPEnvelope, connection: SMTPConnectionInfo,
                on eventLoop: any EventLoop) -> EventLoopFuture<String>
}

extension SMTPMessageSink {
    public func commit(_ bytes: ByteBuffer, envelope: SMTPEnvelope, connection: SMTPConnectionInfo,
                       on eventLoop: any EventLoop) -> EventLoopFuture<String> {
        let promise = eventLoop.makePromise(of: String.self)
        promise.completeWithTask { try await self.commit(bytes, envelope: envelope, connection: connection) }
        return promise.futureResult
    }
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
