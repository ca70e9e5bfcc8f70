import DNSCore

/// What mail delivery needs from DNS. Consumers depend on this protocol (ARCHITECTURE §1.8);
/// ``StubResolver`` is the network implementation, tests may supply their own.
///
/// Every method throws ``DNSResolverError``; check ``DNSResolverError/isTemporary`` to decide
/// between deferring (4xx) and bouncing (5xx).
public protocol DNSResolver: Sendable {
    /// The MX records of `domain`, sorted by preference (equal preferences keep the server's order;
    /// shuffling them is the caller's job, RFC 5321 §5.1).
    /// - SeeAlso: RFC 5321 §5.1, RFC 7505 §3
    func mx(_ domain: String) async throws -> MXResult

    /// The IPv4 then IPv6 addresses of `host` (A then AAAA, CNAMEs followed). Empty when the name
    /// does not exist or has neither type. An IP literal is returned as is.
    /// - SeeAlso: RFC 1035 §3.4.1, RFC 3596
    func addresses(_ host: String) async throws -> [IPAddress]

    /// The TXT records of `name`, one string per record with its character-strings joined
    /// (RFC 7208 §3.3), decoded as UTF-8 with invalid octets replaced. Empty for NXDOMAIN/NODATA.
    /// - SeeAlso: RFC 1035 §3.3.14
    func txt(_ name: String) async throws -> [String]

    /// The TLSA records of `name` (e.g. `_25._tcp.mx.example.com`). Empty for NXDOMAIN/NODATA.
    /// No DNSSEC validation happens here: do not base DANE on these without an AD bit from a
    /// trusted validating resolver.
    /// - SeeAlso: RFC 6698 §2, RFC 7672 §2.2
    func tlsa(_ name: String) async throws -> [TLSAData]
}

/// The outcome of an MX lookup (RFC 5321 §5.1).
public enum MXResult: Hashable, Sendable {
    /// MX records, lowest preference first. Never contains a null MX.
    case records([MXRecord])
    /// The domain exists but has no MX records (NODATA): use the domain itself as an implicit MX
    /// with preference 0 (RFC 5321 §5.1).
    case noRecords
    /// The domain publishes a null MX (`0 .`): it accepts no mail, bounce at once (RFC 7505 §3-4).
    case nullMX
    /// The domain does not exist (NXDOMAIN, RFC 1035 §4.1.1): permanent.
    case nxdomain
}

/// One MX record (RFC 1035 §3.3.9).
public struct MXRecord: Hashable, Sendable {
    /// Lower is preferred.
    public var preference: UInt16
    /// The exchange host name, without the trailing dot.
    public var exchange: String

    public init(preference: UInt16, exchange: String) {
        self.preference = preference
        self.exchange = exchange
    }
}

/// Why a lookup failed. NXDOMAIN and NODATA are results, not errors.
public enum DNSResolverError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The name is not a valid domain name (RFC 1035 §2.3.4). Permanent.
    case invalidName(String)
    /// No nameserver answered in time, over every attempt. Temporary.
    case timeout
    /// Every nameserver answered with this RCODE (SERVFAIL, REFUSED, NOTIMP, FORMERR). Temporary.
    case serverFailure(DNSResponseCode)
    /// Answers came back but did not parse. Temporary.
    case malformedResponse
    /// A CNAME chain comes back to a name already seen (RFC 1034 §3.6.2). Permanent.
    case cnameLoop(String)
    /// A CNAME chain is longer than the configured limit. Permanent.
    case cnameChainTooLong(String)
    /// No nameserver is configured. Temporary (configuration may be fixed without losing mail).
    case noNameservers
    /// A socket error (e.g. network unreachable, connection refused over TCP). Temporary.
    case network(String)

    /// Whether trying again later may succeed (defer) rather than fail the same way (bounce).
    public var isTemporary: Bool {
        switch self {
        case .invalidName, .cnameLoop, .cnameChainTooLong: false
        case .timeout, .serverFailure, .malformedResponse, .noNameservers, .network: true
        }
    }

    /// The opposite of ``isTemporary``.
    public var isPermanent: Bool { !isTemporary }

    public var description: String {
        switch self {
        case .invalidName(let n): "invalid domain name \(n)"
        case .timeout: "DNS timeout"
        case .serverFailure(let rcode): "DNS server failure (\(rcode))"
        case .malformedResponse: "malformed DNS response"
        case .cnameLoop(let n): "CNAME loop at \(n)"
        case .cnameChainTooLong(let n): "CNAME chain too long at \(n)"
        case .noNameservers: "no DNS nameservers configured"
        case .network(let detail): "DNS network error: \(detail)"
        }
    }
}
