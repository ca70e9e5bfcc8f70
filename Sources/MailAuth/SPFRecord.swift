/// An SPF record (RFC 7208 §4.5, §12): its directives in order and its `redirect=`/`exp=` modifiers.
/// Parsing checks the whole record against the ABNF before anything is evaluated (§4.6: a syntax error
/// anywhere is a `permerror`, even after a mechanism that would have matched).
public struct SPFRecord: Sendable, Hashable {
    /// `+`, `-`, `~`, `?` (RFC 7208 §4.6.2).
    public enum Qualifier: Character, Sendable, Hashable {
        case pass = "+", fail = "-", softfail = "~", neutral = "?"

        /// The result a matching mechanism with this qualifier gives.
        public var result: SPFResult {
            switch self {
            case .pass: .pass
            case .fail: .fail
            case .softfail: .softfail
            case .neutral: .neutral
            }
        }
    }

    /// The mechanisms of RFC 7208 §5.
    public enum Mechanism: Sendable, Hashable {
        case all
        case include(SPFMacroString)
        /// `a[:domain][/cidr4][//cidr6]`; a nil domain means the current one.
        case a(SPFMacroString?, ipv4Prefix: Int, ipv6Prefix: Int)
        case mx(SPFMacroString?, ipv4Prefix: Int, ipv6Prefix: Int)
        case ptr(SPFMacroString?)
        /// An address (4 octets) and prefix length.
        case ip4([UInt8], prefix: Int)
        /// An address (16 octets) and prefix length.
        case ip6([UInt8], prefix: Int)
        case exists(SPFMacroString)

        /// Whether evaluating it costs one of the ten DNS lookups (§4.6.4).
        var queriesDNS: Bool {
            switch self {
            case .all, .ip4, .ip6: false
            case .include, .a, .mx, .ptr, .exists: true
            }
        }
    }

    /// One directive: a qualifier and a mechanism, with the term's text for logs.
    public struct Directive: Sendable, Hashable {
        public var qualifier: Qualifier
        public var mechanism: Mechanism
        public var text: String
    }

    /// The directives, left to right.
    public var directives: [Directive] = []
    /// `redirect=` (§6.1).
    public var redirect: SPFMacroString?
    /// `exp=` (§6.2).
    public var explanation: SPFMacroString?

    /// Records longer than this are refused (a TXT answer is at most 64 KiB; SPF records are a few hundred octets).
    public static let maximumLength = 8192

    /// Whether TXT record `text` is an SPF record: `v=spf1` (any case) followed by a space or the end (§4.5).
    public static func isSPF(_ text: some Collection<UInt8>) -> Bool {
        let version = Array("v=spf1".utf8)
        var i = text.startIndex
        for expected in version {
            guard i != text.endIndex, lowercase(text[i]) == expected else { return false }
            i = text.index(after: i)
        }
        return i == text.endIndex || text[i] == 0x20
    }

    /// Parses a record that ``isSPF(_:)`` accepted.
    /// - Throws: ``SPFError/syntax(_:)`` for anything the ABNF of §12 does not allow.
    public init(parsing text: some Collection<UInt8>) throws(SPFError) {
        let bytes = Array(text)
        guard bytes.count <= Self.maximumLength else { throw .syntax("record longer than \(Self.maximumLength) octets") }
        guard Self.isSPF(bytes) else { throw .syntax("not an SPF record") }
        for b in bytes where b < 0x20 || b > 0x7E {
            throw .syntax("record contains a non-printable or non-ASCII octet 0x\(String(b, radix: 16))")
        }
        for term in bytes.dropFirst(6).split(separator: 0x20) {
            try parseTerm(Array(term))
        }
    }

