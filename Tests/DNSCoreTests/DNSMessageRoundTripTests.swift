import DNSCore
import NIOCore
import Testing

@Suite struct DNSMessageRoundTripTests {
    static func sample() throws -> DNSMessage {
        let zone = try DNSName("example.test")
        func name(_ s: String) throws -> DNSName { try DNSName(s) }
        return DNSMessage(
            header: DNSHeader(id: 0xBEEF, isResponse: true, isAuthoritative: true, recursionDesired: true,
                              recursionAvailable: true, authenticData: true),
            questions: [DNSQuestion(name: zone, type: .mx)],
            answers: [
                DNSRecord(name: zone, ttl: 3600, data: .mx(preference: 10, exchange: try name("mx1.example.test"))),
                DNSRecord(name: zone, ttl: 3600, data: .mx(preference: 20, exchange: try name("mx2.Example.test"))),
                DNSRecord(name: try name("mx1.example.test"), ttl: 60, data: .a(IPv4Address("192.0.2.1")!)),
                DNSRecord(name: try name("mx1.example.test"), ttl: 60, data: .aaaa(IPv6Address("2001:db8::1")!)),
                DNSRecord(name: try name("www.example.test"), ttl: 60, data: .cname(try name("mx1.example.test"))),
                DNSRecord(name: zone, ttl: 60, data: .txt([Array("v=spf1 ".utf8), Array("-all".utf8), []])),
                DNSRecord(name: try name("_25._tcp.mx1.example.test"), ttl: 60,
                          data: .tlsa(TLSAData(usage: 3, selector: 1, matchingType: 1, data: Array(0..<32)))),
                DNSRecord(name: try name("1.2.0.192.in-addr.arpa"), ttl: 60, data: .ptr(try name("mx1.example.test"))),
                DNSRecord(name: zone, ttl: 0xFFFF_FFFF, data: .unknown(type: DNSRecordType(rawValue: 65), rdata: [1, 2, 3])),
            ],
            authorities: [
                DNSRecord(name: zone, ttl: 3600, data: .ns(try name("ns1.example.test"))),
                DNSRecord(name: zone, ttl: 3600, data: .soa(SOAData(
                    mname: try name("ns1.example.test"), rname: try name("hostmaster.example.test"),
                    serial: 2024_01_01, refresh: 7200, retry: 3600, expire: 1_209_600, minimum: 300))),
            ],
            additionals: [DNSRecord(name: try name("ns1.example.test"), ttl: 60, data: .a(IPv4Address("192.0.2.53")!))],
            edns: EDNS(udpPayloadSize: 1232, dnssecOK: true, options: [0, 10, 0, 2, 0xAB, 0xCD]))
    }

    @Test(arguments: [true, false])
    func everyTypeSurvives(compress: Bool) throws {
        let message = try Self.sample()
        let bytes = DNSMessageEncoder.encode(message, compressNames: compress)
        #expect(try DNSMessageParser.parse(bytes) == message)
    }

    @Test func compressionShrinks() throws {
        let message = try Self.sample()
        #expect(DNSMessageEncoder.encode(message).count < DNSMessageEncoder.encode(message, compressNames: false).count)
    }

    @Test func extendedResponseCodeTravelsInOPT() throws {
        var message = DNSMessage(header: DNSHeader(id: 1, isResponse: true, responseCode: .badVersion), edns: EDNS())
        message.questions = [DNSQuestion(name: try DNSName("example.test"), type: .a)]
        let parsed = try DNSMessageParser.parse(DNSMessageEncoder.encode(message))
        #expect(parsed.header.responseCode == .badVersion)
    }

    @Test func queryHasEDNSAndRecursion() throws {
        let query = DNSMessage.query(id: 0x1234, name: try DNSName("example.test"), type: .mx)
        let bytes = DNSMessageEncoder.encode(query)
        #expect(Array(bytes[0..<12]) == h("1234 0100 0001 0000 0000 0001"))
        #expect(Array(bytes[12...]) == n("example.test") + h("000f 0001") + h("00 0029 04d0 00000000 0000"))
        var buffer = ByteBuffer()
        buffer.writeDNSMessage(query)
        #expect(try DNSMessageParser.parse(buffer) == query)
    }

    @Test func ttlWithTopBitIsZero() {
        let record = DNSRecord(name: .root, ttl: 0x8000_0000, data: .a(IPv4Address("192.0.2.1")!))
        #expect(record.effectiveTTL == 0)
    }
}
