/// A mailbox address `local-part@domain` as used in the SMTP envelope.
///
/// The local part is kept as the sender wrote it (case is significant to the remote side, RFC 5321
/// §2.4); comparisons for *local* delivery use ``canonicalKey``. The domain is kept as written and
/// compared case-insensitively.
///
/// - SeeAlso: RFC 5321 §4.1.2 (`Mailbox`), RFC 6531 §3.3 (UTF-8 extensions)
public struct EmailAddress: Hashable, Sendable, CustomStringConvertible {
    /// The part before the `@`, without surrounding quotes (quoted-pairs unescaped).
    public var localPart: String
    /// The domain or address literal (e.g. `[192.0.2.1]`) after the `@`.
    public var domain: String

    /// Creates an address from its parts without validation.
    public init(localPart: String, domain: String) {
        self.localPart = localPart
        self.domain = domain
    }

    /// `true` when the address contains only ASCII (it can be sent without SMTPUTF8).
    public var isASCII: Bool { localPart.utf8.allSatisfy { $0 < 0x80 } && domain.utf8.allSatisfy { $0 < 0x80 } }

    /// The domain in lower-case ASCII form (U-labels become A-labels, RFC 5890), for routing decisions.
    public var normalizedDomain: String { IDNA.toASCII(domain) ?? domain.lowercased() }

    /// A key for case-insensitive comparison of local addresses (`Alice@Example.TEST` == `alice@example.test`).
    public var canonicalKey: String { "\(localPart.lowercased())@\(normalizedDomain)" }

    /// The address as written in an SMTP path: the local part is quoted when it is not a dot-string.
    public var description: String {
        if Self.isDotString(localPart.utf8) { return "\(localPart)@\(domain)" }
        // Per scalar: a quote followed by a combining mark is one Character, and would go unescaped.
        var quoted = String.UnicodeScalarView()
        quoted.append("\"")
        for u in localPart.unicodeScalars {
            if u == "\"" || u == "\\" { quoted.append("\\") }
            quoted.append(u)
        }
        quoted.append("\"")
        let text = String(quoted)
        return "\(text)@\(domain)"
    }

    /// Parses an address as written inside an SMTP path (`Mailbox` of RFC 5321 §4.1.2).
    ///
    /// ```
    /// Mailbox        = Local-part "@" ( Domain / address-literal )
    /// Local-part     = Dot-string / Quoted-string
    /// Dot-string     = Atom *("."  Atom)
    /// Quoted-string  = DQUOTE *QcontentSMTP DQUOTE
    /// Domain         = sub-domain *("." sub-domain)
    /// ```
    /// With `allowUTF8` (RFC 6531), atext and qtext may contain UTF-8 and sub-domains may be U-labels.
    /// Limits: local part ≤ 64 octets, domain ≤ 255 octets (RFC 5321 §4.5.3.1).
    public static func parse<S: StringProtocol>(_ text: S, allowUTF8: Bool) -> Result<EmailAddress, AddressError> {
        parse(bytes: Array(text.utf8), allowUTF8: allowUTF8)
    }

    /// Parses an address (concrete overload: callers in other modules get the specialized code).
    public static func parse(_ text: String, allowUTF8: Bool) -> Result<EmailAddress, AddressError> {
        parse(bytes: Array(text.utf8), allowUTF8: allowUTF8)
    }

    /// Parses an address.
    public static func parse(_ text: Substring, allowUTF8: Bool) -> Result<EmailAddress, AddressError> {
        parse(bytes: Array(text.utf8), allowUTF8: allowUTF8)
    }

