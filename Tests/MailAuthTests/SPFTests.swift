@testable import MailAuth
import Testing

/// A zone in memory: TXT/A/AAAA/MX/PTR by name; `timeouts` never answer; other names are NXDOMAIN.
/// (The RFC suite runs against a real DNS server in MailServerTests/SPFSuiteTests.)
private struct SPFZone: MailAuthResolver {
    var txt: [String: [String]] = [:]
    var a: [String: [[UInt8]]] = [:]
    var mx: [String: [String]] = [:]
    var timeouts: Set<String> = []

    func answer<T>(_ name: String, _ table: [String: [T]]) throws(MailAuthDNSError) -> MailAuthLookup<T> {
        if timeouts.contains(name) { throw MailAuthDNSError("DNS timeout") }
        if let r = table[name] { return .records(r) }
        let exists = txt[name] != nil || a[name] != nil || mx[name] != nil
        return exists ? .records([]) : .nxdomain
    }

    func txt(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<[UInt8]> {
        try answer(name, txt.mapValues { $0.map { Array($0.utf8) } })
    }
    func ipv4(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<[UInt8]> { try answer(name, a) }
    func ipv6(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<[UInt8]> { try answer(name, [String: [[UInt8]]]()) }
    func mx(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<String> { try answer(name, mx) }
    func ptr(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<String> { try answer(name, [String: [String]]()) }
}

@Suite struct SPFTests {
    private func check(_ zone: SPFZone, ip: String = "192.0.2.10", from: String = "alice@example.org") async -> SPFVerdict {
        await SPFEvaluator(resolver: zone, receivingHost: "mx.example.test", now: { 1_800_000_000 })
            .check(ip: ip, helo: "client.example.org", mailFrom: from)
    }

    @Test func ip4AndAllDecide() async {
        let zone = SPFZone(txt: ["example.org": ["v=spf1 ip4:192.0.2.0/28 -all"]])
        #expect(await check(zone).result == .pass)
        let outside = await check(zone, ip: "192.0.2.16")
        #expect(outside.result == .fail)
        #expect(outside.reason == "example.org matched -all")
        #expect(await check(zone, ip: "::ffff:192.0.2.1").result == .pass, "an IPv4-mapped client is IPv4")
        #expect(await check(zone, ip: "2001:db8::1").result == .fail)
    }

    @Test func theHeloIdentityIsUsedForANullSender() async {
        let zone = SPFZone(txt: ["client.example.org": ["v=spf1 ip4:192.0.2.10 -all"]])
        let verdict = await check(zone, from: "")
        #expect(verdict.result == .pass)
        #expect(verdict.identity == .helo)
        #expect(verdict.sender == "postmaster@client.example.org")
    }

    @Test func anIncludeLoopStopsAtTheLookupLimit() async {
        let zone = SPFZone(txt: ["example.org": ["v=spf1 include:loop.example.org -all"],
                                 "loop.example.org": ["v=spf1 include:example.org -all"]])
        let verdict = await check(zone)
        #expect(verdict.result == .permerror)
        #expect(verdict.reason == "more than 10 DNS lookups")
    }

    @Test func voidLookupsPastTwoArePermerror() async {
        let zone = SPFZone(txt: ["example.org": ["v=spf1 a:n1.example.org a:n2.example.org a:n3.example.org -all"]])
        #expect(await check(zone).reason == "more than 2 void DNS lookups")
        let two = SPFZone(txt: ["example.org": ["v=spf1 a:n1.example.org a:n2.example.org -all"]])
        #expect(await check(two).result == .fail)
    }

    @Test func dnsTroubleIsTemperrorNeverFail() async {
        var zone = SPFZone(txt: ["example.org": ["v=spf1 mx -all"]])
        zone.timeouts = ["example.org"]
        #expect(await check(zone).result == .temperror)
        zone = SPFZone(txt: ["example.org": ["v=spf1 a:slow.example.org -all"]], timeouts: ["slow.example.org"])
        let verdict = await check(zone)
        #expect(verdict.result == .temperror)
        #expect(verdict.reason == "DNS error for slow.example.org: DNS timeout")
    }

    @Test func mxMatchesTheExchangesAddresses() async {
        let zone = SPFZone(txt: ["example.org": ["v=spf1 mx/24 -all"]], a: ["mail.example.org": [[192, 0, 2, 200]]],
                           mx: ["example.org": ["mail.example.org"]])
        #expect(await check(zone).result == .pass)
        #expect(await check(zone, ip: "192.0.3.1").result == .fail)
    }

    @Test func explanationsExpandMacros() async {
        let zone = SPFZone(txt: ["example.org": ["v=spf1 -all exp=why.%{d}"],
                                 "why.example.org": ["%{c} may not send for %{d} (%{L}, seen by %{r})"]])
        let verdict = await check(zone, ip: "2001:db8:0:0:1:0:0:1", from: "a+b@example.org")
        #expect(verdict.explanation == "2001:db8::1:0:0:1 may not send for example.org (a%2Bb, seen by mx.example.test)")
    }

    @Test func syntaxErrorsAnywhereArePermerror() throws {
        for bad in ["v=spf1 ip4:192.0.2.1/33", "v=spf1 ip4:192.0.2.01", "v=spf1 a:example.123", "v=spf1 a//129",
                    "v=spf1 redirect=a.example redirect=b.example", "v=spf1 foo:bar", "v=spf1 include:%{x}.example.org",
                    "v=spf1 exists:%{d0}.example.org", "v=spf1 -all moo=%", "v=spf1 a:%{c}.example.org", "v=spf1 all:x"] {
            #expect(throws: SPFError.self, "\(bad)") { try SPFRecord(parsing: Array(bad.utf8)) }
        }
        let record = try SPFRecord(parsing: Array("V=SPF1 +a/24//64 MX:%{d2} ~IP6:2001:DB8::/32 exp=e.%{d} x-unknown=foo -all".utf8))
        #expect(record.directives.count == 4)
        #expect(record.directives[0].mechanism == .a(nil, ipv4Prefix: 24, ipv6Prefix: 64))
        #expect(record.directives[2].qualifier == .softfail)
        #expect(record.explanation != nil)
        #expect(!SPFRecord.isSPF(Array("v=spf10 -all".utf8)))
        #expect(SPFRecord.isSPF(Array("v=spf1".utf8)))
    }

    @Test func addressForms() {
        #expect(SPFAddress.text(SPFAddress.parse("2001:0db8:0000:0000:0000:0000:0000:0001")!) == "2001:db8::1")
        #expect(SPFAddress.text(SPFAddress.parse("2001:db8:0:1:1:1:1:1")!) == "2001:db8:0:1:1:1:1:1")
        #expect(SPFAddress.parse("::ffff:10.0.0.1") == [10, 0, 0, 1])
        #expect(SPFAddress.parse("1:2:3:4:5:6:7:8:9") == nil)
        #expect(SPFAddress.reverseName([192, 0, 2, 1]) == "1.2.0.192.in-addr.arpa")
        #expect(SPFEvaluator.urlEscaped("~a&b=c d") == "~a%26b%3Dc%20d")
    }
}
