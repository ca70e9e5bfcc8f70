/// STATUS data items (RFC 9051 §6.3.11, RFC 7162 HIGHESTMODSEQ, RFC 8438 SIZE).
///
/// ```
/// status-att      = "MESSAGES" / "UIDNEXT" / "UIDVALIDITY" /
///                   "UNSEEN" / "DELETED" / "SIZE" / "HIGHESTMODSEQ"
///                   ; IMAP4rev1 adds "RECENT"
/// ```
public enum StatusAttribute: String, Hashable, Sendable, CaseIterable {
    case messages = "MESSAGES"
    case uidNext = "UIDNEXT"
    case uidValidity = "UIDVALIDITY"
    case unseen = "UNSEEN"
    case deleted = "DELETED"
    case size = "SIZE"
    case highestModSeq = "HIGHESTMODSEQ"
    case recent = "RECENT"
}

/// A LIST command with its LIST-EXTENDED options (RFC 9051 §6.3.9, RFC 5258, RFC 5819, RFC 6154).
///
/// ```
/// list            = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
///                   [SP list-return-opts]
/// list-select-opts = "(" [list-select-opt *(SP list-select-opt)] ")"
/// list-select-opt = "SUBSCRIBED" / "REMOTE" / "RECURSIVEMATCH" / "SPECIAL-USE"
/// mbox-or-pat     = list-mailbox / patterns
/// patterns        = "(" list-mailbox *(SP list-mailbox) ")"
/// list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"
/// return-option   = "SUBSCRIBED" / "CHILDREN" / "SPECIAL-USE" /
///                   "STATUS" SP "(" status-att *(SP status-att) ")"
/// ```
public struct ListCommand: Hashable, Sendable {
    public struct SelectOptions: Hashable, Sendable {
        public var subscribed = false
        public var remote = false
        public var recursiveMatch = false
        public var specialUse = false
        public init() {}
    }

    public struct ReturnOptions: Hashable, Sendable {
        public var subscribed = false
        public var children = false
        public var specialUse = false
        /// `STATUS (…)` (RFC 5819); `nil` when not asked.
        public var status: [StatusAttribute]?
        public init() {}
    }

    /// The reference name (usually `""`).
    public var reference: String
    /// One or more patterns with `*` and `%` wildcards.
    public var patterns: [String]
    public var selectOptions: SelectOptions
    public var returnOptions: ReturnOptions
    /// `true` when the command used LIST-EXTENDED syntax (then the response carries extended data).
    public var isExtended: Bool

    /// Creates a LIST command.
    public init(reference: String, patterns: [String], selectOptions: SelectOptions = .init(),
                returnOptions: ReturnOptions = .init(), isExtended: Bool = false) {
        self.reference = reference
        self.patterns = patterns
        self.selectOptions = selectOptions
        self.returnOptions = returnOptions
        self.isExtended = isExtended
    }
}

/// SELECT/EXAMINE parameters (RFC 7162 CONDSTORE and QRESYNC).
///
/// ```
/// select-param    = "CONDSTORE" / "QRESYNC" SP "(" uidvalidity SP mod-sequence-value
///                   [SP known-uids] [SP seq-match-data] ")"
/// seq-match-data  = "(" known-sequence-set SP known-uid-set ")"
/// ```
public struct SelectParameters: Hashable, Sendable {
    public struct QResync: Hashable, Sendable {
        public var uidValidity: UInt32
        public var modSeq: UInt64
        public var knownUIDs: SequenceSet?
        /// Known sequence numbers and the UIDs they had.
        public var sequenceMatch: SequenceMatch?

        /// `(known-sequence-set known-uid-set)`.
        public struct SequenceMatch: Hashable, Sendable {
            public var sequences: SequenceSet
            public var uids: SequenceSet
            public init(sequences: SequenceSet, uids: SequenceSet) {
                self.sequences = sequences
                self.uids = uids
            }
        }

        /// Creates QRESYNC parameters.
        public init(uidValidity: UInt32, modSeq: UInt64, knownUIDs: SequenceSet? = nil) {
            self.uidValidity = uidValidity
            self.modSeq = modSeq
            self.knownUIDs = knownUIDs
        }
    }

    public var condStore = false
    public var qresync: QResync?

    /// No parameters.
    public init() {}
}

/// A STORE modification (RFC 9051 §6.4.6, RFC 7162 §3.1.3 UNCHANGEDSINCE).
///
/// ```
/// store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))
/// store-modifier  = "UNCHANGEDSINCE" SP mod-sequence-valzer
/// ```
public struct StoreModification: Hashable, Sendable {
    public enum Operation: Hashable, Sendable {
        case replace, add, remove
    }

    public var operation: Operation
    public var silent: Bool
    public var flags: [IMAPFlag]
    public var unchangedSince: UInt64?

    /// Creates a modification.
    public init(operation: Operation, silent: Bool = false, flags: [IMAPFlag], unchangedSince: UInt64? = nil) {
        self.operation = operation
        self.silent = silent
        self.flags = flags
        self.unchangedSince = unchangedSince
    }
}
