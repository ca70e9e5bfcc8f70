/// One message of a folder, as the index knows it after the last sync.
public struct MaildirMessage: Hashable, Sendable {
    /// The UID (from `dovecot-uidlist`).
    public var uid: UInt32
    /// IMAP flags: system flags (`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`), then keywords
    /// (`$Forwarded`, `Junk`, …).
    public var flags: [String]
    /// The message's MODSEQ (RFC 7162).
    public var modSeq: UInt64
    /// Octets on disk (LF line ends): `S=`.
    public var size: Int
    /// Octets with CRLF line ends, what IMAP reports as RFC822.SIZE: `W=`.
    public var virtualSize: Int
    /// The file's path at the last sync (another program may rename it; use
    /// ``MaildirFolder/openMessage(uid:)`` to read).
    public var path: String

    /// Creates a message record.
    public init(uid: UInt32, flags: [String], modSeq: UInt64, size: Int, virtualSize: Int, path: String) {
        self.uid = uid
        self.flags = flags
        self.modSeq = modSeq
        self.size = size
        self.virtualSize = virtualSize
        self.path = path
    }
}

/// What changed in a folder between two points.
public struct FolderChanges: Hashable, Sendable {
    /// New messages, ascending UID.
    public var added: [MaildirMessage] = []
    /// UIDs that are gone, ascending.
    public var expunged: [UInt32] = []
    /// Messages whose flags changed (with their new flags and MODSEQ), ascending UID.
    public var flagsChanged: [MaildirMessage] = []
    /// UIDVALIDITY changed (the folder was recreated, or its uidlist lost): every UID is new.
    public var uidValidityChanged = false

    /// Creates an empty change set.
    public init() {}

    /// `true` when nothing changed.
    public var isEmpty: Bool { added.isEmpty && expunged.isEmpty && flagsChanged.isEmpty && !uidValidityChanged }
}

/// The state of a folder at one moment: what a session shows after a sync.
public struct FolderSnapshot: Hashable, Sendable {
    /// UIDVALIDITY.
    public var uidValidity: UInt32
    /// UIDNEXT.
    public var nextUID: UInt32
    /// HIGHESTMODSEQ.
    public var highestModSeq: UInt64
    /// The messages, ascending UID (sequence number = index + 1).
    public var messages: [MaildirMessage]
    /// The keywords the folder knows (for PERMANENTFLAGS / FLAGS).
    public var keywords: [String]

    /// What a session that showed `old` must be told to show `self` (a per-session diff, so every
    /// session sharing one folder learns every change once).
    public func changes(since old: FolderSnapshot) -> FolderChanges {
        var out = FolderChanges()
        if old.uidValidity != uidValidity {
            out.uidValidityChanged = true
            out.expunged = old.messages.map(\.uid)
            out.added = messages
            return out
        }
        var i = 0, j = 0
        while i < old.messages.count || j < messages.count {
            if j == messages.count || (i < old.messages.count && old.messages[i].uid < messages[j].uid) {
                out.expunged.append(old.messages[i].uid)
                i += 1
            } else if i == old.messages.count || messages[j].uid < old.messages[i].uid {
                out.added.append(messages[j])
                j += 1
            } else {
                if messages[j].modSeq != old.messages[i].modSeq || messages[j].flags != old.messages[i].flags {
                    out.flagsChanged.append(messages[j])
                }
                i += 1
                j += 1
            }
        }
        return out
    }
}

/// How ``MaildirFolder/store(_:_:uids:unchangedSince:)`` applies flags.
public enum FlagOperation: Hashable, Sendable {
    /// `FLAGS`: the message gets exactly these flags.
    case replace
    /// `+FLAGS`.
    case add
    /// `-FLAGS`.
    case remove
}

/// The outcome of a STORE.
public struct StoreResult: Hashable, Sendable {
    /// Messages whose flags changed, with their new flags and MODSEQ.
    public var changed: [MaildirMessage]
    /// UIDs not changed because their MODSEQ was above `unchangedSince` (RFC 7162 `MODIFIED`).
    public var failedUnchangedSince: [UInt32]
    /// UIDs that were no longer there (expunged meanwhile).
    public var gone: [UInt32]
}

/// A source UID and the UID its copy got.
public struct UIDPair: Hashable, Sendable {
    /// UID in the source folder.
    public var source: UInt32
    /// UID in the destination folder.
    public var destination: UInt32
}

/// The UIDs and MODSEQs of a folder at one moment (12 octets a message): what a session keeps of what
/// it has shown, to find out later what changed.
public struct FolderVersions: Hashable, Sendable {
    public var uidValidity: UInt32
    public var highestModSeq: UInt64
    /// Ascending.
    public var uids: [UInt32]
    /// `modSeqs[i]` is the MODSEQ of `uids[i]`.
    public var modSeqs: [UInt64]
    public var keywords: [String]

    public init(uidValidity: UInt32, highestModSeq: UInt64, uids: [UInt32], modSeqs: [UInt64], keywords: [String]) {
        self.uidValidity = uidValidity
        self.highestModSeq = highestModSeq
        self.uids = uids
        self.modSeqs = modSeqs
        self.keywords = keywords
    }

    /// What changed from `old` to `self`: UIDs gone, UIDs new, UIDs whose MODSEQ changed (every flag
    /// change gives a message a new MODSEQ).
    public func changes(since old: FolderVersions) -> (expunged: [UInt32], added: [UInt32], changed: [UInt32]) {
        if old.uidValidity != uidValidity { return (old.uids, uids, []) }
        var expunged: [UInt32] = [], added: [UInt32] = [], changed: [UInt32] = []
        var i = 0, j = 0
        while i < old.uids.count || j < uids.count {
            if j == uids.count || (i < old.uids.count && old.uids[i] < uids[j]) {
                expunged.append(old.uids[i])
                i += 1
            } else if i == old.uids.count || uids[j] < old.uids[i] {
                added.append(uids[j])
                j += 1
            } else {
                if modSeqs[j] != old.modSeqs[i] { changed.append(uids[j]) }
                i += 1
                j += 1
            }
        }
        return (expunged, added, changed)
    }
}
