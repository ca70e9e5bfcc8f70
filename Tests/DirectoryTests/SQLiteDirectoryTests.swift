import Directory
import Foundation
import MailCore
import SQLiteNIO
import Testing

@Suite struct SQLiteDirectoryTests {
    func open(postmaster: String? = nil) async throws -> SQLiteDirectory {
        let path = NSTemporaryDirectory() + "dir-\(UUID().uuidString).sqlite"
        return try await SQLiteDirectory.open(path: path, policy: DirectoryPolicy(domains: ["example.test", "other.test"], postmaster: postmaster))
    }

    func addr(_ s: String) -> EmailAddress { try! EmailAddress.parse(s, allowUTF8: true).get() }

    @Test func usersAliasesTagsAndPostmaster() async throws {
        let d = try await open()
        try await d.addUser("Alice@Example.TEST", passwordHash: nil)
        try await d.addUser("bob@example.test", passwordHash: nil)
        try await d.addAlias("team@example.test", targets: ["alice@example.test", "BOB@example.test"])
        try await d.addAlias("all@example.test", targets: ["team@example.test", "alice@example.test"])
        #expect(try await d.resolve(addr("alice@example.test")) == .mailboxes(["alice@example.test"]))
        #expect(try await d.resolve(addr("ALICE@EXAMPLE.test")) == .mailboxes(["alice@example.test"]))
        #expect(try await d.resolve(addr("alice+news@example.test")) == .mailboxes(["alice@example.test"]))
        #expect(try await d.resolve(addr("team@example.test")) == .mailboxes(["alice@example.test", "bob@example.test"]))
        #expect(try await d.resolve(addr("all@example.test")) == .mailboxes(["alice@example.test", "bob@example.test"]))
        #expect(try await d.resolve(addr("nobody@example.test")) == .unknown)
        #expect(try await d.resolve(addr("alice@remote.test")) == .notLocal)
        #expect(try await d.resolve(addr("postmaster@other.test")) == .mailboxes(["postmaster@other.test"]))
        #expect(try await d.resolve(addr("+x@example.test")) == .unknown)
        try await d.removeUser("bob@example.test", removingAliases: true)
        #expect(try await d.resolve(addr("bob@example.test")) == .unknown)
        try await d.close()
    }

