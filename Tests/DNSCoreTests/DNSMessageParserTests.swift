import DNSCore
import MailTesting
import Testing

/// Real-world shaped packets, written by hand (offsets in the comments).
enum Packets {
    /// example.com MX → 10 mail.example.com, 20 mx2.example.com; both exchanges compressed against the question.
    static let mx = h("1234 8180 0001 0002 0000 0000") + n("example.com") + h("000f 0001")
        + h("c00c 000f 0001 00000e10 0009 000a") + l("mail") + h("c00c")
        + h("c00c 000f 0001 00000e10 0008 0014") + l("mx2") + h("c00c")

    /// nope.example.com A → NXDOMAIN with the SOA of example.com (at offset 17) in the authority section.
    static let nxdomain = h("abcd 8183 0001 0000 0001 0000") + n("nope.example.com") + h("0001 0001")
        + h("c011 0006 0001 00000384 0027") + l("ns1") + h("c011") + l("hostmaster") + h("c011")
        + h("78a2f0c1 00001c20 00000e10 00093a80 0000012c")

    /// example.org TXT → "v=spf1 " "-all", with an OPT record (payload 1232).
    static let txt = h("0001 8180 0001 0001 0000 0001") + n("example.org") + h("0010 0001")
        + h("c00c 0010 0001 0000012c 000d") + l("v=spf1 ") + l("-all")
        + h("00 0029 04d0 00000000 0000")

    /// www.example.net AAAA → CNAME host.example.net (example.net at 16), then its AAAA (host at 45).
    static let cnameAAAA = h("0002 8180 0001 0002 0000 0000") + n("www.example.net") + h("001c 0001")
        + h("c00c 0005 0001 0000003c 0007") + l("host") + h("c010")
        + h("c02d 001c 0001 0000003c 0010 20010db8000000000000000000000001")

    /// _25._tcp.mx.example.com TLSA 3 1 1 <32 octets>, then an unknown TYPE65 record.
    static let tlsa = h("0003 8180 0001 0002 0000 0000") + n("_25._tcp.mx.example.com") + h("0034 0001")
        + h("c00c 0034 0001 00000e10 0023 03 01 01") + Array(repeating: 0xAB, count: 32)
        + h("c00c 0041 0001 00000e10 0003 010203")

    /// example.com MX → null MX (RFC 7505): 0 "."
    static let nullMX = h("0004 8180 0001 0001 0000 0000") + n("example.com") + h("000f 0001")
        + h("c00c 000f 0001 00000e10 0003 0000 00")

    static let all = [mx, nxdomain, txt, cnameAAAA, tlsa, nullMX]
}

