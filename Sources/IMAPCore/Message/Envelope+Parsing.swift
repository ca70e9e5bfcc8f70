import MIME

extension Envelope {
    /// The envelope of a message or of a message inside a `message/rfc822` part, from its header.
    ///
    /// Date, Subject, In-Reply-To and Message-ID are the first field's value, unfolded and trimmed, as
    /// written (encoded words stay encoded). Address fields are parsed with
    /// ``EnvelopeAddressParser``; Sender and Reply-To default to From when absent or empty.
    /// - SeeAlso: RFC 9051 §7.5.2 (ENVELOPE), RFC 5322 §3.6
    public init(headers: MIMEHeaders) {
        func addresses(_ name: String) -> [EnvelopeAddress] {
            guard let value = headers[name] else { return [] }
            return EnvelopeAddressParser.parse(value)
        }
        let from = addresses("From")
        let sender = addresses("Sender")
        let replyTo = addresses("Reply-To")
        self.init(date: headers["Date"], subject: headers["Subject"], from: from,
                  sender: sender.isEmpty ? from : sender, replyTo: replyTo.isEmpty ? from : replyTo,
                  to: addresses("To"), cc: addresses("Cc"), bcc: addresses("Bcc"),
                  inReplyTo: headers["In-Reply-To"], messageID: headers["Message-ID"])
    }
}

extension MessageStructure {
    /// `ENVELOPE` of the message.
    public var envelope: Envelope { Envelope(headers: root.headers) }
}

/// Parses RFC 5322 address lists into ENVELOPE addresses, never failing.
///
/// ```
/// address-list = address *("," address)
/// address      = mailbox / group
/// mailbox      = name-addr / addr-spec
/// name-addr    = [display-name] "<" [obs-route] addr-spec ">"
/// obs-route    = obs-domain-list ":"          ; "@a,@b:" → adl
/// group        = display-name ":" [group-list] ";"
/// ```
/// Display names stay raw (encoded words are not decoded; quoted strings lose their quotes and
/// escapes; words are joined by one space). Comments are dropped. As Dovecot does, a missing local
/// part becomes `MISSING_MAILBOX` and a missing domain `MISSING_DOMAIN` (`foo` → `foo@MISSING_DOMAIN`,
/// an empty element between commas or `<>` → `MISSING_MAILBOX@MISSING_DOMAIN`), and an element that
/// cannot be read (an unterminated quoted string) is one such address. Groups are a start marker
/// (mailbox = the group's name, host `nil`) and an end marker (all `nil`).
/// - SeeAlso: RFC 9051 §7.5.2, RFC 5322 §3.4, §4.4
public enum EnvelopeAddressParser {
    /// The local part given for an address without one.
    public static let missingMailbox = "MISSING_MAILBOX"
    /// The domain given for an address without one.
    public static let missingDomain = "MISSING_DOMAIN"

    enum Token: Equatable {
        case atom(String)
        case quoted(String)
        case literal(String)
        case special(Special)
        /// An unterminated quoted string, comment or domain literal: the rest of the field.
        case broken
    }

    /// Parses the value of an address field (unfolded).
    public static func parse(_ value: String) -> [EnvelopeAddress] {
        let tokens = tokenize(value)
        var out: [EnvelopeAddress] = []
        var element: [Token] = []
        var inGroup = false
        var index = 0
        func finish(atEnd: Bool) {
            defer { element = [] }
            if element.isEmpty && atEnd { return }
            out.append(mailbox(element))
        }
        while index < tokens.count {
            let token = tokens[index]
            index += 1
            switch token {
            case .special(","):
                finish(atEnd: false)
            case .special(":") where !inGroup && !element.contains(.special("<")) && !element.contains(.special("@")):
                inGroup = true
                out.append(EnvelopeAddress(name: nil, adl: nil, mailbox: phrase(element) ?? "", host: nil))
                element = []
                // Empty elements inside a group are not addresses.
                while index < tokens.count, tokens[index] == .special(",") { index += 1 }
            case .special(";") where inGroup:
                if !element.isEmpty { finish(atEnd: false) }
                out.append(EnvelopeAddress(name: nil, adl: nil, mailbox: nil, host: nil))
                inGroup = false
                while index < tokens.count, tokens[index] == .special(",") { index += 1 }
                if index >= tokens.count { return out }
            case .special("<"):
                element.append(token)
                // Everything up to ">" belongs to the angle address, commas and colons included.
                while index < tokens.count {
                    let t = tokens[index]
                    index += 1
                    element.append(t)
                    if t == .special(">") { break }
                }
            default:
                element.append(token)
            }
        }
        finish(atEnd: true)
        if inGroup { out.append(EnvelopeAddress(name: nil, adl: nil, mailbox: nil, host: nil)) }
        return out
    }

