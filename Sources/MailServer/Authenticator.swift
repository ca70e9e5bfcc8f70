import Directory
import MailCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SASL

/// Checks passwords for POP3 and SMTP AUTH with brute-force protection: every failure is delayed,
/// failures are counted per client IP and per account over a window, and past a limit logins are
/// refused without looking at the password until the window passes. Unknown users cost the same hash
/// computation (or get decoy SCRAM parameters) and the same answer as wrong passwords.
final class Authenticator: Sendable {
    struct Policy: Hashable, Sendable {
        var failureDelay: Duration = .seconds(2)
        var maxFailuresPerIP = 10
        var maxFailuresPerAccount = 10
        var window: Duration = .seconds(900)
        /// Most keys (client addresses and account names) remembered at once.
        var capacity = 100_000
    }

    /// The outcome of a login attempt.
    enum Verdict: Hashable, Sendable {
        /// Accepted; the canonical login name (`local@domain`, lower case).
        case accepted(String)
        /// Wrong password or unknown user (indistinguishable).
        case rejected
        /// Too many recent failures for this account.
        case accountThrottled
        /// Too many recent failures from this client address.
        case clientThrottled
    }

    private let directory: any UserDirectory
    private let threadPool: NIOThreadPool
    private let policy: Policy
    private let dummyHash: String
    private let decoySecret: [UInt8]
    private let clock: MonotonicClock
    /// Recent failure times (``MonotonicClock/now`` values) per `ip:` and `user:` key.
    private let failures = NIOLockedValueBox<[String: [Duration]]>([:])

    init(directory: any UserDirectory, threadPool: NIOThreadPool, policy: Policy, clock: MonotonicClock = .continuous) throws {
        self.directory = directory
        self.threadPool = threadPool
        self.policy = policy
        self.clock = clock
        self.dummyHash = try PasswordHasher.hash("swallow-dummy-\(UInt64.random(in: 0...UInt64.max))")
        self.decoySecret = (0..<32).map { _ in UInt8.random(in: 0...255) }
    }

    /// The canonical login name for what a client typed.
    static func canonical(_ user: String) -> String {
        if case .success(let a) = EmailAddress.parse(user, allowUTF8: true) { return a.canonicalKey }
        return user.lowercased()
    }

    /// `true` when `password` is `user`'s and neither the IP nor the account is throttled (POP3).
    func verify(user: String, password: String, remoteIP: String) async -> Bool {
        if case .accepted = await check(user: user, password: password, remoteIP: remoteIP) { return true }
        return false
    }

    /// Checks a user name and password (PLAIN, LOGIN, USER/PASS).
    func check(user: String, password: String, remoteIP: String) async -> Verdict {
        if let throttled = throttled(user: user, remoteIP: remoteIP) {
            await failed(user: user, remoteIP: remoteIP)
            return throttled
        }
        let stored = (try? await directory.passwordHash(of: user)) ?? nil
        let hash = stored ?? dummyHash
        let matches = (try? await threadPool.runIfActive { PasswordHasher.verify(password, against: hash) }) ?? false
        if matches && stored != nil {
            succeeded(user: user)
            await addMissingSCRAMKeys(user: user, password: password)
            return .accepted(Self.canonical(user))
        }
        await failed(user: user, remoteIP: remoteIP)
        return .rejected
    }

    /// SCRAM parameters for `user`: the stored keys, or decoy ones (same shape, derived from a
    /// per-process secret) for an unknown user or one without SCRAM keys. `known` tells which.
    func scramCredentials(user: String) async -> (credentials: SCRAMCredentials, known: Bool) {
        if let text = (try? await directory.scramCredentials(of: user)) ?? nil, let c = SCRAMCredentials(encoded: text) {
            return (c, true)
        }
        return (SCRAMServer.decoyCredentials(for: user.lowercased(), secret: decoySecret), false)
    }

    /// Accounts created before SCRAM support (or by another tool) have only a password hash: derive
    /// the SCRAM keys from the password just verified, so SCRAM logins work from now on.
    private func addMissingSCRAMKeys(user: String, password: String) async {
        guard ((try? await directory.scramCredentials(of: user)) ?? nil) == nil else { return }
        guard let encoded = try? await threadPool.runIfActive({ SCRAMCredentials(password: password).encoded }) else { return }
        try? await directory.addSCRAMCredentials(of: user, encoded)
    }

    /// A throttling verdict when this IP or account has failed too often recently, else `nil`.
    func throttled(user: String, remoteIP: String) -> Verdict? {
        if isThrottled("ip:" + remoteIP, limit: policy.maxFailuresPerIP) { return .clientThrottled }
        if isThrottled("user:" + user.lowercased(), limit: policy.maxFailuresPerAccount) { return .accountThrottled }
        return nil
    }

    /// Records a failure for the IP and the account, then waits the failure delay.
    func failed(user: String, remoteIP: String) async {
        record("ip:" + remoteIP)
        record("user:" + user.lowercased())
        try? await clock.sleep(for: policy.failureDelay)
    }

    /// Clears the account's failures after a successful login.
    func succeeded(user: String) {
        failures.withLockedValue { $0["user:" + user.lowercased()] = nil }
    }

    private func isThrottled(_ key: String, limit: Int) -> Bool {
        let now = clock.now
        return failures.withLockedValue { table in
            let recent = (table[key] ?? []).filter { now - $0 < policy.window }
            table[key] = recent.isEmpty ? nil : recent
            return recent.count >= limit
        }
    }

    private func record(_ key: String) {
        let now = clock.now
        // Only the most recent `limit` failures decide whether a key is throttled.
        let keep = max(policy.maxFailuresPerIP, policy.maxFailuresPerAccount, 1)
        failures.withLockedValue { table in
            var list = (table[key] ?? []).filter { now - $0 < policy.window }
            list.append(now)
            if list.count > keep { list.removeFirst(list.count - keep) }
            table[key] = list
            if table.count > policy.capacity { evict(&table, now: now) }
        }
    }

    /// Bounds memory under a distributed attack without forgetting who is throttled: expired entries
    /// go first, then entries below their limit (they throttle nobody), and only then — with more than
    /// `capacity` keys over their limit at once — the entries with the oldest last failure.
    private func evict(_ table: inout [String: [Duration]], now: Duration) {
        let target = policy.capacity * 9 / 10
        table = table.filter { now - ($0.value.last ?? now) < policy.window }
        guard table.count > target else { return }
        table = table.filter { key, list in
            list.count >= (key.hasPrefix("ip:") ? policy.maxFailuresPerIP : policy.maxFailuresPerAccount)
        }
        guard table.count > target else { return }
        let newest = table.sorted { ($0.value.last ?? now) > ($1.value.last ?? now) }.prefix(target)
        table = Dictionary(uniqueKeysWithValues: newest.map { ($0.key, $0.value) })
    }
}

extension Authenticator.Policy {
    /// The policy of `[auth]`.
    init(_ auth: ServerConfiguration.Auth) {
        self.init(failureDelay: .milliseconds(auth.failureDelayMilliseconds), maxFailuresPerIP: auth.maxFailuresPerIP,
                  maxFailuresPerAccount: auth.maxFailuresPerAccount, window: .seconds(auth.failureWindow),
                  capacity: auth.maxTrackedKeys)
    }
}
