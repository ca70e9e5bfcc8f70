import MIME

/// What SORT and THREAD need of one message: numbers, size, internal date and the header fields
/// (only the header section has to be read).
public struct SortableMessage: Sendable {
    /// What goes into the response: the sequence number, or the UID for UID SORT / UID THREAD.
    public var id: UInt32
    /// The sequence number (the final tie-break, RFC 5256 §3).
    public var sequenceNumber: UInt32
    /// RFC822.SIZE.
    public var size: Int
    public var internalDate: IMAPDateTime
    /// The message's header fields.
    public var headers: MIMEHeaders

    /// Creates a message summary.
    public init(id: UInt32, sequenceNumber: UInt32, size: Int, internalDate: IMAPDateTime, headers: MIMEHeaders) {
        self.id = id
        self.sequenceNumber = sequenceNumber
        self.size = size
        self.internalDate = internalDate
        self.headers = headers
    }

    /// The sent date in seconds: the `Date:` field, or INTERNALDATE when it is missing or unreadable
    /// (RFC 5256 §2.2).
    var sentDate: Int64 {
        headers["Date"].flatMap(SentDate.parse)?.secondsSinceEpoch ?? internalDate.secondsSinceEpoch
    }

    /// The local part of the first address of `field`, lower-cased; `""` when there is none
    /// (RFC 5256 §3: `addr-mailbox` of the first address).
    func firstMailbox(_ field: String) -> String {
        guard let value = headers[field] else { return "" }
        let first = EnvelopeAddressParser.parse(value).first { $0.host != nil }
        guard let mailbox = first?.mailbox, mailbox != EnvelopeAddressParser.missingMailbox else { return "" }
        return mailbox.lowercased()
    }
}

/// RFC 5256 SORT: orders messages by a list of criteria; ties go to the sequence number.
///
/// ARRIVAL is INTERNALDATE; DATE the sent date (``SortableMessage`` falls back to INTERNALDATE); CC,
/// FROM and TO the first address's mailbox (case-insensitive); SIZE RFC822.SIZE; SUBJECT the
/// ``BaseSubject``. REVERSE reverses one criterion. Strings compare by their lower-cased UTF-8 octets.
/// - SeeAlso: RFC 5256 §3 (SORT)
public enum MessageSorter {
    /// The ids of `messages` in order.
    public static func sort(_ messages: [SortableMessage], by criteria: [SortCriterion]) -> [UInt32] {
        enum Value { case number(Int64), text([UInt8]) }
        let keys: [[Value]] = messages.map { m in
            criteria.map { c in
                switch c.key {
                case .arrival: return .number(m.internalDate.secondsSinceEpoch)
                case .date: return .number(m.sentDate)
                case .size: return .number(Int64(m.size))
                case .cc: return .text(Array(m.firstMailbox("Cc").utf8))
                case .from: return .text(Array(m.firstMailbox("From").utf8))
                case .to: return .text(Array(m.firstMailbox("To").utf8))
                case .subject: return .text(Array(BaseSubject(subject: m.headers["Subject"] ?? "").text.utf8))
                }
            }
        }
        let order = messages.indices.sorted { a, b in
            for (index, criterion) in criteria.enumerated() {
                let result: Int
                switch (keys[a][index], keys[b][index]) {
                case (.number(let x), .number(let y)): result = x < y ? -1 : (x > y ? 1 : 0)
                case (.text(let x), .text(let y)): result = x.lexicographicallyPrecedes(y) ? -1 : (x == y ? 0 : 1)
                default: result = 0
                }
                if result != 0 { return criterion.reverse ? result > 0 : result < 0 }
            }
            return messages[a].sequenceNumber < messages[b].sequenceNumber
        }
        return order.map { messages[$0].id }
    }
}
