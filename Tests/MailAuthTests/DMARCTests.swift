import Synchronization
import Testing
@testable import MailAuth

/// The names a ``DMARCZone`` was asked for, in order.
private final class QueryLog: Sendable {
    private let names = Mutex<[String]>([])

    func append(_ name: String) { names.withLock { $0.append(name) } }
    var all: [String] { names.withLock { $0 } }
}

/// A zone in memory. `records`: TXT records by owner name. `hosts`: names with an A record (they
/// answer NODATA for AAAA and MX). `mailExchangers`: names with only an MX record — A and AAAA answer
/// NXDOMAIN, as a broken server would, to show that all three types are asked. `timeouts`: names whose
/// every query times out. Every other name is NXDOMAIN. TXT queries are logged.
private struct DMARCZone: MailAuthResolver {
    var records: [String: [String]] = [:]
    var hosts: Set<String> = []
    var mailExchangers: Set<String> = []
    var timeouts: Set<String> = []
    let log = QueryLog()

    func txt(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<[UInt8]> {
        log.append(name)
        if timeouts.contains(name) { throw MailAuthDNSError("timeout") }
        guard let texts = records[name] else { return .nxdomain }
        return .records(texts.map { Array($0.utf8) })
    }

    func ipv4(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<[UInt8]> {
        if timeouts.contains(name) { throw MailAuthDNSError("timeout") }
        return hosts.contains(name) ? .records([[192, 0, 2, 1]]) : .nxdomain
    }

    func ipv6(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<[UInt8]> {
        if timeouts.contains(name) { throw MailAuthDNSError("timeout") }
        return hosts.contains(name) ? .records([]) : .nxdomain
    }

    func mx(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<String> {
        if timeouts.contains(name) { throw MailAuthDNSError("timeout") }
        if mailExchangers.contains(name) { return .records(["mx.example.net"]) }
        return hosts.contains(name) ? .records([]) : .nxdomain
    }

    func ptr(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<String> { .nxdomain }
}

private func evaluate(_ zone: DMARCZone, from: String, spf: String? = nil, dkim: [String] = []) async -> DMARCResult {
    await DMARCEvaluator(resolver: zone).evaluate(fromDomain: from, spfDomain: spf, dkimDomains: dkim)
}

// MARK: - Records

/// RFC 9989 §4.7, §4.8, §4.10.1 and Appendix A.6.
@Suite struct DMARCRecordTests {
    @Test func everyTag() throws {
        let r = try DMARCRecord.parse("v=DMARC1; p=reject; sp=quarantine; np=none; psd=n; t=y; adkim=s; aspf=s; "
            + "rua=mailto:agg@example.com, https://r.example.net/dmarc!10m; ruf=mailto:fail@example.com; fo=1:d")
        #expect(r.policy == .reject)
        #expect(r.subdomainPolicy == .quarantine)
        #expect(r.nonExistentSubdomainPolicy == DMARCPolicy.none)
        #expect(r.publicSuffix == .no)
        #expect(r.testMode == true)
        #expect(r.isTesting)
        #expect(r.dkimAlignment == .strict)
        #expect(r.spfAlignment == .strict)
        #expect(r.aggregateReportURIs == ["mailto:agg@example.com", "https://r.example.net/dmarc"])
        #expect(r.failureReportURIs == ["mailto:fail@example.com"])
        #expect(r.failureReportingOptions == [.anyFail, .dkim])
        #expect(r.invalidPolicyTags.isEmpty)
        #expect(r.isUsable)
    }

    @Test func defaults() throws {
        let r = try DMARCRecord.parse("v=DMARC1")
        #expect(r == DMARCRecord())
        #expect(r.policy == DMARCPolicy.none)
        #expect(r.subdomainPolicy == nil)
        #expect(r.nonExistentSubdomainPolicy == nil)
        #expect(r.publicSuffix == .unknown)
        #expect(r.testMode == nil)
        #expect(!r.isTesting)
        #expect(r.dkimAlignment == .relaxed && r.spfAlignment == .relaxed)
        #expect(r.failureReportingOptions == [.allFail])
    }

    @Test func whitespaceAroundSeparators() throws {
        let r = try DMARCRecord.parse("  v = DMARC1 ;p = quarantine ;\tsp=reject  ;  rua = mailto:a@example.com ; ")
        #expect(r.policy == .quarantine)
        #expect(r.subdomainPolicy == .reject)
        #expect(r.aggregateReportURIs == ["mailto:a@example.com"])
    }

    @Test func missingVersionIsNotARecord() {
        #expect(throws: DMARCError.self) { try DMARCRecord.parse("p=reject; rua=mailto:a@example.com") }
        #expect(!DMARCRecord.startsWithVersion(Array("p=reject; rua=mailto:a@example.com".utf8)))
    }

    @Test func versionMustComeFirst() {
        #expect(throws: DMARCError.self) { try DMARCRecord.parse("p=reject; v=DMARC1") }
        #expect(!DMARCRecord.startsWithVersion(Array("p=reject; v=DMARC1".utf8)))
    }

    @Test func versionValueIsCaseSensitiveButTagNamesAreNot() throws {
        #expect(throws: DMARCError.self) { try DMARCRecord.parse("v=dmarc1; p=reject") }
        #expect(throws: DMARCError.self) { try DMARCRecord.parse("v=DMARC10; p=reject") }
        #expect(throws: DMARCError.self) { try DMARCRecord.parse("v=spf1 -all") }
        #expect(!DMARCRecord.startsWithVersion(Array("v=DMARC10; p=reject".utf8)))
        #expect(DMARCRecord.startsWithVersion(Array("v=DMARC1".utf8)))
        #expect(DMARCRecord.startsWithVersion(Array(" V = DMARC1 ; p=none".utf8)))
        #expect(try DMARCRecord.parse("V=DMARC1; p=reject").policy == .reject)
    }

    @Test func uppercaseNamesAndKeywords() throws {
        let r = try DMARCRecord.parse("V=DMARC1; P=REJECT; SP=None; NP=Quarantine; ADKIM=S; ASPF=s; PSD=Y; T=N; FO=D:S")
        #expect(r.policy == .reject)
        #expect(r.subdomainPolicy == DMARCPolicy.none)
        #expect(r.nonExistentSubdomainPolicy == .quarantine)
        #expect(r.dkimAlignment == .strict)
        #expect(r.spfAlignment == .strict)
        #expect(r.publicSuffix == .yes)
        #expect(r.testMode == false)
        #expect(r.failureReportingOptions == [.dkim, .spf])
    }

    @Test func missingPolicyIsNone() throws {
        let r = try DMARCRecord.parse("v=DMARC1; rua=mailto:a@example.com")
        #expect(r.policy == DMARCPolicy.none)
        #expect(r.invalidPolicyTags.isEmpty)
        #expect(r.isUsable)
    }

    @Test func invalidPolicyWithoutReportURIIsUnusable() throws {
        let r = try DMARCRecord.parse("v=DMARC1; p=bogus")
        #expect(r.invalidPolicyTags == ["p"])
        #expect(!r.isUsable)
        // An empty p= is not a valid p either, and a malformed URI does not count.
        let empty = try DMARCRecord.parse("v=DMARC1; p=; rua=not a uri")
        #expect(empty.invalidPolicyTags == ["p"])
        #expect(empty.aggregateReportURIs.isEmpty)
        #expect(!empty.isUsable)
    }

    @Test func invalidPolicyWithReportURIReadsAsNone() throws {
        let r = try DMARCRecord.parse("v=DMARC1; p=bogus; rua=mailto:d@example.com")
        #expect(r.isUsable)
        #expect(r.policy == DMARCPolicy.none)
        let sp = try DMARCRecord.parse("v=DMARC1; p=reject; sp=never; np=reject; rua=mailto:d@example.com")
        #expect(sp.invalidPolicyTags == ["sp"])
        #expect(sp.isUsable)
        #expect(sp.policy == DMARCPolicy.none)
        #expect(sp.subdomainPolicy == nil)
        #expect(sp.nonExistentSubdomainPolicy == nil)
    }

    @Test func unknownAndMalformedTagsAreIgnored() throws {
        let r = try DMARCRecord.parse("v=DMARC1; foo=bar; p=reject; x=; zz; 9a=1; np=reject")
        #expect(r.policy == .reject)
        #expect(r.nonExistentSubdomainPolicy == .reject)
        #expect(r.isUsable)
    }

    @Test func malformedValuesFallBackToDefaults() throws {
        let r = try DMARCRecord.parse("v=DMARC1; p=reject; adkim=x; aspf=; psd=maybe; t=maybe; fo=0:1")
        #expect(r.policy == .reject)
        #expect(r.dkimAlignment == .relaxed && r.spfAlignment == .relaxed)
        #expect(r.publicSuffix == .unknown)
        #expect(r.testMode == nil)
        #expect(r.failureReportingOptions == [.allFail])
    }

    @Test func firstOfARepeatedTagCounts() throws {
        #expect(try DMARCRecord.parse("v=DMARC1; p=reject; p=none").policy == .reject)
    }

    @Test func rfc7489TagsAreRead() throws {
        let zero = try DMARCRecord.parse("v=DMARC1; p=reject; pct=0; rf=afrf; ri=86400")
        #expect(zero.percentage == 0)
        #expect(zero.isTesting)
        #expect(zero.policy == .reject)
        #expect(try DMARCRecord.parse("v=DMARC1; p=reject; pct=50").isTesting)
        #expect(try !DMARCRecord.parse("v=DMARC1; p=reject; pct=100").isTesting)
        // An explicit t= wins over pct.
        #expect(try !DMARCRecord.parse("v=DMARC1; p=reject; pct=0; t=n").isTesting)
        let bad = try DMARCRecord.parse("v=DMARC1; p=reject; pct=150")
        #expect(bad.percentage == nil)
        #expect(!bad.isTesting)
    }

    @Test func reportURIs() throws {
        let r = try DMARCRecord.parse("v=DMARC1; rua=mailto:a@example.com!20K , mailto:b@example.com!x, nonsense, mailto:c@example.com")
        #expect(r.aggregateReportURIs == ["mailto:a@example.com", "mailto:c@example.com"])
    }

    @Test func oversizedRecordIsRefused() {
        let long = "v=DMARC1; p=reject; rua=mailto:" + String(repeating: "a", count: 5000) + "@example.com"
        #expect(throws: DMARCError.tooLong(long.utf8.count)) { try DMARCRecord.parse(long) }
    }

    @Test func policyLowering() {
        #expect(DMARCPolicy.reject.lowered == .quarantine)
        #expect(DMARCPolicy.quarantine.lowered == DMARCPolicy.none)
        #expect(DMARCPolicy.none.lowered == DMARCPolicy.none)
    }
}

// MARK: - Tree walk

/// RFC 9989 §4.10, §4.10.1, §4.10.2 and Appendix B.4.
@Suite struct DMARCTreeWalkTests {
    @Test func walkTargetsOfALongName() {
        // The example of §4.10.
        #expect(DMARCEvaluator.walkTargets("a.b.c.d.e.f.g.h.i.j.mail.example.com") == [
            "a.b.c.d.e.f.g.h.i.j.mail.example.com", "g.h.i.j.mail.example.com", "h.i.j.mail.example.com",
            "i.j.mail.example.com", "j.mail.example.com", "mail.example.com", "example.com", "com",
        ])
        #expect(DMARCEvaluator.walkTargets("mail.example.com") == ["mail.example.com", "example.com", "com"])
        #expect(DMARCEvaluator.walkTargets("com") == ["com"])
        // Eight labels: the parent has seven, nothing is skipped.
        #expect(DMARCEvaluator.walkTargets("a.b.c.d.e.f.example.com").count == 8)
        #expect(DMARCEvaluator.walkTargets("a.b.c.d.e.f.example.com")[1] == "b.c.d.e.f.example.com")
    }

    @Test func domainNormalization() {
        #expect(DMARCEvaluator.normalizedDomain("Example.COM.") == "example.com")
        #expect(DMARCEvaluator.normalizedDomain(" mail.example.com ") == "mail.example.com")
        #expect(DMARCEvaluator.normalizedDomain("") == nil)
        #expect(DMARCEvaluator.normalizedDomain("a..example.com") == nil)
        #expect(DMARCEvaluator.normalizedDomain("exämple.com") == nil)
        #expect(DMARCEvaluator.normalizedDomain(String(repeating: "a", count: 64) + ".com") == nil)
        #expect(DMARCEvaluator.normalizedDomain("[192.0.2.1]") == nil)
    }

    @Test func recordAtAuthorDomain() async {
        let zone = DMARCZone(records: ["_dmarc.example.com": ["v=DMARC1; p=reject; sp=none"]])
        let r = await evaluate(zone, from: "example.com")
        #expect(r.code == .fail)
        #expect(r.policy == .reject)
        #expect(r.publishedPolicy == .reject)
        #expect(r.recordDomain == "example.com")
        // Nothing needed the Organizational Domain: one query.
        #expect(zone.log.all == ["_dmarc.example.com"])
        #expect(r.organizationalDomain == nil)
    }

    @Test func recordAtOrganizationalDomain() async {
        let zone = DMARCZone(records: ["_dmarc.example.com": ["v=DMARC1; p=reject; sp=quarantine"]])
        let r = await evaluate(zone, from: "Mail.Example.com")
        #expect(r.code == .fail)
        #expect(r.policy == .quarantine)
        #expect(r.recordDomain == "example.com")
        #expect(r.organizationalDomain == "example.com")
        #expect(r.fromDomain == "mail.example.com")
        #expect(zone.log.all == ["_dmarc.mail.example.com", "_dmarc.example.com", "_dmarc.com"])
    }

    @Test func highestRecordIsThePolicyDomain() async {
        // §4.10.2 rule 3 and Appendix B.4.2: the record with the fewest labels, not the nearest.
        let zone = DMARCZone(records: [
            "_dmarc.mail.example.com": ["v=DMARC1; p=none"],
            "_dmarc.example.com": ["v=DMARC1; p=reject"],
        ])
        let r = await evaluate(zone, from: "a.mail.example.com")
        #expect(r.recordDomain == "example.com")
        #expect(r.organizationalDomain == "example.com")
        #expect(r.policy == .reject)
    }

    @Test func longAuthorDomainIsShortened() async {
        let zone = DMARCZone(records: [
            "_dmarc.example.com": ["v=DMARC1; p=reject"],
            // Skipped by the shortcut of §4.10 step 4, so never seen.
            "_dmarc.c.d.e.f.g.h.i.example.com": ["v=DMARC1; p=none; psd=n"],
        ])
        let r = await evaluate(zone, from: "a.b.c.d.e.f.g.h.i.example.com")
        #expect(zone.log.all == [
            "_dmarc.a.b.c.d.e.f.g.h.i.example.com", "_dmarc.e.f.g.h.i.example.com", "_dmarc.f.g.h.i.example.com",
            "_dmarc.g.h.i.example.com", "_dmarc.h.i.example.com", "_dmarc.i.example.com", "_dmarc.example.com", "_dmarc.com",
        ])
        #expect(r.code == .fail)
        #expect(r.recordDomain == "example.com")
        #expect(r.policy == .reject)
    }

    @Test func publicSuffixDomainExample() async {
        // Appendix B.4.3.
        let zone = DMARCZone(records: [
            "_dmarc.bank.example": ["v=DMARC1; p=reject; psd=y"],
            "_dmarc.giant.bank.example": ["v=DMARC1; p=quarantine"],
        ])
        let r = await evaluate(zone, from: "giant.bank.example", spf: "mail.giant.bank.example", dkim: ["mail.mega.bank.example"])
        #expect(r.code == .pass)
        #expect(r.alignedSPF)
        #expect(r.alignedDKIM == nil)
        #expect(r.recordDomain == "giant.bank.example")
        #expect(r.organizationalDomain == "giant.bank.example")
        #expect(r.policy == DMARCPolicy.none)
        let od = try? await DMARCEvaluator(resolver: zone).organizationalDomain(of: "mail.mega.bank.example")
        #expect(od == "mega.bank.example")
    }

    @Test func publicSuffixPolicyAppliesWithoutAnOrganizationalRecord() async {
        let zone = DMARCZone(records: ["_dmarc.bank.example": ["v=DMARC1; p=reject; psd=y"]])
        let r = await evaluate(zone, from: "mega.bank.example")
        #expect(r.code == .fail)
        #expect(r.recordDomain == "bank.example")
        #expect(r.organizationalDomain == "mega.bank.example")
        #expect(r.policy == .reject)
    }

    @Test func psdNoMakesAnOrganizationalDomain() async {
        let records = [
            "_dmarc.example.com": ["v=DMARC1; p=reject"],
            "_dmarc.mail.example.com": ["v=DMARC1; p=reject; sp=quarantine; psd=n"],
        ]
        let zone = DMARCZone(records: records)
        let r = await evaluate(zone, from: "a.mail.example.com", dkim: ["example.com"])
        #expect(r.code == .fail)
        #expect(r.recordDomain == "mail.example.com")
        #expect(r.organizationalDomain == "mail.example.com")
        #expect(r.policy == .quarantine)
        // The walk stops at psd=n, and example.com (not under mail.example.com) needs no walk.
        #expect(zone.log.all == ["_dmarc.a.mail.example.com", "_dmarc.mail.example.com"])

        let sibling = await evaluate(DMARCZone(records: records), from: "a.mail.example.com", dkim: ["b.mail.example.com"])
        #expect(sibling.code == .pass)
        #expect(sibling.alignedDKIM == "b.mail.example.com")
    }

    @Test(arguments: [
        // §4.10.2's examples, and the start without records.
        (["_dmarc.mail.example.com": ["v=DMARC1; p=none"], "_dmarc.example.com": ["v=DMARC1; p=none"]], "example.com"),
        (["_dmarc.mail.example.com": ["v=DMARC1; p=none; psd=n"], "_dmarc.example.com": ["v=DMARC1; p=none"]], "mail.example.com"),
        (["_dmarc.com": ["v=DMARC1; p=none; psd=y"]], "example.com"),
        ([:], "a.mail.example.com"),
        (["_dmarc.a.mail.example.com": ["v=DMARC1; psd=y"], "_dmarc.example.com": ["v=DMARC1; p=none"]], "a.mail.example.com"),
    ] as [([String: [String]], String)])
    func organizationalDomain(records: [String: [String]], expected: String) async throws {
        let od = try await DMARCEvaluator(resolver: DMARCZone(records: records)).organizationalDomain(of: "a.mail.example.com")
        #expect(od == expected)
    }

    @Test func organizationalDomainLookupFailureThrows() async {
        let zone = DMARCZone(timeouts: ["_dmarc.example.com"])
        await #expect(throws: MailAuthDNSError.self) {
            try await DMARCEvaluator(resolver: zone).organizationalDomain(of: "mail.example.com")
        }
    }

