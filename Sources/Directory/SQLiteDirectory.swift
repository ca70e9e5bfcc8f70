#if canImport(Glibc)
import Glibc
#endif
import MailCore
import NIOCore
import NIOPosix
import SQLiteNIO
import Synchronization

/// The embedded directory: users and aliases in `<data_dir>/swallow.sqlite` (WAL mode).
///
/// Recipient resolutions are cached in memory and the whole cache is dropped as soon as the database
/// or its write-ahead log changes on disk (size, mtime or inode, checked with `stat` on every lookup),
/// so `swallow user …` changes from another process still apply to a running server at once.
public final class SQLiteDirectory: UserDirectory {
    private let connection: SQLiteConnection
    /// The resolution policy.
    public let policy: DirectoryPolicy
    private let path: String
    private let cache = Mutex<ResolutionCache>(ResolutionCache())

    struct FileStamp: Equatable {
        var inode: UInt64 = 0, size: Int64 = 0, seconds: Int = 0, nanoseconds: Int = 0

        init(_ path: String) {
            var st = stat()
            guard stat(path, &st) == 0 else { return }
            inode = UInt64(st.st_ino)
            size = Int64(st.st_size)
            seconds = st.st_mtim.tv_sec
            nanoseconds = st.st_mtim.tv_nsec
        }
    }

    struct ResolutionCache {
        var stamp: [FileStamp] = []
        var entries: [String: RecipientResolution] = [:]
        var quotas: [String: Int?] = [:]
    }

    private init(connection: SQLiteConnection, policy: DirectoryPolicy, path: String) {
        self.connection = connection
        self.policy = policy
        self.path = path
    }

    private func currentStamp() -> [FileStamp] { [FileStamp(path), FileStamp(path + "-wal")] }

    public func cachedResolution(_ address: EmailAddress) -> RecipientResolution? {
        let stamp = currentStamp()
        return cache.withLock { c in
            if c.stamp != stamp {
                c.stamp = stamp
                c.entries.removeAll(keepingCapacity: true)
                c.quotas.removeAll(keepingCapacity: true)
                return nil
            }
            return c.entries[address.canonicalKey]
        }
    }

    public func cachedQuota(of mailbox: String) -> Int?? {
        let stamp = currentStamp()
        return cache.withLock { c in
            if c.stamp != stamp {
                c.stamp = stamp
                c.entries.removeAll(keepingCapacity: true)
                c.quotas.removeAll(keepingCapacity: true)
                return nil
            }
            return c.quotas[mailbox.lowercased()]
        }
    }

    public func quota(of mailbox: String) async throws -> Int? {
        let key = mailbox.lowercased()
        if let known = cachedQuota(of: key) { return known }
        let stamp = currentStamp()
        let rows = try await connection.query("SELECT quota FROM users WHERE address = ?", [.text(key)])
        let limit = rows.first?.column("quota")?.integer
        cache.withLock { c in
            guard c.stamp == stamp else { return }
            if c.quotas.count >= 50_000 { c.quotas.removeAll(keepingCapacity: true) }
            c.quotas[key] = .some(limit)
        }
        return limit
    }

    /// Sets a user's storage limit in octets (`nil`: none), enforced at delivery and APPEND.
    public func setQuota(_ address: String, bytes: Int?) async throws {
        let key = try canonicalLocalAddress(address)
        guard try await isUser(key) else { throw DirectoryError.noSuchUser(key) }
        _ = try await connection.query("UPDATE users SET quota = ? WHERE address = ?",
                                       [bytes.map { .integer($0) } ?? .null, .text(key)])
    }

