/// A Domain Owner Assessment Policy: the value of `p=`, `sp=` and `np=`.
/// - SeeAlso: RFC 9989 §3.2.8, §4.7
public enum DMARCPolicy: String, Sendable, Hashable, CaseIterable {
    /// No expression of preference.
    case none
    /// Failing mail is suspicious.
    case quarantine
    /// Failing mail is not a valid use of the domain.
    case reject

    /// The policy one level lower, which `t=y` asks receivers to apply instead (RFC 9989 §4.7, `t`):
    /// `reject` becomes `quarantine`, `quarantine` becomes `none`, `none` stays `none`.
    public var lowered: DMARCPolicy {
        switch self {
        case .reject: .quarantine
        case .quarantine, .none: .none
        }
    }
}

/// An Identifier Alignment mode: the value of `adkim=` and `aspf=`.
/// - SeeAlso: RFC 9989 §3.2.10, §4.7
public enum DMARCAlignmentMode: String, Sendable, Hashable {
    /// Same Organizational Domain (§3.2.10.1). The default.
    case relaxed = "r"
    /// Identical domains (§3.2.10.2).
    case strict = "s"
}

/// The `psd=` flag.
/// - SeeAlso: RFC 9989 §4.7
public enum DMARCPublicSuffixFlag: String, Sendable, Hashable {
    /// The record is published for a Public Suffix Domain.
    case yes = "y"
    /// The domain is not a PSD and is the Organizational Domain of itself and its subdomains.
    case no = "n"
    /// Not said: the tree walk decides (§4.10). The default.
    case unknown = "u"
}

/// One value of `fo=`.
/// - SeeAlso: RFC 9989 §4.7
public enum DMARCFailureReportingOption: String, Sendable, Hashable {
    /// Report when every mechanism fails to give an aligned pass. The default.
    case allFail = "0"
    /// Report when any mechanism fails to give an aligned pass.
    case anyFail = "1"
    /// Report DKIM signatures that failed, aligned or not (RFC 6651).
    case dkim = "d"
    /// Report SPF failures, aligned or not (RFC 6652).
    case spf = "s"
}

/// Why a TXT record cannot be used as a DMARC Policy Record.
public enum DMARCError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The record does not start with `v=DMARC1`; it MUST be ignored (RFC 9989 §4.7, `v`).
    case notDMARC(String)
    /// The record is longer than ``DMARCRecord/maximumLength`` octets.
    case tooLong(Int)

    public var description: String {
        switch self {
        case .notDMARC(let why): why
        case .tooLong(let n): "DMARC record of \(n) octets (at most \(DMARCRecord.maximumLength))"
        }
    }
}

/// A DMARC Policy Record: the TXT record at `_dmarc.<domain>`.
///
/// ```
/// dmarc-record  = dmarc-version *(dmarc-sep dmarc-tag) [dmarc-sep]
/// dmarc-version = "v" equals %s"DMARC1"
/// dmarc-sep     = *WSP ";" *WSP
/// dmarc-tag     = 1*ALPHA equals 1*dmarc-value      ; equals = *WSP "=" *WSP
/// dmarc-value   = %x20-3A / %x3C-7E
/// ```
/// Reading follows RFC 9989 §4.7 and §4.8: `v=DMARC1` must come first (its value is case-sensitive);
/// tag names and keyword values are not (ABNF strings); unknown tags are ignored; a tag with a
/// malformed value falls back to its default; when a tag appears twice the first one counts. The
/// RFC 7489 tags `pct`, `rf` and `ri` (historic, §9.3) are read: `pct` below 100 asks for testing
/// (see ``isTesting``), `rf` and `ri` are ignored.
///
/// A `p=`, `sp=` or `np=` with an invalid value (§4.10.1): when `rua=` holds at least one valid URI
/// the record is read as `p=none` (``policy`` `none`, ``subdomainPolicy`` and
/// ``nonExistentSubdomainPolicy`` nil); otherwise ``isUsable`` is false and no DMARC processing applies.
/// - SeeAlso: RFC 9989 §4.7, §4.8, §4.10.1
public struct DMARCRecord: Sendable, Hashable {
    /// Longer records are refused (a legitimate record is a few hundred octets).
    public static let maximumLength = 4096

    /// `p=`: the policy for the domain itself and, failing `sp`/`np`, its subdomains. `none` when absent.
    public var policy: DMARCPolicy
    /// `sp=`: the policy for existing subdomains of the Organizational Domain.
    public var subdomainPolicy: DMARCPolicy?
    /// `np=`: the policy for non-existent subdomains (§3.2.13).
    public var nonExistentSubdomainPolicy: DMARCPolicy?
    /// `psd=`.
    public var publicSuffix: DMARCPublicSuffixFlag
    /// `t=` as written: true for `y`, false for `n`, nil when absent or invalid.
    public var testMode: Bool?
    /// RFC 7489 `pct=` (0–100), when present and valid.
    public var percentage: Int?
    /// `adkim=`.
    public var dkimAlignment: DMARCAlignmentMode
    /// `aspf=`.
    public var spfAlignment: DMARCAlignmentMode
    /// `rua=`: the syntactically valid aggregate report URIs, any `!size` suffix removed.
    public var aggregateReportURIs: [String]
    /// `ruf=`: the syntactically valid failure report URIs, any `!size` suffix removed.
    public var failureReportURIs: [String]
    /// `fo=` (meaningful only with ``failureReportURIs``).
    public var failureReportingOptions: [DMARCFailureReportingOption]
    /// The policy tags (`p`, `sp`, `np`) whose value was not valid.
    public var invalidPolicyTags: [String]