    /// A user that aliases deliver to is kept, and the error names the aliases; with
    /// `removingAliases` it leaves them, and aliases emptied by that (directly or through another
    /// alias) go too.
    @Test func removingAUserThatAliasesNameNeedsTheFlag() async throws {
        let d = try await open()
        try await d.addUser("alice@example.test", passwordHash: nil)
        try await d.addUser("bob@example.test", passwordHash: nil)
        try await d.addAlias("info@example.test", targets: ["bob@example.test"])
        try await d.addAlias("sales@example.test", targets: ["info@example.test"])
        try await d.addAlias("team@example.test", targets: ["alice@example.test", "bob@example.test"])
        #expect(try await d.aliases(targeting: "bob@example.test") == ["info@example.test", "team@example.test"])
        await #expect(throws: DirectoryError.targetOfAliases("bob@example.test", aliases: ["info@example.test", "team@example.test"])) {
            try await d.removeUser("Bob@example.test")
        }
        #expect(try await d.resolve(addr("bob@example.test")) == .mailboxes(["bob@example.test"]))
        #expect(try await d.removeUser("bob@example.test", removingAliases: true) == ["info@example.test", "team@example.test"])
        #expect(try await d.listAliases().map(\.alias) == ["team@example.test"])
        #expect(try await d.resolve(addr("team@example.test")) == .mailboxes(["alice@example.test"]))
        for gone in ["bob@example.test", "info@example.test", "sales@example.test"] {
            #expect(try await d.resolve(addr(gone)) == .unknown, "\(gone)")
        }
        try await d.close()
    }

    /// An alias whose targets lead to no mailbox (left behind by another tool, or only a loop) is an
    /// unknown recipient, not a delivery to nobody.
    @Test func aliasLeadingNowhereIsUnknown() async throws {
        let path = NSTemporaryDirectory() + "dir-\(UUID().uuidString).sqlite"
        let d = try await SQLiteDirectory.open(path: path, policy: DirectoryPolicy(domains: ["example.test"]))
        try await d.addUser("u@example.test", passwordHash: nil)
        try await d.addAlias("a@example.test", targets: ["u@example.test"])
        try await d.addAlias("b@example.test", targets: ["a@example.test"])
        try await d.addAlias("a@example.test", targets: ["b@example.test"])
        try await d.close()
        // Remove the user behind the directory's back (an older version, or sqlite3 by hand).
        let raw = try await SQLiteConnection.open(storage: .file(path: path))
        _ = try await raw.query("DELETE FROM users", [])
        try await raw.close()
        let again = try await SQLiteDirectory.open(path: path, policy: DirectoryPolicy(domains: ["example.test"]))
        #expect(try await again.resolve(addr("a@example.test")) == .unknown)
        #expect(try await again.resolve(addr("b+tag@example.test")) == .unknown)
        try await again.close()
    }

    @Test func postmasterRoutesToConfiguredTarget() async throws {
        let d = try await open(postmaster: "alice@example.test")
        try await d.addUser("alice@example.test", passwordHash: nil)
        #expect(try await d.resolve(addr("PostMaster@example.test")) == .mailboxes(["alice@example.test"]))
        try await d.close()
    }

    @Test func aliasLoopsTerminate() async throws {
        let d = try await open()
        try await d.addUser("u@example.test", passwordHash: nil)
        try await d.addAlias("a@example.test", targets: ["u@example.test"])
        try await d.addAlias("b@example.test", targets: ["a@example.test"])
        try await d.addAlias("a@example.test", targets: ["b@example.test"])
        #expect(try await d.resolve(addr("a@example.test")) == .mailboxes(["u@example.test"]))
        try await d.close()
    }

    /// Targets in other domains are forwarded to: kept with their local part as given, alongside
    /// local mailboxes; removing a user never drops an alias's remote targets.
    @Test func aliasesForwardToRemoteAddresses() async throws {
        let d = try await open()
        try await d.addUser("u@example.test", passwordHash: nil)
        try await d.addUser("v@example.test", passwordHash: nil)
        try await d.addAlias("info@example.test", targets: ["Someone@Elsewhere.EXAMPLE", "u@example.test"])
        try await d.addAlias("nested@example.test", targets: ["info@example.test", "other@remote.test"])
        try await d.addAlias("v-only@example.test", targets: ["v@example.test"])
        #expect(try await d.resolve(addr("info@example.test")) == .forward(mailboxes: ["u@example.test"], remote: ["Someone@elsewhere.example"]))
        #expect(try await d.resolve(addr("Nested+tag@example.test"))
                == .forward(mailboxes: ["u@example.test"], remote: ["Someone@elsewhere.example", "other@remote.test"]))
        #expect(try await d.resolve(addr("info@example.test")).mailboxes == ["u@example.test"])
        // The last local target removed: the alias still forwards.
        _ = try await d.removeUser("u@example.test", removingAliases: true)
        #expect(try await d.resolve(addr("info@example.test")) == .forward(mailboxes: [], remote: ["Someone@elsewhere.example"]))
        _ = try await d.removeUser("v@example.test", removingAliases: true)
        #expect(try await d.resolve(addr("v-only@example.test")) == .unknown)
        #expect(try await d.listAliases().map(\.alias) == ["info@example.test", "nested@example.test"])
        try await d.close()
    }

    /// `@domain` is the catch-all: last, after users, aliases, `+tag` and postmaster; never for
    /// ownership (``SQLiteDirectory/resolveWithoutCatchAll(_:)``).
    @Test func catchAllComesLast() async throws {
        let d = try await open()
        try await d.addUser("u@example.test", passwordHash: nil)
        try await d.addUser("v@example.test", passwordHash: nil)
        try await d.addAlias("@Example.Test", targets: ["v@example.test"])
        #expect(try d.aliasKey("@EXAMPLE.test") == "@example.test")
        #expect(try await d.resolve(addr("nobody@example.test")) == .mailboxes(["v@example.test"]))
        #expect(try await d.resolve(addr("u+tag@example.test")) == .mailboxes(["u@example.test"]))
        #expect(try await d.resolveWithoutCatchAll(addr("nobody@example.test")) == .unknown)
        #expect(try await d.listAliases().map(\.alias) == ["@example.test"])
        try await d.removeAlias("@example.test")
        #expect(try await d.resolve(addr("nobody2@example.test")) == .unknown)
        await #expect(throws: DirectoryError.notLocalDomain("@remote.test")) { try await d.addAlias("@remote.test", targets: ["u@example.test"]) }
        try await d.close()
    }

    @Test func administrativeErrors() async throws {
        let d = try await open()
        try await d.addUser("u@example.test", passwordHash: nil)
        await #expect(throws: DirectoryError.alreadyExists("u@example.test")) { try await d.addUser("U@example.test", passwordHash: nil) }
        await #expect(throws: DirectoryError.notLocalDomain("x@remote.test")) { try await d.addUser("x@remote.test", passwordHash: nil) }
        await #expect(throws: DirectoryError.invalidAddress("no-at-sign")) { try await d.addUser("no-at-sign", passwordHash: nil) }
        await #expect(throws: DirectoryError.invalidAddress("../x@example.test")) { try await d.addUser("../x@example.test", passwordHash: nil) }
        await #expect(throws: DirectoryError.invalidAddress("x@[192.0.2.1]")) { try await d.addAlias("f@example.test", targets: ["x@[192.0.2.1]"]) }
        await #expect(throws: DirectoryError.unknownTarget("ghost@example.test")) { try await d.addAlias("f@example.test", targets: ["ghost@example.test"]) }
        await #expect(throws: DirectoryError.noSuchUser("ghost@example.test")) { try await d.removeUser("ghost@example.test") }
        try await d.close()
    }

    @Test func passwordsAreSaltedSlowHashes() async throws {
        let h1 = try PasswordHasher.hash("correct horse")
        let h2 = try PasswordHasher.hash("correct horse")
        #expect(h1.hasPrefix("$y$"))
        #expect(h1 != h2)  // salted
        #expect(PasswordHasher.verify("correct horse", against: h1))
        #expect(!PasswordHasher.verify("wrong", against: h1))
        #expect(!PasswordHasher.verify("correct horse", against: "plaintext"))
        let d = try await open()
        try await d.addUser("u@example.test", passwordHash: h1)
        #expect(try await d.passwordHash(of: "U@example.test") == h1)
        try await d.close()
    }

    /// SCRAM keys live next to the hash: set with the password, replaced (or cleared) by a password
    /// change, and filled in later only where missing.
    @Test func scramKeysFollowThePassword() async throws {
        let d = try await open()
        try await d.addUser("s@example.test", passwordHash: "$y$h1", scram: "{SCRAM-SHA-256}one")
        #expect(try await d.scramCredentials(of: "S@example.test") == "{SCRAM-SHA-256}one")
        try await d.addSCRAMCredentials(of: "s@example.test", "{SCRAM-SHA-256}other")
        #expect(try await d.scramCredentials(of: "s@example.test") == "{SCRAM-SHA-256}one")  // never overwritten
        try await d.setPassword("s@example.test", passwordHash: "$y$h2", scram: "{SCRAM-SHA-256}two")
        #expect(try await d.scramCredentials(of: "s@example.test") == "{SCRAM-SHA-256}two")
        try await d.setPassword("s@example.test", passwordHash: "$y$h3")
        #expect(try await d.scramCredentials(of: "s@example.test") == nil)  // stale keys would accept the old password
        try await d.addSCRAMCredentials(of: "s@example.test", "{SCRAM-SHA-256}three")
        #expect(try await d.scramCredentials(of: "s@example.test") == "{SCRAM-SHA-256}three")
        #expect(try await d.scramCredentials(of: "ghost@example.test") == nil)
        try await d.close()
    }

    /// Resolutions are cached, and a change made through another connection (another process, like
    /// `swallow user add` while the server runs) is seen by the very next lookup.
    @Test func cachedResolutionsFollowChangesFromOtherConnections() async throws {
        let path = NSTemporaryDirectory() + "dir-\(UUID().uuidString).sqlite"
        let policy = DirectoryPolicy(domains: ["example.test"])
        let server = try await SQLiteDirectory.open(path: path, policy: policy)
        let cli = try await SQLiteDirectory.open(path: path, policy: policy)
        #expect(server.cachedResolution(addr("new@example.test")) == nil)
        #expect(try await server.resolve(addr("new@example.test")) == .unknown)
        #expect(server.cachedResolution(addr("NEW@example.test")) == .unknown)
        try await cli.addUser("new@example.test", passwordHash: nil)
        #expect(server.cachedResolution(addr("new@example.test")) == nil)  // the WAL changed: cache dropped
        #expect(try await server.resolve(addr("new@example.test")) == .mailboxes(["new@example.test"]))
        #expect(server.cachedResolution(addr("new@example.test")) == .mailboxes(["new@example.test"]))
        try await cli.addAlias("team@example.test", targets: ["new@example.test"])
        #expect(try await server.resolve(addr("team@example.test")) == .mailboxes(["new@example.test"]))
        try await cli.removeUser("new@example.test", removingAliases: true)
        #expect(try await server.resolve(addr("new@example.test")) == .unknown)
        try await cli.close()
        try await server.close()
    }
}