    @Test func noRecordIsNone() async {
        let zone = DMARCZone()
        let r = await evaluate(zone, from: "mail.example.com", spf: "mail.example.com")
        #expect(r.code == DMARCResult.Code.none)
        #expect(r.policy == DMARCPolicy.none)
        #expect(r.publishedPolicy == nil)
        #expect(r.recordDomain == nil)
        #expect(zone.log.all == ["_dmarc.mail.example.com", "_dmarc.example.com", "_dmarc.com"])
    }

    @Test func severalRecordsAreAllDiscarded() async {
        let two = DMARCZone(records: ["_dmarc.example.com": ["v=DMARC1; p=reject", "v=DMARC1; p=none"]])
        let r = await evaluate(two, from: "example.com")
        #expect(r.code == DMARCResult.Code.none)
        // Discarded at one name, the walk goes on to the parent.
        #expect(two.log.all == ["_dmarc.example.com", "_dmarc.com"])

        let parent = DMARCZone(records: [
            "_dmarc.mail.example.com": ["v=DMARC1; p=none", "v=DMARC1; p=quarantine"],
            "_dmarc.example.com": ["v=DMARC1; p=reject"],
        ])
        let p = await evaluate(parent, from: "mail.example.com")
        #expect(p.recordDomain == "example.com")
        #expect(p.policy == .reject)
    }

