import MIME
import struct NIOCore.ByteBuffer

/// What the server knows about a message without opening it (from its index).
public struct SearchFacts: Hashable, Sendable {
    public var sequenceNumber: UInt32
    public var uid: UInt32
    /// The flags, `\Recent` included when the session sees the message as recent.
    public var flags: Set<IMAPFlag>
    /// RFC822.SIZE.
    public var size: Int
    public var internalDate: IMAPDateTime
    /// RFC 7162 MODSEQ (0 when CONDSTORE is not in use).
    public var modSeq: UInt64

    /// Creates facts.
    public init(sequenceNumber: UInt32, uid: UInt32, flags: Set<IMAPFlag> = [], size: Int, internalDate: IMAPDateTime,
                modSeq: UInt64 = 0) {
        self.sequenceNumber = sequenceNumber
        self.uid = uid
        self.flags = flags
        self.size = size
        self.internalDate = internalDate
        self.modSeq = modSeq
    }
}

/// Decides one ``SearchKey`` for one message at a time (SEARCH, UID SEARCH, and the search part of
/// SORT and THREAD).
///
/// The key is prepared once (sequence sets resolved, strings case-folded), then ``matches(_:message:)``
/// is called per message. The message is parsed only when ``needsMessage`` says so; when only
/// ``needsMessage`` and not ``needsBody`` is true, a structure parsed from the header alone is enough.
///
/// - Header keys (FROM, TO, CC, BCC, SUBJECT, HEADER): substring of any field of that name, with
///   encoded words decoded, case-insensitive; `HEADER name ""` matches every message with the field.
/// - BODY: substring of the decoded text of every `text/*` part (transfer encoding and charset
///   removed; HTML is searched as text); TEXT: the header fields (decoded) or BODY.
/// - BEFORE/ON/SINCE: the date of INTERNALDATE in its own zone; SENTBEFORE/SENTON/SENTSINCE: the date
///   of the `Date:` field in its own zone, or of INTERNALDATE when that field is missing or unreadable.
/// - `*` in sequence sets is the largest sequence number or UID; `$` is the saved result (UIDs) the
///   state machine passes in (an empty set when nothing was saved).
/// - Case folding is `String.lowercased()` (Unicode lower-case mapping; enough for simple folding).
/// - SeeAlso: RFC 9051 §6.4.4, RFC 5182 (`$`), RFC 7162 §3.1.5 (MODSEQ)
public struct SearchEvaluator: Sendable {
    indirect enum Compiled: Sendable {
        case all
        case flag(IMAPFlag, Bool)
        case new, old
        case header(String, String)
        case body(String), text(String)
        case internalDate(Comparison, IMAPDate)
        case sentDate(Comparison, IMAPDate)
        case larger(UInt64), smaller(UInt64)
        case uid([ClosedRange<UInt32>])
        case sequence([ClosedRange<UInt32>])
        case modSeq(UInt64)
        case not(Compiled)
        case or(Compiled, Compiled)
        case and([Compiled])
    }

    enum Comparison: Sendable { case before, on, since }

    let compiled: Compiled
    /// `true` when the key reads the message (header fields, sent date, text).
    public let needsMessage: Bool
    /// `true` when the key reads the body (BODY, TEXT), not only the header.
    public let needsBody: Bool