@Suite struct DNSMessageParserTests {
    @Test func mxResponse() throws {
        let m = try DNSMessageParser.parse(Packets.mx)
        #expect(m.header.id == 0x1234 && m.header.isResponse && m.header.recursionAvailable && !m.header.isTruncated)
        #expect(m.header.responseCode == .noError)
        #expect(m.questions == [DNSQuestion(name: try DNSName("example.com"), type: .mx)])
        #expect(m.answers.map(\.data) == [
            .mx(preference: 10, exchange: try DNSName("mail.example.com")),
            .mx(preference: 20, exchange: try DNSName("mx2.example.com")),
        ])
        let owner = try DNSName("example.com")
        #expect(m.answers.allSatisfy { $0.ttl == 3600 && $0.name == owner })
    }

    @Test func nxdomainWithSOA() throws {
        let m = try DNSMessageParser.parse(Packets.nxdomain)
        #expect(m.header.responseCode == .nameError)
        #expect(m.answers.isEmpty)
        #expect(m.authorities.count == 1)
        guard case .soa(let soa) = m.authorities[0].data else { Issue.record("no SOA"); return }
        #expect(m.authorities[0].name == (try DNSName("example.com")))
        #expect(soa.mname == (try DNSName("ns1.example.com")))
        #expect(soa.rname == (try DNSName("hostmaster.example.com")))
        #expect(soa.serial == 0x78A2_F0C1 && soa.minimum == 300)
    }

    @Test func txtAndOPT() throws {
        let m = try DNSMessageParser.parse(Packets.txt)
        #expect(m.answers.map(\.data) == [.txt([Array("v=spf1 ".utf8), Array("-all".utf8)])])
        #expect(m.edns == EDNS(udpPayloadSize: 1232))
        #expect(m.additionals.isEmpty)
    }

    @Test func cnameThenAAAA() throws {
        let m = try DNSMessageParser.parse(Packets.cnameAAAA)
        #expect(m.answers.map(\.data) == [.cname(try DNSName("host.example.net")), .aaaa(IPv6Address("2001:db8::1")!)])
        #expect(m.answers[1].name == (try DNSName("host.example.net")))
    }

    @Test func tlsaAndUnknownType() throws {
        let m = try DNSMessageParser.parse(Packets.tlsa)
        #expect(m.answers.map(\.data) == [
            .tlsa(TLSAData(usage: 3, selector: 1, matchingType: 1, data: Array(repeating: 0xAB, count: 32))),
            .unknown(type: DNSRecordType(rawValue: 65), rdata: [1, 2, 3]),
        ])
    }

    @Test func nullMX() throws {
        let m = try DNSMessageParser.parse(Packets.nullMX)
        #expect(m.answers.map(\.data) == [.mx(preference: 0, exchange: .root)])
    }

    @Test(arguments: Packets.all)
    func everyShorterPrefixIsAnError(packet: [UInt8]) {
        for length in 0..<packet.count {
            #expect(throws: DNSParseError.self) { try DNSMessageParser.parse(Array(packet[0..<length])) }
        }
    }

    static let header1Q = h("0001 8180 0001 0000 0000 0000")
    static let header1A = h("0001 8180 0001 0001 0000 0000")
    static let label63 = l(String(repeating: "a", count: 63))

    /// Hostile and broken packets and the error each must give.
    static let hostile: [(String, [UInt8], DNSParseError)] = [
        ("empty", [], .truncated),
        ("short header", h("0001 8180 0001 0000 0000"), .truncated),
        ("question promised, none sent", header1Q, .truncated),
        ("pointer to itself", header1Q + h("c00c 0001 0001"), .badPointer),
        ("forward pointer", header1Q + h("c00e") + n("a.test") + h("0001 0001"), .badPointer),
        ("label then pointer back into the same name", header1Q + l("a") + h("c00c 0001 0001"), .badPointer),
        ("pointer past the end", header1Q + h("ffff 0001 0001"), .badPointer),
        ("pointer cut in half", header1Q + h("c0"), .truncated),
        ("label longer than 63 (type bits 01)", header1Q + [64] + Array(repeating: 0x61, count: 64) + h("00 0001 0001"), .badLabelType),
        ("label type 10", header1Q + h("80 00 0001 0001"), .badLabelType),
        ("label runs past the end", header1Q + h("05 6162"), .truncated),
        ("name over 255 octets", header1Q + label63 + label63 + label63 + label63 + h("00 0001 0001"), .nameTooLong),
        ("name over 255 octets through backward pointers",
         h("0001 8180 0004 0000 0000 0000") + label63 + h("00 0001 0001")
            + label63 + h("c00c 0001 0001") + label63 + h("c051 0001 0001") + label63 + h("c097 0001 0001"),
         .nameTooLong),
        ("rdlength past the end", header1A + n("a.test") + h("0001 0001") + h("c00c 0001 0001 00000e10 0004 7f00"), .rdataOverrun),
        ("rdlength 65535", header1A + n("a.test") + h("0001 0001") + h("c00c 0001 0001 00000e10 ffff 7f000001"), .rdataOverrun),
        ("A of 5 octets", header1A + n("a.test") + h("0001 0001") + h("c00c 0001 0001 00000e10 0005 7f00000101"), .badRData(.a)),
        ("AAAA of 4 octets", header1A + n("a.test") + h("001c 0001") + h("c00c 001c 0001 00000e10 0004 7f000001"), .badRData(.aaaa)),
        ("MX exchange crosses rdlength", header1A + n("a.test") + h("000f 0001") + h("c00c 000f 0001 00000e10 0003 000a") + l("mx") + h("00"), .badRData(.mx)),
        ("MX exchange shorter than rdlength", header1A + n("a.test") + h("000f 0001") + h("c00c 000f 0001 00000e10 0006 000a c00c 0000"), .badRData(.mx)),
        ("MX of 2 octets", header1A + n("a.test") + h("000f 0001") + h("c00c 000f 0001 00000e10 0002 000a"), .badRData(.mx)),
        ("TXT string overruns rdlength", header1A + n("a.test") + h("0010 0001") + h("c00c 0010 0001 00000e10 0003 05 6162"), .badRData(.txt)),
        ("SOA without its numbers", header1A + n("a.test") + h("0006 0001") + h("c00c 0006 0001 00000e10 0008 c00c c00c 00000001"), .badRData(.soa)),
        ("TLSA of 2 octets", header1A + n("a.test") + h("0034 0001") + h("c00c 0034 0001 00000e10 0002 0301"), .badRData(.tlsa)),
        ("CNAME pointing forward from rdata", header1A + n("a.test") + h("0005 0001") + h("c00c 0005 0001 00000e10 0002 c0ff"), .badPointer),
        ("two OPT records", h("0001 8180 0000 0000 0000 0002") + h("00 0029 04d0 00000000 0000") + h("00 0029 04d0 00000000 0000"), .badOPT),
        ("OPT with an owner name", h("0001 8180 0000 0000 0000 0001") + n("a") + h("0029 04d0 00000000 0000"), .badOPT),
        ("trailing garbage", header1Q + n("a.test") + h("0001 0001 ff"), .trailingBytes),
        ("65535 questions announced, one sent", h("0001 8180 ffff 0000 0000 0000") + n("a.test") + h("0001 0001"), .truncated),
        ("65535 of every section, nothing sent", h("0001 8180 ffff ffff ffff ffff"), .truncated),
    ]

    @Test(arguments: hostile.indices)
    func hostilePacket(index: Int) {
        let (name, bytes, expected) = Self.hostile[index]
        #expect(throws: expected, "\(name)") { try DNSMessageParser.parse(bytes) }
    }

    @Test func longestLegalNameThroughPointers() throws {
        // 63 + 63 + 63 + 61 octets of labels over three pointers: exactly 255 octets.
        let label61 = l(String(repeating: "d", count: 61))
        let bytes = h("0001 8180 0004 0000 0000 0000") + label61 + h("00 0001 0001")
            + Self.label63 + h("c00c 0001 0001") + Self.label63 + h("c04f 0001 0001") + Self.label63 + h("c095 0001 0001")
        let m = try DNSMessageParser.parse(bytes)
        #expect(m.questions[3].name.wireLength == 255)
        #expect(m.questions[3].name.labels.count == 4)
    }

    @Test func peekIDNeedsTwoOctets() {
        #expect(DNSMessageParser.peekID([0x12]) == nil)
        #expect(DNSMessageParser.peekID([0x12, 0x34, 0x00]) == 0x1234)
    }

    /// Random mutations of real packets: the parser must return or throw, never trap or hang, and
    /// whatever it accepts must encode and parse again.
    @Test(arguments: [UInt64(1), 2, 3, 4])
    func randomMutationsNeverCrash(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        var accepted = 0
        for _ in 0..<5_000 {
            var packet = Packets.all.randomElement(using: &rng)!
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                switch Int.random(in: 0..<6, using: &rng) {
                case 0: packet[Int.random(in: 0..<packet.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                case 1: packet[Int.random(in: 0..<packet.count, using: &rng)] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
                case 2: packet[Int.random(in: 12..<packet.count, using: &rng)] = 0xC0 | UInt8.random(in: 0...0x3F, using: &rng)
                case 3: packet.removeLast(Int.random(in: 0..<min(8, packet.count - 1), using: &rng))
                case 4: packet.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...packet.count, using: &rng))
                default: packet[Int.random(in: 0..<12, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            }
            if let message = try? DNSMessageParser.parse(packet) {
                accepted += 1
                let again = try DNSMessageParser.parse(DNSMessageEncoder.encode(message))
                #expect(again.questions == message.questions)
                #expect(again.answers == message.answers)
            }
        }
        #expect(accepted > 0)
    }
}