    @Test func otherTXTRecordsAreSkipped() async {
        let zone = DMARCZone(records: ["_dmarc.example.com": ["google-site-verification=abc", "p=reject; v=DMARC1", "v=DMARC1; p=quarantine"]])
        let r = await evaluate(zone, from: "example.com")
        #expect(r.code == .fail)
        #expect(r.policy == .quarantine)
    }

    @Test func recordsNotStartingWithVersionAreIgnored() async {
        let zone = DMARCZone(records: ["_dmarc.example.com": ["p=reject; v=DMARC1"]])
        #expect(await evaluate(zone, from: "example.com").code == DMARCResult.Code.none)
    }

    @Test func answersAreShared() async {
        // Appendix B.4.1: the walks meet at example.com and com; each name is asked once.
        let zone = DMARCZone(records: [
            "_dmarc.example.com": ["v=DMARC1; p=reject"],
            "_dmarc.signing.example.com": ["v=DMARC1; p=none"],
        ])
        let r = await evaluate(zone, from: "example.com", spf: "example.com", dkim: ["signing.example.com"])
        #expect(r.code == .pass)
        #expect(r.alignedSPF)
        #expect(r.alignedDKIM == "signing.example.com")
        #expect(r.organizationalDomain == "example.com")
        #expect(zone.log.all == ["_dmarc.example.com", "_dmarc.com", "_dmarc.signing.example.com"])
    }
}

