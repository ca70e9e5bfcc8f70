import struct Foundation.Date
import Logging
import MIME
import MailAuth
import MailCore
import SMTPCore

/// Message authentication of mail arriving on port 25 (after DATA, before the `250`): SPF for the
/// MAIL FROM (or HELO) identity, every DKIM signature, DMARC for each `From:` domain; the results
/// as one `Authentication-Results:` field (RFC 8601) and the policy's decision. Mail from
/// authenticated sessions and `relay_networks` is not evaluated (the caller does not ask).
struct InboundAuthentication: Sendable {
    let resolver: any MailAuthResolver
    /// Our authserv-id: the host name.
    let authservID: String
    let rejectSPFFail: Bool
    let enforceDMARC: Bool
    /// ARC sealers whose valid chain overrides a DMARC failure (`[dmarc] trusted_arc_sealers`).
    let trustedARCSealers: Set<String>
    /// Aggregate report counts (`[dmarc] reports`), nil when off.
    var reports: DMARCReports? = nil

    /// What to do with the message.
    enum Action: Sendable, Equatable {
        case deliver
        /// DMARC `p=quarantine` failed: into each recipient's Junk folder.
        case quarantine
        case reject(SMTPReply)
    }

    struct Verdict: Sendable {
        /// The `Authentication-Results:` field in storage form (LF line ends).
        var field: [UInt8]
        var action: Action
        /// `spf=… dkim=… dmarc=…` for the message's log line.
        var summary: String
        /// The results the field holds (an ARC sealer records them again).
        var results: AuthenticationResults
        /// The incoming ARC chain's state.
        var arc: ARCResult.Code
    }

