/// The fixed 12-octet header of a DNS message (RFC 1035 §4.1.1).
public struct DNSHeader: Hashable, Sendable {
    /// The query identifier the response must echo.
    public var id: UInt16
    /// QR: this is a response.
    public var isResponse: Bool
    /// OPCODE (0 = standard query).
    public var opcode: UInt8
    /// AA: authoritative answer.
    public var isAuthoritative: Bool
    /// TC: the message was truncated to fit the transport (RFC 1035 §4.2.1); retry over TCP.
    public var isTruncated: Bool
    /// RD: recursion desired.
    public var recursionDesired: Bool
    /// RA: recursion available.
    public var recursionAvailable: Bool
    /// AD: authentic data (RFC 4035 §3.2.3). Only meaningful over a trusted path to a validating resolver.
    public var authenticData: Bool
    /// CD: checking disabled (RFC 4035 §3.2.2).
    public var checkingDisabled: Bool
    /// RCODE, including the upper 8 bits from an OPT record when present (RFC 6891 §6.1.3).
    public var responseCode: DNSResponseCode

    public init(id: UInt16, isResponse: Bool = false, opcode: UInt8 = 0, isAuthoritative: Bool = false,
                isTruncated: Bool = false, recursionDesired: Bool = true, recursionAvailable: Bool = false,
                authenticData: Bool = false, checkingDisabled: Bool = false, responseCode: DNSResponseCode = .noError) {
        self.id = id
        self.isResponse = isResponse
        self.opcode = opcode
        self.isAuthoritative = isAuthoritative
        self.isTruncated = isTruncated
        self.recursionDesired = recursionDesired
        self.recursionAvailable = recursionAvailable
        self.authenticData = authenticData
        self.checkingDisabled = checkingDisabled
        self.responseCode = responseCode
    }
}

/// One entry of the question section (RFC 1035 §4.1.2).
public struct DNSQuestion: Hashable, Sendable {
    public var name: DNSName
    public var type: DNSRecordType
    public var recordClass: DNSClass

    public init(name: DNSName, type: DNSRecordType, recordClass: DNSClass = .internet) {
        self.name = name
        self.type = type
        self.recordClass = recordClass
    }
}

/// A resource record (RFC 1035 §4.1.3).
public struct DNSRecord: Hashable, Sendable {
    /// The owner name.
    public var name: DNSName
    /// CLASS; for OPT, the requestor's UDP payload size (RFC 6891 §6.1.2).
    public var recordClass: DNSClass
    /// TTL in seconds as sent; for OPT, extended RCODE, version and flags (RFC 6891 §6.1.3).
    /// RFC 2181 §8: values with the top bit set mean 0, see ``effectiveTTL``.
    public var ttl: UInt32
    /// The typed record data.
    public var data: DNSRecordData

    public init(name: DNSName, recordClass: DNSClass = .internet, ttl: UInt32, data: DNSRecordData) {
        self.name = name
        self.recordClass = recordClass
        self.ttl = ttl
        self.data = data
    }

    /// The record TYPE, derived from ``data``.
    public var type: DNSRecordType { data.type }

    /// The TTL as RFC 2181 §8 says to read it: values above 2³¹ − 1 are 0.
    public var effectiveTTL: UInt32 { ttl > 0x7FFF_FFFF ? 0 : ttl }
}

/// The typed RDATA of the record types mail needs; anything else is kept as raw octets.
public enum DNSRecordData: Hashable, Sendable {
    /// RFC 1035 §3.4.1.
    case a(IPv4Address)
    /// RFC 3596 §2.2.
    case aaaa(IPv6Address)
    /// RFC 1035 §3.3.1.
    case cname(DNSName)
    /// RFC 1035 §3.3.11.
    case ns(DNSName)
    /// RFC 1035 §3.3.12.
    case ptr(DNSName)
    /// RFC 1035 §3.3.9; an exchange of `.` with preference 0 is a null MX (RFC 7505 §3).
    case mx(preference: UInt16, exchange: DNSName)
    /// RFC 1035 §3.3.14: one or more character-strings of at most 255 octets each.
    case txt([[UInt8]])
    /// RFC 1035 §3.3.13; `minimum` bounds negative caching (RFC 2308 §4).
    case soa(SOAData)
    /// RFC 6698 §2.1.
    case tlsa(TLSAData)
    /// RFC 6891 §6.1.2: the raw option octets.
    case opt([UInt8])
    /// Any other type, RDATA kept verbatim (RFC 3597 §5).
    case unknown(type: DNSRecordType, rdata: [UInt8])

