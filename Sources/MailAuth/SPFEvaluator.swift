/// The outcome of ``SPFEvaluator/check(ip:helo:mailFrom:)``.
public struct SPFVerdict: Sendable, Hashable {
    /// Which identity was checked (RFC 7208 §2.3, §2.4).
    public enum Identity: String, Sendable, Hashable {
        /// `MAIL FROM` (`smtp.mailfrom` in Authentication-Results).
        case mailFrom = "mailfrom"
        /// The HELO/EHLO name, for a null reverse-path (`smtp.helo`).
        case helo
    }

    /// The result.
    public var result: SPFResult
    /// The identity checked.
    public var identity: Identity
    /// The domain checked: the MAIL FROM domain, or the HELO name.
    public var domain: String
    /// The `<sender>` of check_host(): `local@domain` (`postmaster@helo` for the HELO identity).
    public var sender: String
    /// The expanded `exp=` text for a `fail`, when the record gives one (§6.2).
    public var explanation: String?
    /// What decided the result, for the log and the Authentication-Results comment
    /// (`matched ip4:192.0.2.0/24`, `11 DNS lookups`).
    public var reason: String
}

/// RFC 7208 `check_host()`: evaluates the sending domain's SPF record for a client IP. Pure: DNS goes
/// through a ``MailAuthResolver``.
///
/// Limits (§4.6.4): at most ``maximumLookups`` terms that query DNS (`include`, `a`, `mx`, `ptr`,
/// `exists`, `redirect`), at most ``maximumVoidLookups`` of them with an empty answer, at most 10 MX
/// records per `mx` and 10 names per `ptr`; beyond them the result is `permerror`. A DNS failure is
/// `temperror` (§2.6.6), never a `fail`.
public struct SPFEvaluator: Sendable {
    /// The resolver every lookup goes through.
    public var resolver: any MailAuthResolver
    /// `%{r}`: this host's name (§7.3), `unknown` when not set.
    public var receivingHost: String
    /// `%{t}`: seconds since 1970 at the time of the check.
    public var now: @Sendable () -> Int64
    /// The limit on DNS-querying terms (10 per §4.6.4).
    public var maximumLookups = 10
    /// The limit on lookups that return nothing (2 per §4.6.4).
    public var maximumVoidLookups = 2

    public init(resolver: any MailAuthResolver, receivingHost: String = "unknown", now: @escaping @Sendable () -> Int64) {
        self.resolver = resolver
        self.receivingHost = receivingHost
        self.now = now
    }

    /// Checks the MAIL FROM identity, or the HELO identity when `mailFrom` is empty (§2.4). `ip` is
    /// the SMTP client's address in text; an IPv4-mapped IPv6 address is evaluated as IPv4.
    public func check(ip: String, helo: String, mailFrom: String) async -> SPFVerdict {
        let (identity, sender): (SPFVerdict.Identity, String) = mailFrom.isEmpty ? (.helo, "postmaster@" + helo) : (.mailFrom, mailFrom)
        let domain = Self.domain(ofSender: sender)
        guard let address = SPFAddress.parse(ip) else {
            return SPFVerdict(result: .permerror, identity: identity, domain: domain, sender: sender, explanation: nil,
                              reason: "client address \(ip) is not an IP address")
        }
        return await checkHost(address: address, domain: domain, sender: sender, helo: helo, identity: identity)
    }

    /// `check_host(ip, domain, sender)` of §4 for an address of 4 or 16 octets.
    public func checkHost(address: [UInt8], domain: String, sender: String, helo: String,
                          identity: SPFVerdict.Identity = .mailFrom) async -> SPFVerdict {
        var context = Context(address: address, sender: Self.withLocalPart(sender), helo: helo)
        let outcome = await evaluate(domain: domain, context: &context, top: true)
        return SPFVerdict(result: outcome.result, identity: identity, domain: domain, sender: context.sender,
                          explanation: outcome.explanation, reason: outcome.reason)
    }

    // MARK: - Evaluation

    struct Context {
        var address: [UInt8]
        var sender: String
        var helo: String
        var lookups = 0
        var voidLookups = 0
        /// `%{p}`, once computed.
        var validatedName: [String: String] = [:]

