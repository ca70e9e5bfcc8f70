import NIOConcurrencyHelpers
import NIOCore

/// Counts live connections in total and per client IP, and reaches every live connection at
/// shutdown. Shared by all listeners of one server.
public final class ConnectionRegistry: Sendable {
    /// Limits enforced at accept time.
    public struct Limits: Hashable, Sendable {
        /// Most simultaneous connections over all listeners sharing this registry.
        public var total: Int
        /// Most simultaneous connections from one IP address.
        public var perIP: Int

        /// Creates limits.
        public init(total: Int = 2000, perIP: Int = 50) {
            self.total = total
            self.perIP = perIP
        }
    }

    struct Entry {
        let ip: String
        let shutdown: @Sendable () -> Void
        let deadline: @Sendable () -> Void
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var perIP: [String: Int] = [:]
    }

    private let state = NIOLockedValueBox(State())
    private let limits: Limits

    /// Creates a registry with these limits.
    public init(limits: Limits) { self.limits = limits }

    /// Live connections now.
    public var count: Int { state.withLockedValue { $0.entries.count } }

    /// Admits a connection from `ip`, or returns `false` when a limit is reached.
    public func admit(_ channel: any Channel, ip: String, shutdown: @escaping @Sendable () -> Void,
               deadline: @escaping @Sendable () -> Void) -> Bool {
        let id = ObjectIdentifier(channel)
        return state.withLockedValue { s in
            if s.entries.count >= limits.total || s.perIP[ip, default: 0] >= limits.perIP { return false }
            s.entries[id] = Entry(ip: ip, shutdown: shutdown, deadline: deadline)
            s.perIP[ip, default: 0] += 1
            return true
        }
    }

    /// Forgets a connection when its channel closes.
    public func remove(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        state.withLockedValue { s in
            guard let e = s.entries.removeValue(forKey: id) else { return }
            let n = s.perIP[e.ip, default: 1] - 1
            s.perIP[e.ip] = n > 0 ? n : nil
        }
    }

    /// Asks every connection to finish: idle ones close now, busy ones after their transaction.
    public func requestShutdown() {
        for e in state.withLockedValue({ Array($0.entries.values) }) { e.shutdown() }
    }

    /// Closes whatever is still open.
    public func deadlinePassed() {
        for e in state.withLockedValue({ Array($0.entries.values) }) { e.deadline() }
    }
}
