import IMAPCore
import NIOCore
import SASL

/// What the IMAP server needs from the mail system. The composition root implements it over the
/// directory, the Maildirs and the mailbox event hub; the adapter never sees a file.
public protocol IMAPServerDelegate: Sendable {
    /// Checks credentials. Implementations delay failures, throttle per client IP and per account,
    /// and answer the same way whether or not the user exists.
    func authenticate(user: String, password: String, remoteIP: String) async -> Bool
    /// SCRAM-SHA-256 credentials of `user` (decoys when unknown, `userExists` false).
    func scramCredentials(user: String, remoteIP: String) async -> (credentials: SCRAMCredentials, userExists: Bool)
    /// Opens `user`'s account after a login: creates the default folders on first use and enforces
    /// the per-user connection limit (throw ``MailboxError/limit(_:)``).
    func openAccount(user: String, remoteIP: String) async throws -> any IMAPAccount
}

/// One logged-in user's mail. Methods run off the event loop unless they say otherwise.
public protocol IMAPAccount: AnyObject, Sendable {
    /// Every mailbox (LIST, LSUB).
    func mailboxes() async throws -> [MailboxInfo]
    /// STATUS of each named mailbox that exists.
    func status(of mailboxes: [String]) async throws -> [String: MailboxStatus]
    func create(_ mailbox: String, specialUse: String?) async throws
    func delete(_ mailbox: String) async throws
    func rename(_ mailbox: String, to newName: String) async throws
    func subscribe(_ mailbox: String) async throws
    func unsubscribe(_ mailbox: String) async throws
    /// Opens `mailbox` for this session. `changed` is called (on any thread) whenever the mailbox
    /// may have changed; the session then calls ``IMAPSelectedMailbox/takeUpdate()``.
    func select(_ mailbox: String, readOnly: Bool, qresync: SelectParameters.QResync?,
                changed: @escaping @Sendable () -> Void) async throws -> (any IMAPSelectedMailbox, SelectedMailboxInfo)
    /// Where an APPEND's message goes. Called on the event loop; must not block.
    func appendSink(mailbox: String, message: AppendMessage) -> any IMAPAppendSink
    /// Storage use and limit (RFC 9208).
    func quota() async throws -> QuotaUsage
    /// The session ended (called once).
    func close() async
}

/// The selected mailbox of one session.
public protocol IMAPSelectedMailbox: AnyObject, Sendable {
    /// Changes by others since the last call (or since SELECT). In memory; callable on the event loop.
    func takeUpdate() -> MailboxUpdate
    /// What FETCH reports of `uids` (in that order), with each message's octets (CRLF line ends)
    /// as `content` says, and its cache record (``FetchResponseBuilder/cacheRecord(_:)``) when
    /// `cached`; read in one go off the event loop. A UID that is gone has no entry.
    /// `internalDates`: INTERNALDATE is asked for (without it, ``MessageFacts/internalDate`` is the
    /// epoch and the store need not look at the file).
    func load(_ uids: [UInt32], content: FetchedMessage.ContentNeed, cached: Bool, internalDates: Bool) async throws -> [FetchedMessage]
    /// RFC822.SIZE of each of `uids` that exists. In memory; callable on any thread, no I/O.
    func sizes(of uids: [UInt32]) -> [UInt32: Int]
    /// Keeps cache records of messages just parsed (in memory; cheap).
    func cache(_ records: [(uid: UInt32, record: [UInt8])])
    /// Sets `\Seen` (a non-PEEK body fetch); returns the messages' flags now.
    func markSeen(_ uids: [UInt32]) async throws -> [MessageFlags]
    func search(_ request: SearchRequest) async throws -> (uids: [UInt32], highestModSeq: UInt64?)
    func sort(_ request: SearchRequest, by criteria: [SortCriterion]) async throws -> [UInt32]
    func thread(_ request: SearchRequest, algorithm: String) async throws -> [ThreadNode]
    func store(_ request: StoreRequest) async throws -> StoreOutcome
    func copy(_ uids: [UInt32], to mailbox: String, move: Bool) async throws -> CopyOutcome
    /// Expunges `\Deleted` messages (only among `uids` when given); returns the UIDs removed.
    func expunge(_ uids: [UInt32]?) async throws -> [UInt32]
    /// The session leaves the mailbox (called once).
    func close()
}

/// Receives one APPEND message.
public protocol IMAPAppendSink: AnyObject, Sendable {
    /// Appends octets (in order; at most ~1 MiB per call).
    func write(_ bytes: ByteBuffer) async throws
    /// Stores the message durably; returns the mailbox's UIDVALIDITY and the new UID.
    func commit() async throws -> (uidValidity: UInt32, uid: UInt32)
    /// Discards what was written.
    func abort() async
}

/// One message as FETCH needs it.
public struct FetchedMessage: Sendable {
    /// When the octets are needed.
    public enum ContentNeed: Sendable {
        case never, always
        /// Only for a message without a cache record.
        case unlessCached
    }

    public var facts: MessageFacts
    /// The message with CRLF line ends, when it was asked for.
    public var content: ByteBuffer?
    /// The cache record, when asked for and present.
    public var cached: [UInt8]?

    public init(facts: MessageFacts, content: ByteBuffer?, cached: [UInt8]? = nil) {
        self.facts = facts
        self.content = content
        self.cached = cached
    }
}