    /// One mailbox from the tokens of one list element.
    static func mailbox(_ tokens: [Token]) -> EnvelopeAddress {
        let missing = EnvelopeAddress(name: nil, adl: nil, mailbox: missingMailbox, host: missingDomain)
        if tokens.contains(.broken) { return missing }
        if let open = tokens.firstIndex(of: .special("<")) {
            let name = phrase(Array(tokens[..<open]))
            var inner = Array(tokens[(open + 1)...])
            if let close = inner.firstIndex(of: .special(">")) { inner = Array(inner[..<close]) }
            var adl: String?
            if inner.first == .special("@"), let colon = inner.firstIndex(of: .special(":")) {
                adl = text(inner[..<colon])
                inner = Array(inner[(colon + 1)...])
            }
            var address = addrSpec(inner)
            address.name = name
            address.adl = adl
            return address
        }
        return addrSpec(tokens)
    }

    /// `local-part "@" domain`, with the missing halves filled in.
    static func addrSpec(_ tokens: [Token]) -> EnvelopeAddress {
        let at = tokens.lastIndex(of: .special("@"))
        let local = at.map { text(tokens[..<$0]) } ?? text(tokens[...])
        let domain = at.map { text(tokens[($0 + 1)...]) } ?? ""
        return EnvelopeAddress(name: nil, adl: nil, mailbox: local.isEmpty ? missingMailbox : local,
                               host: domain.isEmpty ? missingDomain : domain)
    }

    /// Tokens concatenated without whitespace (local parts, domains, routes).
    static func text(_ tokens: ArraySlice<Token>) -> String {
        var s = ""
        for t in tokens {
            switch t {
            case .atom(let a), .quoted(let a): s += a
            case .literal(let l): s += "[\(l)]"
            case .special(let c): s += c.text
            case .broken: break
            }
        }
        return s
    }

    /// A display name: words joined by one space; `nil` when empty.
    static func phrase(_ tokens: [Token]) -> String? {
        var words: [String] = []
        for t in tokens {
            switch t {
            case .atom(let a), .quoted(let a): words.append(a)
            case .literal(let l): words.append("[\(l)]")
            case .special(let c): words.append(c.text)
            case .broken: break
            }
        }
        let name = words.joined(separator: " ")
        return name.isEmpty ? nil : name
    }

    /// One ASCII special of an address list (`<`, `>`, `:`, `;`, `@`, `,`, …), compared as an octet.
    struct Special: Equatable, ExpressibleByUnicodeScalarLiteral {
        var octet: UInt8
        init(unicodeScalarLiteral value: Unicode.Scalar) { octet = UInt8(value.value) }
        init(_ octet: UInt8) { self.octet = octet }
        var text: String { String(UnicodeScalar(octet)) }
    }

    /// Atoms (dots included), quoted strings, domain literals and specials; whitespace and comments
    /// dropped. Works on the value's UTF-8: every delimiter is ASCII, so a multi-octet character is
    /// always inside an atom, a quoted string or a literal.
    static func tokenize(_ value: String) -> [Token] {
        var value = value
        return value.withUTF8 { s in tokenize(s) }
    }

    private static func tokenize(_ s: UnsafeBufferPointer<UInt8>) -> [Token] {
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0A }
        var tokens: [Token] = []
        var atomStart: Int?
        var i = 0
        func flush() {
            if let start = atomStart {
                tokens.append(.atom(String(decoding: UnsafeBufferPointer(rebasing: s[start..<i]), as: UTF8.self)))
                atomStart = nil
            }
        }
        while i < s.count {
            let c = s[i]
            switch c {
            case 0x20, 0x09, 0x0D, 0x0A:
                flush()
                i += 1
            case UInt8(ascii: "("):
                flush()
                var depth = 0
                var closed = false
                while i < s.count {
                    if s[i] == UInt8(ascii: "\\") { i += 2; continue }
                    if s[i] == UInt8(ascii: "(") { depth += 1 }
                    if s[i] == UInt8(ascii: ")") {
                        depth -= 1
                        if depth == 0 { i += 1; closed = true; break }
                    }
                    i += 1
                }
                if !closed { tokens.append(.broken) }
            case UInt8(ascii: "\""), UInt8(ascii: "["):
                flush()
                let close = c == UInt8(ascii: "[") ? UInt8(ascii: "]") : c
                var q: [UInt8] = []
                i += 1
                var closed = false
                while i < s.count {
                    if s[i] == close { closed = true; i += 1; break }
                    if s[i] == UInt8(ascii: "\\"), i + 1 < s.count { i += 1 }
                    if !isSpace(s[i]) || (c == UInt8(ascii: "\"") && s[i] != 0x0D && s[i] != 0x0A) { q.append(s[i]) }
                    i += 1
                }
                let text = String(decoding: q, as: UTF8.self)
                tokens.append(!closed ? .broken : c == UInt8(ascii: "[") ? .literal(text) : .quoted(text))
            case UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: ":"), UInt8(ascii: ";"), UInt8(ascii: "@"),
                 UInt8(ascii: ","), UInt8(ascii: "\\"), UInt8(ascii: "]"), UInt8(ascii: ")"):
                flush()
                tokens.append(.special(Special(c)))
                i += 1
            default:
                if atomStart == nil { atomStart = i }
                i += 1
            }
        }
        flush()
        return tokens
    }
}
