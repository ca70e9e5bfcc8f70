import DNSCore

/// One record of a ``TestDNSServer`` zone, written as Swift values.
public struct TestDNSRecord: Sendable, Hashable {
    /// The owner name (`mx1.example.test`).
    public var name: String
    /// The TTL in seconds.
    public var ttl: UInt32
    /// The record data.
    public var data: DNSRecordData

    public init(name: String, ttl: UInt32 = 300, data: DNSRecordData) {
        self.name = name
        self.ttl = ttl
        self.data = data
    }

    /// An MX record; an `exchange` of `"."` with preference 0 is a null MX (RFC 7505).
    public static func mx(_ name: String, _ preference: UInt16, _ exchange: String, ttl: UInt32 = 300) -> TestDNSRecord {
        TestDNSRecord(name: name, ttl: ttl, data: .mx(preference: preference, exchange: try! DNSName(exchange)))
    }

    /// An A record; `address` must be a dotted quad.
    public static func a(_ name: String, _ address: String, ttl: UInt32 = 300) -> TestDNSRecord {
        TestDNSRecord(name: name, ttl: ttl, data: .a(IPv4Address(address)!))
    }

    /// An AAAA record; `address` must be IPv6 text.
    public static func aaaa(_ name: String, _ address: String, ttl: UInt32 = 300) -> TestDNSRecord {
        TestDNSRecord(name: name, ttl: ttl, data: .aaaa(IPv6Address(address)!))
    }

    /// A TXT record made of these character-strings (each at most 255 octets).
    public static func txt(_ name: String, _ strings: [String], ttl: UInt32 = 300) -> TestDNSRecord {
        TestDNSRecord(name: name, ttl: ttl, data: .txt(strings.map { Array($0.utf8) }))
    }

    /// A PTR record (`4.3.2.1.in-addr.arpa` → `host.example.test`).
    public static func ptr(_ name: String, _ target: String, ttl: UInt32 = 300) -> TestDNSRecord {
        TestDNSRecord(name: name, ttl: ttl, data: .ptr(try! DNSName(target)))
    }

    /// A record of a type the zone has no helper for (e.g. the obsolete SPF type 99), with raw RDATA.
    public static func raw(_ name: String, type: DNSRecordType, rdata: [UInt8], ttl: UInt32 = 300) -> TestDNSRecord {
        TestDNSRecord(name: name, ttl: ttl, data: .unknown(type: type, rdata: rdata))
    }

    /// A CNAME record.
    public static func cname(_ name: String, _ target: String, ttl: UInt32 = 300) -> TestDNSRecord {
        TestDNSRecord(name: name, ttl: ttl, data: .cname(try! DNSName(target)))
    }

    /// A TLSA record.
    public static func tlsa(_ name: String, usage: UInt8, selector: UInt8, matchingType: UInt8, data: [UInt8],
                            ttl: UInt32 = 300) -> TestDNSRecord {
        TestDNSRecord(name: name, ttl: ttl, data: .tlsa(TLSAData(usage: usage, selector: selector, matchingType: matchingType, data: data)))
    }
}

/// A misbehaviour a ``TestDNSServer`` can be told to show, for one name or for every name.
public enum TestDNSFault: Sendable, Hashable {
    /// Answer SERVFAIL.
    case serverFailure
    /// Answer REFUSED.
    case refused
    /// Answer NXDOMAIN even if the name exists.
    case nameError
    /// Over UDP, answer with TC set and no records (the client must retry over TCP); TCP answers fully.
    case truncate
    /// Never answer (UDP or TCP), to exercise timeouts.
    case silent
    /// Answer with our ID but a header that promises records that are not there.
    case malformed
    /// Over UDP, first send forged answers carrying `192.0.2.66`/`forged.invalid`: one from another
    /// port with the right ID and question, one with a wrong ID, one with another question; then,
    /// 50 ms later, the real answer.
    case forgedFirst
    /// Answer FORMERR without an OPT record to every query that carries one, like a server that
    /// predates EDNS (RFC 6891 §7); queries without OPT are answered normally.
    case formatErrorToEDNS
}

/// One datagram or TCP message a ``TestDNSZone`` wants sent.
public struct TestDNSReply: Sendable, Hashable {
    /// The message octets.
    public var bytes: [UInt8]
    /// Send it from a different UDP port than the one queried (a spoofing attempt).
    public var fromOtherPort: Bool
    /// Send it after this many milliseconds.
    public var delayMilliseconds: Int64

    public init(bytes: [UInt8], fromOtherPort: Bool = false, delayMilliseconds: Int64 = 0) {
        self.bytes = bytes
        self.fromOtherPort = fromOtherPort
        self.delayMilliseconds = delayMilliseconds
    }
}

/// The authoritative logic of ``TestDNSServer``, without sockets: a zone of records and the replies
/// a query gets (CNAMEs followed inside the zone, NXDOMAIN/NODATA with an SOA, truncation to the
/// client's UDP payload size, and the ``TestDNSFault`` misbehaviours).
public struct TestDNSZone: Sendable {
    /// The records by owner name.
    public private(set) var records: [DNSName: [DNSRecord]] = [:]
    /// The SOA TTL and MINIMUM, i.e. the negative-caching TTL (RFC 2308 §5).
    public var negativeTTL: UInt32