    private mutating func parseTerm(_ term: [UInt8]) throws(SPFError) {
        let text = String(decoding: term, as: UTF8.self)
        // A modifier is `name=value` where name is ALPHA *(ALPHA / DIGIT / "-" / "_" / ".").
        if let eq = term.firstIndex(of: 0x3D), !term[..<eq].contains(where: { $0 == 0x3A || $0 == 0x2F }) {
            let name = term[..<eq]
            guard let first = name.first, isAlpha(first),
                  name.allSatisfy({ isAlpha($0) || isDigit($0) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E })
            else { throw .syntax("bad modifier name in \(text)") }
            let value = Array(term[(eq + 1)...])
            switch String(decoding: name, as: UTF8.self).lowercased() {
            case "redirect":
                guard redirect == nil else { throw .syntax("more than one redirect=") }
                redirect = try SPFMacroString(domainSpec: value)
            case "exp":
                guard explanation == nil else { throw .syntax("more than one exp=") }
                explanation = try SPFMacroString(domainSpec: value)
            default:
                _ = try SPFMacroString(parsing: value, allowExplanationLetters: false)  // unknown modifiers are ignored, but must parse
            }
            return
        }
        var rest = term[...]
        var qualifier = Qualifier.pass
        if let first = rest.first, let q = Qualifier(rawValue: Character(Unicode.Scalar(first))) {
            qualifier = q
            rest = rest.dropFirst()
        }
        let nameEnd = rest.firstIndex { $0 == 0x3A || $0 == 0x2F } ?? rest.endIndex
        let name = String(decoding: rest[..<nameEnd], as: UTF8.self).lowercased()
        let argument = rest[nameEnd...]
        let mechanism: Mechanism
        switch name {
        case "all":
            guard argument.isEmpty else { throw .syntax("all takes no argument: \(text)") }
            mechanism = .all
        case "include", "exists":
            guard argument.first == 0x3A else { throw .syntax("\(name) needs a domain: \(text)") }
            let spec = try SPFMacroString(domainSpec: Array(argument.dropFirst()))
            mechanism = name == "include" ? .include(spec) : .exists(spec)
        case "a", "mx":
            var body = Array(argument)
            let (v4, v6) = try Self.dualCIDR(&body, text: text)
            var domain: SPFMacroString?
            if !body.isEmpty {
                guard body.first == 0x3A else { throw .syntax("bad \(name) mechanism: \(text)") }
                domain = try SPFMacroString(domainSpec: Array(body.dropFirst()))
            }
            mechanism = name == "a" ? .a(domain, ipv4Prefix: v4, ipv6Prefix: v6) : .mx(domain, ipv4Prefix: v4, ipv6Prefix: v6)
        case "ptr":
            var domain: SPFMacroString?
            if !argument.isEmpty {
                guard argument.first == 0x3A else { throw .syntax("bad ptr mechanism: \(text)") }
                domain = try SPFMacroString(domainSpec: Array(argument.dropFirst()))
            }
            mechanism = .ptr(domain)
        case "ip4", "ip6":
            guard argument.first == 0x3A else { throw .syntax("\(name) needs an address: \(text)") }
            var body = Array(argument.dropFirst())
            var prefix = name == "ip4" ? 32 : 128
            if let slash = body.firstIndex(of: 0x2F) {
                prefix = try Self.cidrLength(body[(slash + 1)...], maximum: prefix, text: text)
                body = Array(body[..<slash])
            }
            if name == "ip4" {
                guard let address = SPFAddress.parseIPv4(body, strict: true) else { throw .syntax("bad IPv4 network: \(text)") }
                mechanism = .ip4(address, prefix: prefix)
            } else {
                guard let address = SPFAddress.parseIPv6(body) else { throw .syntax("bad IPv6 network: \(text)") }
                mechanism = .ip6(address, prefix: prefix)
            }
        default:
            throw .syntax("unknown mechanism \(text)")
        }
        directives.append(Directive(qualifier: qualifier, mechanism: mechanism, text: text))
    }

