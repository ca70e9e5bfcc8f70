import ArgumentParser
import Directory
import MailCore
import MailServer
import MailStore

/// `swallow mailbox list|create|delete ADDRESS …`: an administrator's view of a user's IMAP folders
/// (the same Maildir++ folders IMAP, POP3 and Dovecot see).
struct MailboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mailbox", abstract: "List, create and delete a user's mail folders.",
        subcommands: [List.self, Create.self, Delete.self])

    /// The user's account, after checking the user exists.
    static func account(_ address: String, _ options: ConfigOption) async throws -> MaildirAccount {
        let (layout, _) = try dataLayout(options, create: false)
        var key = ""
        try await withDirectory(options) { d in
            key = try d.canonicalLocalAddress(address)
            guard try await d.listUsers().contains(where: { $0.address == key }) else { throw DirectoryError.noSuchUser(key) }
        }
        guard let root = MaildirStore(root: layout.mail, hostname: "localhost").path(ofAddress: key) else {
            throw fail("no mailbox for \(key)")
        }
        return MaildirAccount(root: root)
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a user's folders with message counts and special use.")
        @Argument(help: "The user's address.") var address: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let account = try await MailboxCommand.account(address, options)
            do {
                for f in try account.listFolders() where f.exists {
                    let folder = try account.openFolder(f.name)
                    let s = folder.snapshot()
                    var line = "\(f.name)\t\(s.messages.count) messages"
                    if let use = f.specialUse { line += "\t\(use.rawValue)" }
                    if !f.isSubscribed { line += "\t(not subscribed)" }
                    print(line)
                }
            } catch { throw fail("\(error)") }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a folder (hierarchy with /, e.g. Archive/2026).")
        @Argument(help: "The user's address.") var address: String
        @Argument(help: "The folder name.") var name: String
        @Option(name: .long, help: "Special use: sent, drafts, trash, junk or archive (RFC 6154).") var specialUse: String?
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let account = try await MailboxCommand.account(address, options)
            var use: SpecialUse?
            if let s = specialUse {
                guard let u = SpecialUse(rawValue: "\\" + s.prefix(1).uppercased() + s.dropFirst().lowercased()) else {
                    throw fail("unknown special use '\(s)' (sent, drafts, trash, junk, archive)")
                }
                use = u
            }
            do {
                try account.create(name, specialUse: use)
                try account.subscribe(name)
            } catch { throw fail("\(error)") }
            print("created \(name)")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a folder and the messages in it.")
        @Argument(help: "The user's address.") var address: String
        @Argument(help: "The folder name.") var name: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let account = try await MailboxCommand.account(address, options)
            do {
                try account.delete(name)
                try? account.unsubscribe(name)
            } catch { throw fail("\(error)") }
            print("deleted \(name)")
        }
    }
}

extension UserCommand {
    struct Quota: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show or set a user's storage limit.",
            discussion: """
                SIZE is a number of bytes with an optional K, M, G or T suffix (powers of 1024), or 'none'. \
                A user at or over the limit gets no more mail (452 4.2.2, or 552 5.2.2 with \
                limits.over_quota_permanent) and APPEND is refused (NO [OVERQUOTA]).
                """)
        @Argument(help: "The user's address.") var address: String
        @Argument(help: "The new limit (e.g. 2G), or 'none'; omitted: show the limit and use.") var size: String?
        @OptionGroup var options: ConfigOption

        static func parse(_ text: String) -> Int?? {
            if text.lowercased() == "none" { return .some(nil) }
            var digits = text.uppercased()
            var factor = 1
            for (suffix, f) in [("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40)] where digits.hasSuffix(suffix) {
                digits.removeLast()
                factor = f
            }
            if digits.hasSuffix("I") { return nil }
            guard let n = Int(digits), n >= 0 else { return nil }
            let (v, overflow) = n.multipliedReportingOverflow(by: factor)
            return overflow ? nil : .some(v)
        }

        func run() async throws {
            if let size {
                guard let limit = Self.parse(size) else { throw fail("'\(size)' is not a size (e.g. 500M, 2G, none)") }
                try await withDirectory(options) { d in
                    try await d.setQuota(address, bytes: limit)
                    print("quota of \(try d.canonicalLocalAddress(address)): \(limit.map(Self.format) ?? "none")")
                }
                return
            }
            let account = try await MailboxCommand.account(address, options)
            var limit: Int?
            try await withDirectory(options) { d in limit = try await d.quota(of: try d.canonicalLocalAddress(address)) }
            let used: (bytes: Int, messages: Int)
            do { used = try account.storageUsed() } catch { throw fail("\(error)") }
            print("used \(Self.format(used.bytes)) in \(used.messages) messages; limit \(limit.map(Self.format) ?? "none")")
        }

        static func format(_ bytes: Int) -> String {
            for (suffix, f) in [("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)] where bytes >= f && bytes % f == 0 {
                return "\(bytes / f)\(suffix)"
            }
            return "\(bytes) bytes"
        }
    }
}
