/// A command with its tag (RFC 9051 §2.2.1).
///
/// ```
/// command         = tag SP (command-any / command-auth / command-nonauth /
///                   command-select) CRLF
/// tag             = 1*<any ASTRING-CHAR except "+">
/// ```
public struct TaggedCommand: Hashable, Sendable {
    public var tag: String
    public var command: IMAPCommand

    /// Creates a tagged command.
    public init(tag: String, command: IMAPCommand) {
        self.tag = tag
        self.command = command
    }
}

/// Every IMAP command Swallow parses (RFC 9051 §6 and the extensions in `docs/imap.md`). APPEND is
/// not here: its message is streamed (``IMAPCommandParser/Item/appendStarted(tag:mailbox:message:)``).
public enum IMAPCommand: Hashable, Sendable {
    // command-any
    case capability
    case noop
    case logout
    /// RFC 2971: field/value pairs, or `nil` for `ID NIL`.
    case id([IDField]?)

    // command-nonauth
    case startTLS
    case login(user: String, password: String)
    /// `initialResponse` is the base64 text after the mechanism (SASL-IR, RFC 4959); `"="` is an
    /// empty response.
    case authenticate(mechanism: String, initialResponse: String?)

    // command-auth
    case enable([String])
    case select(MailboxName, SelectParameters)
    case examine(MailboxName, SelectParameters)
    /// `CREATE name (USE (\Sent))` (RFC 6154 §5).
    case create(MailboxName, specialUse: [String])
    case delete(MailboxName)
    case rename(from: MailboxName, to: MailboxName)
    case subscribe(MailboxName)
    case unsubscribe(MailboxName)
    case list(ListCommand)
    case lsub(reference: String, pattern: String)
    case namespace
    case status(MailboxName, [StatusAttribute])
    case idle
    /// RFC 9208.
    case getQuota(root: String)
    case getQuotaRoot(MailboxName)
    case setQuota(root: String, limits: [QuotaLimit])
    /// RFC 4978: `COMPRESS DEFLATE`.
    case compress(mechanism: String)

    // command-select
    case check
    case close
    case unselect
    case expunge
    /// `UID EXPUNGE` (RFC 4315).
    case uidExpunge(SequenceSet)
    case search(SearchCommand, uid: Bool)
    case fetch(SequenceSet, [FetchAttribute], FetchModifiers, uid: Bool)
    case store(SequenceSet, StoreModification, uid: Bool)
    case copy(SequenceSet, MailboxName, uid: Bool)
    case move(SequenceSet, MailboxName, uid: Bool)
    /// RFC 5256.
    case sort([SortCriterion], charset: String, key: SearchKey, uid: Bool)
    /// RFC 5256: `THREAD REFERENCES` / `ORDEREDSUBJECT`.
    case thread(algorithm: String, charset: String, key: SearchKey, uid: Bool)

    /// An ID field pair.
    public struct IDField: Hashable, Sendable {
        public var name: String
        public var value: String?
        public init(name: String, value: String?) {
            self.name = name
            self.value = value
        }
    }

    /// `SETQUOTA` resource limit.
    public struct QuotaLimit: Hashable, Sendable {
        public var resource: String
        public var limit: UInt64
        public init(resource: String, limit: UInt64) {
            self.resource = resource
            self.limit = limit
        }
    }

    /// The command's name for logs and error texts (`UID FETCH`).
    public var name: String {
        switch self {
        case .capability: "CAPABILITY"
        case .noop: "NOOP"
        case .logout: "LOGOUT"
        case .id: "ID"
        case .startTLS: "STARTTLS"
        case .login: "LOGIN"
        case .authenticate: "AUTHENTICATE"
        case .enable: "ENABLE"
        case .select: "SELECT"
        case .examine: "EXAMINE"
        case .create: "CREATE"
        case .delete: "DELETE"
        case .rename: "RENAME"
        case .subscribe: "SUBSCRIBE"
        case .unsubscribe: "UNSUBSCRIBE"
        case .list: "LIST"
        case .lsub: "LSUB"
        case .namespace: "NAMESPACE"
        case .status: "STATUS"
        case .idle: "IDLE"
        case .getQuota: "GETQUOTA"
        case .getQuotaRoot: "GETQUOTAROOT"
        case .setQuota: "SETQUOTA"
        case .compress: "COMPRESS"
        case .check: "CHECK"
        case .close: "CLOSE"
        case .unselect: "UNSELECT"
        case .expunge: "EXPUNGE"
        case .uidExpunge: "UID EXPUNGE"
        case .search(_, let uid): uid ? "UID SEARCH" : "SEARCH"
        case .fetch(_, _, _, let uid): uid ? "UID FETCH" : "FETCH"
        case .store(_, _, let uid): uid ? "UID STORE" : "STORE"
        case .copy(_, _, let uid): uid ? "UID COPY" : "COPY"
        case .move(_, _, let uid): uid ? "UID MOVE" : "MOVE"
        case .sort(_, _, _, let uid): uid ? "UID SORT" : "SORT"
        case .thread(_, _, _, let uid): uid ? "UID THREAD" : "THREAD"
        }
    }
}

/// The message part of an APPEND (RFC 9051 §6.3.12, RFC 3502 MULTIAPPEND, RFC 7888 LITERAL+).
///
/// ```
/// append          = "APPEND" SP mailbox 1*append-message
/// append-message  = append-opts SP append-data
/// append-opts     = [SP flag-list] [SP date-time]
/// append-data     = literal / literal8
/// ```
public struct AppendMessage: Hashable, Sendable {
    public var flags: [IMAPFlag]
    public var internalDate: IMAPDateTime?
    /// Octets the literal announced.
    public var size: Int
    /// `~{n}`: binary literal (RFC 3516).
    public var isBinary: Bool

    /// Creates append options.
    public init(flags: [IMAPFlag] = [], internalDate: IMAPDateTime? = nil, size: Int, isBinary: Bool = false) {
        self.flags = flags
        self.internalDate = internalDate
        self.size = size
        self.isBinary = isBinary
    }
}