    /// Takes `[/cidr4][//cidr6]` off the end of `body` (§5.6 dual-cidr-length).
    private static func dualCIDR(_ body: inout [UInt8], text: String) throws(SPFError) -> (Int, Int) {
        var v4 = 32, v6 = 128
        // A "/" followed by anything but digits belongs to the domain-spec (its macro-literals
        // allow "/"); the domain-spec's own check then judges it.
        if let double = lastIndex(of: [0x2F, 0x2F], in: body), body[(double + 2)...].allSatisfy(isDigit) {
            v6 = try cidrLength(body[(double + 2)...], maximum: 128, text: text)
            body.removeSubrange(double...)
        }
        if let slash = body.lastIndex(of: 0x2F), body[(slash + 1)...].allSatisfy(isDigit) {
            v4 = try cidrLength(body[(slash + 1)...], maximum: 32, text: text)
            body.removeSubrange(slash...)
        }
        return (v4, v6)
    }

    private static func lastIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in stride(from: haystack.count - needle.count, through: 0, by: -1)
        where haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
        return nil
    }

    /// `"0" / %x31-39 0*2DIGIT`, at most `maximum`.
    private static func cidrLength(_ digits: ArraySlice<UInt8>, maximum: Int, text: String) throws(SPFError) -> Int {
        guard !digits.isEmpty, digits.count <= 3, digits.allSatisfy(isDigit),
              digits.count == 1 || digits.first != 0x30 else { throw .syntax("bad CIDR length in \(text)") }
        let value = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        guard value <= maximum else { throw .syntax("CIDR length \(value) over \(maximum) in \(text)") }
        return value
    }
}

/// The outcome of an SPF check (RFC 7208 §2.6), with RFC 8601's keywords.
public enum SPFResult: String, Sendable, Hashable {
    case none, neutral, pass, fail, softfail, temperror, permerror
}

/// Why a record cannot be used.
public enum SPFError: Error, Sendable, Hashable {
    /// The record or a macro does not follow RFC 7208 §12.
    case syntax(String)
}

/// A macro-string (RFC 7208 §7.1): literal text and `%{…}` expansions, parsed once.
public struct SPFMacroString: Sendable, Hashable {
    enum Part: Sendable, Hashable {
        case literal([UInt8])
        /// `%{letter digits r delimiters}`; an upper-case letter asks for URL escaping (§7.3).
        case macro(letter: UInt8, escape: Bool, keep: Int?, reverse: Bool, delimiters: [UInt8])
    }

    var parts: [Part]