// MARK: - Alignment, policy selection, errors

/// RFC 9989 §3.2.10, §4.4, §4.7 (`sp`, `np`, `t`), §4.10.1, §5.3.
@Suite struct DMARCEvaluationTests {
    static let relaxed = ["_dmarc.example.com": ["v=DMARC1; p=reject"]]
    static let strict = ["_dmarc.example.com": ["v=DMARC1; p=reject; adkim=s; aspf=s"]]

    @Test func relaxedSPF() async {
        let r = await evaluate(DMARCZone(records: Self.relaxed), from: "example.com", spf: "bounce.mail.example.com")
        #expect(r.code == .pass)
        #expect(r.alignedSPF)
        #expect(r.policy == DMARCPolicy.none)
        #expect(r.publishedPolicy == .reject)
    }

    @Test func strictSPF() async {
        let r = await evaluate(DMARCZone(records: Self.strict), from: "example.com", spf: "mail.example.com")
        #expect(r.code == .fail)
        #expect(!r.alignedSPF)
        #expect(r.policy == .reject)
        // Identical up to case and the trailing dot is strictly aligned.
        let same = await evaluate(DMARCZone(records: Self.strict), from: "example.com", spf: "EXAMPLE.com.")
        #expect(same.code == .pass)
        #expect(same.alignedSPF)
    }

