import DNSCore
import Testing

@Suite struct DNSNameTests {
    @Test(arguments: [
        ("example.com", ["example", "com"]),
        ("example.com.", ["example", "com"]),
        (".", []),
        ("", []),
        ("_25._tcp.MX.Example.TEST", ["_25", "_tcp", "MX", "Example", "TEST"]),
    ])
    func parses(text: String, labels: [String]) throws {
        let name = try DNSName(text)
        #expect(name.labels == labels.map { Array($0.utf8) })
    }

    @Test(arguments: [
        ("a..b", DNSNameError.emptyLabel),
        (".a", .emptyLabel),
        (String(repeating: "a", count: 64) + ".test", .labelTooLong),
        (Array(repeating: String(repeating: "a", count: 63), count: 4).joined(separator: "."), .nameTooLong),
        ("bücher.test", .invalidCharacter),
        ("a b.test", .invalidCharacter),
        ("a\\.b", .invalidCharacter),
    ])
    func rejects(text: String, error: DNSNameError) {
        #expect(throws: error) { try DNSName(text) }
    }

    @Test func limitsAreExact() throws {
        // 3 × 63 + 61 = 250 octets of labels, 4 + 1 length/root octets: exactly 255.
        let longest = [String(repeating: "a", count: 63), String(repeating: "b", count: 63),
                       String(repeating: "c", count: 63), String(repeating: "d", count: 61)].joined(separator: ".")
        #expect(try DNSName(longest).wireLength == 255)
        #expect(throws: DNSNameError.nameTooLong) { try DNSName(longest + "d") }
    }

    @Test func comparesCaseInsensitively() throws {
        #expect(try DNSName("MX.Example.TEST") == DNSName("mx.example.test."))
        #expect(try Set([DNSName("A.test"), DNSName("a.TEST")]).count == 1)
        #expect(try DNSName("mx.example.test").isSubdomain(of: DNSName("EXAMPLE.test")))
        #expect(try !DNSName("example.test").isSubdomain(of: DNSName("mx.example.test")))
    }

    @Test func describesHostileLabelsEscaped() throws {
        let name = try DNSName(labels: [[0x61, 0x2E, 0x00], Array("test".utf8)])
        #expect(name.description == "a\\046\\000.test")
        #expect(DNSName.root.description == ".")
    }

    @Test(arguments: [
        ("2001:db8::1", "2001:db8::1"),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
        ("::ffff:192.0.2.1", "::ffff:c000:201"),
    ])
    func ipv6Text(input: String, canonical: String) throws {
        let address = try #require(IPv6Address(input))
        #expect(address.description == canonical)
        #expect(IPv6Address(canonical) == address)
    }

    @Test(arguments: ["1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "::g", "1:2:3:4:5:6:7", ""])
    func ipv6Rejects(input: String) {
        #expect(IPv6Address(input) == nil)
    }

    @Test func ipv4Text() {
        #expect(IPv4Address("192.0.2.1")?.bytes == [192, 0, 2, 1])
        #expect(IPv4Address("192.0.2.01") == nil)
        #expect(IPv4Address("192.0.2") == nil)
        #expect(IPv4Address("256.0.0.1") == nil)
        #expect(IPAddress("127.0.0.1")?.description == "127.0.0.1")
        #expect(IPAddress("::1") == .v6(IPv6Address("::1")!))
    }
}
