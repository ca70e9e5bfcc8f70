import DNSClient
import DNSCore
import MailTesting
import NIOCore
import Synchronization
import Testing

@Suite(.timeLimit(.minutes(1))) struct StubResolverTests {
    static let zone: [TestDNSRecord] = [
        .mx("example.test", 20, "mx2.example.test"),
        .mx("example.test", 10, "mx1.example.test"),
        .mx("example.test", 30, "mx3.example.test"),
        .a("mx1.example.test", "127.0.0.1"),
        .aaaa("mx1.example.test", "::1"),
        .a("mx2.example.test", "127.0.0.2", ttl: 60),
        .a("nomx.test", "127.0.0.3"),
        .mx("nullmx.test", 0, "."),
        .cname("alias.test", "middle.test"),
        .cname("middle.test", "example.test"),
        .cname("www.example.test", "mx1.example.test"),
        .cname("loop1.test", "loop2.test"),
        .cname("loop2.test", "loop1.test"),
        .cname("dangling.test", "gone.test"),
        .txt("example.test", ["v=spf1 ", "ip4:127.0.0.1 ", "-all"]),
        .txt("big.test", (0..<8).map { _ in String(repeating: "x", count: 250) }),
        .tlsa("_25._tcp.mx1.example.test", usage: 3, selector: 1, matchingType: 1, data: Array(0..<32)),
    ]

    static func resolver(_ servers: [TestDNSServer], timeout: Duration = .seconds(2), attempts: Int = 1,
                         clock: ManualTestClock = ManualTestClock()) throws -> StubResolver {
        StubResolver(configuration: try .init(nameservers: servers.map(\.address), timeout: timeout, attempts: attempts),
                     clock: clock)
    }

    /// Runs `body` against a fresh server with the standard zone, then stops it.
    static func withServer(faults: [String: TestDNSFault] = [:], negativeTTL: UInt32 = 60,
                           _ body: (TestDNSServer) async throws -> Void) async throws {
        let dns = try await TestDNSServer.start(zone: zone, faults: faults, negativeTTL: negativeTTL)
        do {
            try await body(dns)
        } catch {
            await dns.stop()
            throw error
        }
        await dns.stop()
    }

    @Test func mxSortedByPreference() async throws {
        try await Self.withServer { dns in
            let result = try await Self.resolver([dns]).mx("example.test")
            #expect(result == .records([
                MXRecord(preference: 10, exchange: "mx1.example.test"),
                MXRecord(preference: 20, exchange: "mx2.example.test"),
                MXRecord(preference: 30, exchange: "mx3.example.test"),
            ]))
        }
    }

    @Test func nodataIsNotNXDOMAIN() async throws {
        try await Self.withServer { dns in
            let resolver = try Self.resolver([dns])
            #expect(try await resolver.mx("nomx.test") == .noRecords)
            #expect(try await resolver.mx("missing.test") == .nxdomain)
            #expect(try await resolver.mx("MISSING.example.test") == .nxdomain)
            #expect(try await resolver.addresses("missing.test") == [])
            #expect(try await resolver.txt("nomx.test") == [])
        }
    }

    @Test func nullMX() async throws {
        try await Self.withServer { dns in
            let result = try await Self.resolver([dns]).mx("nullmx.test")
            #expect(result == .nullMX)
        }
    }

    @Test func addressesBothFamilies() async throws {
        try await Self.withServer { dns in
            let resolver = try Self.resolver([dns])
            #expect(try await resolver.addresses("mx1.example.test") == [IPAddress("127.0.0.1")!, IPAddress("::1")!])
            #expect(try await resolver.addresses("mx2.example.test").map(\.description) == ["127.0.0.2"])
            #expect(try await resolver.addresses("192.0.2.7") == [IPAddress("192.0.2.7")!])
            let socketAddress = try IPAddress("::1")!.socketAddress(port: 25)
            #expect(socketAddress.port == 25)
        }
    }

    @Test func txtJoinsStringsAndTLSA() async throws {
        try await Self.withServer { dns in
            let resolver = try Self.resolver([dns])
            #expect(try await resolver.txt("example.test") == ["v=spf1 ip4:127.0.0.1 -all"])
            #expect(try await resolver.tlsa("_25._tcp.mx1.example.test")
                == [TLSAData(usage: 3, selector: 1, matchingType: 1, data: Array(0..<32))])
        }
    }

    @Test func cnameChainIsFollowed() async throws {
        try await Self.withServer { dns in
            let resolver = try Self.resolver([dns])
            guard case .records(let mx) = try await resolver.mx("alias.test") else {
                Issue.record("no MX through the chain")
                return
            }
            #expect(mx.map(\.exchange) == ["mx1.example.test", "mx2.example.test", "mx3.example.test"])
            #expect(try await resolver.addresses("www.example.test").count == 2)
            let answer = try await resolver.lookup("alias.test", type: .mx)
            #expect(answer.canonicalName == (try DNSName("example.test")))
            // A chain into a name that does not exist is NXDOMAIN for the target.
            #expect(try await resolver.mx("dangling.test") == .nxdomain)
        }
    }

    @Test func cnameLoopIsAnError() async throws {
        try await Self.withServer { dns in
            await #expect(throws: DNSResolverError.cnameLoop("loop1.test")) {
                try await Self.resolver([dns]).mx("loop1.test")
            }
            #expect(DNSResolverError.cnameLoop("x").isPermanent)
        }
    }

    @Test func cnameChainLimit() async throws {
        let chain = (0..<12).map { TestDNSRecord.cname("c\($0).test", "c\($0 + 1).test") } + [.a("c12.test", "127.0.0.1")]
        let dns = try await TestDNSServer.start(zone: chain)
        defer { Task { await dns.stop() } }
        await #expect(throws: DNSResolverError.cnameChainTooLong("c0.test")) {
            try await Self.resolver([dns]).addresses("c0.test")
        }
        #expect(try await Self.resolver([dns]).addresses("c5.test").count == 1)
    }

    @Test func truncatedAnswerRetriesOverTCP() async throws {
        try await Self.withServer(faults: ["example.test": .truncate]) { dns in
            let resolver = try Self.resolver([dns])
            #expect(try await resolver.txt("example.test") == ["v=spf1 ip4:127.0.0.1 -all"])
            #expect(dns.queries.map(\.transport) == [.udp, .tcp])
        }
    }

    /// RFC 6891 §7: a server that answers FORMERR to a query with OPT (and sends no OPT back) does
    /// not know EDNS; the same query goes again without OPT, and its answer is used.
    @Test func formatErrorToEDNSIsRetriedWithoutOPT() async throws {
        try await Self.withServer(faults: ["example.test": .formatErrorToEDNS]) { dns in
            let resolver = try Self.resolver([dns])
            #expect(try await resolver.txt("example.test") == ["v=spf1 ip4:127.0.0.1 -all"])
            #expect(dns.queries.map(\.hasEDNS) == [true, false])
            #expect(dns.queries.map(\.transport) == [.udp, .udp])
        }
    }

    @Test func answerLargerThanPayloadSizeComesOverTCP() async throws {
        try await Self.withServer { dns in
            let txt = try await Self.resolver([dns]).txt("big.test")
            #expect(txt == [String(repeating: "x", count: 2000)])
            #expect(dns.queries.map(\.transport) == [.udp, .tcp])
        }
    }

    @Test func timeoutThenSecondServerAnswers() async throws {
        let silent = try await TestDNSServer.start(zone: Self.zone)
        silent.setFault(.silent)
        try await Self.withServer { dns in
            // Long enough for the second server's answer on a loaded machine: only the silent one must time out.
            let resolver = try Self.resolver([silent, dns], timeout: .seconds(1))
            #expect(try await resolver.addresses("mx2.example.test").map(\.description) == ["127.0.0.2"])
            #expect(silent.queryCount >= 1)
        }
        await silent.stop()
    }

    @Test func everyServerSilentIsATemporaryTimeout() async throws {
        try await Self.withServer { dns in
            dns.setFault(.silent)
            let resolver = try Self.resolver([dns], timeout: .milliseconds(100), attempts: 2)
            await #expect(throws: DNSResolverError.timeout) { try await resolver.mx("example.test") }
            #expect(dns.queryCount == 2)
            #expect(DNSResolverError.timeout.isTemporary)
        }
    }

    @Test(arguments: [(TestDNSFault.serverFailure, DNSResponseCode.serverFailure), (.refused, .refused)])
    func serverFailureIsTemporary(fault: TestDNSFault, rcode: DNSResponseCode) async throws {
        try await Self.withServer(faults: ["example.test": fault]) { dns in
            let resolver = try Self.resolver([dns], attempts: 2)
            do {
                _ = try await resolver.mx("example.test")
                Issue.record("no error")
            } catch let error as DNSResolverError {
                #expect(error == .serverFailure(rcode))
                #expect(error.isTemporary)
            }
            // Failures are not cached: both attempts asked, and the next lookup asks again.
            #expect(dns.queryCount == 2)
            dns.setFault(nil, for: "example.test")
            #expect(try await resolver.mx("example.test") != .nxdomain)
        }
    }

    @Test func secondServerAnswersAfterSERVFAIL() async throws {
        let failing = try await TestDNSServer.start(zone: Self.zone)
        failing.setFault(.serverFailure)
        try await Self.withServer { dns in
            let result = try await Self.resolver([failing, dns]).mx("nullmx.test")
            #expect(result == .nullMX)
        }
        await failing.stop()
    }

    @Test func malformedAnswerIsTemporary() async throws {
        try await Self.withServer(faults: ["example.test": .malformed]) { dns in
            await #expect(throws: DNSResolverError.malformedResponse) {
                try await Self.resolver([dns]).mx("example.test")  // the answer comes; a timeout would be another error
            }
        }
    }

    @Test func forgedAnswersAreIgnored() async throws {
        try await Self.withServer(faults: ["mx1.example.test": .forgedFirst, "example.test": .forgedFirst]) { dns in
            let resolver = try Self.resolver([dns])
            #expect(try await resolver.addresses("mx1.example.test") == [IPAddress("127.0.0.1")!, IPAddress("::1")!])
            guard case .records(let mx) = try await resolver.mx("example.test") else {
                Issue.record("forged MX accepted")
                return
            }
            #expect(mx.count == 3)
        }
    }

    @Test func cacheHonoursTTL() async throws {
        try await Self.withServer { dns in
            let clock = ManualTestClock()
            let resolver = try Self.resolver([dns], clock: clock)
            _ = try await resolver.addresses("mx2.example.test")  // A ttl 60, AAAA NODATA with negative TTL 60
            #expect(dns.queryCount == 2)
            clock.advance(by: .seconds(59))
            #expect(try await resolver.addresses("mx2.example.test").map(\.description) == ["127.0.0.2"])
            #expect(dns.queryCount == 2)
            clock.advance(by: .seconds(2))
            _ = try await resolver.addresses("mx2.example.test")
            #expect(dns.queryCount == 4)
        }
    }

    @Test func negativeAnswersAreCachedForTheSOAMinimum() async throws {
        try await Self.withServer(negativeTTL: 30) { dns in
            let clock = ManualTestClock()
            let resolver = try Self.resolver([dns], clock: clock)
            #expect(try await resolver.mx("missing.test") == .nxdomain)
            dns.setZone(Self.zone + [.mx("missing.test", 5, "mx1.example.test")], negativeTTL: 30)
            clock.advance(by: .seconds(29))
            #expect(try await resolver.mx("missing.test") == .nxdomain)
            #expect(dns.queryCount == 1)
            clock.advance(by: .seconds(2))
            let found = try await resolver.mx("missing.test")
            #expect(found == .records([MXRecord(preference: 5, exchange: "mx1.example.test")]))
            #expect(dns.queryCount == 2)
            resolver.flushCache()
            #expect(resolver.cachedAnswerCount == 0)
        }
    }

    @Test func flushedCacheAsksAgain() async throws {
        try await Self.withServer { dns in
            let resolver = try Self.resolver([dns])
            for _ in 0..<3 { _ = try await resolver.txt("example.test"); resolver.flushCache() }
            #expect(dns.queryCount == 3)
        }
    }

    @Test func invalidNameIsPermanent() async throws {
        let resolver = StubResolver(configuration: .init(nameservers: [] as [SocketAddress]))
        await #expect(throws: DNSResolverError.invalidName("a..b")) { try await resolver.mx("a..b") }
        await #expect(throws: DNSResolverError.noNameservers) { try await resolver.mx("example.test") }
        #expect(DNSResolverError.invalidName("x").isPermanent)
    }
}

