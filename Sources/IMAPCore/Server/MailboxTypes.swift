/// What the session machine asks of the mail store and what it gets back. The adapter's delegate
/// implements the requests; these are plain values so the machine stays testable without a store.

/// One message's flags after a change (STORE, an implicit `\Seen`, another session's change).
public struct MessageFlags: Hashable, Sendable {
    public var uid: UInt32
    public var flags: [IMAPFlag]
    public var modSeq: UInt64

    /// Creates message flags.
    public init(uid: UInt32, flags: [IMAPFlag], modSeq: UInt64) {
        self.uid = uid
        self.flags = flags
        self.modSeq = modSeq
    }
}

/// A mailbox as SELECT/EXAMINE found it.
public struct SelectedMailboxInfo: Hashable, Sendable {
    /// The mailbox name in Unicode (`INBOX`, `Archive/2026`).
    public var name: String
    public var uidValidity: UInt32
    public var uidNext: UInt32
    public var highestModSeq: UInt64
    /// Every message's UID, ascending (message sequence number = index + 1).
    public var uids: [UInt32]
    /// Keywords in use or defined (the FLAGS response lists them after the system flags).
    public var keywords: [IMAPFlag]
    /// The lowest sequence number without `\Seen` (IMAP4rev1's `[UNSEEN n]`).
    public var firstUnseen: Int?
    /// The store refuses writes (then SELECT behaves as EXAMINE).
    public var readOnly: Bool
    /// QRESYNC (RFC 7162 §3.2.5): UIDs among the client's known UIDs that no longer exist (or all
    /// expunged since its MODSEQ), and messages changed since it.
    public var vanished: [UInt32]
    public var changed: [MessageFlags]

    /// Creates a selection result.
    public init(name: String, uidValidity: UInt32, uidNext: UInt32, highestModSeq: UInt64, uids: [UInt32],
                keywords: [IMAPFlag] = [], firstUnseen: Int? = nil, readOnly: Bool = false,
                vanished: [UInt32] = [], changed: [MessageFlags] = []) {
        self.name = name
        self.uidValidity = uidValidity
        self.uidNext = uidNext
        self.highestModSeq = highestModSeq
        self.uids = uids
        self.keywords = keywords
        self.firstUnseen = firstUnseen
        self.readOnly = readOnly
        self.vanished = vanished
        self.changed = changed
    }
}

/// Changes to the selected mailbox made by other sessions (or other protocols) since the session
/// last looked; the adapter obtains it from its mailbox handle whenever the event hub signals.
public struct MailboxUpdate: Hashable, Sendable {
    /// UIDs that are gone.
    public var expunged: [UInt32]
    /// New UIDs, ascending, all above every UID the session knows.
    public var appended: [UInt32]
    /// Flag changes of messages the session knows.
    public var flags: [MessageFlags]
    /// Keywords newly defined (a new `* FLAGS` response is due).
    public var keywords: [IMAPFlag]?
    public var highestModSeq: UInt64?

    /// Creates an update.
    public init(expunged: [UInt32] = [], appended: [UInt32] = [], flags: [MessageFlags] = [],
                keywords: [IMAPFlag]? = nil, highestModSeq: UInt64? = nil) {
        self.expunged = expunged
        self.appended = appended
        self.flags = flags
        self.keywords = keywords
        self.highestModSeq = highestModSeq
    }

    /// `true` when there is nothing to announce.
    public var isEmpty: Bool { expunged.isEmpty && appended.isEmpty && flags.isEmpty && keywords == nil }
}

/// One mailbox of the account, for LIST.
public struct MailboxInfo: Hashable, Sendable {
    /// Unicode name with "/" as hierarchy delimiter; `INBOX` for the inbox.
    public var name: String
    /// `\Sent`, `\Drafts`, `\Trash`, `\Junk`, `\Archive`, `\All`, `\Flagged`.
    public var specialUse: String?
    public var subscribed: Bool
    public var hasChildren: Bool
    /// `false` for a name that is only subscribed (`\NonExistent`).
    public var exists: Bool

    /// Creates mailbox facts.
    public init(name: String, specialUse: String? = nil, subscribed: Bool = false, hasChildren: Bool = false, exists: Bool = true) {
        self.name = name
        self.specialUse = specialUse
        self.subscribed = subscribed
        self.hasChildren = hasChildren
        self.exists = exists
    }
}

/// Why the store refused (mapped to response codes, RFC 5530).
public enum MailboxError: Error, Hashable, Sendable {
    /// `[NONEXISTENT]` (`[TRYCREATE]` for APPEND, COPY and MOVE targets).
    case nonexistent
    case alreadyExists
    case hasChildren
    /// `[CANNOT]` with a reason.
    case cannot(String)
    case overQuota
    /// `[INUSE]`.
    case inUse
    case noPermission
    /// `[LIMIT]` with a reason.
    case limit(String)
    /// The message was expunged by someone else (`[EXPUNGEISSUED]`).
    case expungeIssued
    /// `[UNKNOWN-CTE]` (BINARY on an encoding the server cannot decode).
    case unknownTransferEncoding
    /// `[UNAVAILABLE]`: a temporary failure (disk, database); details are in the server log.
    case unavailable
}

