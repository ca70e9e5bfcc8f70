/// Why a folder or message operation was refused. The IMAP layer maps these to response codes:
/// `alreadyExists` → `NO [ALREADYEXISTS]`, `nonexistent` → `[NONEXISTENT]`, `hasChildren` →
/// `[HASCHILDREN]`, `invalidName`/`cannot`/`tooManyKeywords` → `[CANNOT]`, `messageGone` →
/// `[EXPUNGEISSUE]` (or a plain `NO`), `lockTimeout` → `[INUSE]`.
///
/// File-system failures are thrown as ``StoreError`` (errno, call, path), not as this type.
/// - SeeAlso: RFC 5530
public enum MailboxError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A folder of that name exists already.
    case alreadyExists(String)
    /// No folder of that name.
    case nonexistent(String)
    /// The folder has children (inferior folders), so it is not deleted.
    case hasChildren(String)
    /// The name cannot be a folder name here; `reason` says why (one sentence).
    case invalidName(String, reason: String)
    /// The operation is not possible (e.g. deleting INBOX); `reason` says why.
    case cannot(String)
    /// The message's file was removed (by POP3, another IMAP session or another program) after the
    /// last sync.
    case messageGone(uid: UInt32)
    /// The folder already uses all 26 keyword letters (`a`–`z`).
    case tooManyKeywords
    /// Another process held the folder's lock for too long.
    case lockTimeout(String)

    public var description: String {
        switch self {
        case .alreadyExists(let n): "Mailbox already exists: \(n)"
        case .nonexistent(let n): "Mailbox doesn't exist: \(n)"
        case .hasChildren(let n): "Mailbox has children: \(n)"
        case .invalidName(let n, let reason): "Invalid mailbox name \(n): \(reason)"
        case .cannot(let reason): reason
        case .messageGone(let uid): "Message \(uid) was expunged"
        case .tooManyKeywords: "Too many keywords in this mailbox (at most 26)"
        case .lockTimeout(let path): "Timeout waiting for lock on \(path)"
        }
    }
}