    public init(_ zone: [TestDNSRecord], negativeTTL: UInt32 = 60) {
        self.negativeTTL = negativeTTL
        for r in zone {
            // By labels, so that names with any printable octet (an SPF test's space) can be served.
            let name = try! DNSName(labels: r.name.split(separator: ".").map { Array($0.utf8) })
            records[name, default: []].append(DNSRecord(name: name, ttl: r.ttl, data: r.data))
        }
    }

    /// Whether `name` owns records or lies above a name that does (an empty non-terminal).
    public func exists(_ name: DNSName) -> Bool {
        records.keys.contains { $0.isSubdomain(of: name) }
    }

    private func soa(for name: DNSName) -> DNSRecord {
        let apex = try! DNSName(labels: Array(name.labels.suffix(1)))
        let mname = try! DNSName(labels: [Array("ns".utf8)] + apex.labels)
        let rname = try! DNSName(labels: [Array("hostmaster".utf8)] + apex.labels)
        return DNSRecord(name: apex, ttl: negativeTTL,
                         data: .soa(SOAData(mname: mname, rname: rname, serial: 1, refresh: 3600, retry: 600,
                                            expire: 86_400, minimum: negativeTTL)))
    }

    /// The full (untruncated) response to `query`.
    public func response(to query: DNSMessage, fault: TestDNSFault? = nil) -> DNSMessage {
        var header = DNSHeader(id: query.header.id, isResponse: true, isAuthoritative: true,
                               recursionDesired: query.header.recursionDesired, recursionAvailable: true)
        var response = DNSMessage(header: header, questions: query.questions,
                                  edns: query.edns.map { _ in EDNS(udpPayloadSize: 1232) })
        guard query.header.opcode == 0, query.questions.count == 1 else {
            response.header.responseCode = .formatError
            return response
        }
        let question = query.questions[0]
        if fault == .formatErrorToEDNS && query.edns != nil {
            response.edns = nil
            response.header.responseCode = .formatError
            return response
        }
        switch fault {
        case .serverFailure:
            response.header.responseCode = .serverFailure
            return response
        case .refused:
            response.header.responseCode = .refused
            return response
        case .nameError:
            response.header.responseCode = .nameError
            response.authorities = [soa(for: question.name)]
            return response
        default:
            break
        }
        var name = question.name
        var seen: Set<DNSName> = [name]
        while true {
            guard exists(name) else {
                header.responseCode = .nameError
                response.header = header
                response.authorities = [soa(for: name)]
                return response
            }
            let here = records[name] ?? []
            let data = here.filter { $0.type == question.type || question.type == .any }
            if !data.isEmpty {
                response.answers += data
                return response
            }
            if question.type != .cname, let alias = here.first(where: { $0.type == .cname }),
               case .cname(let target) = alias.data {
                response.answers.append(alias)
                guard seen.insert(target).inserted else { return response }
                name = target
                continue
            }
            response.authorities = [soa(for: name)]
            return response
        }
    }

    /// The replies to send for the query octets `bytes`, over UDP or TCP. Unparseable queries get none.
    public func replies(to bytes: [UInt8], overTCP: Bool, fault: TestDNSFault?) -> [TestDNSReply] {
        guard let query = try? DNSMessageParser.parse(bytes), !query.header.isResponse else { return [] }
        switch fault {
        case .silent:
            return []
        case .malformed:
            let id = query.header.id
            return [TestDNSReply(bytes: [UInt8(id >> 8), UInt8(id & 0xFF), 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0, 3, 0x61])]
        default:
            break
        }
        let full = response(to: query, fault: fault)
        var encoded = DNSMessageEncoder.encode(full)
        let limit = max(512, Int(query.edns?.udpPayloadSize ?? 512))
        if !overTCP && (fault == .truncate || encoded.count > limit) {
            var truncated = full
            truncated.header.isTruncated = true
            truncated.answers = []
            truncated.authorities = []
            truncated.additionals = []
            encoded = DNSMessageEncoder.encode(truncated)
        }
        guard fault == .forgedFirst, !overTCP, let question = query.questions.first else {
            return [TestDNSReply(bytes: encoded)]
        }
        let forgedData: DNSRecordData = switch question.type {
        case .aaaa: .aaaa(IPv6Address("2001:db8::66")!)
        case .mx: .mx(preference: 0, exchange: try! DNSName("forged.invalid"))
        case .txt: .txt([Array("forged".utf8)])
        default: .a(IPv4Address("192.0.2.66")!)
        }
        var forged = full
        forged.header.responseCode = .noError
        forged.answers = [DNSRecord(name: question.name, ttl: 86_400, data: forgedData)]
        forged.authorities = []
        var wrongID = forged
        wrongID.header.id &+= 1
        var wrongQuestion = forged
        wrongQuestion.questions = [DNSQuestion(name: try! DNSName("forged.invalid"), type: question.type)]
        return [
            TestDNSReply(bytes: DNSMessageEncoder.encode(forged), fromOtherPort: true),
            TestDNSReply(bytes: DNSMessageEncoder.encode(wrongID)),
            TestDNSReply(bytes: DNSMessageEncoder.encode(wrongQuestion)),
            TestDNSReply(bytes: encoded, delayMilliseconds: 50),
        ]
    }
}
