/// The selected mailbox as one session sees it (RFC 9051 §2.3.1): message sequence numbers are
/// positions in ``uids``. Changes made by others wait here until the session may announce them
/// (RFC 9051 §7.5.1: no EXPUNGE while a FETCH, STORE or SEARCH without UID runs, or between commands
/// unless the client is idle or asks with NOOP/CHECK/any command completing).
struct SelectedMailbox: Sendable {
    let name: String
    let readOnly: Bool
    let uidValidity: UInt32
    private(set) var uids: [UInt32]
    var uidNext: UInt32
    var highestModSeq: UInt64
    /// The HIGHESTMODSEQ the client was last told (RFC 7162 §3.1.2.1).
    var announcedModSeq: UInt64
    var keywords: [IMAPFlag]

    /// Expunged elsewhere, still numbered here until announced.
    private(set) var pendingExpunged: Set<UInt32> = []
    /// Arrived elsewhere, not yet counted by an EXISTS.
    private(set) var pendingAppended: [UInt32] = []
    /// Latest flags per UID changed elsewhere.
    private(set) var pendingFlags: [UInt32: MessageFlags] = [:]
    private(set) var pendingKeywords: [IMAPFlag]?

    init(_ info: SelectedMailboxInfo, readOnly: Bool) {
        self.name = info.name
        self.readOnly = readOnly || info.readOnly
        self.uidValidity = info.uidValidity
        self.uids = info.uids
        self.uidNext = info.uidNext
        self.highestModSeq = info.highestModSeq
        self.announcedModSeq = info.highestModSeq
        self.keywords = info.keywords
    }

    var count: Int { uids.count }
    var largestUID: UInt32 { uids.last ?? 0 }
    var hasPendingChanges: Bool {
        !pendingExpunged.isEmpty || !pendingAppended.isEmpty || !pendingFlags.isEmpty || pendingKeywords != nil
    }

