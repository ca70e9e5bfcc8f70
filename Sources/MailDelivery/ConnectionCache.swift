import SMTPClient
#if canImport(Glibc)
import Glibc
#endif

/// Idle SMTP connections kept for reuse, keyed by next hop (`address:port`), like Postfix's scache:
/// a burst of messages to one destination costs one TCP and TLS handshake, not one per message.
/// Connections idle longer than `idleTimeout` seconds are closed.
actor ConnectionCache {
    private struct Idle {
        let client: SMTPClient
        let since: Int
    }

    private var idle: [String: [Idle]] = [:]
    private let maximumPerKey: Int
    private let idleTimeout: Int

    init(maximumPerKey: Int = 4, idleTimeout: Int = 30) {
        self.maximumPerKey = maximumPerKey
        self.idleTimeout = idleTimeout
    }

    /// An idle connection for `key`, if one is fresh enough.
    func checkOut(_ key: String) -> SMTPClient? {
        let now = Int(time(nil))
        while var list = idle[key], !list.isEmpty {
            let entry = list.removeLast()
            idle[key] = list.isEmpty ? nil : list
            if now - entry.since <= idleTimeout { return entry.client }
            Task { await entry.client.quit() }
        }
        return nil
    }

    /// Returns a healthy connection for reuse (or closes it when the cache is full).
    func checkIn(_ key: String, _ client: SMTPClient) {
        var list = idle[key] ?? []
        guard list.count < maximumPerKey else {
            Task { await client.quit() }
            return
        }
        list.append(Idle(client: client, since: Int(time(nil))))
        idle[key] = list
    }

    /// Closes connections idle for too long.
    func sweep() {
        let now = Int(time(nil))
        for (key, list) in idle {
            let (keep, drop) = (list.filter { now - $0.since <= idleTimeout }, list.filter { now - $0.since > idleTimeout })
            for d in drop { Task { await d.client.quit() } }
            idle[key] = keep.isEmpty ? nil : keep
        }
    }
}

/// Caps simultaneous deliveries per destination (Postfix's `default_destination_concurrency_limit`).
actor DestinationLimiter {
    private var active: [String: Int] = [:]
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]
    let limit: Int

    init(limit: Int) { self.limit = max(1, limit) }

    func acquire(_ key: String) async {
        if active[key, default: 0] < limit {
            active[key, default: 0] += 1
            return
        }
        await withCheckedContinuation { waiters[key, default: []].append($0) }
    }

    func release(_ key: String) {
        if var w = waiters[key], !w.isEmpty {
            let next = w.removeFirst()
            waiters[key] = w.isEmpty ? nil : w
            next.resume()  // the slot passes to the waiter
            return
        }
        let n = active[key, default: 1] - 1
        active[key] = n > 0 ? n : nil
    }
}