        var isIPv4: Bool { address.count == 4 }
        var localPart: String { String(sender[..<(sender.lastIndex(of: "@") ?? sender.startIndex)]) }
        var senderDomain: String { SPFEvaluator.domain(ofSender: sender) }
    }

    struct Outcome {
        var result: SPFResult
        var explanation: String?
        var reason: String
    }

    private enum Stop: Error {
        case result(SPFResult, String)
    }

    /// One record's evaluation (§4.3–§4.7).
    private func evaluate(domain rawDomain: String, context: inout Context, top: Bool) async -> Outcome {
        let domain = Self.trimDot(rawDomain)
        // §4.3: a malformed or single-label domain is "none".
        guard Self.isValidDomain(domain) else { return Outcome(result: .none, reason: "\(domain) is not a valid domain") }
        let record: SPFRecord
        do {
            let answer = try await resolver.txt(domain)
            if case .nxdomain = answer { return Outcome(result: .none, reason: "\(domain) does not exist") }
            let candidates = answer.records.filter { SPFRecord.isSPF($0) }
            guard !candidates.isEmpty else { return Outcome(result: .none, reason: "no SPF record at \(domain)") }
            guard candidates.count == 1 else { return Outcome(result: .permerror, reason: "\(candidates.count) SPF records at \(domain)") }
            record = try SPFRecord(parsing: candidates[0])
        } catch let e as MailAuthDNSError {
            return Outcome(result: .temperror, reason: "DNS error for \(domain): \(e.reason)")
        } catch let SPFError.syntax(why) {
            return Outcome(result: .permerror, reason: "\(domain): \(why)")
        } catch {
            return Outcome(result: .temperror, reason: "\(error)")
        }

        do {
            for directive in record.directives {
                if directive.mechanism.queriesDNS { try count(&context) }
                if try await matches(directive.mechanism, domain: domain, context: &context) {
                    let result = directive.qualifier.result
                    var explanation: String?
                    if result == .fail, top, let exp = record.explanation {
                        explanation = await explain(exp, domain: domain, context: &context)
                    }
                    return Outcome(result: result, explanation: explanation, reason: "\(domain) matched \(directive.text)")
                }
            }
            if let redirect = record.redirect {
                try count(&context)
                let target = try await expandDomain(redirect, domain: domain, context: &context)
                var inner = await evaluate(domain: target, context: &context, top: top)
                if inner.result == .none { inner = Outcome(result: .permerror, reason: "redirect=\(target) has no SPF record") }
                return inner
            }
            return Outcome(result: .neutral, reason: "no mechanism of \(domain) matched")
        } catch {
            guard case .result(let result, let reason) = error else { return Outcome(result: .temperror, reason: "\(error)") }
            return Outcome(result: result, reason: reason)
        }
    }

    private func count(_ context: inout Context) throws(Stop) {
        context.lookups += 1
        if context.lookups > maximumLookups { throw .result(.permerror, "more than \(maximumLookups) DNS lookups") }
    }

    private func void(_ isVoid: Bool, _ context: inout Context) throws(Stop) {
        guard isVoid else { return }
        context.voidLookups += 1
        if context.voidLookups > maximumVoidLookups { throw .result(.permerror, "more than \(maximumVoidLookups) void DNS lookups") }
    }

    private func dns<T>(_ name: String, _ body: () async throws(MailAuthDNSError) -> T) async throws(Stop) -> T {
        do { return try await body() } catch { throw .result(.temperror, "DNS error for \(name): \(error.reason)") }
    }