    public init(policy: DMARCPolicy = .none, subdomainPolicy: DMARCPolicy? = nil,
                nonExistentSubdomainPolicy: DMARCPolicy? = nil, publicSuffix: DMARCPublicSuffixFlag = .unknown,
                testMode: Bool? = nil, percentage: Int? = nil,
                dkimAlignment: DMARCAlignmentMode = .relaxed, spfAlignment: DMARCAlignmentMode = .relaxed,
                aggregateReportURIs: [String] = [], failureReportURIs: [String] = [],
                failureReportingOptions: [DMARCFailureReportingOption] = [.allFail], invalidPolicyTags: [String] = []) {
        self.policy = policy
        self.subdomainPolicy = subdomainPolicy
        self.nonExistentSubdomainPolicy = nonExistentSubdomainPolicy
        self.publicSuffix = publicSuffix
        self.testMode = testMode
        self.percentage = percentage
        self.dkimAlignment = dkimAlignment
        self.spfAlignment = spfAlignment
        self.aggregateReportURIs = aggregateReportURIs
        self.failureReportURIs = failureReportURIs
        self.failureReportingOptions = failureReportingOptions
        self.invalidPolicyTags = invalidPolicyTags
    }

    /// Whether the Domain Owner asks for the policy not to be applied (one level lower instead):
    /// `t=y`; without `t=`, an RFC 7489 `pct=` below 100. RFC 9989 Appendix A.6 makes `t=y`/`t=n`
    /// the counterparts of `pct=0`/`pct=100`; a sample percentage in between is not applied at
    /// random here but read as testing, which is what RFC 7489 §6.6.4 applied to the messages left
    /// out of the sample.
    public var isTesting: Bool {
        if let t = testMode { return t }
        if let pct = percentage { return pct < 100 }
        return false
    }

    /// False when a policy tag is invalid and no valid `rua=` URI is given: the receiver then
    /// applies no DMARC processing (RFC 9989 §4.10.1).
    public var isUsable: Bool { invalidPolicyTags.isEmpty || !aggregateReportURIs.isEmpty }

    /// Whether `text` starts with a `v` tag naming DMARC1, the test of RFC 9989 §4.10 steps 2 and 6
    /// that picks DMARC Policy Records out of the TXT records at a name.
    public static func startsWithVersion(_ text: [UInt8]) -> Bool {
        let first = text.prefix { $0 != UInt8(ascii: ";") }
        guard let (name, value) = nameAndValue(trimmed(first[...])) else { return false }
        return lowercased(name) == [UInt8(ascii: "v")] && value.elementsEqual("DMARC1".utf8)
    }

