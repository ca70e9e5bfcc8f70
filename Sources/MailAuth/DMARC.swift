/// The outcome of ``DMARCEvaluator/evaluate(fromDomain:spfDomain:dkimDomains:)``.
/// - SeeAlso: RFC 9989 §5.3, §9.2 (the result names), RFC 8601 §2.7.1
public struct DMARCResult: Sendable, Hashable {
    /// The DMARC result (RFC 9989 §9.2).
    public enum Code: String, Sendable, Hashable {
        /// A record applies and an Authenticated Identifier is aligned with the Author Domain.
        case pass
        /// A record applies and no Authenticated Identifier is aligned.
        case fail
        /// No DMARC Policy Record applies: the mechanism does not apply (§4.10.1, §5.3.2).
        case none
        /// A DNS query needed for the result did not complete (§5.3.6); a later attempt may succeed.
        case temperror
        /// The record cannot be used (an invalid policy without `rua=`, an oversized record) or the
        /// From domain is not a domain name.
        case permerror
    }

    /// The result.
    public var code: Code
    /// The policy to apply: the published one for a `fail`, one level lower under `t=y`
    /// (``testing``); `none` for every other result.
    public var policy: DMARCPolicy
    /// The policy the record gives for the Author Domain (`p`, `sp` or `np`, before `t=`), for the
    /// log and `policy.published-domain-policy`; nil without a usable record. For a `pass` the
    /// existence of a subdomain is not checked, so `np` is never chosen there.
    public var publishedPolicy: DMARCPolicy?
    /// The DMARC Policy Record applied.
    public var record: DMARCRecord?
    /// The DMARC Policy Domain: where ``record`` was found (§3.2.5).
    public var recordDomain: String?
    /// The Author Domain's Organizational Domain (§4.10.2), when the evaluation determined it (it is
    /// not looked for when the record sits at the Author Domain and alignment did not need it).
    public var organizationalDomain: String?
    /// The Author Domain, lowercased, without a trailing dot.
    public var fromDomain: String
    /// The first DKIM `d=` aligned with the Author Domain.
    public var alignedDKIM: String?
    /// Whether the SPF-authenticated domain is aligned with the Author Domain.
    public var alignedSPF: Bool
    /// Whether the record asks for testing (`t=y`, or an RFC 7489 `pct` below 100).
    public var testing: Bool
    /// What decided the result, for the log and the Authentication-Results comment.
    public var reason: String

    public init(code: Code, policy: DMARCPolicy = .none, publishedPolicy: DMARCPolicy? = nil, record: DMARCRecord? = nil,
                recordDomain: String? = nil, organizationalDomain: String? = nil, fromDomain: String,
                alignedDKIM: String? = nil, alignedSPF: Bool = false, testing: Bool = false, reason: String) {
        self.code = code
        self.policy = policy
        self.publishedPolicy = publishedPolicy
        self.record = record
        self.recordDomain = recordDomain
        self.organizationalDomain = organizationalDomain
        self.fromDomain = fromDomain
        self.alignedDKIM = alignedDKIM
        self.alignedSPF = alignedSPF
        self.testing = testing
        self.reason = reason
    }
}

/// DMARC (RFC 9989) for one Author Domain: policy discovery and Organizational Domains by the DNS
/// Tree Walk (no public suffix list), identifier alignment, and the policy to apply. Pure: DNS goes
/// through a ``MailAuthResolver``; SPF and DKIM are the caller's results.
///
/// Work is bounded: a tree walk queries at most ``maximumQueriesPerWalk`` names (§4.10); answers are
/// shared by the walks of one evaluation; only the first ``maximumDKIMDomains`` distinct DKIM domains
/// are considered; an identifier gets a walk only when it lies under the Author Domain's
/// Organizational Domain (the only way it can be aligned).
public struct DMARCEvaluator: Sendable {
    /// The most `_dmarc` names a tree walk queries (RFC 9989 §4.10).
    public static let maximumQueriesPerWalk = 8

    /// The resolver every lookup goes through.
    public var resolver: any MailAuthResolver
    /// DKIM domains beyond this many distinct ones are not checked for alignment.
    public var maximumDKIMDomains = 10

    public init(resolver: any MailAuthResolver) {
        self.resolver = resolver
    }

