/// A set of message sequence numbers or UIDs, as a client wrote it (RFC 9051 §9 `sequence-set`).
///
/// ```
/// sequence-set    = (seq-number / seq-range) ["," sequence-set]
///                   ; set of seq-number values, regardless of order.
///                   ; Servers MAY coalesce overlaps and/or execute the
///                   ; sequence in any order.
/// seq-range       = seq-number ":" seq-number
/// seq-number      = nz-number / "*"
/// seq-last-command = "$"                          ; RFC 5182 (SEARCHRES)
/// ```
/// `*` stands for the largest number in use; it is resolved against the mailbox by ``resolve(largest:)``.
public struct SequenceSet: Hashable, Sendable {
    /// One end of a range: a number, or `*`.
    public enum Bound: Hashable, Sendable {
        case number(UInt32)
        /// `*`: the largest number in use (or, for UIDs, the largest UID; on an empty mailbox nothing).
        case star
    }

    /// `first:last` as written (either order is the same range); a single number has `first == last`.
    public struct Range: Hashable, Sendable {
        public var first: Bound
        public var last: Bound

        /// Creates a range.
        public init(_ first: Bound, _ last: Bound) {
            self.first = first
            self.last = last
        }

        /// A single number.
        public init(_ number: UInt32) {
            self.init(.number(number), .number(number))
        }
    }

    /// The ranges, in the order written. Empty only when ``isLastSearchResult`` is set.
    public var ranges: [Range]
    /// `$`: the result saved by the last `SEARCH RETURN (SAVE)` (RFC 5182).
    public var isLastSearchResult: Bool

    /// Creates a set from ranges.
    public init(_ ranges: [Range]) {
        self.ranges = ranges
        self.isLastSearchResult = false
    }

    /// `$`.
    public static let lastSearchResult: SequenceSet = {
        var s = SequenceSet([])
        s.isLastSearchResult = true
        return s
    }()

    /// `1:*`.
    public static let all = SequenceSet([Range(.number(1), .star)])

    /// The set as sorted, merged closed ranges, with `*` read as `largest`. With `largest == 0`
    /// (an empty mailbox) `*` matches nothing, and ranges naming only `*` drop out. Numbers above
    /// `largest` stay in (a UID set may name UIDs that no longer exist); callers intersect.
    public func resolve(largest: UInt32) -> [ClosedRange<UInt32>] {
        var out: [ClosedRange<UInt32>] = []
        out.reserveCapacity(ranges.count)
        for r in ranges {
            // On an empty mailbox "*" is no number at all, so a range with "*" in it matches nothing
            // (RFC 9051 §6.4.8: "*" is the largest number in use).
            guard let a = Self.value(r.first, largest), let b = Self.value(r.last, largest) else { continue }
            out.append(min(a, b)...max(a, b))
        }
        out.sort { $0.lowerBound < $1.lowerBound }
        var merged: [ClosedRange<UInt32>] = []
        merged.reserveCapacity(out.count)
        for r in out {
            if let last = merged.last, last.upperBound == .max || r.lowerBound <= last.upperBound + 1 {
                merged[merged.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                merged.append(r)
            }
        }
        return merged
    }

    private static func value(_ bound: Bound, _ largest: UInt32) -> UInt32? {
        switch bound {
        case .number(let n): return n
        case .star: return largest == 0 ? nil : largest
        }
    }

    /// A compact set from sorted values (used for responses: `1:3,7,9:10`).
    public init<S: Sequence>(values: S) where S.Element == UInt32 {
        var ranges: [Range] = []
        var start: UInt32?
        var end: UInt32 = 0
        for v in values {
            if start != nil, end != .max, v == end + 1 {
                end = v
            } else {
                if let s = start { ranges.append(Range(.number(s), .number(end))) }
                start = v
                end = v
            }
        }
        if let s = start { ranges.append(Range(.number(s), .number(end))) }
        self.init(ranges)
    }
}