    /// Evaluates a message whose header section is `message` (parsed from the wire form) and whose
    /// body went through `bodyHashes`.
    func evaluate(_ message: DKIMMessage, bodyHashes: DKIMBodyHashes, remoteIP: String, helo: String,
                  mailFrom: String) async -> Verdict {
        let now = Int64(Date().timeIntervalSince1970)
        async let spfVerdict = SPFEvaluator(resolver: resolver, receivingHost: authservID, now: { now })
            .check(ip: remoteIP, helo: helo, mailFrom: mailFrom)
        async let dkimChecks = DKIMVerifier.verifyAll(message, bodyHashes: bodyHashes, resolver: resolver, now: now)
        async let arcChain = ARCVerifier.validate(message, bodyHashes: bodyHashes, resolver: resolver)
        let spf = await spfVerdict
        let dkim = await dkimChecks
        let arc = await arcChain

        // DMARC for every distinct From: domain; the strictest outcome counts (docs/mail-auth.md).
        let fromDomains = Self.fromDomains(message)
        let dmarcEvaluator = DMARCEvaluator(resolver: resolver)
        let spfDomain: String? = spf.result == .pass ? spf.domain : nil
        let dkimDomains = dkim.compactMap { $0.result == .pass ? $0.domain : nil }
        var dmarc: [DMARCResult] = []
        for domain in fromDomains.prefix(4) {
            dmarc.append(await dmarcEvaluator.evaluate(fromDomain: domain, spfDomain: spfDomain, dkimDomains: dkimDomains))
        }

        var results: [AuthenticationResults.Result] = []
        if dkim.isEmpty {
            results.append(.init(method: "dkim", result: "none"))
        }
        let references = AuthenticationResults.signatureReferences(dkim.map { $0.signature ?? "" })
        for (check, reference) in zip(dkim, references) {
            var r = AuthenticationResults.Result(method: "dkim", result: check.result.keyword)
            if let why = check.result.reason { r.reason = why }
            if let d = check.domain { r.properties.append(.init(ptype: "header", property: "d", value: d)) }
            if let i = check.identity, !i.isEmpty { r.properties.append(.init(ptype: "header", property: "i", value: i)) }
            if let s = check.selector { r.properties.append(.init(ptype: "header", property: "s", value: s)) }
            if let a = check.algorithm { r.properties.append(.init(ptype: "header", property: "a", value: a)) }
            if check.signature != nil { r.properties.append(.init(ptype: "header", property: "b", value: reference)) }
            results.append(r)
        }
        var spfResult = AuthenticationResults.Result(method: "spf", result: spf.result.rawValue)
        spfResult.comment = spf.reason
        spfResult.properties.append(spf.identity == .helo
            ? .init(ptype: "smtp", property: "helo", value: spf.domain)
            : .init(ptype: "smtp", property: "mailfrom", value: spf.sender))
        results.append(spfResult)
        if arc.code != .none {
            var r = AuthenticationResults.Result(method: "arc", result: arc.code.rawValue)
            r.comment = arc.reason
            r.properties.append(.init(ptype: "smtp", property: "remote-ip", value: remoteIP))
            results.append(r)
        }
        if dmarc.isEmpty {
            var r = AuthenticationResults.Result(method: "dmarc", result: "none")
            r.comment = "no From: domain"
            results.append(r)
        }
        for d in dmarc {
            var r = AuthenticationResults.Result(method: "dmarc", result: d.code.rawValue)
            if let p = d.publishedPolicy { r.comment = "p=\(p.rawValue)\(d.code == .fail ? " dis=\(d.policy.rawValue)" : "")" }
            r.properties.append(.init(ptype: "header", property: "from", value: d.fromDomain))
            if let p = d.publishedPolicy {
                r.properties.append(.init(ptype: "policy", property: "published-domain-policy", value: p.rawValue))
            }
            results.append(r)
        }
        let authenticationResults = AuthenticationResults(authservID: authservID, results: results)
        let field = authenticationResults.field(lineEnding: "\n")

        var action = Action.deliver
        // A trusted forwarder's valid ARC chain vouches for what it received (RFC 8617 leaves the
        // override to the receiver's local policy).
        let arcOverride = arc.latestSealer.map { trustedARCSealers.contains($0) } ?? false
        if enforceDMARC, !arcOverride, let failing = dmarc.filter({ $0.code == .fail }).max(by: { Self.rank($0.policy) < Self.rank($1.policy) }) {
            switch failing.policy {
            case .reject:
                action = .reject(SMTPReply(code: 550, .init(5, 7, 1),
                                           "Message rejected: DMARC policy of \(failing.recordDomain ?? failing.fromDomain) (p=reject) for From: domain \(failing.fromDomain)"))
            case .quarantine:
                action = .quarantine
            case .none:
                break
            }
        }
        if action == .deliver || action == .quarantine, rejectSPFFail, spf.result == .fail {
            // The explanation is the sender's text (printable ASCII, RFC 7208 §6.2): capped so that the
            // reply line stays far below RFC 5321's 512 octets.
            let why = String((spf.explanation ?? spf.reason).prefix(200))
            action = .reject(SMTPReply(code: 550, .init(5, 7, 23), "SPF check failed for \(spf.domain.prefix(253)): \(why)"))
        }
        if let reports {
            let envelope = mailFrom.lastIndex(of: "@").map { mailFrom[mailFrom.index(after: $0)...].lowercased() } ?? helo.lowercased()
            for d in dmarc {
                reports.record(d, row: Self.reportRow(d, ip: remoteIP, envelopeFrom: envelope, spf: spf, dkim: dkim,
                                                      enforced: enforceDMARC, arcOverride: arcOverride), now: now)
            }
        }
        let summary = "spf=\(spf.result.rawValue) dkim=\(dkim.isEmpty ? "none" : dkim.map(\.result.keyword).joined(separator: ","))"
            + " dmarc=\(dmarc.isEmpty ? "none" : dmarc.map { "\($0.code.rawValue)(\($0.fromDomain))" }.joined(separator: ","))"
            + (arc.code == .none ? "" : " arc=\(arc.code.rawValue)\(arc.latestSealer.map { "(\($0))" } ?? "")")
            + (arcOverride && dmarc.contains { $0.code == .fail } ? " dmarc-override=arc" : "")
        return Verdict(field: Array(field.utf8), action: action, summary: summary, results: authenticationResults, arc: arc.code)
    }