    /// Opens (creating if needed) the database at `path`.
    public static func open(path: String, policy: DirectoryPolicy,
                            threadPool: NIOThreadPool = .singleton,
                            eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any()) async throws -> SQLiteDirectory {
        let conn = try await SQLiteConnection.open(storage: .file(path: path), threadPool: threadPool, on: eventLoop)
        _ = try await conn.query("PRAGMA busy_timeout = 5000", [])
        _ = try await conn.query("PRAGMA journal_mode = WAL", [])
        _ = try await conn.query("PRAGMA synchronous = FULL", [])
        _ = try await conn.query("""
            CREATE TABLE IF NOT EXISTS users (
              address TEXT PRIMARY KEY NOT NULL,
              password TEXT,
              created INTEGER NOT NULL DEFAULT (strftime('%s','now'))
            )
            """, [])
        _ = try await conn.query("""
            CREATE TABLE IF NOT EXISTS aliases (
              alias TEXT NOT NULL,
              target TEXT NOT NULL,
              PRIMARY KEY (alias, target)
            )
            """, [])
        _ = try await conn.query("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY NOT NULL, value TEXT)", [])
        _ = try await conn.query("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', '1')", [])
        // Schema 2: SCRAM-SHA-256 keys next to the password hash (set together by `user add/passwd`).
        let columns = try await conn.query("PRAGMA table_info(users)", []).compactMap { $0.column("name")?.string }
        if !columns.contains("scram") {
            _ = try await conn.query("ALTER TABLE users ADD COLUMN scram TEXT", [])
        }
        // Schema 3: a storage limit per user (`swallow user quota`), octets; NULL is none.
        if !columns.contains("quota") {
            _ = try await conn.query("ALTER TABLE users ADD COLUMN quota INTEGER", [])
        }
        _ = try await conn.query("UPDATE meta SET value = '3' WHERE key = 'schema'", [])
        return SQLiteDirectory(connection: conn, policy: policy, path: path)
    }

    /// Closes the database.
    public func close() async throws { try await connection.close() }

    // MARK: Lookups

    public func resolve(_ address: EmailAddress) async throws -> RecipientResolution {
        if let known = cachedResolution(address) { return known }
        // The stamp is taken before the query: a change during the query leaves a newer stamp on disk,
        // so the next lookup drops what is stored here.
        let stamp = currentStamp()
        let resolution = try await resolveUncached(address)
        cache.withLock { c in
            guard c.stamp == stamp else { return }
            if c.entries.count >= 50_000 { c.entries.removeAll(keepingCapacity: true) }  // bound it under a dictionary attack
            c.entries[address.canonicalKey] = resolution
        }
        return resolution
    }

    public func resolveWithoutCatchAll(_ address: EmailAddress) async throws -> RecipientResolution {
        try await resolveUncached(address, catchAll: false)
    }

    private func resolveUncached(_ address: EmailAddress, catchAll: Bool = true) async throws -> RecipientResolution {
        let domain = address.normalizedDomain
        guard policy.domains.contains(domain) else { return .notLocal }
        let local = address.localPart.lowercased()
        var result = Expansion()
        if try await expand("\(local)@\(domain)", into: &result, depth: 0, visited: []) { return result.resolution }
        if let cut = local.firstIndex(where: { policy.recipientDelimiter.contains($0) }), cut != local.startIndex {
            let base = String(local[..<cut])
            if try await expand("\(base)@\(domain)", into: &result, depth: 0, visited: []) { return result.resolution }
        }
        if local == "postmaster" {
            if let target = policy.postmaster, try await expand(target, into: &result, depth: 0, visited: []),
               result.resolution != .unknown {
                return result.resolution
            }
            return .mailboxes(["postmaster@\(domain)"])
        }
        // The catch-all (`@domain`, like Postfix's virtual alias `@example.com`) comes last.
        if catchAll, try await expand("@\(domain)", into: &result, depth: 0, visited: []) { return result.resolution }
        return .unknown
    }

    /// Where an address leads: local mailboxes and remote addresses, each once, in order.
    struct Expansion {
        var mailboxes: [String] = []
        var remote: [String] = []

        /// An alias whose targets lead nowhere (its users were removed, or it only loops) is an
        /// unknown recipient: accepting mail for it would store the message nowhere.
        var resolution: RecipientResolution {
            if !remote.isEmpty { return .forward(mailboxes: mailboxes, remote: remote) }
            return mailboxes.isEmpty ? .unknown : .mailboxes(mailboxes)
        }
    }

    /// Adds where `key` leads; returns `false` when `key` is neither user nor alias. A target
    /// outside our domains is a remote address, taken as it is.
    private func expand(_ key: String, into result: inout Expansion, depth: Int, visited: Set<String>) async throws -> Bool {
        if !isLocal(key) {
            if !result.remote.contains(key) { result.remote.append(key) }
            return true
        }
        if try await isUser(key) {
            if !result.mailboxes.contains(key) { result.mailboxes.append(key) }
            return true
        }
        let targets = try await aliasTargets(key)
        guard !targets.isEmpty else { return false }
        guard depth < 10, !visited.contains(key) else { return true }  // loop or too deep: stop here
        var seen = visited
        seen.insert(key)
        for t in targets { _ = try await expand(t, into: &result, depth: depth + 1, visited: seen) }
        return true
    }