    /// Parses a macro-string; `c`, `r` and `t` are allowed only in explanations (§7.2).
    public init(parsing text: [UInt8], allowExplanationLetters: Bool) throws(SPFError) {
        var parts: [Part] = []
        var literal: [UInt8] = []
        var i = 0
        while i < text.count {
            let b = text[i]
            guard b == 0x25 else {
                guard (0x21...0x7E).contains(b) || (allowExplanationLetters && b == 0x20) else {
                    throw .syntax("bad character in macro-string")
                }
                literal.append(b)
                i += 1
                continue
            }
            guard i + 1 < text.count else { throw .syntax("% at the end of a macro-string") }
            switch text[i + 1] {
            case 0x25: literal.append(0x25); i += 2
            case 0x5F: literal.append(0x20); i += 2
            case 0x2D: literal += Array("%20".utf8); i += 2
            case 0x7B:
                guard let close = text[(i + 2)...].firstIndex(of: 0x7D) else { throw .syntax("unterminated %{ in macro-string") }
                if !literal.isEmpty { parts.append(.literal(literal)); literal = [] }
                parts.append(try Self.macro(text[(i + 2)..<close], allowExplanationLetters: allowExplanationLetters))
                i = close + 1
            default:
                throw .syntax("bad % escape in macro-string")
            }
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        self.parts = parts
    }

    /// Parses a domain-spec: a macro-string whose end is a macro or `.toplabel` (§7.1 domain-end).
    init(domainSpec text: [UInt8]) throws(SPFError) {
        try self.init(parsing: text, allowExplanationLetters: false)
        guard let last = parts.last else { throw .syntax("empty domain-spec") }
        if case .literal(var tail) = last {
            // A literal "%%", "%_" or "%-" also counts as a macro-expand; they are rare enough to
            // be judged on the text they leave.
            if tail.last == 0x2E { tail.removeLast() }
            if tail.isEmpty, parts.count > 1 { return }
            guard let dot = tail.lastIndex(of: 0x2E) else { throw .syntax("domain-spec does not end in .toplabel") }
            let top = tail[(dot + 1)...]
            guard !top.isEmpty, top.allSatisfy({ isAlpha($0) || isDigit($0) || $0 == 0x2D }),
                  top.contains(where: isAlpha), top.first != 0x2D, top.last != 0x2D
            else { throw .syntax("domain-spec ends in a bad top label") }
        }
    }

    private static func macro(_ body: ArraySlice<UInt8>, allowExplanationLetters: Bool) throws(SPFError) -> Part {
        guard let letter = body.first else { throw .syntax("empty macro") }
        let lower = lowercase(letter)
        let allowed: [UInt8] = Array("slodiphv".utf8) + (allowExplanationLetters ? Array("crt".utf8) : [])
        guard allowed.contains(lower) else { throw .syntax("macro letter \(Character(Unicode.Scalar(letter))) not allowed here") }
        var i = body.index(after: body.startIndex)
        var digits = 0, sawDigit = false
        while i < body.endIndex, isDigit(body[i]) {
            digits = min(digits * 10 + Int(body[i] - 0x30), 1000)
            sawDigit = true
            i += 1
        }
        if sawDigit && digits == 0 { throw .syntax("macro keeps zero labels") }
        var reverse = false
        if i < body.endIndex, lowercase(body[i]) == 0x72 { reverse = true; i += 1 }
        let delimiters = Array(body[i...])
        guard delimiters.allSatisfy({ Array(".-+,/_=".utf8).contains($0) }) else { throw .syntax("bad macro delimiter") }
        return .macro(letter: lower, escape: letter != lower, keep: sawDigit ? digits : nil, reverse: reverse,
                      delimiters: delimiters.isEmpty ? [0x2E] : delimiters)
    }
}

/// IP addresses as octets (4 or 16), parsed and printed the way SPF needs.
enum SPFAddress {
    /// A dotted quad. `strict` refuses leading zeros (the qnum of RFC 7208 §12).
    static func parseIPv4(_ text: some Collection<UInt8>, strict: Bool = false) -> [UInt8]? {
        let parts = text.split(separator: 0x2E, omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy(isDigit) else { return nil }
            if strict, p.count > 1, p.first == 0x30 { return nil }
            let v = p.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            guard v <= 255 else { return nil }
            out.append(UInt8(v))
        }
        return out
    }

