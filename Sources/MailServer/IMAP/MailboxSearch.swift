import IMAPCore
import MailStore
import NIOCore

/// SEARCH, SORT and THREAD over one session's view of its folder.
struct MailboxSearch {
    let session: IMAPMailboxSession

    func run(_ request: SearchRequest) async throws -> (uids: [UInt32], highestModSeq: UInt64?) {
        var out: [UInt32] = []
        var highest: UInt64 = 0
        for (i, uid) in request.uids.enumerated() {
            guard let facts = session.facts(of: uid) else { continue }
            if try await matches(request.key, facts: facts, sequenceNumber: i + 1, largest: request.uids.count, lastUID: request.uids.last ?? 0) {
                out.append(uid)
                highest = max(highest, facts.modSeq)
            }
        }
        return (out, out.isEmpty ? nil : highest)
    }

    func sort(_ request: SearchRequest, by criteria: [SortCriterion]) async throws -> [UInt32] {
        throw IMAPCore.MailboxError.cannot("SORT is not available yet")
    }

    func thread(_ request: SearchRequest, algorithm: String) async throws -> [ThreadNode] {
        throw IMAPCore.MailboxError.cannot("THREAD is not available yet")
    }

    private func matches(_ key: SearchKey, facts: MessageFacts, sequenceNumber: Int, largest: Int, lastUID: UInt32) async throws -> Bool {
        let flags = Set(facts.flags)
        switch key {
        case .all: return true
        case .answered: return flags.contains(.answered)
        case .deleted: return flags.contains(.deleted)
        case .draft: return flags.contains(.draft)
        case .flagged: return flags.contains(.flagged)
        case .seen: return flags.contains(.seen)
        case .unanswered: return !flags.contains(.answered)
        case .undeleted: return !flags.contains(.deleted)
        case .undraft: return !flags.contains(.draft)
        case .unflagged: return !flags.contains(.flagged)
        case .unseen: return !flags.contains(.seen)
        case .new, .recent: return false
        case .old: return true
        case .keyword(let k): return flags.contains(k)
        case .unkeyword(let k): return !flags.contains(k)
        case .larger(let n): return UInt64(facts.size) > n
        case .smaller(let n): return UInt64(facts.size) < n
        case .uid(let set): return set.resolve(largest: lastUID).contains { $0.contains(facts.uid) }
        case .sequenceNumbers(let set):
            return set.resolve(largest: UInt32(largest)).contains { $0.contains(UInt32(sequenceNumber)) }
        case .modSeq(let m): return facts.modSeq >= m
        case .before(let d): return facts.internalDate.date < d
        case .on(let d): return facts.internalDate.date == d
        case .since(let d): return !(facts.internalDate.date < d)
        case .not(let k): return try await !matches(k, facts: facts, sequenceNumber: sequenceNumber, largest: largest, lastUID: lastUID)
        case .or(let a, let b):
            if try await matches(a, facts: facts, sequenceNumber: sequenceNumber, largest: largest, lastUID: lastUID) { return true }
            return try await matches(b, facts: facts, sequenceNumber: sequenceNumber, largest: largest, lastUID: lastUID)
        case .and(let keys):
            for k in keys where try await !matches(k, facts: facts, sequenceNumber: sequenceNumber, largest: largest, lastUID: lastUID) {
                return false
            }
            return true
        default:
            throw IMAPCore.MailboxError.cannot("This search key is not available yet")
        }
    }
}