    /// Evaluates DMARC for a message.
    /// - Parameters:
    ///   - fromDomain: the RFC5322.From domain, as an A-label (the caller handles messages with
    ///     several From domains, RFC 9989 §5.3.1, §11.5).
    ///   - spfDomain: the domain SPF authenticated when SPF passed (the MAIL FROM domain, or the HELO
    ///     name when MAIL FROM was empty, RFC 9989 §3.2.4), nil otherwise.
    ///   - dkimDomains: the `d=` of every DKIM signature that passed.
    public func evaluate(fromDomain: String, spfDomain: String?, dkimDomains: [String]) async -> DMARCResult {
        guard let author = Self.normalizedDomain(fromDomain) else {
            return DMARCResult(code: .permerror, fromDomain: fromDomain,
                               reason: "From domain \"\(fromDomain.prefix(80))\" is not an ASCII domain name")
        }
        var cache = Lookups()

        // Policy discovery (§4.10.1): the Author Domain, else its Organizational Domain, else its PSD.
        let record: DMARCRecord
        let recordDomain: String
        var authorOD: OrganizationalDomainState = .unknown
        let first: PolicyRecordLookup
        do { first = try await lookUp(author, &cache) } catch {
            return DMARCResult(code: .temperror, fromDomain: author, reason: "DNS error: \(error.reason)")
        }
        switch first {
        case .record(let r):
            record = r
            recordDomain = author
            // §4.10 step 2 stops the walk at once; §4.10.2 then selects the start (rule 1, or rule 3
            // for psd=y, which rule 2 excludes at the start).
            if r.publicSuffix != .unknown { authorOD = .known(author) }
        case .unusable(let why):
            return DMARCResult(code: .permerror, recordDomain: author, fromDomain: author, reason: "_dmarc.\(author): \(why)")
        case .absent:
            let steps: [WalkStep]
            do { steps = try await treeWalk(from: author, &cache) } catch {
                return DMARCResult(code: .temperror, fromDomain: author, reason: "DNS error: \(error.reason)")
            }
            let od = Self.organizationalDomain(start: author, steps: steps)
            authorOD = .known(od)
            guard let step = steps.first(where: { $0.domain == od && $0.lookup.exists })
                    ?? steps.first(where: { $0.lookup.publicSuffix == .yes }) else {
                return DMARCResult(code: .none, organizationalDomain: od, fromDomain: author,
                                   reason: "no DMARC record for \(author) or its parent domains")
            }
            switch step.lookup {
            case .record(let r):
                record = r
                recordDomain = step.domain
            case .unusable(let why):
                return DMARCResult(code: .permerror, recordDomain: step.domain, organizationalDomain: od,
                                   fromDomain: author, reason: "_dmarc.\(step.domain): \(why)")
            case .absent:
                return DMARCResult(code: .none, organizationalDomain: od, fromDomain: author, reason: "no DMARC record")
            }
        }
        guard record.isUsable else {
            return DMARCResult(code: .permerror, record: record, recordDomain: recordDomain, organizationalDomain: authorOD.domain,
                               fromDomain: author,
                               reason: "_dmarc.\(recordDomain): invalid \(record.invalidPolicyTags.map { $0 + "=" }.joined(separator: ", ")) and no valid rua=")
        }

        // Identifier alignment (§4.4, §4.10.2, §5.3.4).
        var dnsError: MailAuthDNSError?
        var alignedSPF = false
        if let spf = spfDomain {
            switch await alignment(of: spf, author: author, mode: record.spfAlignment, authorOD: &authorOD, cache: &cache) {
            case .aligned: alignedSPF = true
            case .notAligned: break
            case .unknown(let e): dnsError = dnsError ?? e
            }
        }
        var alignedDKIM: String?
        var seen: Set<String> = []
        var candidates: [String] = []
        for d in dkimDomains {
            guard candidates.count < maximumDKIMDomains, let n = Self.normalizedDomain(d), seen.insert(n).inserted else { continue }
            candidates.append(n)
        }
        // The identical domain first: it needs no DNS.
        candidates = candidates.filter { $0 == author } + candidates.filter { $0 != author }
        for d in candidates where alignedDKIM == nil {
            switch await alignment(of: d, author: author, mode: record.dkimAlignment, authorOD: &authorOD, cache: &cache) {
            case .aligned: alignedDKIM = d
            case .notAligned: break
            case .unknown(let e): dnsError = dnsError ?? e
            }
        }

        // The policy (§4.10.1): p for the Author Domain itself; for a subdomain sp, or np when it
        // does not exist (§3.2.13), each falling back to p.
        let isSubdomain = recordDomain != author
        var result = DMARCResult(code: .pass, record: record, recordDomain: recordDomain, organizationalDomain: authorOD.domain,
                                 fromDomain: author, alignedDKIM: alignedDKIM, alignedSPF: alignedSPF,
                                 testing: record.isTesting, reason: "")
        if alignedDKIM != nil || alignedSPF {
            result.publishedPolicy = isSubdomain ? record.subdomainPolicy ?? record.policy : record.policy
            result.reason = alignedDKIM.map { "aligned DKIM d=\($0)" } ?? "aligned SPF \(Self.normalizedDomain(spfDomain ?? "") ?? "")"
            return result
        }
        if let e = dnsError {
            result.code = .temperror
            result.reason = "no aligned identifier; DNS error: \(e.reason)"
            return result
        }
        var published = record.policy
        var nonExistent = false
        if isSubdomain {
            let existing = record.subdomainPolicy ?? record.policy
            published = existing
            if let np = record.nonExistentSubdomainPolicy, np != existing {
                do {
                    nonExistent = try await !exists(author)
                } catch {
                    result.code = .temperror
                    result.reason = "no aligned identifier; DNS error: \(error.reason)"
                    return result
                }
                if nonExistent { published = np }
            }
        }
        result.code = .fail
        result.publishedPolicy = published
        result.policy = record.isTesting ? published.lowered : published
        var why = "no aligned identifier"
        if nonExistent { why += "; \(author) does not exist (np=)" }
        if record.isTesting, published != .none { why += "; testing (t=y), \(published.rawValue) lowered to \(result.policy.rawValue)" }
        result.reason = why
        return result
    }

