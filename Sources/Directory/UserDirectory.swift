import MailCore

/// Where a recipient address leads.
public enum RecipientResolution: Hashable, Sendable {
    /// The domain is not one of ours.
    case notLocal
    /// A local domain, but no such user or alias.
    case unknown
    /// Deliver to these mailboxes (canonical `local@domain` of users, or the postmaster mailbox).
    case mailboxes([String])
    /// An alias that forwards to addresses elsewhere (`remote`, never empty, in SMTP path form), and
    /// possibly to local mailboxes too.
    case forward(mailboxes: [String], remote: [String])

    /// The local mailboxes this leads to.
    public var mailboxes: [String] {
        switch self {
        case .mailboxes(let boxes), .forward(let boxes, _): boxes
        case .notLocal, .unknown: []
        }
    }
}

/// Users, aliases and passwords. The embedded default is ``SQLiteDirectory``; a PostgreSQL one will
/// follow for several nodes.
public protocol UserDirectory: Sendable {
    /// Resolves a recipient to mailboxes (following aliases, `+tag`, postmaster, and the domain's
    /// catch-all alias `@domain` last).
    func resolve(_ address: EmailAddress) async throws -> RecipientResolution
    /// ``resolve(_:)`` without the catch-all: the addresses a user really owns (a catch-all's owner
    /// may receive for any address but not send as one).
    func resolveWithoutCatchAll(_ address: EmailAddress) async throws -> RecipientResolution
    /// The stored password hash of a user, or `nil` (unknown user or no password).
    func passwordHash(of address: String) async throws -> String?
    /// The stored SCRAM-SHA-256 keys of a user in Dovecot's `{SCRAM-SHA-256}…` form, or `nil`.
    func scramCredentials(of address: String) async throws -> String?
    /// Stores SCRAM-SHA-256 keys for a user that has none yet (derived at a successful password
    /// login, so accounts created before SCRAM support gain it without a password change).
    func addSCRAMCredentials(of address: String, _ scram: String) async throws
    /// The resolution of `address` if it is known without waiting (a cache that is still valid);
    /// `nil` means: call ``resolve(_:)``.
    func cachedResolution(_ address: EmailAddress) -> RecipientResolution?
    /// The storage limit of a mailbox (canonical `local@domain`) in octets, or `nil` for none.
    func quota(of mailbox: String) async throws -> Int?
    /// ``quota(of:)`` if known without waiting: `.some(nil)` is "no limit", `nil` means: ask.
    func cachedQuota(of mailbox: String) -> Int??
}

extension UserDirectory {
    /// No catch-all: the same as ``resolve(_:)``.
    public func resolveWithoutCatchAll(_ address: EmailAddress) async throws -> RecipientResolution { try await resolve(address) }
    /// No cache.
    public func cachedResolution(_ address: EmailAddress) -> RecipientResolution? { nil }
    /// No quotas.
    public func quota(of mailbox: String) async throws -> Int? { nil }
    /// No cache.
    public func cachedQuota(of mailbox: String) -> Int?? { nil }
}

/// Settings that shape recipient resolution.
public struct DirectoryPolicy: Hashable, Sendable {
    /// Our domains, lower case.
    public var domains: Set<String>
    /// Characters that separate an address extension: with `"+"`, `user+tag@domain` delivers to
    /// `user` (like Postfix's `recipient_delimiter`); empty disables.
    public var recipientDelimiter: String
    /// Where `postmaster@<domain>` goes when no user or alias of that name exists; `nil` keeps it in
    /// the mailbox `postmaster@<domain>` itself.
    public var postmaster: String?

    /// Creates a policy.
    public init(domains: Set<String>, recipientDelimiter: String = "+", postmaster: String? = nil) {
        self.domains = Set(domains.map { IDNA.toASCII($0) ?? $0.lowercased() })
        self.recipientDelimiter = recipientDelimiter
        self.postmaster = postmaster?.lowercased()
    }
}

/// Problems with directory commands (reported to the CLI user as one sentence).
public enum DirectoryError: Error, CustomStringConvertible, Hashable, Sendable {
    case invalidAddress(String)
    case notLocalDomain(String)
    case alreadyExists(String)
    case noSuchUser(String)
    case noSuchAlias(String)
    case unknownTarget(String)
    case targetOfAliases(String, aliases: [String])

    public var description: String {
        switch self {
        case .invalidAddress(let a): "'\(a)' is not a valid mail address"
        case .notLocalDomain(let a): "the domain of '\(a)' is not in the configured domains"
        case .alreadyExists(let a): "'\(a)' already exists as a user or alias"
        case .noSuchUser(let a): "no user '\(a)'"
        case .noSuchAlias(let a): "no alias '\(a)'"
        case .unknownTarget(let a): "'\(a)' is neither a user nor an alias"
        case .targetOfAliases(let a, let aliases):
            "'\(a)' is a target of the alias\(aliases.count == 1 ? "" : "es") \(aliases.joined(separator: ", ")); give --remove-aliases to remove it from \(aliases.count == 1 ? "that alias" : "those aliases") too (an alias left without targets is removed)"
        }
    }
}