    @Test func relaxedDKIM() async {
        let r = await evaluate(DMARCZone(records: Self.relaxed), from: "news.example.com", dkim: ["example.net", "foo.example.com"])
        #expect(r.code == .pass)
        #expect(r.alignedDKIM == "foo.example.com")
        #expect(!r.alignedSPF)
    }

    @Test func strictDKIM() async {
        let r = await evaluate(DMARCZone(records: Self.strict), from: "example.com", dkim: ["mail.example.com"])
        #expect(r.code == .fail)
        #expect(r.alignedDKIM == nil)
        let same = await evaluate(DMARCZone(records: Self.strict), from: "example.com", dkim: ["mail.example.com", "Example.Com"])
        #expect(same.code == .pass)
        #expect(same.alignedDKIM == "example.com")
    }

    @Test func unrelatedDomainsAreNotAligned() async {
        let zone = DMARCZone(records: Self.relaxed.merging(["_dmarc.example.net": ["v=DMARC1; p=none"]]) { a, _ in a })
        let r = await evaluate(zone, from: "example.com", spf: "example.org", dkim: ["example.net"])
        #expect(r.code == .fail)
        #expect(r.policy == .reject)
        // Neither lies under example.com, so neither gets a walk.
        #expect(!zone.log.all.contains("_dmarc.example.net"))
        #expect(!zone.log.all.contains("_dmarc.example.org"))
    }