    /// Reads a record. - Throws: ``DMARCError/notDMARC(_:)`` when `v=DMARC1` is not the first tag,
    /// ``DMARCError/tooLong(_:)`` past ``maximumLength``. Every other defect falls back to defaults.
    public static func parse(_ text: String) throws(DMARCError) -> DMARCRecord {
        let bytes = Array(text.utf8)
        guard bytes.count <= maximumLength else { throw .tooLong(bytes.count) }
        let specs = bytes.split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: false).map { trimmed($0) }
        guard let first = specs.first, let (vName, vValue) = nameAndValue(first), lowercased(vName) == [UInt8(ascii: "v")] else {
            throw .notDMARC("the record does not start with v=")
        }
        guard vValue.elementsEqual("DMARC1".utf8) else {
            throw .notDMARC("v=\(String(decoding: vValue.prefix(20), as: UTF8.self)) is not DMARC1")
        }
        var record = DMARCRecord()
        var invalid: [String] = []
        var seen: Set<[UInt8]> = [[UInt8(ascii: "v")]]
        for spec in specs.dropFirst() where !spec.isEmpty {
            // §4.8: syntax errors are discarded in favour of defaults, or ignored.
            guard let (rawName, rawValue) = nameAndValue(spec), !rawName.isEmpty, rawName.allSatisfy(isAlpha) else { continue }
            let name = lowercased(rawName)
            guard seen.insert(name).inserted else { continue }
            let valueIsValid = !rawValue.isEmpty && rawValue.allSatisfy { $0 >= 0x20 && $0 <= 0x7E }
            let value = valueIsValid ? String(decoding: rawValue, as: UTF8.self) : ""
            let keyword = valueIsValid ? String(decoding: lowercased(rawValue), as: UTF8.self) : ""
            switch String(decoding: name, as: UTF8.self) {
            case "p":
                if let p = DMARCPolicy(rawValue: keyword) { record.policy = p } else { invalid.append("p") }
            case "sp":
                if let p = DMARCPolicy(rawValue: keyword) { record.subdomainPolicy = p } else { invalid.append("sp") }
            case "np":
                if let p = DMARCPolicy(rawValue: keyword) { record.nonExistentSubdomainPolicy = p } else { invalid.append("np") }
            case "psd":
                record.publicSuffix = DMARCPublicSuffixFlag(rawValue: keyword) ?? .unknown
            case "t":
                record.testMode = keyword == "y" ? true : keyword == "n" ? false : nil
            case "adkim":
                record.dkimAlignment = DMARCAlignmentMode(rawValue: keyword) ?? .relaxed
            case "aspf":
                record.spfAlignment = DMARCAlignmentMode(rawValue: keyword) ?? .relaxed
            case "rua":
                record.aggregateReportURIs = uriList(value)
            case "ruf":
                record.failureReportURIs = uriList(value)
            case "fo":
                record.failureReportingOptions = failureOptions(keyword) ?? [.allFail]
            case "pct":
                // RFC 7489 §6.3: an integer 0–100.
                if (1...3).contains(rawValue.count), rawValue.allSatisfy(isDigit),
                   let n = Int(value), n <= 100 { record.percentage = n }
            default:
                break  // rf, ri (RFC 7489, historic) and unknown tags: ignored (§4.7)
            }
        }
        if !invalid.isEmpty {
            // §4.10.1: act as if the record said p=none (used only when rua= is valid, see isUsable).
            record.policy = .none
            record.subdomainPolicy = nil
            record.nonExistentSubdomainPolicy = nil
            record.invalidPolicyTags = invalid
        }
        return record
    }

    // MARK: - Grammar helpers

    static func isAlpha(_ b: UInt8) -> Bool { (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) }
    static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
    static func isWhitespace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0A }

    static func lowercased(_ s: ArraySlice<UInt8>) -> [UInt8] { s.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 } }

    static func trimmed(_ s: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var s = s
        while let f = s.first, isWhitespace(f) { s = s.dropFirst() }
        while let l = s.last, isWhitespace(l) { s = s.dropLast() }
        return s
    }

    /// `name *WSP "=" *WSP value` split at the first `=`, both sides trimmed; nil without `=`.
    static func nameAndValue(_ spec: ArraySlice<UInt8>) -> (ArraySlice<UInt8>, ArraySlice<UInt8>)? {
        guard let eq = spec.firstIndex(of: UInt8(ascii: "=")) else { return nil }
        return (trimmed(spec[..<eq]), trimmed(spec[spec.index(after: eq)...]))
    }

    /// `dmarc-urilist`: the valid URIs, `obs-dmarc-report-size` removed; invalid ones are dropped.
    static func uriList(_ value: String) -> [String] {
        var out: [String] = []
        for item in value.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: true) {
            var uri = trimmed(ArraySlice(item))
            if let bang = uri.lastIndex(of: UInt8(ascii: "!")) {
                // obs-dmarc-report-size = "!" 1*DIGIT [ "k" / "m" / "g" / "t" ]: reporters ignore it.
                var size = lowercased(uri[uri.index(after: bang)...])[...]
                if let unit = size.last, [UInt8(ascii: "k"), UInt8(ascii: "m"), UInt8(ascii: "g"), UInt8(ascii: "t")].contains(unit) {
                    size = size.dropLast()
                }
                guard !size.isEmpty, size.allSatisfy(isDigit) else { continue }
                uri = uri[..<bang]
            }
            if isURI(uri) { out.append(String(decoding: uri, as: UTF8.self)) }
        }
        return out
    }

    /// A loose RFC 3986 URI test: `scheme ":" rest`, with only URI characters and no `,` or `!`
    /// (which §4.8 says must be percent-encoded).
    static func isURI(_ s: ArraySlice<UInt8>) -> Bool {
        guard let colon = s.firstIndex(of: UInt8(ascii: ":")), colon != s.startIndex else { return false }
        let scheme = s[..<colon]
        let rest = s[s.index(after: colon)...]
        guard let first = scheme.first, isAlpha(first),
              scheme.allSatisfy({ isAlpha($0) || isDigit($0) || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }),
              !rest.isEmpty else { return false }
        let allowed = Set("-._~:/?#[]@$&'()*+;=%".utf8)
        return rest.allSatisfy { isAlpha($0) || isDigit($0) || allowed.contains($0) }
    }

    /// `dmarc-fo`: colon-separated `0`, `1`, `d`, `s`, each at most once, `0` and `1` not together.
    static func failureOptions(_ keyword: String) -> [DMARCFailureReportingOption]? {
        var out: [DMARCFailureReportingOption] = []
        for item in keyword.split(separator: ":", omittingEmptySubsequences: false) {
            let word = String(decoding: trimmed(ArraySlice(item.utf8)), as: UTF8.self)
            guard let option = DMARCFailureReportingOption(rawValue: word), !out.contains(option) else { return nil }
            out.append(option)
        }
        if out.contains(.allFail) && out.contains(.anyFail) { return nil }
        return out.isEmpty ? nil : out
    }
}
