import DNSCore

/// The answer to one (name, type) question as the cache keeps it (RFC 2308 for negative answers).
struct CachedAnswer: Sendable {
    var responseCode: DNSResponseCode
    var answers: [DNSRecord]
    /// Whether the authority section carried an SOA (a proper negative answer, RFC 2308 §2).
    var hasSOA: Bool
}

/// A TTL-honouring cache keyed by question. Times are durations since the resolver's clock origin.
struct DNSCache {
    struct Key: Hashable {
        var name: DNSName
        var type: DNSRecordType
    }

    struct Entry {
        var answer: CachedAnswer
        var expires: Duration
    }

    private(set) var entries: [Key: Entry] = [:]
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    mutating func lookup(_ key: Key, now: Duration) -> CachedAnswer? {
        guard let entry = entries[key] else { return nil }
        guard entry.expires > now else {
            entries[key] = nil
            return nil
        }
        return entry.answer
    }

    mutating func store(_ answer: CachedAnswer, for key: Key, ttl: UInt32, now: Duration) {
        guard ttl > 0 else { return }
        if entries.count >= capacity && entries[key] == nil {
            entries = entries.filter { $0.value.expires > now }
            while entries.count >= capacity, let soonest = entries.min(by: { $0.value.expires < $1.value.expires }) {
                entries[soonest.key] = nil
            }
        }
        entries[key] = Entry(answer: answer, expires: now + .seconds(Int64(ttl)))
    }

    mutating func removeAll() { entries = [:] }

    /// How long `message`, the answer to `question`, may be cached: the smallest TTL of the answer
    /// records when it holds data of the asked type; otherwise (NXDOMAIN, NODATA) the SOA's
    /// min(TTL, MINIMUM) (RFC 2308 §5), and not at all without an SOA.
    static func ttl(of message: DNSMessage, question: DNSQuestion, maxTTL: UInt32, maxNegativeTTL: UInt32) -> UInt32 {
        let answerTTLs = message.answers.map(\.effectiveTTL)
        let positive = message.header.responseCode == .noError
            && message.answers.contains { $0.type == question.type }
        if positive { return min(answerTTLs.min() ?? 0, maxTTL) }
        let soa = message.authorities.lazy.compactMap { r -> UInt32? in
            if case .soa(let data) = r.data { min(r.effectiveTTL, data.minimum) } else { nil }
        }.first
        guard let negative = soa else { return 0 }
        return min(([negative] + answerTTLs).min() ?? 0, maxNegativeTTL)
    }
}