    /// Prepares a key.
    /// - Parameters:
    ///   - key: the search key (a top-level list is ``SearchKey/and(_:)``).
    ///   - largestSequenceNumber: the number of messages (what `*` means in a sequence set).
    ///   - largestUID: the largest UID in the mailbox (what `*` means in a UID set).
    ///   - savedUIDs: the result saved by `SEARCH RETURN (SAVE)`, as UIDs, for `$` (RFC 5182).
    public init(_ key: SearchKey, largestSequenceNumber: UInt32, largestUID: UInt32, savedUIDs: SequenceSet = SequenceSet([])) {
        let saved = savedUIDs.resolve(largest: largestUID)
        func compile(_ key: SearchKey) -> Compiled {
            switch key {
            case .all: return .all
            case .answered: return .flag(.answered, true)
            case .deleted: return .flag(.deleted, true)
            case .draft: return .flag(.draft, true)
            case .flagged: return .flag(.flagged, true)
            case .seen: return .flag(.seen, true)
            case .unanswered: return .flag(.answered, false)
            case .undeleted: return .flag(.deleted, false)
            case .undraft: return .flag(.draft, false)
            case .unflagged: return .flag(.flagged, false)
            case .unseen: return .flag(.seen, false)
            case .recent: return .flag(.recent, true)
            case .new: return .new
            case .old: return .old
            case .keyword(let f): return .flag(f, true)
            case .unkeyword(let f): return .flag(f, false)
            case .bcc(let s): return .header("bcc", SearchEvaluator.fold(s))
            case .cc(let s): return .header("cc", SearchEvaluator.fold(s))
            case .from(let s): return .header("from", SearchEvaluator.fold(s))
            case .to(let s): return .header("to", SearchEvaluator.fold(s))
            case .subject(let s): return .header("subject", SearchEvaluator.fold(s))
            case .header(let field, let value): return .header(field.lowercased(), SearchEvaluator.fold(value))
            case .body(let s): return .body(SearchEvaluator.fold(s))
            case .text(let s): return .text(SearchEvaluator.fold(s))
            case .before(let d): return .internalDate(.before, d)
            case .on(let d): return .internalDate(.on, d)
            case .since(let d): return .internalDate(.since, d)
            case .sentBefore(let d): return .sentDate(.before, d)
            case .sentOn(let d): return .sentDate(.on, d)
            case .sentSince(let d): return .sentDate(.since, d)
            case .larger(let n): return .larger(n)
            case .smaller(let n): return .smaller(n)
            case .uid(let set): return .uid(set.isLastSearchResult ? saved : set.resolve(largest: largestUID))
            case .sequenceNumbers(let set):
                return set.isLastSearchResult ? .uid(saved) : .sequence(set.resolve(largest: largestSequenceNumber))
            case .modSeq(let n): return .modSeq(n)
            case .not(let k): return .not(compile(k))
            case .or(let a, let b): return .or(compile(a), compile(b))
            case .and(let keys): return .and(keys.map(compile))
            }
        }
        compiled = compile(key)
        needsMessage = Self.needsMessage(key)
        needsBody = Self.needsBody(key)
    }

    /// `true` when deciding `key` reads the message file (header fields, sent date, text).
    public static func needsMessage(_ key: SearchKey) -> Bool {
        switch key {
        case .bcc, .cc, .from, .to, .subject, .header, .body, .text, .sentBefore, .sentOn, .sentSince: return true
        case .not(let k): return needsMessage(k)
        case .or(let a, let b): return needsMessage(a) || needsMessage(b)
        case .and(let keys): return keys.contains(where: needsMessage)
        default: return false
        }
    }

    /// `true` when deciding `key` reads the body (BODY, TEXT), not only the header.
    public static func needsBody(_ key: SearchKey) -> Bool {
        switch key {
        case .body, .text: return true
        case .not(let k): return needsBody(k)
        case .or(let a, let b): return needsBody(a) || needsBody(b)
        case .and(let keys): return keys.contains(where: needsBody)
        default: return false
        }
    }

    /// Whether the message matches.
    /// - Parameters:
    ///   - facts: what the index knows.
    ///   - message: the parsed message; needed only when ``needsMessage`` is `true` (without it,
    ///     keys that read the message do not match).
    public func matches(_ facts: SearchFacts, message: MessageStructure? = nil) -> Bool {
        var cache = TextCache()
        return evaluate(compiled, facts, message, &cache)
    }

    /// Decoded text computed once per message, however many keys read it.
    struct TextCache {
        var bodyText: [String]?
        var headerText: String?
        var sentDate: IMAPDate??
    }