    /// `true` when the domain of a stored address (a user, alias or target) is one of ours.
    private func isLocal(_ stored: String) -> Bool {
        guard let at = stored.lastIndex(of: "@") else { return true }
        return policy.domains.contains(String(stored[stored.index(after: at)...]))
    }

    private func isUser(_ key: String) async throws -> Bool {
        !(try await connection.query("SELECT 1 FROM users WHERE address = ?", [.text(key)])).isEmpty
    }

    private func aliasTargets(_ key: String) async throws -> [String] {
        try await connection.query("SELECT target FROM aliases WHERE alias = ? ORDER BY target", [.text(key)])
            .compactMap { $0.column("target")?.string }
    }

    public func passwordHash(of address: String) async throws -> String? {
        let key = address.lowercased()
        return try await connection.query("SELECT password FROM users WHERE address = ?", [.text(key)])
            .first?.column("password")?.string
    }

    public func scramCredentials(of address: String) async throws -> String? {
        let key = address.lowercased()
        return try await connection.query("SELECT scram FROM users WHERE address = ?", [.text(key)])
            .first?.column("scram")?.string
    }

    public func addSCRAMCredentials(of address: String, _ scram: String) async throws {
        _ = try await connection.query("UPDATE users SET scram = ? WHERE address = ? AND scram IS NULL",
                                       [.text(scram), .text(address.lowercased())])
    }

    // MARK: Administration

    /// Validates `address` and returns its canonical key; the domain must be local.
    public func canonicalLocalAddress(_ address: String) throws -> String {
        guard case .success(let a) = EmailAddress.parse(address, allowUTF8: true),
              !a.domain.hasPrefix("["), !a.localPart.hasPrefix("."), !a.localPart.contains("/") else {
            throw DirectoryError.invalidAddress(address)
        }
        guard policy.domains.contains(a.normalizedDomain) else { throw DirectoryError.notLocalDomain(address) }
        return a.canonicalKey
    }

    /// Adds a user; `passwordHash` from ``PasswordHasher``, `scram` the stored SCRAM-SHA-256 keys
    /// (`SCRAMCredentials.encoded`) derived from the same password.
    public func addUser(_ address: String, passwordHash: String?, scram: String? = nil) async throws {
        let key = try canonicalLocalAddress(address)
        let user = try await isUser(key)
        let alias = try await aliasTargets(key)
        if user || !alias.isEmpty { throw DirectoryError.alreadyExists(key) }
        _ = try await connection.query("INSERT INTO users(address, password, scram) VALUES (?, ?, ?)",
                                       [.text(key), passwordHash.map { .text($0) } ?? .null, scram.map { .text($0) } ?? .null])
    }

    /// Removes a user (its Maildir stays on disk). Aliases that name the user as a target would be
    /// left pointing nowhere: without `removingAliases` the user is kept and
    /// ``DirectoryError/targetOfAliases(_:aliases:)`` names them; with it, the user is removed from
    /// those aliases too (an alias left without targets is removed). Returns the aliases changed.
    @discardableResult
    public func removeUser(_ address: String, removingAliases: Bool = false) async throws -> [String] {
        let key = try canonicalLocalAddress(address)
        guard try await isUser(key) else { throw DirectoryError.noSuchUser(key) }
        let aliases = try await aliases(targeting: key)
        if !aliases.isEmpty && !removingAliases { throw DirectoryError.targetOfAliases(key, aliases: aliases) }
        _ = try await connection.query("BEGIN IMMEDIATE", [])
        do {
            _ = try await connection.query("DELETE FROM aliases WHERE target = ?", [.text(key)])
            _ = try await connection.query("DELETE FROM users WHERE address = ?", [.text(key)])
            // An alias whose only target was an alias just emptied is left pointing nowhere: remove
            // such entries too, level by level (aliases nest at most 10 deep).
            for _ in 0..<10 {
                let dangling = try await connection.query("""
                    SELECT alias, target FROM aliases WHERE target NOT IN (SELECT address FROM users)
                      AND target NOT IN (SELECT alias FROM aliases)
                    """, []).filter { isLocal($0.column("target")?.string ?? "") }  // remote targets lead somewhere
                if dangling.isEmpty { break }
                for row in dangling {
                    _ = try await connection.query("DELETE FROM aliases WHERE alias = ? AND target = ?",
                                                   [row.column("alias") ?? .null, row.column("target") ?? .null])
                }
            }
            _ = try await connection.query("COMMIT", [])
        } catch {
            _ = try? await connection.query("ROLLBACK", [])
            throw error
        }
        return aliases
    }

