/// A section of a message (RFC 9051 §6.4.5 `BODY[<section>]`).
///
/// ```
/// section         = "[" [section-spec] "]"
/// section-spec    = section-msgtext / (section-part ["." section-text])
/// section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"
/// section-part    = nz-number *("." nz-number)
/// section-text    = section-msgtext / "MIME"
/// header-list     = "(" header-fld-name *(SP header-fld-name) ")"
/// ```
public struct SectionSpecifier: Hashable, Sendable {
    /// What of the part is meant.
    public enum Kind: Hashable, Sendable {
        /// The whole part (`BODY[]`, `BODY[1.2]`).
        case complete
        case header
        /// `HEADER.FIELDS (…)`; names as written (matched case-insensitively).
        case headerFields([String])
        case headerFieldsNot([String])
        case text
        /// The part's own MIME header (only with a part number).
        case mime
    }

    /// Part numbers (`[]` is the whole message).
    public var part: [Int]
    public var kind: Kind

    /// Creates a section.
    public init(part: [Int] = [], kind: Kind = .complete) {
        self.part = part
        self.kind = kind
    }

    /// `BODY[]`.
    public static let complete = SectionSpecifier()
}

/// `<offset.length>` of BODY[…] and BINARY[…] (RFC 9051 §6.4.5).
///
/// ```
/// partial         = "<" number64 "." nz-number64 ">"
/// ```
public struct Partial: Hashable, Sendable {
    public var offset: UInt64
    public var length: UInt64

    /// Creates a partial range.
    public init(offset: UInt64, length: UInt64) {
        self.offset = offset
        self.length = length
    }
}

/// One FETCH data item a client asked for; the macros `ALL`, `FAST` and `FULL` are expanded by the
/// parser.
///
/// ```
/// fetch-att       = "ENVELOPE" / "FLAGS" / "INTERNALDATE" /
///                   "RFC822.SIZE" /
///                   "BODY" ["STRUCTURE"] / "UID" /
///                   "BODY" section [partial] /
///                   "BODY.PEEK" section [partial] /
///                   "BINARY" [".PEEK"] section-binary [partial] /
///                   "BINARY.SIZE" section-binary
///                   ; IMAP4rev1 adds "RFC822" / "RFC822.HEADER" / "RFC822.TEXT"
///                   ; RFC 7162 adds "MODSEQ"
/// section-binary  = "[" [section-part] "]"
/// ```
public enum FetchAttribute: Hashable, Sendable {
    case envelope
    case flags
    case internalDate
    case rfc822Size
    /// `BODY` (non-extensible BODYSTRUCTURE).
    case bodyStructure(extensible: Bool)
    case uid
    case modSeq
    /// `RFC822` (= `BODY[]`, sets `\Seen`), `RFC822.HEADER` (= `BODY.PEEK[HEADER]`), `RFC822.TEXT` (= `BODY[TEXT]`).
    case rfc822, rfc822Header, rfc822Text
    case bodySection(SectionSpecifier, partial: Partial?, peek: Bool)
    case binary(part: [Int], partial: Partial?, peek: Bool)
    case binarySize(part: [Int])

    /// `ALL`: FLAGS INTERNALDATE RFC822.SIZE ENVELOPE.
    public static let all: [FetchAttribute] = [.flags, .internalDate, .rfc822Size, .envelope]
    /// `FAST`: FLAGS INTERNALDATE RFC822.SIZE.
    public static let fast: [FetchAttribute] = [.flags, .internalDate, .rfc822Size]
    /// `FULL`: ALL plus BODY.
    public static let full: [FetchAttribute] = all + [.bodyStructure(extensible: false)]
}

/// FETCH modifiers (RFC 7162 §3.1.4, §3.2.6).
///
/// ```
/// fetch-modifier  = chgsince-fetch-mod / "VANISHED"
/// chgsince-fetch-mod = "CHANGEDSINCE" SP mod-sequence-value
/// ```
public struct FetchModifiers: Hashable, Sendable {
    public var changedSince: UInt64?
    public var vanished = false

    /// No modifiers.
    public init(changedSince: UInt64? = nil, vanished: Bool = false) {
        self.changedSince = changedSince
        self.vanished = vanished
    }
}
