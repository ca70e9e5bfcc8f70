import struct NIOCore.ByteBuffer

/// The status of a tagged or untagged status response (RFC 9051 §7.1).
public enum IMAPStatus: String, Hashable, Sendable {
    case ok = "OK"
    case no = "NO"
    case bad = "BAD"
    /// Untagged only.
    case bye = "BYE"
    /// Untagged only (the greeting of a pre-authenticated session).
    case preauth = "PREAUTH"
}

/// A response code in brackets (RFC 9051 §7.1, RFC 5530, RFC 4315, RFC 7162, RFC 9208).
///
/// ```
/// resp-text-code  = "ALERT" / "BADCHARSET" [SP "(" charset *(SP charset) ")" ] /
///                   capability-data / "PARSE" / "PERMANENTFLAGS" SP "(" [flag-perm *(SP flag-perm)] ")" /
///                   "READ-ONLY" / "READ-WRITE" / "TRYCREATE" / "UIDNEXT" SP nz-number /
///                   "UIDVALIDITY" SP nz-number / "UNSEEN" SP nz-number /
///                   resp-code-apnd / resp-code-copy / "UIDNOTSTICKY" / "CLOSED" / "HIGHESTMODSEQ" … /
///                   "UNAVAILABLE" / "AUTHENTICATIONFAILED" / "AUTHORIZATIONFAILED" / "EXPIRED" /
///                   "PRIVACYREQUIRED" / "CONTACTADMIN" / "NOPERM" / "INUSE" / "EXPUNGEISSUED" /
///                   "CORRUPTION" / "SERVERBUG" / "CLIENTBUG" / "CANNOT" / "LIMIT" / "OVERQUOTA" /
///                   "ALREADYEXISTS" / "NONEXISTENT" / "NOTSAVED" / "HASCHILDREN" / "UNKNOWN-CTE" /
///                   "TOOBIG" / "COMPRESSIONACTIVE" / "USEATTR" / "MODIFIED" SP sequence-set /
///                   "NOMODSEQ" / "APPENDLIMIT"
/// resp-code-apnd  = "APPENDUID" SP nz-number SP append-uid
/// resp-code-copy  = "COPYUID" SP nz-number SP uid-set SP uid-set
/// ```
public enum ResponseCode: Hashable, Sendable {
    case alert
    case badCharset([String])
    case capability([String])
    case parse
    case permanentFlags([IMAPFlag], allowsNew: Bool)
    case readOnly
    case readWrite
    case tryCreate
    case uidNext(UInt32)
    case uidValidity(UInt32)
    case unseen(UInt32)
    case appendUID(uidValidity: UInt32, uid: UInt32)
    case copyUID(uidValidity: UInt32, source: SequenceSet, destination: SequenceSet)
    case uidNotSticky
    case closed
    case highestModSeq(UInt64)
    case noModSeq
    case modified(SequenceSet)
    case unavailable
    case authenticationFailed
    case authorizationFailed
    case expired
    case privacyRequired
    case contactAdmin
    case noPerm
    case inUse
    case expungeIssued
    case corruption
    case serverBug
    case clientBug
    case cannot
    case limit
    case overQuota
    case alreadyExists
    case nonexistent
    case notSaved
    case hasChildren
    case unknownCTE
    case tooBig
    case compressionActive
    case useAttr
}

/// One LIST/LSUB reply (RFC 9051 §7.3.1, RFC 5258 §3.5 extended data, RFC 5819 STATUS follows it).
///
/// ```
/// mailbox-list    = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox
///                   [SP mbox-list-extended]
/// mbox-list-extended =  "(" [mbox-list-extended-item *(SP mbox-list-extended-item)] ")"
/// mbox-list-extended-item = "CHILDINFO" SP "(" "SUBSCRIBED" ")" / "OLDNAME" SP "(" mailbox ")"
/// ```
public struct ListItem: Hashable, Sendable {
    /// `\HasChildren`, `\Subscribed`, `\Sent`, …
    public var attributes: [String]
    public var delimiter: Character?
    /// The name to send (already modified UTF-7 or UTF-8, as the session needs).
    public var name: String
    /// `CHILDINFO ("SUBSCRIBED")` (RFC 5258 RECURSIVEMATCH).
    public var childInfoSubscribed: Bool
    /// `OLDNAME` (RFC 9051 §6.3.9.7, when the name was given in modified UTF-7 while UTF-8 is on).
    public var oldName: String?

    /// Creates a list item.
    public init(attributes: [String], delimiter: Character? = "/", name: String, childInfoSubscribed: Bool = false,
                oldName: String? = nil) {
        self.attributes = attributes
        self.delimiter = delimiter
        self.name = name
        self.childInfoSubscribed = childInfoSubscribed
        self.oldName = oldName
    }
}