    /// The aliases that name `key` (a canonical address) as one of their targets.
    public func aliases(targeting key: String) async throws -> [String] {
        try await connection.query("SELECT DISTINCT alias FROM aliases WHERE target = ? ORDER BY alias", [.text(key)])
            .compactMap { $0.column("alias")?.string }
    }

    /// Sets or replaces a user's password hash and SCRAM keys (without `scram`, SCRAM logins stop
    /// working until the next password change: stale keys would accept the old password).
    public func setPassword(_ address: String, passwordHash: String, scram: String? = nil) async throws {
        let key = try canonicalLocalAddress(address)
        guard try await isUser(key) else { throw DirectoryError.noSuchUser(key) }
        _ = try await connection.query("UPDATE users SET password = ?, scram = ? WHERE address = ?",
                                       [.text(passwordHash), scram.map { .text($0) } ?? .null, .text(key)])
    }

    /// All users with whether a password is set.
    public func listUsers() async throws -> [(address: String, hasPassword: Bool)] {
        try await connection.query("SELECT address, password FROM users ORDER BY address", []).map {
            ($0.column("address")?.string ?? "", $0.column("password")?.string != nil)
        }
    }

    /// All users with their storage limits (octets; `nil` for none).
    public func listQuotas() async throws -> [(address: String, quota: Int?)] {
        try await connection.query("SELECT address, quota FROM users ORDER BY address", []).map {
            ($0.column("address")?.string ?? "", $0.column("quota")?.integer)
        }
    }

    /// The key of an alias: a canonical local address, or `@domain` for a domain's catch-all.
    public func aliasKey(_ alias: String) throws -> String {
        guard alias.hasPrefix("@") else { return try canonicalLocalAddress(alias) }
        do {
            let key = try canonicalLocalAddress("catchall" + alias)
            return String(key[key.firstIndex(of: "@")!...])
        } catch DirectoryError.notLocalDomain {
            throw DirectoryError.notLocalDomain(alias)
        } catch {
            throw DirectoryError.invalidAddress(alias)
        }
    }

    /// Adds targets to an alias (creating it). A target in one of our domains must be a user or an
    /// alias; one elsewhere is a remote address the alias forwards to (its local part kept as given,
    /// its domain in ASCII lower case).
    public func addAlias(_ alias: String, targets: [String]) async throws {
        let key = try aliasKey(alias)
        if try await isUser(key) { throw DirectoryError.alreadyExists(key) }
        var keys: [String] = []
        for t in targets {
            guard case .success(let a) = EmailAddress.parse(t, allowUTF8: true), !a.domain.hasPrefix("[") else {
                throw DirectoryError.invalidAddress(t)
            }
            guard policy.domains.contains(a.normalizedDomain) else {
                keys.append(EmailAddress(localPart: a.localPart, domain: a.normalizedDomain).description)
                continue
            }
            let tk = a.canonicalKey
            let user = try await isUser(tk)
            let alias = try await aliasTargets(tk)
            guard user || !alias.isEmpty else { throw DirectoryError.unknownTarget(tk) }
            keys.append(tk)
        }
        for tk in keys {
            _ = try await connection.query("INSERT OR IGNORE INTO aliases(alias, target) VALUES (?, ?)", [.text(key), .text(tk)])
        }
    }

    /// Removes an alias entirely.
    public func removeAlias(_ alias: String) async throws {
        let key = try aliasKey(alias)
        guard !(try await aliasTargets(key)).isEmpty else { throw DirectoryError.noSuchAlias(key) }
        _ = try await connection.query("DELETE FROM aliases WHERE alias = ?", [.text(key)])
    }

    /// All aliases with their targets.
    public func listAliases() async throws -> [(alias: String, targets: [String])] {
        let rows = try await connection.query("SELECT alias, target FROM aliases ORDER BY alias, target", [])
        var out: [(String, [String])] = []
        for r in rows {
            let a = r.column("alias")?.string ?? ""
            let t = r.column("target")?.string ?? ""
            if let last = out.last, last.0 == a { out[out.count - 1].1.append(t) } else { out.append((a, [t])) }
        }
        return out
    }
}
