import SMTPClient
import MailCore

/// A connection the cache can close.
protocol CachedConnection: Sendable {
    /// Ends the session politely (QUIT) and closes it.
    func quit() async
}

extension SMTPClient: CachedConnection {}

/// Idle SMTP connections kept for reuse, keyed by next hop (`address:port`), like Postfix's scache:
/// a burst of messages to one destination costs one TCP and TLS handshake, not one per message.
/// A connection idle for `idleTimeout` is closed when that time comes (a sweeper task sleeps until
/// the earliest expiry while the cache holds anything), not only when the next delivery looks.
actor ConnectionCache<Connection: CachedConnection> {
    private struct Idle {
        let connection: Connection
        /// When it was checked in (``MonotonicClock/now``).
        let since: Duration
    }

    private var idle: [String: [Idle]] = [:]
    private let maximumPerKey: Int
    private let idleTimeout: Duration
    private let clock: MonotonicClock
    private var sweeper: Task<Void, Never>?

    init(maximumPerKey: Int = 4, idleTimeout: Duration = .seconds(30), clock: MonotonicClock = .continuous) {
        self.maximumPerKey = maximumPerKey
        self.idleTimeout = idleTimeout
        self.clock = clock
    }

    /// How many idle connections are kept (all keys).
    var count: Int { idle.values.reduce(0) { $0 + $1.count } }

    /// An idle connection for `key`, if one is fresh enough.
    func checkOut(_ key: String) -> Connection? {
        let now = clock.now
        while var list = idle[key], !list.isEmpty {
            let entry = list.removeLast()
            idle[key] = list.isEmpty ? nil : list
            if now - entry.since < idleTimeout { return entry.connection }
            Task { await entry.connection.quit() }
        }
        return nil
    }

    /// Returns a healthy connection for reuse (or closes it when the cache is full).
    func checkIn(_ key: String, _ connection: Connection) {
        var list = idle[key] ?? []
        guard list.count < maximumPerKey else {
            Task { await connection.quit() }
            return
        }
        list.append(Idle(connection: connection, since: clock.now))
        idle[key] = list
        if sweeper == nil { sweeper = Task { await self.sweepUntilEmpty() } }
    }

    /// Closes connections idle for `idleTimeout` or longer.
    func sweep() {
        let now = clock.now
        for (key, list) in idle {
            let expired = list.filter { now - $0.since >= idleTimeout }
            guard !expired.isEmpty else { continue }
            for d in expired { Task { await d.connection.quit() } }
            let keep = list.filter { now - $0.since < idleTimeout }
            idle[key] = keep.isEmpty ? nil : keep
        }
    }

    /// Sleeps until the earliest expiry, closes what expired, and again, until nothing is left.
    private func sweepUntilEmpty() async {
        while let earliest = idle.values.lazy.flatMap({ $0 }).map(\.since).min() {
            do { try await clock.sleep(until: earliest + idleTimeout) } catch { break }
            sweep()
        }
        sweeper = nil
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