/// One item of a FETCH response (RFC 9051 §7.5.2). Large section bodies are streamed by the adapter
/// with ``IMAPResponseEncoder`` (`beginFetch`, `beginStreamedItem`, raw bytes, `endFetch`), not
/// carried here.
public enum FetchItem: Hashable, Sendable {
    case uid(UInt32)
    case flags([IMAPFlag])
    /// `"17-Jul-1996 02:44:25 -0700"`.
    case internalDate(IMAPDateTime)
    case rfc822Size(Int)
    case modSeq(UInt64)
    case envelope(Envelope)
    /// `BODY` (not extensible) or `BODYSTRUCTURE`.
    case bodyStructure(BodyStructure, extensible: Bool)
    /// A section's octets (or `nil`: `NIL`). `name` is the item as it is echoed: `BODY[1.HEADER]<0>`,
    /// `BINARY[2]`, `RFC822.HEADER`.
    case section(name: String, data: ByteBuffer?)
    case binarySize(part: [Int], size: Int)
    /// An item already in wire form (`ENVELOPE (…)`), e.g. from the store's cache; written as is.
    case encoded(ByteBuffer)
}

/// One node of a THREAD response (RFC 5256 §4).
public struct ThreadNode: Hashable, Sendable {
    /// The message (sequence number or UID); `nil` for a dummy parent.
    public var message: UInt32?
    public var children: [ThreadNode]

    /// Creates a node.
    public init(message: UInt32?, children: [ThreadNode] = []) {
        self.message = message
        self.children = children
    }
}

/// ESEARCH response data (RFC 4731 §3.1, RFC 7162 MODSEQ).
public struct ExtendedSearchResult: Hashable, Sendable {
    /// The tag of the command (`(TAG "a1")`).
    public var tag: String
    public var uid: Bool
    public var min: UInt32?
    public var max: UInt32?
    public var count: Int?
    public var all: SequenceSet?
    public var modSeq: UInt64?

    /// Creates a result.
    public init(tag: String, uid: Bool, min: UInt32? = nil, max: UInt32? = nil, count: Int? = nil,
                all: SequenceSet? = nil, modSeq: UInt64? = nil) {
        self.tag = tag
        self.uid = uid
        self.min = min
        self.max = max
        self.count = count
        self.all = all
        self.modSeq = modSeq
    }
}

/// A whole response line (or lines, for literals) the server sends.
public enum IMAPResponse: Hashable, Sendable {
    /// `tag OK/NO/BAD [code] text`.
    case tagged(tag: String, status: IMAPStatus, code: ResponseCode?, text: String)
    /// `* OK/NO/BAD/BYE/PREAUTH [code] text`.
    case untagged(status: IMAPStatus, code: ResponseCode?, text: String)
    /// `+ text` (or `+ base64` during AUTHENTICATE).
    case continuation(String)
    case capability([String])
    case enabled([String])
    case list(ListItem)
    case lsub(ListItem)
    /// `* STATUS name (MESSAGES 2 …)`; `name` already encoded for the session.
    case status(name: String, [(StatusAttribute, UInt64)])
    case flags([IMAPFlag])
    case exists(Int)
    case recent(Int)
    case expunge(Int)
    /// `* VANISHED [(EARLIER)] uid-set` (RFC 7162 §3.2.10).
    case vanished(earlier: Bool, SequenceSet)
    case fetch(sequenceNumber: Int, [FetchItem])
    /// `* SEARCH 2 3 [(MODSEQ 7)]`.
    case search([UInt32], modSeq: UInt64?)
    case extendedSearch(ExtendedSearchResult)
    case sort([UInt32])
    case thread([ThreadNode])
    /// `* NAMESPACE (("" "/")) NIL NIL`: personal prefix and delimiter.
    case namespace(personalPrefix: String, delimiter: Character)
    /// RFC 2971: `* ID ("name" "Swallow" …)` or `* ID NIL`.
    case id([IMAPCommand.IDField]?)
    /// RFC 9208: `* QUOTA root (STORAGE used limit)`; usage and limit in the resource's unit (KiB for STORAGE).
    case quota(root: String, [(resource: String, usage: UInt64, limit: UInt64)])
    case quotaRoot(mailbox: String, roots: [String])

    public static func == (a: IMAPResponse, b: IMAPResponse) -> Bool {
        var x = ByteBuffer()
        var y = ByteBuffer()
        IMAPResponseEncoder().encode(a, into: &x)
        IMAPResponseEncoder().encode(b, into: &y)
        return x == y
    }

    public func hash(into hasher: inout Hasher) {
        var x = ByteBuffer()
        IMAPResponseEncoder().encode(self, into: &x)
        hasher.combine(x)
    }
}