    private func matches(_ mechanism: SPFRecord.Mechanism, domain: String, context: inout Context) async throws(Stop) -> Bool {
        switch mechanism {
        case .all:
            return true
        case .ip4(let network, let prefix):
            return context.isIPv4 && SPFAddress.matches(context.address, network, prefix: prefix)
        case .ip6(let network, let prefix):
            return !context.isIPv4 && SPFAddress.matches(context.address, network, prefix: prefix)
        case .include(let spec):
            let target = try await expandDomain(spec, domain: domain, context: &context)
            let inner = await evaluate(domain: target, context: &context, top: false)
            switch inner.result {
            case .pass: return true
            case .fail, .softfail, .neutral: return false
            case .temperror: throw .result(.temperror, inner.reason)
            case .permerror: throw .result(.permerror, inner.reason)
            case .none: throw .result(.permerror, "include:\(target) has no SPF record")
            }
        case .a(let spec, let v4, let v6):
            let target = try await target(spec, domain: domain, context: &context)
            guard let target else { try void(true, &context); return false }
            let addresses = try await addresses(of: target, context: context)
            try void(addresses.isEmpty, &context)
            return addresses.contains { SPFAddress.matches(context.address, $0, prefix: context.isIPv4 ? v4 : v6) }
        case .mx(let spec, let v4, let v6):
            let target = try await target(spec, domain: domain, context: &context)
            guard let target else { try void(true, &context); return false }
            let exchanges = try await dns(target) { () async throws(MailAuthDNSError) in try await resolver.mx(target) }.records
            try void(exchanges.isEmpty, &context)
            guard exchanges.count <= 10 else { throw .result(.permerror, "mx:\(target) has more than 10 MX records") }
            for exchange in exchanges where !exchange.isEmpty {
                let addresses = try await addresses(of: exchange, context: context)
                if addresses.contains(where: { SPFAddress.matches(context.address, $0, prefix: context.isIPv4 ? v4 : v6) }) {
                    return true
                }
            }
            return false
        case .ptr(let spec):
            let target = try await target(spec, domain: domain, context: &context)
            guard let target else { try void(true, &context); return false }
            let names = try await validatedNames(context: &context)
            let wanted = target.lowercased()
            return names.contains { $0 == wanted || $0.hasSuffix("." + wanted) }
        case .exists(let spec):
            let target = try await expandDomain(spec, domain: domain, context: &context)
            guard Self.isQueryable(target) else { try void(true, &context); return false }
            let answer = try await dns(target) { () async throws(MailAuthDNSError) in try await resolver.ipv4(target) }
            try void(answer.isVoid, &context)
            return !answer.isVoid
        }
    }

    /// The domain a mechanism names (the current one when it names none); nil when the expanded
    /// name cannot be queried.
    private func target(_ spec: SPFMacroString?, domain: String, context: inout Context) async throws(Stop) -> String? {
        guard let spec else { return domain }
        let name = try await expandDomain(spec, domain: domain, context: &context)
        return Self.isQueryable(name) ? name : nil
    }

    /// The addresses of the client's family at `name`.
    private func addresses(of name: String, context: Context) async throws(Stop) -> [[UInt8]] {
        guard Self.isQueryable(name) else { return [] }
        return try await dns(name) { () async throws(MailAuthDNSError) in
            context.isIPv4 ? try await resolver.ipv4(name).records : try await resolver.ipv6(name).records
        }
    }

    /// The PTR names of the client address whose own addresses include it (§5.5), lower case;
    /// at most 10 names are tried, and DNS errors on the way only mean "not validated".
    private func validatedNames(context: inout Context) async throws(Stop) -> [String] {
        let reverse = SPFAddress.reverseName(context.address)
        let names: [String]
        do { names = try await resolver.ptr(reverse).records } catch { return [] }
        try void(names.isEmpty, &context)
        var validated: [String] = []
        for name in names.prefix(10) {
            let clean = Self.trimDot(name).lowercased()
            guard Self.isQueryable(clean) else { continue }
            let found: [[UInt8]]
            do {
                found = context.isIPv4 ? try await resolver.ipv4(clean).records : try await resolver.ipv6(clean).records
            } catch {
                continue
            }
            if found.contains(context.address) { validated.append(clean) }
        }
        return validated
    }

    /// `%{p}`: a validated name of the client, preferring the current domain or its subdomains (§7.3).
    private func validatedName(domain: String, context: inout Context) async -> String {
        if let known = context.validatedName[domain] { return known }
        var saved = context
        let names = (try? await validatedNames(context: &saved)) ?? []
        context.voidLookups = saved.voidLookups
        let d = domain.lowercased()
        let name = names.first { $0 == d } ?? names.first { $0.hasSuffix("." + d) } ?? names.first ?? "unknown"
        context.validatedName[domain] = name
        return name
    }

    // MARK: - Macros (§7)