@Suite struct StubResolverConfigurationTests {
    @Test(arguments: [
        ("127.0.0.1", "127.0.0.1", 53),
        ("127.0.0.1:5353", "127.0.0.1", 5353),
        ("[::1]:5353", "::1", 5353),
        ("::1", "::1", 53),
        ("[2001:db8::53]", "2001:db8::53", 53),
    ])
    func nameserverForms(text: String, ip: String, port: Int) throws {
        let address = try StubResolver.Configuration.nameserverAddress(text)
        #expect(address.ipAddress == ip)
        #expect(address.port == port)
    }

    @Test(arguments: ["dns.example.test", "127.0.0.1:0", "127.0.0.1:x", "[::1", "", "127.0.0.1:70000"])
    func nameserverRejects(text: String) {
        #expect(throws: DNSResolverError.self) { try StubResolver.Configuration.nameserverAddress(text) }
    }

    @Test func resolvConf() {
        let text = """
        # generated
        search example.test
        nameserver 192.0.2.53
        nameserver 2001:db8::53 ; comment
        nameserver bogus
        nameserver 192.0.2.54
        nameserver 192.0.2.55
        options ndots:2 timeout:3 attempts:4 rotate
        """
        let configuration = StubResolver.Configuration.resolvConf(text)
        #expect(configuration.nameservers.map { $0.ipAddress ?? "" } == ["192.0.2.53", "2001:db8::53", "192.0.2.54"])
        #expect(configuration.timeout == .seconds(3))
        #expect(configuration.attempts == 4)
    }

    @Test func resolvConfWithoutNameserversUsesLocalhost() {
        let configuration = StubResolver.Configuration.resolvConf("options timeout:99\n")
        #expect(configuration.nameservers.map { $0.ipAddress ?? "" } == ["127.0.0.1"])
        #expect(configuration.timeout == .seconds(30))
    }
}