    static func parse(bytes: [UInt8], allowUTF8: Bool) -> Result<EmailAddress, AddressError> {
        if !allowUTF8, bytes.contains(where: { $0 >= 0x80 }) { return .failure(.nonASCIIWithoutSMTPUTF8) }
        if bytes.contains(where: { $0 < 0x20 || $0 == 0x7F }) { return .failure(.syntax) }
        // ASCII is valid UTF-8; only other text needs the check (which builds a string).
        if bytes.contains(where: { $0 >= 0x80 }), String(validating: bytes, as: UTF8.self) == nil { return .failure(.syntax) }
        var index = 0
        var quoted: [UInt8] = []
        var local = bytes[0..<0]
        if bytes.first == UInt8(ascii: "\"") {
            index = 1
            var closed = false
            while index < bytes.count {
                let b = bytes[index]
                if b == UInt8(ascii: "\\") {
                    guard index + 1 < bytes.count, bytes[index + 1] >= 0x20 else { return .failure(.syntax) }
                    quoted.append(bytes[index + 1])
                    index += 2
                } else if b == UInt8(ascii: "\"") {
                    closed = true
                    index += 1
                    break
                } else {
                    quoted.append(b)
                    index += 1
                }
            }
            guard closed, index < bytes.count, bytes[index] == UInt8(ascii: "@") else { return .failure(.syntax) }
            local = quoted[...]
        } else {
            guard let at = bytes.lastIndex(of: UInt8(ascii: "@")) else { return .failure(.syntax) }
            local = bytes[..<at]
            guard isDotString(local) else { return .failure(.syntax) }
            index = at
        }
        // bytes[index] == "@"
        let domainBytes = bytes[(index + 1)...]
        guard !local.isEmpty else { return .failure(.syntax) }
        guard local.count <= 64 else { return .failure(.localPartTooLong) }
        guard domainBytes.count <= 255 else { return .failure(.domainTooLong) }
        guard isDomain(domainBytes) || isAddressLiteral(domainBytes) else { return .failure(.badDomain) }
        return .success(EmailAddress(localPart: String(decoding: local, as: UTF8.self),
                                     domain: String(decoding: domainBytes, as: UTF8.self)))
    }

    /// RFC 5322 atext (plus UTF-8 octets, which callers have already gated on SMTPUTF8).
    static func isAtext(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "/"),
             UInt8(ascii: "="), UInt8(ascii: "?"), UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"),
             UInt8(ascii: "{"), UInt8(ascii: "|"), UInt8(ascii: "}"), UInt8(ascii: "~"): return true
        default: return b >= 0x80
        }
    }

    /// `Dot-string = Atom *("." Atom)`
    static func isDotString<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        guard !bytes.isEmpty else { return false }
        var previousDot = true
        for b in bytes {
            if b == UInt8(ascii: ".") {
                if previousDot { return false }
                previousDot = true
            } else if isAtext(b) {
                previousDot = false
            } else {
                return false
            }
        }
        return !previousDot
    }

    /// `Domain = sub-domain *("." sub-domain)`, `sub-domain = Let-dig [Ldh-str]` (or a U-label).
    static func isDomain(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard !bytes.isEmpty else { return false }
        var labelLength = 0
        var previous: UInt8 = UInt8(ascii: ".")
        for b in bytes {
            if b == UInt8(ascii: ".") {
                // a label is not empty and does not end with a hyphen
                guard labelLength > 0, previous != UInt8(ascii: "-") else { return false }
                labelLength = 0
            } else {
                let ok = (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
                    || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "-") || b >= 0x80
                guard ok, !(labelLength == 0 && b == UInt8(ascii: "-")) else { return false }  // nor starts with one
                labelLength += 1
                guard labelLength <= 63 else { return false }
            }
            previous = b
        }
        return labelLength > 0 && previous != UInt8(ascii: "-")
    }

    /// `address-literal = "[" ( IPv4-address-literal / IPv6-address-literal / General-address-literal ) "]"`
    static func isAddressLiteral(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard bytes.count >= 3, bytes.first == UInt8(ascii: "["), bytes.last == UInt8(ascii: "]") else { return false }
        let inner = bytes.dropFirst().dropLast()
        return inner.allSatisfy { b in
            (b >= 0x21 && b <= 0x7E) && b != UInt8(ascii: "[") && b != UInt8(ascii: "]") && b != UInt8(ascii: "\\")
        }
    }
}

/// Why an address did not parse.
public enum AddressError: Error, Hashable, Sendable {
    /// Not a valid `Mailbox`.
    case syntax
    /// The local part exceeds 64 octets (RFC 5321 §4.5.3.1.1).
    case localPartTooLong
    /// The domain exceeds 255 octets (RFC 5321 §4.5.3.1.2).
    case domainTooLong
    /// The domain is neither a valid domain nor an address literal.
    case badDomain
    /// UTF-8 in an address without the SMTPUTF8 parameter (RFC 6531 §3.4).
    case nonASCIIWithoutSMTPUTF8
}