    /// The Organizational Domain of `domain` by the DNS Tree Walk (RFC 9989 §4.10.2). A string that
    /// is not a domain name is returned unchanged, without a query.
    public func organizationalDomain(of domain: String) async throws(MailAuthDNSError) -> String {
        guard let start = Self.normalizedDomain(domain) else { return domain }
        var cache = Lookups()
        let steps = try await treeWalk(from: start, &cache)
        return Self.organizationalDomain(start: start, steps: steps)
    }

    // MARK: - The tree walk

    /// What `_dmarc.<domain>` holds after §4.10 steps 2 and 6.
    enum PolicyRecordLookup: Hashable {
        /// No DMARC Policy Record: NXDOMAIN, none among the TXT records, or several (all discarded).
        case absent(String)
        /// The one DMARC Policy Record.
        case record(DMARCRecord)
        /// One record starting with `v=DMARC1` that cannot be read (too long).
        case unusable(String)

        /// Whether a (single) DMARC Policy Record is there.
        var exists: Bool {
            if case .absent = self { return false }
            return true
        }

        /// Its `psd=`, nil without a record (an unreadable record counts as `psd=u`).
        var publicSuffix: DMARCPublicSuffixFlag? {
            switch self {
            case .absent: nil
            case .record(let r): r.publicSuffix
            case .unusable: .unknown
            }
        }
    }

    /// One name of a walk and what it held.
    struct WalkStep: Hashable {
        var domain: String
        var labelCount: Int
        var lookup: PolicyRecordLookup
    }

    /// The answers of one evaluation, errors included, so walks that meet share queries.
    struct Lookups {
        var answers: [String: Result<PolicyRecordLookup, MailAuthDNSError>] = [:]
    }

    enum OrganizationalDomainState {
        case unknown
        case known(String)
        case failed(MailAuthDNSError)

        var domain: String? {
            if case .known(let d) = self { return d }
            return nil
        }
    }

    enum Alignment {
        case aligned
        case notAligned
        case unknown(MailAuthDNSError)
    }

    /// The names a walk from `domain` queries, in order (§4.10 steps 1, 4, 7): the domain; then,
    /// with 8 or more labels, its last 7 labels, else its parent; then one label fewer each time,
    /// down to the top-level domain. At most ``maximumQueriesPerWalk`` names.
    static func walkTargets(_ domain: String) -> [String] {
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        var out = [domain]
        var n = min(labels.count - 1, maximumQueriesPerWalk - 1)
        while n >= 1 {
            out.append(labels.suffix(n).joined(separator: "."))
            n -= 1
        }
        return out
    }

    /// §4.10: queries the targets in order and stops after a record with `psd=y` or `psd=n`.
    func treeWalk(from domain: String, _ cache: inout Lookups) async throws(MailAuthDNSError) -> [WalkStep] {
        var steps: [WalkStep] = []
        for target in Self.walkTargets(domain) {
            let lookup = try await lookUp(target, &cache)
            steps.append(WalkStep(domain: target, labelCount: target.split(separator: ".").count, lookup: lookup))
            if let psd = lookup.publicSuffix, psd != .unknown { break }
        }
        return steps
    }

    /// The Organizational Domain from a walk's steps (§4.10.2): from the longest name to the shortest,
    /// a record with `psd=n` is it; a record with `psd=y` other than at the start makes it the name one
    /// label below; otherwise the record with the fewest labels; without records, the start.
    static func organizationalDomain(start: String, steps: [WalkStep]) -> String {
        let labels = start.split(separator: ".")
        for step in steps {
            guard let psd = step.lookup.publicSuffix else { continue }
            if psd == .no { return step.domain }
            if psd == .yes, step.domain != start { return labels.suffix(step.labelCount + 1).joined(separator: ".") }
        }
        return steps.last(where: { $0.lookup.exists })?.domain ?? start
    }

