/// What SPF, DKIM and DMARC evaluation need from DNS. MailAuth does no I/O: the caller supplies an
/// implementation (Swallow adapts its stub resolver; tests serve a zone). CNAMEs are the
/// implementation's business: answers are the records at the end of the chain.
///
/// Every method returns ``MailAuthLookup/nxdomain`` for a name that does not exist (RCODE 3) and
/// `.records([])` for one without records of the type (NODATA); RFC 7208 §4.6.4 counts both as void
/// lookups. Anything else that keeps an answer from arriving — a timeout, SERVFAIL, a truncated or
/// malformed answer — is thrown as ``MailAuthDNSError``, which the evaluators turn into the RFCs'
/// `temperror` (RFC 7208 §2.6.6, RFC 6376 §6.1.2, RFC 9989 §4.10), never into a `fail`.
public protocol MailAuthResolver: Sendable {
    /// The TXT records of `name`, one string per record with its character-strings concatenated
    /// (RFC 7208 §3.3), as raw octets.
    func txt(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<[UInt8]>
    /// The A records of `name`, 4 octets each.
    func ipv4(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<[UInt8]>
    /// The AAAA records of `name`, 16 octets each.
    func ipv6(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<[UInt8]>
    /// The exchange names of the MX records of `name`, lowest preference first, without the
    /// trailing dot (a null MX `.` is returned as the empty string).
    func mx(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<String>
    /// The target names of the PTR records of `name` (`4.3.2.1.in-addr.arpa`), without the trailing dot.
    func ptr(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<String>
}

/// A DNS answer: the records found (possibly none), or the name does not exist.
public enum MailAuthLookup<Record: Sendable & Hashable>: Sendable, Hashable {
    /// NOERROR with these records (empty: NODATA).
    case records([Record])
    /// NXDOMAIN.
    case nxdomain

    /// The records; empty for NXDOMAIN.
    public var records: [Record] {
        switch self {
        case .records(let r): r
        case .nxdomain: []
        }
    }

    /// Whether the answer is void in the sense of RFC 7208 §4.6.4: NXDOMAIN or no records.
    public var isVoid: Bool { records.isEmpty }
}

/// A lookup that did not produce an answer. Always temporary from the evaluators' point of view.
public struct MailAuthDNSError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong, for the result's reason text (`DNS timeout`, `SERVFAIL`).
    public var reason: String

    public init(_ reason: String) { self.reason = reason }

    public var description: String { reason }
}
