/// A DMARC aggregate report (RFC 9990): what one receiver saw for one DMARC Policy Domain over one
/// period, as the `urn:ietf:params:xml:ns:dmarc-2.0` XML document, with the file name and Subject
/// field the RFC prescribes (§3.5.2). The report is data: counting messages, compressing the XML and
/// mailing it are the caller's.
public struct DMARCAggregateReport: Sendable {
    /// What the receiver did with the messages of a row (`ActionDispositionType`).
    public enum Disposition: String, Sendable, Hashable, Codable {
        /// No action (the policy is `none`, or it was not applied).
        case none
        /// DMARC passed under an enforcing policy.
        case pass
        case quarantine
        case reject
    }

    /// Why the policy was not applied as published (`PolicyOverrideType`).
    public enum Override: String, Sendable, Hashable, Codable {
        case localPolicy = "local_policy"
        case mailingList = "mailing_list"
        case other
        case policyTestMode = "policy_test_mode"
        case trustedForwarder = "trusted_forwarder"
    }

    /// One DKIM signature's result as reported (`DKIMAuthResultType`).
    public struct DKIMEntry: Sendable, Hashable, Codable {
        public var domain: String
        public var selector: String
        /// `none`, `pass`, `fail`, `policy`, `neutral`, `temperror` or `permerror`.
        public var result: String

        public init(domain: String, selector: String, result: String) {
            self.domain = domain
            self.selector = selector
            self.result = result
        }
    }

    /// What identifies a row: messages that agree in all of it are counted together.
    public struct Row: Sendable, Hashable, Codable {
        public var sourceIP: String
        /// The RFC 5322.From domain.
        public var headerFrom: String
        /// The RFC 5321.MailFrom domain (the HELO name for the null sender); nil when unknown.
        public var envelopeFrom: String?
        public var disposition: Disposition
        /// Whether an aligned DKIM signature passed.
        public var dkimAligned: Bool
        /// Whether SPF passed for an aligned domain.
        public var spfAligned: Bool
        public var overrides: [Override]
        /// The DKIM signatures, in the RFC's order of preference (§2.1.13) — aligned passes first.
        public var dkim: [DKIMEntry]
        /// The SPF check: its domain and result (RFC 8601 keywords).
        public var spfDomain: String?
        public var spfResult: String?
        /// Whether the SPF domain was the MAIL FROM one (`scope` `mfrom`; HELO checks have none).
        public var spfMailFrom: Bool

        public init(sourceIP: String, headerFrom: String, envelopeFrom: String?, disposition: Disposition, dkimAligned: Bool,
                    spfAligned: Bool, overrides: [Override] = [], dkim: [DKIMEntry] = [], spfDomain: String? = nil,
                    spfResult: String? = nil, spfMailFrom: Bool = true) {
            self.sourceIP = sourceIP
            self.headerFrom = headerFrom
            self.envelopeFrom = envelopeFrom
            self.disposition = disposition
            self.dkimAligned = dkimAligned
            self.spfAligned = spfAligned
            self.overrides = overrides
            self.dkim = dkim
            self.spfDomain = spfDomain
            self.spfResult = spfResult
            self.spfMailFrom = spfMailFrom
        }
    }

    /// The published policy the report states (`PolicyPublishedType`), from the last record seen.
    public struct PublishedPolicy: Sendable, Hashable, Codable {
        public var p: String
        public var sp: String?
        public var np: String?
        public var adkim: String
        public var aspf: String
        public var testing: Bool
        public var fo: String?

        public init(_ record: DMARCRecord) {
            p = record.policy.rawValue
            sp = record.subdomainPolicy?.rawValue
            np = record.nonExistentSubdomainPolicy?.rawValue
            adkim = record.dkimAlignment.rawValue
            aspf = record.spfAlignment.rawValue
            testing = record.isTesting
            fo = record.failureReportingOptions.isEmpty ? nil : record.failureReportingOptions.map(\.rawValue).joined(separator: ":")
        }
    }

    /// The Reporting Organization's name (our host name) and contact address.
    public var organization: String
    public var contact: String
    public var reportID: String
    /// The period, seconds since 1970: `begin` included, `end` excluded.
    public var begin: Int64
    public var end: Int64
    /// The DMARC Policy Domain.
    public var policyDomain: String
    public var policy: PublishedPolicy
    /// Each distinct row with its message count.
    public var rows: [(row: Row, count: Int)]
    /// `generator`: name and version of the software.
    public var generator: String?

    public init(organization: String, contact: String, reportID: String, begin: Int64, end: Int64, policyDomain: String,
                policy: PublishedPolicy, rows: [(row: Row, count: Int)], generator: String? = nil) {
        self.organization = organization
        self.contact = contact
        self.reportID = reportID
        self.begin = begin
        self.end = end
        self.policyDomain = policyDomain
        self.policy = policy
        self.rows = rows
        self.generator = generator
    }

    /// `receiver!policy-domain!begin!end.xml.gz` (§3.5.2; `end` is the last second covered).
    public var fileName: String { "\(organization)!\(policyDomain)!\(begin)!\(end - 1).xml.gz" }

    /// `Report Domain: <policy domain> Submitter: <receiver> Report-ID: <id>` (§3.5.2).
    public var subject: String { "Report Domain: \(policyDomain) Submitter: \(organization) Report-ID: <\(reportID)>" }

