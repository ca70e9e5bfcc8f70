import Foundation
import Logging
import MailAuth
@testable import MailServer
import Testing

/// The aggregate report counts (`DMARCReports`): rows counted per policy domain and period, kept
/// across a restart through `<data_dir>/dmarc/`, bounded, and only for records that ask for reports;
/// and the report itself (`DMARCAggregateReport`): file name, subject, escaping, `mailto:` URIs.
@Suite struct DMARCReportsTests {
    static func result(_ domain: String, rua: [String], code: DMARCResult.Code = .pass) throws -> DMARCResult {
        let record = try DMARCRecord.parse("v=DMARC1; p=quarantine" + (rua.isEmpty ? "" : "; rua=" + rua.joined(separator: ",")))
        return DMARCResult(code: code, policy: .quarantine, publishedPolicy: .quarantine, record: record, recordDomain: domain,
                           fromDomain: domain, alignedDKIM: code == .pass ? domain : nil, reason: "test")
    }

    static func row(_ ip: String, _ from: String) -> DMARCAggregateReport.Row {
        .init(sourceIP: ip, headerFrom: from, envelopeFrom: from, disposition: .pass, dkimAligned: true, spfAligned: false,
              dkim: [.init(domain: from, selector: "s", result: "pass")], spfDomain: from, spfResult: "softfail")
    }

    func reports(_ dir: String) -> DMARCReports {
        DMARCReports(settings: .init(interval: 3_600, maximumReportsPerDay: 2, sender: "dmarc-reports@example.test",
                                     organization: "mx.example.test", directory: dir), logger: Logger(label: "test"))
    }

    @Test func countsSurviveARestartAndReportsFollowTheRFC() throws {
        let dir = NSTemporaryDirectory() + "dmarc-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let now: Int64 = 1_796_472_123
        let a = reports(dir)
        let origin = try Self.result("origin.example", rua: ["mailto:d@origin.example"])
        a.record(origin, row: Self.row("192.0.2.1", "origin.example"), now: now)
        a.record(origin, row: Self.row("192.0.2.1", "origin.example"), now: now)
        a.record(origin, row: Self.row("2001:db8::1", "sub.origin.example"), now: now)
        // No rua=: nothing counted.
        a.record(try Self.result("quiet.example", rua: []), row: Self.row("192.0.2.9", "quiet.example"), now: now)
        #expect(a.due(now: now).isEmpty)
        a.flush()

        let b = reports(dir)
        b.load()
        let due = b.due(now: now + 3_600)
        #expect(due.map(\.begin) == [1_796_472_000])
        let data = try #require(due.first?.domains["origin.example"])
        #expect(due.first?.domains.keys.sorted() == ["origin.example"])
        #expect(data.counts.sorted() == [1, 2])
        let report = b.report(begin: 1_796_472_000, domain: "origin.example", data: data)
        #expect(report.fileName == "mx.example.test!origin.example!1796472000!1796475599.xml.gz")
        #expect(report.subject == "Report Domain: origin.example Submitter: mx.example.test Report-ID: <1796472000.origin.example@mx.example.test>")
        #expect(report.rows.first?.count == 2)
        let xml = report.xml
        #expect(xml.contains("<source_ip>2001:db8::1</source_ip>"))
        #expect(xml.contains("<spf>\n        <domain>origin.example</domain>\n        <scope>mfrom</scope>\n        <result>softfail</result>"))
        #expect(xml.contains("<p>quarantine</p>") && xml.contains("<discovery_method>treewalk</discovery_method>"))
        b.finished(1_796_472_000)
        #expect(b.due(now: now + 3_600).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dir + "/1796472000.json"))
        // The daily cap.
        #expect(b.mayQueue(now: now) && b.mayQueue(now: now) && !b.mayQueue(now: now))
        #expect(b.mayQueue(now: now + 86_400))

        let gz = try DMARCReports.gzip(xml)
        #expect(Array(gz.prefix(2)) == [0x1F, 0x8B])
    }

    @Test func rowsAndDomainsAreBounded() throws {
        let dir = NSTemporaryDirectory() + "dmarc-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = reports(dir)
        let origin = try Self.result("origin.example", rua: ["mailto:d@origin.example"])
        for i in 0..<(DMARCReports.maximumRows + 50) {
            a.record(origin, row: Self.row("10.0.\(i / 256).\(i % 256)", "origin.example"), now: 0)
        }
        #expect(a.due(now: 3_600).first?.domains["origin.example"]?.rows.count == DMARCReports.maximumRows)
    }

    @Test func textIsEscapedAndMailtoURIsAreRead() {
        var odd = DMARCAggregateReport(organization: "mx<&>", contact: "a\"b@example.test", reportID: "r\u{1}", begin: 0, end: 1,
                                       policyDomain: "d.example", policy: .init(try! DMARCRecord.parse("v=DMARC1; p=none")), rows: [])
        odd.generator = "g"
        #expect(odd.xml.contains("<org_name>mx&lt;&amp;&gt;</org_name>") && odd.xml.contains("<email>a&quot;b@example.test</email>")
                && odd.xml.contains("<report_id>r</report_id>"))
        #expect(DMARCAggregateReport.mailto("mailto:dmarc@example.org")! == ("dmarc@example.org", nil))
        #expect(DMARCAggregateReport.mailto(" mailto:r@example.org!10m")! == ("r@example.org", 10 << 20))
        #expect(DMARCAggregateReport.mailto("mailto:r%40x@example.org!500")! == ("r@x@example.org", 500))
        #expect(DMARCAggregateReport.mailto("https://example.org/report") == nil)
        #expect(DMARCAggregateReport.mailto("mailto:nobody") == nil)
        #expect(DMARCAggregateReport.mailto("mailto:a@b.example!10x") == nil)
        #expect(DMARCAggregateReport.mailto("mailto:a@b.example?subject=x") == nil)
    }
}