    /// The TYPE this data belongs to.
    public var type: DNSRecordType {
        switch self {
        case .a: .a
        case .aaaa: .aaaa
        case .cname: .cname
        case .ns: .ns
        case .ptr: .ptr
        case .mx: .mx
        case .txt: .txt
        case .soa: .soa
        case .tlsa: .tlsa
        case .opt: .opt
        case .unknown(let type, _): type
        }
    }
}

/// SOA RDATA (RFC 1035 §3.3.13).
public struct SOAData: Hashable, Sendable {
    public var mname: DNSName
    public var rname: DNSName
    public var serial: UInt32
    public var refresh: UInt32
    public var retry: UInt32
    public var expire: UInt32
    /// The negative-caching TTL (RFC 2308 §4).
    public var minimum: UInt32

    public init(mname: DNSName, rname: DNSName, serial: UInt32, refresh: UInt32, retry: UInt32, expire: UInt32, minimum: UInt32) {
        self.mname = mname
        self.rname = rname
        self.serial = serial
        self.refresh = refresh
        self.retry = retry
        self.expire = expire
        self.minimum = minimum
    }
}

/// TLSA RDATA (RFC 6698 §2.1).
public struct TLSAData: Hashable, Sendable {
    /// Certificate usage (0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE).
    public var usage: UInt8
    /// Selector (0 full certificate, 1 SubjectPublicKeyInfo).
    public var selector: UInt8
    /// Matching type (0 exact, 1 SHA-256, 2 SHA-512).
    public var matchingType: UInt8
    /// Certificate association data.
    public var data: [UInt8]

    public init(usage: UInt8, selector: UInt8, matchingType: UInt8, data: [UInt8]) {
        self.usage = usage
        self.selector = selector
        self.matchingType = matchingType
        self.data = data
    }
}

/// A whole DNS message (RFC 1035 §4.1).
public struct DNSMessage: Hashable, Sendable {
    public var header: DNSHeader
    public var questions: [DNSQuestion]
    public var answers: [DNSRecord]
    public var authorities: [DNSRecord]
    /// The additional section, OPT excluded (see ``edns``).
    public var additionals: [DNSRecord]
    /// The EDNS(0) OPT pseudo-record, when present (RFC 6891 §6.1.1).
    public var edns: EDNS?

    public init(header: DNSHeader, questions: [DNSQuestion] = [], answers: [DNSRecord] = [],
                authorities: [DNSRecord] = [], additionals: [DNSRecord] = [], edns: EDNS? = nil) {
        self.header = header
        self.questions = questions
        self.answers = answers
        self.authorities = authorities
        self.additionals = additionals
        self.edns = edns
    }

    /// A standard recursive query for one name and type, with an OPT record advertising
    /// `udpPayloadSize` octets unless it is `nil` (RFC 6891 §6.2.5; 1232 avoids IP fragmentation).
    public static func query(id: UInt16, name: DNSName, type: DNSRecordType, udpPayloadSize: UInt16? = 1232) -> DNSMessage {
        DNSMessage(header: DNSHeader(id: id, recursionDesired: true),
                   questions: [DNSQuestion(name: name, type: type)],
                   edns: udpPayloadSize.map { EDNS(udpPayloadSize: $0) })
    }
}

/// EDNS(0) parameters carried in the OPT pseudo-record (RFC 6891 §6.1).
public struct EDNS: Hashable, Sendable {
    /// The largest UDP payload the sender can reassemble (values below 512 are read as 512).
    public var udpPayloadSize: UInt16
    /// The EDNS version (0).
    public var version: UInt8
    /// DO: DNSSEC OK (RFC 3225).
    public var dnssecOK: Bool
    /// The raw options (RFC 6891 §6.1.2).
    public var options: [UInt8]

    public init(udpPayloadSize: UInt16 = 1232, version: UInt8 = 0, dnssecOK: Bool = false, options: [UInt8] = []) {
        self.udpPayloadSize = udpPayloadSize
        self.version = version
        self.dnssecOK = dnssecOK
        self.options = options
    }
}