    /// The aggregate report row for one DMARC result (RFC 9990 §2.1): what was done, why it differs
    /// from the published policy, and the DKIM and SPF results behind it.
    static func reportRow(_ d: DMARCResult, ip: String, envelopeFrom: String, spf: SPFVerdict, dkim: [DKIMCheck],
                          enforced: Bool, arcOverride: Bool) -> DMARCAggregateReport.Row {
        var overrides: [DMARCAggregateReport.Override] = []
        let disposition: DMARCAggregateReport.Disposition
        if d.code == .pass {
            disposition = (d.publishedPolicy ?? DMARCPolicy.none) == DMARCPolicy.none ? .none : .pass
        } else if d.code != .fail || d.policy == .none {
            disposition = .none
        } else if !enforced {
            disposition = .none
            overrides.append(.localPolicy)
        } else if arcOverride {
            disposition = .none
            overrides.append(.trustedForwarder)
        } else {
            disposition = d.policy == .reject ? .reject : .quarantine
        }
        if d.code == .fail, d.testing, d.publishedPolicy != d.policy { overrides.append(.policyTestMode) }
        // Aligned passes first, then other passes, then the rest (§2.1.13).
        let ranked = dkim.enumerated().sorted { a, b in
            func rank(_ c: DKIMCheck) -> Int { c.result == .pass ? (c.domain == d.alignedDKIM ? 0 : 1) : 2 }
            return (rank(a.element), a.offset) < (rank(b.element), b.offset)
        }
        let entries = ranked.compactMap { _, c -> DMARCAggregateReport.DKIMEntry? in
            guard let domain = c.domain else { return nil }
            return .init(domain: domain, selector: c.selector ?? "", result: c.result.keyword)
        }
        return .init(sourceIP: ip, headerFrom: d.fromDomain, envelopeFrom: envelopeFrom.isEmpty ? nil : envelopeFrom,
                     disposition: disposition, dkimAligned: d.alignedDKIM != nil, spfAligned: d.alignedSPF,
                     overrides: overrides, dkim: entries, spfDomain: spf.domain.isEmpty ? nil : spf.domain,
                     spfResult: spf.result.rawValue, spfMailFrom: spf.identity != .helo)
    }

    static func rank(_ p: DMARCPolicy) -> Int {
        switch p {
        case .none: 0
        case .quarantine: 1
        case .reject: 2
        }
    }

    /// The distinct domains of every address in every `From:` field, lower case.
    static func fromDomains(_ message: DKIMMessage) -> [String] {
        var out: [String] = []
        for f in message.fields where f.name.lowercased() == "from" {
            for mailbox in AddressListParser.mailboxes(f.value) {
                guard let at = mailbox.address.lastIndex(of: "@") else { continue }
                let d = String(mailbox.address[mailbox.address.index(after: at)...]).lowercased()
                if !d.isEmpty, !out.contains(d) { out.append(d) }
            }
        }
        return out
    }

    /// The header section without the `Authentication-Results:` fields that claim our authserv-id
    /// (RFC 8601 §5: they were forged, or are left over from an earlier pass) — `removed` counts them
    /// — and without `Return-Path:` fields (only the final delivery writes one, RFC 5321 §4.4; Postfix
    /// drops them the same way). Wire form in and out; `message` is `header` parsed.
    static func cleaned(_ header: [UInt8], parsed message: DKIMMessage, authservID: String) -> (header: [UInt8], removed: Int) {
        let ours = authservID.lowercased()
        var out: [UInt8] = []
        out.reserveCapacity(header.count)
        var removed = 0, returnPaths = 0
        for f in message.fields {
            if f.name.lowercased() == "return-path" {
                returnPaths += 1
                continue
            }
            if f.name.lowercased() == "authentication-results",
               let colon = f.raw.firstIndex(of: UInt8(ascii: ":")),
               AuthenticationResults.authservID(ofFieldValue: f.raw[(colon + 1)...])?.lowercased() == ours {
                removed += 1
                continue
            }
            out += f.raw
        }
        return removed + returnPaths == 0 ? (header, 0) : (out, removed)
    }
}