    private func expandDomain(_ spec: SPFMacroString, domain: String, context: inout Context) async throws(Stop) -> String {
        var name = await expand(spec, domain: domain, context: &context)
        if name.hasSuffix(".") { name.removeLast() }
        // §7.3: a name over 253 characters loses labels on the left.
        while name.utf8.count > 253, let dot = name.firstIndex(of: ".") {
            name = String(name[name.index(after: dot)...])
        }
        return name
    }

    func expand(_ string: SPFMacroString, domain: String, context: inout Context) async -> String {
        var out = ""
        for part in string.parts {
            switch part {
            case .literal(let bytes):
                out += String(decoding: bytes, as: UTF8.self)
            case .macro(let letter, let escape, let keep, let reverse, let delimiters):
                let value: String
                switch letter {
                case UInt8(ascii: "s"): value = context.sender
                case UInt8(ascii: "l"): value = context.localPart
                case UInt8(ascii: "o"): value = context.senderDomain
                case UInt8(ascii: "d"): value = domain
                case UInt8(ascii: "i"): value = SPFAddress.dotted(context.address)
                case UInt8(ascii: "p"): value = await validatedName(domain: domain, context: &context)
                case UInt8(ascii: "v"): value = context.isIPv4 ? "in-addr" : "ip6"
                case UInt8(ascii: "h"): value = context.helo
                case UInt8(ascii: "c"): value = SPFAddress.text(context.address)
                case UInt8(ascii: "r"): value = receivingHost
                default: value = String(now())
                }
                var labels = value.utf8.split(omittingEmptySubsequences: false) { delimiters.contains($0) }
                    .map { String(decoding: $0, as: UTF8.self) }
                if reverse { labels.reverse() }
                if let keep, keep < labels.count { labels = Array(labels.suffix(keep)) }
                let joined = labels.joined(separator: ".")
                out += escape ? Self.urlEscaped(joined) : joined
            }
        }
        return out
    }

    /// The `exp=` explanation (§6.2): nil when anything about it goes wrong.
    private func explain(_ spec: SPFMacroString, domain: String, context: inout Context) async -> String? {
        guard let name = try? await expandDomain(spec, domain: domain, context: &context), Self.isQueryable(name),
              let records = try? await resolver.txt(name).records, records.count == 1,
              records[0].allSatisfy({ (0x20...0x7E).contains($0) }),
              let text = try? SPFMacroString(parsing: records[0], allowExplanationLetters: true)
        else { return nil }
        return await expand(text, domain: domain, context: &context)
    }

    static func urlEscaped(_ s: String) -> String {
        var out = ""
        let hex = Array("0123456789ABCDEF")
        for b in s.utf8 {
            if isAlpha(b) || isDigit(b) || b == 0x2D || b == 0x2E || b == 0x5F || b == 0x7E {
                out.append(Character(Unicode.Scalar(b)))
            } else {
                out += "%" + String(hex[Int(b >> 4)]) + String(hex[Int(b & 0xF)])
            }
        }
        return out
    }

    // MARK: - Names

    static func domain(ofSender sender: String) -> String {
        guard let at = sender.lastIndex(of: "@") else { return sender }
        return String(sender[sender.index(after: at)...])
    }

    /// §4.3: a sender without a local-part is `postmaster@domain`.
    static func withLocalPart(_ sender: String) -> String {
        guard let at = sender.lastIndex(of: "@") else { return "postmaster@" + sender }
        return at == sender.startIndex ? "postmaster" + sender : sender
    }

    static func trimDot(_ s: String) -> String { s.hasSuffix(".") ? String(s.dropLast()) : s }

    /// A name DNS can carry: labels of 1–63 octets, at most 253 in all.
    static func isQueryable(_ name: String) -> Bool {
        let n = trimDot(name)
        guard !n.isEmpty, n.utf8.count <= 253 else { return false }
        return n.utf8.split(separator: 0x2E, omittingEmptySubsequences: false).allSatisfy { (1...63).contains($0.count) }
    }

    /// §4.3: a queryable multi-label name that is not an address literal.
    static func isValidDomain(_ name: String) -> Bool {
        isQueryable(name) && name.contains(".") && !name.hasPrefix("[") && SPFAddress.parseIPv4(Array(name.utf8)) == nil
    }
}