    @Test func subdomainPolicies() async {
        let records = ["_dmarc.example.com": ["v=DMARC1; p=none; sp=quarantine; np=reject"]]
        let zone = DMARCZone(records: records, hosts: ["exists.example.com"], mailExchangers: ["mailonly.example.com"])
        let own = await evaluate(zone, from: "example.com")
        #expect(own.code == .fail)
        #expect(own.policy == DMARCPolicy.none)
        let existing = await evaluate(zone, from: "exists.example.com")
        #expect(existing.policy == .quarantine)
        let mxOnly = await evaluate(zone, from: "mailonly.example.com")
        #expect(mxOnly.policy == .quarantine)
        let ghost = await evaluate(zone, from: "ghost.example.com")
        #expect(ghost.code == .fail)
        #expect(ghost.policy == .reject)
        #expect(ghost.publishedPolicy == .reject)
        #expect(ghost.reason.contains("does not exist"))
    }

    @Test func missingNonExistentPolicyFallsBackToSubdomainPolicy() async {
        let zone = DMARCZone(records: ["_dmarc.example.com": ["v=DMARC1; p=reject; sp=none"]])
        let ghost = await evaluate(zone, from: "ghost.example.com")
        #expect(ghost.code == .fail)
        #expect(ghost.policy == DMARCPolicy.none)
        let noSP = await evaluate(DMARCZone(records: ["_dmarc.example.com": ["v=DMARC1; p=quarantine; np=reject"]]),
                                  from: "sub.example.com", spf: nil)
        #expect(noSP.policy == .reject)  // sub.example.com is NXDOMAIN here
    }