/// What a FETCH needs from the store.
public struct FetchRequest: Hashable, Sendable {
    /// The command's tag.
    public var tag: String
    /// The messages, in ascending order.
    public var messages: [Message]
    /// Data items to send (with `UID` added for UID FETCH, `MODSEQ` when CONDSTORE is on).
    public var attributes: [FetchAttribute]
    /// Set `\Seen` on messages whose non-PEEK body was fetched (off in EXAMINE).
    public var setsSeen: Bool
    /// RFC 7162 CHANGEDSINCE: only messages with a higher MODSEQ.
    public var changedSince: UInt64?
    /// Responses to send before the FETCH responses (`VANISHED (EARLIER)`, RFC 7162 §3.2.6).
    public var preceding: [IMAPResponse]

    /// One message to fetch.
    public struct Message: Hashable, Sendable {
        public var sequenceNumber: Int
        public var uid: UInt32
        public init(sequenceNumber: Int, uid: UInt32) {
            self.sequenceNumber = sequenceNumber
            self.uid = uid
        }
    }

    public init(tag: String, messages: [Message], attributes: [FetchAttribute], setsSeen: Bool, changedSince: UInt64?,
                preceding: [IMAPResponse] = []) {
        self.preceding = preceding
        self.tag = tag
        self.messages = messages
        self.attributes = attributes
        self.setsSeen = setsSeen
        self.changedSince = changedSince
    }
}

/// What a SEARCH (or SORT, THREAD) needs: the key with `$` replaced, and the session's view (a
/// sequence number is an index into `uids`).
public struct SearchRequest: Hashable, Sendable {
    public var key: SearchKey
    /// The session's messages, ascending (sequence number = index + 1).
    public var uids: [UInt32]
    public var charset: String?

    public init(key: SearchKey, uids: [UInt32], charset: String?) {
        self.key = key
        self.uids = uids
        self.charset = charset
    }
}

/// A STORE on known UIDs.
public struct StoreRequest: Hashable, Sendable {
    public var uids: [UInt32]
    public var modification: StoreModification

    public init(uids: [UInt32], modification: StoreModification) {
        self.uids = uids
        self.modification = modification
    }
}

/// What a STORE did.
public struct StoreOutcome: Hashable, Sendable {
    /// Messages whose flags were changed or (without `.SILENT`) are to be reported, with their flags now.
    public var updated: [MessageFlags]
    /// UNCHANGEDSINCE failures (`[MODIFIED …]`).
    public var modified: [UInt32]

    public init(updated: [MessageFlags], modified: [UInt32] = []) {
        self.updated = updated
        self.modified = modified
    }
}

/// What a COPY or MOVE did.
public struct CopyOutcome: Hashable, Sendable {
    /// The destination's UIDVALIDITY.
    public var uidValidity: UInt32
    /// Source and destination UIDs, in the source's order.
    public var source: [UInt32]
    public var destination: [UInt32]

    public init(uidValidity: UInt32, source: [UInt32], destination: [UInt32]) {
        self.uidValidity = uidValidity
        self.source = source
        self.destination = destination
    }
}

/// The mailbox facts STATUS (and LIST-STATUS) reports.
public struct MailboxStatus: Hashable, Sendable {
    public var messages: Int
    public var uidNext: UInt32
    public var uidValidity: UInt32
    public var unseen: Int
    public var deleted: Int
    /// Sum of RFC822.SIZE (RFC 8438).
    public var size: UInt64
    public var highestModSeq: UInt64

    public init(messages: Int, uidNext: UInt32, uidValidity: UInt32, unseen: Int, deleted: Int, size: UInt64, highestModSeq: UInt64) {
        self.messages = messages
        self.uidNext = uidNext
        self.uidValidity = uidValidity
        self.unseen = unseen
        self.deleted = deleted
        self.size = size
        self.highestModSeq = highestModSeq
    }

    /// The values asked for, in the order asked.
    public func values(_ attributes: [StatusAttribute]) -> [(StatusAttribute, UInt64)] {
        attributes.map { a in
            switch a {
            case .messages: (a, UInt64(messages))
            case .uidNext: (a, UInt64(uidNext))
            case .uidValidity: (a, UInt64(uidValidity))
            case .unseen: (a, UInt64(unseen))
            case .deleted: (a, UInt64(deleted))
            case .size: (a, size)
            case .highestModSeq: (a, highestModSeq)
            case .recent: (a, 0)
            }
        }
    }
}

/// Storage use of an account (RFC 9208 STORAGE, in KiB on the wire).
public struct QuotaUsage: Hashable, Sendable {
    public var usedBytes: UInt64
    /// `nil`: no limit (then GETQUOTAROOT lists no root).
    public var limitBytes: UInt64?

    public init(usedBytes: UInt64, limitBytes: UInt64?) {
        self.usedBytes = usedBytes
        self.limitBytes = limitBytes
    }
}