    /// The XML document (UTF-8).
    public var xml: String {
        var x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\">\n"
        x += "  <version>1.0</version>\n"
        x += "  <report_metadata>\n"
        x += "    <org_name>\(Self.escape(organization))</org_name>\n"
        x += "    <email>\(Self.escape(contact))</email>\n"
        x += "    <report_id>\(Self.escape(reportID))</report_id>\n"
        x += "    <date_range>\n      <begin>\(begin)</begin>\n      <end>\(end - 1)</end>\n    </date_range>\n"
        if let generator { x += "    <generator>\(Self.escape(generator))</generator>\n" }
        x += "  </report_metadata>\n"
        x += "  <policy_published>\n"
        x += "    <domain>\(Self.escape(policyDomain))</domain>\n"
        x += "    <p>\(policy.p)</p>\n"
        if let sp = policy.sp { x += "    <sp>\(sp)</sp>\n" }
        if let np = policy.np { x += "    <np>\(np)</np>\n" }
        x += "    <adkim>\(policy.adkim)</adkim>\n    <aspf>\(policy.aspf)</aspf>\n"
        x += "    <discovery_method>treewalk</discovery_method>\n"
        if let fo = policy.fo { x += "    <fo>\(Self.escape(fo))</fo>\n" }
        x += "    <testing>\(policy.testing ? "y" : "n")</testing>\n"
        x += "  </policy_published>\n"
        for (row, count) in rows {
            x += "  <record>\n    <row>\n"
            x += "      <source_ip>\(Self.escape(row.sourceIP))</source_ip>\n"
            x += "      <count>\(count)</count>\n"
            x += "      <policy_evaluated>\n"
            x += "        <disposition>\(row.disposition.rawValue)</disposition>\n"
            x += "        <dkim>\(row.dkimAligned ? "pass" : "fail")</dkim>\n"
            x += "        <spf>\(row.spfAligned ? "pass" : "fail")</spf>\n"
            for o in row.overrides { x += "        <reason>\n          <type>\(o.rawValue)</type>\n        </reason>\n" }
            x += "      </policy_evaluated>\n    </row>\n"
            x += "    <identifiers>\n      <header_from>\(Self.escape(row.headerFrom))</header_from>\n"
            if let e = row.envelopeFrom { x += "      <envelope_from>\(Self.escape(e))</envelope_from>\n" }
            x += "    </identifiers>\n    <auth_results>\n"
            for d in row.dkim.prefix(100) {
                x += "      <dkim>\n        <domain>\(Self.escape(d.domain))</domain>\n"
                x += "        <selector>\(Self.escape(d.selector))</selector>\n"
                x += "        <result>\(Self.keyword(d.result, Self.dkimResults))</result>\n      </dkim>\n"
            }
            if let domain = row.spfDomain, let result = row.spfResult {
                x += "      <spf>\n        <domain>\(Self.escape(domain))</domain>\n"
                if row.spfMailFrom { x += "        <scope>mfrom</scope>\n" }
                x += "        <result>\(Self.keyword(result, Self.spfResults))</result>\n      </spf>\n"
            }
            x += "    </auth_results>\n  </record>\n"
        }
        return x + "</feedback>\n"
    }

    static let dkimResults: Set<String> = ["none", "pass", "fail", "policy", "neutral", "temperror", "permerror"]
    static let spfResults: Set<String> = ["none", "pass", "fail", "softfail", "policy", "neutral", "temperror", "permerror"]

    /// `value` when the schema allows it, else the nearest it does (`permerror`).
    static func keyword(_ value: String, _ allowed: Set<String>) -> String {
        allowed.contains(value) ? value : "permerror"
    }

    /// Text content with `&`, `<`, `>`, `"` escaped and control characters dropped (XML 1.0 allows
    /// none but tab, LF and CR, and the report needs none of those).
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default:
                if scalar.value < 0x20 || (0xFFFE...0xFFFF).contains(scalar.value) { continue }
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

extension DMARCAggregateReport {
    /// A `mailto:` URI of `rua=` (RFC 9989 §4.7): the address and the size limit (`!10m`), or nil for
    /// another scheme or a malformed one.
    public static func mailto(_ uri: String) -> (address: String, maximumSize: Int?)? {
        let trimmed = uri.trimmingASCIIWhitespace()
        guard trimmed.lowercased().hasPrefix("mailto:") else { return nil }
        var rest = Substring(trimmed.dropFirst(7))
        var limit: Int?
        if let bang = rest.lastIndex(of: "!") {
            let spec = rest[rest.index(after: bang)...].lowercased()
            rest = rest[..<bang]
            let units: [Character: Int] = ["k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40]
            let digits = spec.prefix { $0.isASCII && $0.isNumber }
            guard let n = Int(digits) else { return nil }
            let unit = spec.dropFirst(digits.count)
            guard unit.count <= 1 else { return nil }
            let factor = unit.first.map { units[$0] } ?? 1
            guard let factor else { return nil }
            limit = n.multipliedReportingOverflow(by: factor).overflow ? Int.max : n * factor
        }
        // Percent-encoding in the address part (RFC 6068): decode the common escapes.
        let address = rest.removingPercentEncoding()
        guard let at = address.lastIndex(of: "@"), at != address.startIndex, address.index(after: at) != address.endIndex,
              !address.contains(where: { $0 == " " || $0 == "," || $0 == "?" }) else { return nil }
        return (address, limit)
    }
}

private extension StringProtocol {
    func trimmingASCIIWhitespace() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }

    func removingPercentEncoding() -> String {
        var bytes: [UInt8] = []
        var it = Array(utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "%"), it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(v)
                it = it.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
