/// One search criterion (RFC 9051 §6.4.4, RFC 7162 §3.1.5 MODSEQ, RFC 5182 `$`).
///
/// ```
/// search-key      = "ALL" / "ANSWERED" / "BCC" SP astring /
///                   "BEFORE" SP date / "BODY" SP astring /
///                   "CC" SP astring / "DELETED" / "FLAGGED" /
///                   "FROM" SP astring / "KEYWORD" SP flag-keyword /
///                   "ON" SP date / "SEEN" /
///                   "SINCE" SP date / "SUBJECT" SP astring /
///                   "TEXT" SP astring / "TO" SP astring /
///                   "UNANSWERED" / "UNDELETED" / "UNFLAGGED" /
///                   "UNKEYWORD" SP flag-keyword / "UNSEEN" /
///                   "DRAFT" / "HEADER" SP header-fld-name SP astring /
///                   "LARGER" SP number64 / "NOT" SP search-key /
///                   "OR" SP search-key SP search-key /
///                   "SENTBEFORE" SP date / "SENTON" SP date /
///                   "SENTSINCE" SP date / "SMALLER" SP number64 /
///                   "UID" SP sequence-set / "UNDRAFT" / sequence-set /
///                   "(" search-key *(SP search-key) ")"
///                   ; IMAP4rev1 adds: "NEW" / "OLD" / "RECENT"
/// search-modsequence = "MODSEQ" [search-modseq-ext] SP mod-sequence-valzer
/// ```
public indirect enum SearchKey: Hashable, Sendable {
    case all
    case answered, deleted, draft, flagged, seen
    case unanswered, undeleted, undraft, unflagged, unseen
    /// IMAP4rev1: `\Recent` (never set by Swallow, so these match by that rule).
    case new, old, recent
    case keyword(IMAPFlag)
    case unkeyword(IMAPFlag)
    /// Header fields (substring, case-insensitive, on decoded values).
    case bcc(String), cc(String), from(String), to(String), subject(String)
    case header(field: String, value: String)
    /// Decoded body text; `text` is header and body.
    case body(String), text(String)
    /// INTERNALDATE, date part (in the server's zone).
    case before(IMAPDate), on(IMAPDate), since(IMAPDate)
    /// The `Date:` header, date part.
    case sentBefore(IMAPDate), sentOn(IMAPDate), sentSince(IMAPDate)
    case larger(UInt64), smaller(UInt64)
    case uid(SequenceSet)
    case sequenceNumbers(SequenceSet)
    /// RFC 7162: messages whose MODSEQ is at least the value.
    case modSeq(UInt64)
    case not(SearchKey)
    case or(SearchKey, SearchKey)
    /// A parenthesised list, or the top-level list of keys (all must match).
    case and([SearchKey])
}

/// `SEARCH RETURN (…)` options (RFC 4731 ESEARCH, RFC 5182 SAVE).
///
/// ```
/// search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"
/// search-return-opt  = "MIN" / "MAX" / "ALL" / "COUNT" / "SAVE"
/// ```
public struct SearchReturnOptions: Hashable, Sendable {
    public var min = false
    public var max = false
    public var all = false
    public var count = false
    public var save = false

    /// No options (`RETURN ()` means `ALL`, RFC 4731 §3.1).
    public init() {}
}

/// A SEARCH command.
public struct SearchCommand: Hashable, Sendable {
    /// `nil`: the classic `* SEARCH` response; otherwise ESEARCH with these options.
    public var returnOptions: SearchReturnOptions?
    /// `CHARSET` as given (only `UTF-8` and `US-ASCII` are accepted).
    public var charset: String?
    /// The keys; all must match.
    public var key: SearchKey

    /// Creates a search.
    public init(returnOptions: SearchReturnOptions? = nil, charset: String? = nil, key: SearchKey) {
        self.returnOptions = returnOptions
        self.charset = charset
        self.key = key
    }
}

/// RFC 5256 sort criteria.
///
/// ```
/// sort-criterion = ["REVERSE" SP] sort-key
/// sort-key       = "ARRIVAL" / "CC" / "DATE" / "FROM" / "SIZE" / "SUBJECT" / "TO"
/// ```
public struct SortCriterion: Hashable, Sendable {
    public enum Key: String, Hashable, Sendable {
        case arrival = "ARRIVAL", cc = "CC", date = "DATE", from = "FROM", size = "SIZE", subject = "SUBJECT", to = "TO"
    }

    public var key: Key
    public var reverse: Bool

    /// Creates a criterion.
    public init(_ key: Key, reverse: Bool = false) {
        self.key = key
        self.reverse = reverse
    }
}