    /// The TXT records at `_dmarc.<domain>`, reduced to the one DMARC Policy Record (§4.10 step 2:
    /// records not starting with `v=DMARC1` are discarded; several are all discarded).
    func lookUp(_ domain: String, _ cache: inout Lookups) async throws(MailAuthDNSError) -> PolicyRecordLookup {
        if let known = cache.answers[domain] { return try known.get() }
        let name = "_dmarc." + domain
        let outcome: Result<PolicyRecordLookup, MailAuthDNSError>
        do {
            outcome = .success(Self.select(try await resolver.txt(name)))
        } catch {
            outcome = .failure(MailAuthDNSError("\(name): \(error.reason)"))
        }
        cache.answers[domain] = outcome
        return try outcome.get()
    }

    static func select(_ answer: MailAuthLookup<[UInt8]>) -> PolicyRecordLookup {
        guard case .records(let txt) = answer else { return .absent("NXDOMAIN") }
        let candidates = txt.filter(DMARCRecord.startsWithVersion)
        guard candidates.count == 1, let only = candidates.first else {
            return .absent(candidates.isEmpty ? "no DMARC record" : "\(candidates.count) DMARC records, all discarded")
        }
        guard only.count <= DMARCRecord.maximumLength else { return .unusable(DMARCError.tooLong(only.count).description) }
        do {
            return .record(try DMARCRecord.parse(String(decoding: only, as: UTF8.self)))
        } catch {
            return .unusable(error.description)
        }
    }

    // MARK: - Alignment

    /// Whether `identifier` is aligned with `author` (§3.2.10, §4.4): identical (case-insensitively)
    /// in either mode; in relaxed mode, also when both have the same Organizational Domain.
    func alignment(of identifier: String, author: String, mode: DMARCAlignmentMode,
                   authorOD: inout OrganizationalDomainState, cache: inout Lookups) async -> Alignment {
        guard let id = Self.normalizedDomain(identifier) else { return .notAligned }
        if id == author { return .aligned }
        guard mode == .relaxed else { return .notAligned }
        let od: String
        switch authorOD {
        case .known(let d): od = d
        case .failed(let e): return .unknown(e)
        case .unknown:
            do {
                let steps = try await treeWalk(from: author, &cache)
                od = Self.organizationalDomain(start: author, steps: steps)
                authorOD = .known(od)
            } catch {
                authorOD = .failed(error)
                return .unknown(error)
            }
        }
        // An Organizational Domain is the domain itself or one of its parents, so the identifier's can
        // only be `od` when the identifier is `od` or lies below it.
        guard id == od || id.hasSuffix("." + od) else { return .notAligned }
        do {
            let steps = try await treeWalk(from: id, &cache)
            return Self.organizationalDomain(start: id, steps: steps) == od ? .aligned : .notAligned
        } catch {
            return .unknown(error)
        }
    }

    // MARK: - Names

    /// Whether `domain` exists (§3.2.13, Appendix A.4): it does not when the A, AAAA and MX queries
    /// all answer NXDOMAIN; any other answer (records or NODATA) means it exists.
    func exists(_ domain: String) async throws(MailAuthDNSError) -> Bool {
        do {
            if case .records = try await resolver.ipv4(domain) { return true }
            if case .records = try await resolver.ipv6(domain) { return true }
            if case .records = try await resolver.mx(domain) { return true }
            return false
        } catch {
            throw MailAuthDNSError("existence of \(domain): \(error.reason)")
        }
    }

    /// `domain` lowercased, surrounding whitespace and one trailing dot removed; nil unless it is an
    /// ASCII domain name (labels of 1–63 letters, digits, `-` or `_`, 253 octets at most). Domain
    /// comparisons are case-insensitive (RFC 9989 §4.4, RFC 4343); U-labels must already be A-labels
    /// (§5.3.1).
    static func normalizedDomain(_ domain: String) -> String? {
        var bytes = DMARCRecord.trimmed(ArraySlice(domain.utf8))
        if bytes.last == UInt8(ascii: ".") { bytes = bytes.dropLast() }
        guard !bytes.isEmpty, bytes.count <= 253 else { return nil }
        let lower = DMARCRecord.lowercased(bytes)
        var labelLength = 0
        for b in lower {
            if b == UInt8(ascii: ".") {
                guard labelLength > 0 else { return nil }
                labelLength = 0
                continue
            }
            guard (b >= 0x61 && b <= 0x7A) || DMARCRecord.isDigit(b) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") else { return nil }
            labelLength += 1
            guard labelLength <= 63 else { return nil }
        }
        guard labelLength > 0 else { return nil }
        return String(decoding: lower, as: UTF8.self)
    }
}
