import Directory
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Checks passwords for POP3 (and later SMTP AUTH) with brute-force protection: every failure is
/// delayed, failures are counted per client IP and per account over a window, and past a limit even a
/// correct password is refused until the window passes. Unknown users cost the same hash computation
/// and get the same answer as wrong passwords.
final class Authenticator: Sendable {
    struct Policy: Hashable, Sendable {
        var failureDelay: Duration = .seconds(2)
        var maxFailuresPerIP = 10
        var maxFailuresPerAccount = 10
        var window: Duration = .seconds(900)
    }

    private let directory: any UserDirectory
    private let threadPool: NIOThreadPool
    private let policy: Policy
    private let dummyHash: String
    private let failures = NIOLockedValueBox<[String: [ContinuousClock.Instant]]>([:])

    init(directory: any UserDirectory, threadPool: NIOThreadPool, policy: Policy) throws {
        self.directory = directory
        self.threadPool = threadPool
        self.policy = policy
        self.dummyHash = try PasswordHasher.hash("swallow-dummy-\(UInt64.random(in: 0...UInt64.max))")
    }

    /// `true` when `password` is `user`'s and neither the IP nor the account is throttled.
    func verify(user: String, password: String, remoteIP: String) async -> Bool {
        let account = "user:" + user.lowercased()
        let ip = "ip:" + remoteIP
        let throttled = isThrottled(ip, limit: policy.maxFailuresPerIP) || isThrottled(account, limit: policy.maxFailuresPerAccount)
        let stored = (try? await directory.passwordHash(of: user)) ?? nil
        let hash = stored ?? dummyHash
        let matches = (try? await threadPool.runIfActive { PasswordHasher.verify(password, against: hash) }) ?? false
        if matches && stored != nil && !throttled {
            failures.withLockedValue { $0[account] = nil }
            return true
        }
        record(ip)
        record(account)
        try? await Task.sleep(for: policy.failureDelay)
        return false
    }

    private func isThrottled(_ key: String, limit: Int) -> Bool {
        let now = ContinuousClock.now
        return failures.withLockedValue { table in
            let recent = (table[key] ?? []).filter { now - $0 < policy.window }
            table[key] = recent.isEmpty ? nil : recent
            return recent.count >= limit
        }
    }

    private func record(_ key: String) {
        let now = ContinuousClock.now
        failures.withLockedValue { table in
            var list = (table[key] ?? []).filter { now - $0 < policy.window }
            list.append(now)
            if list.count > 1000 { list.removeFirst(list.count - 1000) }
            table[key] = list
            if table.count > 100_000 { table.removeAll() }  // bound memory under a distributed attack
        }
    }
}