    /// The sequence number (1-based) of `uid`, if the session knows it.
    func sequenceNumber(of uid: UInt32) -> Int? {
        var lo = 0
        var hi = uids.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if uids[mid] < uid { lo = mid + 1 } else { hi = mid }
        }
        return lo < uids.count && uids[lo] == uid ? lo + 1 : nil
    }

    /// The messages a set names, ascending. A sequence number beyond the mailbox is an error
    /// (`nil`, RFC 9051 §9: "invalid sequence number"); a UID set simply names the UIDs that exist.
    func resolve(_ set: SequenceSet, uid: Bool, saved: [UInt32]) -> [FetchRequest.Message]? {
        if set.isLastSearchResult {
            return saved.compactMap { u in sequenceNumber(of: u).map { .init(sequenceNumber: $0, uid: u) } }
        }
        var out: [FetchRequest.Message] = []
        if uid {
            for r in set.resolve(largest: largestUID) {
                // Walk the UIDs inside the range (binary search for the start).
                var lo = 0
                var hi = uids.count
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if uids[mid] < r.lowerBound { lo = mid + 1 } else { hi = mid }
                }
                while lo < uids.count, uids[lo] <= r.upperBound {
                    out.append(.init(sequenceNumber: lo + 1, uid: uids[lo]))
                    lo += 1
                }
            }
        } else {
            let ranges = set.resolve(largest: UInt32(clamping: uids.count))
            if let last = ranges.last, last.upperBound > uids.count { return nil }
            for r in ranges {
                guard r.lowerBound >= 1 else { return nil }
                for n in r { out.append(.init(sequenceNumber: Int(n), uid: uids[Int(n) - 1])) }
            }
        }
        return out
    }

    /// The UIDs `set` names, up to `largest`, that are not in `present` (ascending), as ranges: a
    /// client's `1:*` over a mailbox with UIDs in the billions costs the number of messages, not of
    /// UIDs (QRESYNC's VANISHED (EARLIER), RFC 7162 §3.2.5.2 and §3.2.6).
    static func absent(from set: SequenceSet, largest: UInt32, present: [UInt32]) -> [ClosedRange<UInt32>] {
        var out: [ClosedRange<UInt32>] = []
        var i = 0
        for r in set.resolve(largest: largest) {
            let upper = min(r.upperBound, largest)
            guard r.lowerBound <= upper else { continue }
            while i < present.count, present[i] < r.lowerBound { i += 1 }
            var start = r.lowerBound
            var reachedUpper = false
            while i < present.count, present[i] <= upper {
                let p = present[i]
                if p > start { out.append(start...(p - 1)) }
                if p == upper {
                    reachedUpper = true
                    break
                }
                start = p + 1
                i += 1
            }
            if !reachedUpper { out.append(start...upper) }
        }
        return out
    }

    /// Records a change made elsewhere.
    mutating func record(_ update: MailboxUpdate) {
        for u in update.expunged {
            if let i = pendingAppended.firstIndex(of: u) {
                pendingAppended.remove(at: i)
            } else if sequenceNumber(of: u) != nil {
                pendingExpunged.insert(u)
            }
            pendingFlags[u] = nil
        }
        for u in update.appended where u > (pendingAppended.last ?? largestUID) {
            pendingAppended.append(u)
        }
        for f in update.flags where !pendingExpunged.contains(f.uid) {
            pendingFlags[f.uid] = f
        }
        if let k = update.keywords { pendingKeywords = k }
        if let m = update.highestModSeq { highestModSeq = max(highestModSeq, m) }
        if let last = pendingAppended.last { uidNext = max(uidNext, last + 1) }
    }

    /// Forgets flag changes made elsewhere that `reported` (this session's own STORE result, at
    /// least as new) already supersedes, so a stale FETCH does not follow the fresh one.
    mutating func supersedePendingFlags(_ reported: [MessageFlags]) {
        for f in reported {
            if let pending = pendingFlags[f.uid], pending.modSeq <= f.modSeq { pendingFlags[f.uid] = nil }
        }
    }

    /// Removes messages this session expunged itself; returns their sequence numbers in the order
    /// the EXPUNGE responses must be sent (each relative to the numbering after the ones before).
    mutating func removeOwn(_ expunged: [UInt32]) -> [Int] {
        var numbers: [Int] = []
        for u in expunged.sorted(by: >) {
            if let n = sequenceNumber(of: u) {
                uids.remove(at: n - 1)
                numbers.append(n)
                pendingExpunged.remove(u)
                pendingFlags[u] = nil
            }
        }
        return numbers
    }

    /// The untagged responses for every change that may be announced now.
    mutating func flush(expungesAllowed: Bool, vanished: Bool, condStore: Bool, imap4rev2: Bool) -> [IMAPResponse] {
        var out: [IMAPResponse] = []
        if let k = pendingKeywords {
            keywords = k
            out.append(.flags(IMAPFlag.systemFlags + k))
            pendingKeywords = nil
        }
        if expungesAllowed, !pendingExpunged.isEmpty {
            let gone = pendingExpunged.sorted()
            pendingExpunged = []
            let numbers = removeOwn(gone)
            if vanished {
                out.append(.vanished(earlier: false, SequenceSet(values: gone)))
            } else {
                out += numbers.map { .expunge($0) }
            }
        }
        if !pendingAppended.isEmpty {
            uids += pendingAppended
            pendingAppended = []
            out.append(.exists(uids.count))
            if !imap4rev2 { out.append(.recent(0)) }
        }
        if !pendingFlags.isEmpty {
            for f in pendingFlags.values.sorted(by: { $0.uid < $1.uid }) {
                guard let n = sequenceNumber(of: f.uid) else { continue }
                var items: [FetchItem] = [.uid(f.uid), .flags(f.flags)]
                if condStore { items.append(.modSeq(f.modSeq)) }
                out.append(.fetch(sequenceNumber: n, items))
            }
            pendingFlags = [:]
        }
        // RFC 7162 §3.1.2.1: a CONDSTORE client learns that HIGHESTMODSEQ grew — once every change
        // up to it has been announced (not while an expunge still waits).
        if condStore, pendingExpunged.isEmpty, highestModSeq > announcedModSeq {
            out.append(.untagged(status: .ok, code: .highestModSeq(highestModSeq), text: "Highest"))
            announcedModSeq = highestModSeq
        }
        return out
    }
}

extension SequenceSet {
    /// A set of sorted, disjoint closed ranges (as ``resolve(largest:)`` returns them).
    init(closedRanges: [ClosedRange<UInt32>]) {
        self.init(closedRanges.map { Range(.number($0.lowerBound), .number($0.upperBound)) })
    }
}