    /// RFC 4291 §2.2 text (with `::` and a trailing dotted quad).
    static func parseIPv6(_ text: some Collection<UInt8>) -> [UInt8]? {
        let bytes = Array(text)
        guard bytes.count >= 2, bytes.count <= 45 else { return nil }
        var head: [UInt16] = [], tail: [UInt16] = []
        var sawDoubleColon = false
        var groups = bytes.split(separator: 0x3A, omittingEmptySubsequences: false).map(Array.init)
        // "::" at the start or end leaves empty groups to drop.
        if bytes.starts(with: [0x3A, 0x3A]) { groups.removeFirst() }
        if bytes.count > 2, bytes.suffix(2) == [0x3A, 0x3A] { groups.removeLast() }
        var embedded: [UInt8]?
        for (n, g) in groups.enumerated() {
            if g.isEmpty {
                guard !sawDoubleColon else { return nil }
                sawDoubleColon = true
                continue
            }
            if n == groups.count - 1, g.contains(0x2E) {
                guard let v4 = parseIPv4(g) else { return nil }
                embedded = v4
                continue
            }
            guard g.count <= 4, let v = UInt16(String(decoding: g, as: UTF8.self), radix: 16) else { return nil }
            if sawDoubleColon { tail.append(v) } else { head.append(v) }
        }
        if let e = embedded {
            let groupsOfV4 = [UInt16(e[0]) << 8 | UInt16(e[1]), UInt16(e[2]) << 8 | UInt16(e[3])]
            if sawDoubleColon { tail += groupsOfV4 } else { head += groupsOfV4 }
        }
        let count = head.count + tail.count
        if sawDoubleColon { guard count < 8 else { return nil } } else { guard count == 8 else { return nil } }
        let all = head + Array(repeating: 0, count: 8 - count) + tail
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    /// An address in text (client IP as given by the caller): IPv4, IPv6, or IPv4-mapped IPv6
    /// (returned as IPv4, RFC 7208 §5).
    static func parse(_ text: String) -> [UInt8]? {
        let bytes = Array(text.utf8)
        if let v4 = parseIPv4(bytes) { return v4 }
        guard let v6 = parseIPv6(bytes) else { return nil }
        if v6[0..<10].allSatisfy({ $0 == 0 }), v6[10] == 0xFF, v6[11] == 0xFF { return Array(v6[12...]) }
        return v6
    }

    /// Whether `address` is inside `network`/`prefix` (same family).
    static func matches(_ address: [UInt8], _ network: [UInt8], prefix: Int) -> Bool {
        guard address.count == network.count else { return false }
        var bits = prefix
        for i in 0..<address.count where bits > 0 {
            let take = min(bits, 8)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - take))
            if address[i] & mask != network[i] & mask { return false }
            bits -= take
        }
        return true
    }

    /// The `%{i}` form: dotted quad, or 32 dot-separated lower-case nibbles (§7.3).
    static func dotted(_ address: [UInt8]) -> String {
        if address.count == 4 { return address.map(String.init).joined(separator: ".") }
        let hex = Array("0123456789abcdef")
        return address.flatMap { [String(hex[Int($0 >> 4)]), String(hex[Int($0 & 0xF)])] }.joined(separator: ".")
    }

    /// The reverse-lookup name (`4.3.2.1.in-addr.arpa`, nibbles `.ip6.arpa`).
    static func reverseName(_ address: [UInt8]) -> String {
        let labels = dotted(address).split(separator: ".").reversed().joined(separator: ".")
        return labels + (address.count == 4 ? ".in-addr.arpa" : ".ip6.arpa")
    }

    /// RFC 5952 text for `%{c}`.
    static func text(_ address: [UInt8]) -> String {
        if address.count == 4 { return dotted(address) }
        let groups = stride(from: 0, to: 16, by: 2).map { UInt16(address[$0]) << 8 | UInt16(address[$0 + 1]) }
        // The longest run of two or more zero groups becomes "::".
        var best = (start: -1, length: 0), i = 0
        while i < 8 {
            if groups[i] == 0 {
                var j = i
                while j < 8, groups[j] == 0 { j += 1 }
                if j - i > best.length, j - i >= 2 { best = (i, j - i) }
                i = j
            } else {
                i += 1
            }
        }
        let hex = groups.map { String($0, radix: 16) }
        guard best.start >= 0 else { return hex.joined(separator: ":") }
        let left = hex[..<best.start].joined(separator: ":")
        let right = hex[(best.start + best.length)...].joined(separator: ":")
        return left + "::" + right
    }
}

@inline(__always) func isAlpha(_ b: UInt8) -> Bool { (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) }
@inline(__always) func isDigit(_ b: UInt8) -> Bool { (0x30...0x39).contains(b) }
@inline(__always) func lowercase(_ b: UInt8) -> UInt8 { (0x41...0x5A).contains(b) ? b | 0x20 : b }
