/// A resource record TYPE or query QTYPE (RFC 1035 §3.2.2, §3.2.3), open to values we do not know.
public struct DNSRecordType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// IPv4 host address (RFC 1035 §3.4.1).
    public static let a = DNSRecordType(rawValue: 1)
    /// Authoritative name server (RFC 1035 §3.3.11).
    public static let ns = DNSRecordType(rawValue: 2)
    /// Canonical name (RFC 1035 §3.3.1).
    public static let cname = DNSRecordType(rawValue: 5)
    /// Start of authority (RFC 1035 §3.3.13).
    public static let soa = DNSRecordType(rawValue: 6)
    /// Domain name pointer (RFC 1035 §3.3.12).
    public static let ptr = DNSRecordType(rawValue: 12)
    /// Mail exchange (RFC 1035 §3.3.9).
    public static let mx = DNSRecordType(rawValue: 15)
    /// Text strings (RFC 1035 §3.3.14).
    public static let txt = DNSRecordType(rawValue: 16)
    /// IPv6 host address (RFC 3596 §2.1).
    public static let aaaa = DNSRecordType(rawValue: 28)
    /// EDNS(0) pseudo-record (RFC 6891 §6.1.1).
    public static let opt = DNSRecordType(rawValue: 41)
    /// TLSA certificate association (RFC 6698 §2).
    public static let tlsa = DNSRecordType(rawValue: 52)
    /// Query for all records (RFC 1035 §3.2.3; RFC 8482 discourages it).
    public static let any = DNSRecordType(rawValue: 255)

    public var description: String {
        switch self {
        case .a: "A"
        case .ns: "NS"
        case .cname: "CNAME"
        case .soa: "SOA"
        case .ptr: "PTR"
        case .mx: "MX"
        case .txt: "TXT"
        case .aaaa: "AAAA"
        case .opt: "OPT"
        case .tlsa: "TLSA"
        case .any: "ANY"
        default: "TYPE\(rawValue)"
        }
    }
}

/// A record CLASS (RFC 1035 §3.2.4). Only IN is used by mail.
public struct DNSClass: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// The Internet (RFC 1035 §3.2.4).
    public static let internet = DNSClass(rawValue: 1)
}

/// A response code (RFC 1035 §4.1.1, RFC 6895 §2.3), 12 bits when EDNS(0) extends it (RFC 6891 §6.1.3).
public struct DNSResponseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// No error.
    public static let noError = DNSResponseCode(rawValue: 0)
    /// The server could not interpret the query.
    public static let formatError = DNSResponseCode(rawValue: 1)
    /// The server failed (temporary).
    public static let serverFailure = DNSResponseCode(rawValue: 2)
    /// The name does not exist (authoritative).
    public static let nameError = DNSResponseCode(rawValue: 3)
    /// The query kind is not implemented.
    public static let notImplemented = DNSResponseCode(rawValue: 4)
    /// The server refuses to answer (policy).
    public static let refused = DNSResponseCode(rawValue: 5)
    /// Unsupported EDNS version (RFC 6891 §9).
    public static let badVersion = DNSResponseCode(rawValue: 16)

    public var description: String {
        switch self {
        case .noError: "NOERROR"
        case .formatError: "FORMERR"
        case .serverFailure: "SERVFAIL"
        case .nameError: "NXDOMAIN"
        case .notImplemented: "NOTIMP"
        case .refused: "REFUSED"
        case .badVersion: "BADVERS"
        default: "RCODE\(rawValue)"
        }
    }
}