    private func evaluate(_ key: Compiled, _ facts: SearchFacts, _ message: MessageStructure?, _ cache: inout TextCache) -> Bool {
        switch key {
        case .all:
            return true
        case .flag(let flag, let set):
            return facts.flags.contains(flag) == set
        case .new:
            return facts.flags.contains(.recent) && !facts.flags.contains(.seen)
        case .old:
            return !facts.flags.contains(.recent)
        case .header(let name, let needle):
            guard let message else { return false }
            let values = message.root.headers.values(for: name)
            if needle.isEmpty { return !values.isEmpty }
            return values.contains { Self.contains(Self.fold(EncodedWord.decode($0)), needle) }
        case .body(let needle):
            guard let message else { return false }
            if cache.bodyText == nil { cache.bodyText = message.decodedTexts() }
            return cache.bodyText!.contains { Self.contains($0, needle) }
        case .text(let needle):
            guard let message else { return false }
            if cache.headerText == nil {
                cache.headerText = Self.fold(message.root.headers.map { "\($0.name): \($0.decodedValue)" }.joined(separator: "\n"))
            }
            if Self.contains(cache.headerText!, needle) { return true }
            if cache.bodyText == nil { cache.bodyText = message.decodedTexts() }
            return cache.bodyText!.contains { Self.contains($0, needle) }
        case .internalDate(let comparison, let date):
            return Self.compare(facts.internalDate.date, comparison, date)
        case .sentDate(let comparison, let date):
            if cache.sentDate == nil {
                cache.sentDate = .some(message?.root.headers["Date"].flatMap(SentDate.parse)?.date)
            }
            let sent = (cache.sentDate ?? nil) ?? facts.internalDate.date
            return Self.compare(sent, comparison, date)
        case .larger(let n):
            return UInt64(facts.size) > n
        case .smaller(let n):
            return UInt64(facts.size) < n
        case .uid(let ranges):
            return Self.contains(ranges, facts.uid)
        case .sequence(let ranges):
            return Self.contains(ranges, facts.sequenceNumber)
        case .modSeq(let n):
            return facts.modSeq >= n
        case .not(let k):
            return !evaluate(k, facts, message, &cache)
        case .or(let a, let b):
            return evaluate(a, facts, message, &cache) || evaluate(b, facts, message, &cache)
        case .and(let keys):
            for k in keys where !evaluate(k, facts, message, &cache) { return false }
            return true
        }
    }

    static func compare(_ value: IMAPDate, _ comparison: Comparison, _ date: IMAPDate) -> Bool {
        switch comparison {
        case .before: return value < date
        case .on: return value == date
        case .since: return value >= date
        }
    }

    /// Binary search in sorted, merged ranges.
    static func contains(_ ranges: [ClosedRange<UInt32>], _ value: UInt32) -> Bool {
        var low = 0, high = ranges.count
        while low < high {
            let mid = (low + high) / 2
            if ranges[mid].upperBound < value { low = mid + 1 } else { high = mid }
        }
        return low < ranges.count && ranges[low].contains(value)
    }

    /// The case folding used for both sides of a comparison.
    static func fold(_ s: String) -> String { s.lowercased() }

    /// Substring test on UTF-8 octets (both sides already folded).
    static func contains(_ haystack: String, _ needle: String) -> Bool {
        if needle.isEmpty { return true }
        var h = haystack
        var n = needle
        return h.withUTF8 { hb in
            n.withUTF8 { nb in
                guard nb.count <= hb.count else { return false }
                let first = nb[0]
                var i = 0
                let last = hb.count - nb.count
                while i <= last {
                    if hb[i] == first {
                        var j = 1
                        while j < nb.count, hb[i + j] == nb[j] { j += 1 }
                        if j == nb.count { return true }
                    }
                    i += 1
                }
                return false
            }
        }
    }
}

extension MessageStructure {
    /// The decoded, case-folded text of every `text/*` leaf, depth first.
    func decodedTexts() -> [String] {
        var out: [String] = []
        var stack: [Node] = [root]
        while let node = stack.popLast() {
            if !node.children.isEmpty || node.isMultipart {
                stack.append(contentsOf: node.children.reversed())
                continue
            }
            guard node.contentType.type == "text" else { continue }
            let body = slice(node.bodyRange)
            let decoded = node.transferEncoding.decode(body.readableBytesView).bytes
            out.append(SearchEvaluator.fold(Charset.decode(decoded, charset: node.contentType.charset).text))
        }
        return out
    }
}