    @Test func testingLowersThePolicy() async {
        let reject = await evaluate(DMARCZone(records: ["_dmarc.example.com": ["v=DMARC1; p=reject; t=y"]]), from: "example.com")
        #expect(reject.code == .fail)
        #expect(reject.testing)
        #expect(reject.publishedPolicy == .reject)
        #expect(reject.policy == .quarantine)
        let quarantine = await evaluate(DMARCZone(records: ["_dmarc.example.com": ["v=DMARC1; p=quarantine; t=y"]]), from: "example.com")
        #expect(quarantine.policy == DMARCPolicy.none)
        #expect(quarantine.publishedPolicy == .quarantine)
    }

    @Test func rfc7489PercentageActsAsTesting() async {
        let zero = await evaluate(DMARCZone(records: ["_dmarc.example.com": ["v=DMARC1; p=reject; pct=0"]]), from: "example.com")
        #expect(zero.policy == .quarantine)
        let full = await evaluate(DMARCZone(records: ["_dmarc.example.com": ["v=DMARC1; p=reject; pct=100"]]), from: "example.com")
        #expect(full.policy == .reject)
    }

    @Test func timeoutAtAuthorDomainIsTemperror() async {
        let r = await evaluate(DMARCZone(timeouts: ["_dmarc.example.com"]), from: "example.com", spf: "example.com")
        #expect(r.code == .temperror)
        #expect(r.policy == DMARCPolicy.none)
        #expect(r.reason.contains("timeout"))
    }

    @Test func timeoutDuringTheWalkIsTemperror() async {
        let r = await evaluate(DMARCZone(timeouts: ["_dmarc.example.com"]), from: "mail.example.com")
        #expect(r.code == .temperror)
    }

    @Test func timeoutThatCannotChangeTheResultIsIgnored() async {
        let records = ["_dmarc.example.com": ["v=DMARC1; p=reject"]]
        // SPF's walk times out, but DKIM is aligned anyway.
        let pass = await evaluate(DMARCZone(records: records, timeouts: ["_dmarc.mail.example.com"]),
                                  from: "example.com", spf: "mail.example.com", dkim: ["example.com"])
        #expect(pass.code == .pass)
        #expect(pass.alignedDKIM == "example.com")
        #expect(!pass.alignedSPF)
        // Without DKIM the timeout leaves the result open.
        let open = await evaluate(DMARCZone(records: records, timeouts: ["_dmarc.mail.example.com"]),
                                  from: "example.com", spf: "mail.example.com")
        #expect(open.code == .temperror)
    }

    @Test func timeoutOfTheExistenceCheckIsTemperror() async {
        let zone = DMARCZone(records: ["_dmarc.example.com": ["v=DMARC1; p=none; np=reject"]], timeouts: ["ghost.example.com"])
        #expect(await evaluate(zone, from: "ghost.example.com").code == .temperror)
    }

    @Test func invalidPolicy() async {
        let bare = await evaluate(DMARCZone(records: ["_dmarc.example.com": ["v=DMARC1; p=bogus"]]), from: "example.com")
        #expect(bare.code == .permerror)
        #expect(bare.policy == DMARCPolicy.none)
        let withRUA = await evaluate(DMARCZone(records: ["_dmarc.example.com": ["v=DMARC1; p=bogus; rua=mailto:d@example.com"]]),
                                     from: "example.com")
        #expect(withRUA.code == .fail)
        #expect(withRUA.publishedPolicy == DMARCPolicy.none)
        #expect(withRUA.policy == DMARCPolicy.none)
    }

    @Test func oversizedRecordIsPermerror() async {
        let long = "v=DMARC1; p=reject; rua=mailto:" + String(repeating: "a", count: 5000) + "@example.com"
        let r = await evaluate(DMARCZone(records: ["_dmarc.example.com": [long]]), from: "example.com")
        #expect(r.code == .permerror)
        #expect(r.recordDomain == "example.com")
    }

    @Test func malformedFromDomainIsPermerror() async {
        let zone = DMARCZone()
        #expect(await evaluate(zone, from: "exa mple.com").code == .permerror)
        #expect(await evaluate(zone, from: "").code == .permerror)
        #expect(zone.log.all.isEmpty)
    }
}
