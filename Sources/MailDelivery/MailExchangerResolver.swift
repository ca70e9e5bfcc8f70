/// What delivery needs from DNS (the consumer declares it; the composition root adapts the DNS
/// client to it, and tests use a scripted one).
public protocol MailExchangerResolver: Sendable {
    /// The MX records of `domain` (RFC 5321 §5.1).
    func mailExchangers(for domain: String) async -> MXLookup
    /// IPv4 and IPv6 addresses of `host`, textual; empty when it has none. Throws for temporary failures.
    func addresses(for host: String) async throws -> [String]
}

/// The answer to an MX query, as delivery needs it.
public enum MXLookup: Hashable, Sendable {
    /// MX records, any order (delivery sorts and shuffles).
    case exchangers([MXRecord])
    /// The domain exists but has no MX: use the domain itself (implicit MX).
    case noMX
    /// `MX 0 .` (RFC 7505): the domain accepts no mail.
    case nullMX
    /// NXDOMAIN.
    case noSuchDomain
    /// An answer that can never lead anywhere (a CNAME loop or an over-long chain): the reason.
    case permanentFailure(String)
    /// SERVFAIL, timeout, or no server reachable: try later.
    case temporaryFailure(String)
}

/// One MX record.
public struct MXRecord: Hashable, Sendable {
    public var preference: Int
    public var host: String
    public init(preference: Int, host: String) {
        self.preference = preference
        self.host = host
    }
}
