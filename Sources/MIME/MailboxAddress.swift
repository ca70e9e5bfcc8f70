import MailCore

/// A mailbox as written in a message header: an optional display name and an address.
///
/// ```
/// mailbox      = name-addr / addr-spec
/// name-addr    = [display-name] angle-addr
/// angle-addr   = [CFWS] "<" addr-spec ">" [CFWS]
/// display-name = phrase
/// ```
/// - SeeAlso: RFC 5322 §3.4, RFC 6532 §3.2 (UTF-8 in addresses)
public struct MailboxAddress: Hashable, Sendable, CustomStringConvertible {
    /// The display name, decoded (RFC 2047 encoded words and quoted strings resolved); `nil` when absent.
    public var displayName: String?
    /// The `addr-spec`, `local-part@domain`, as written (quotes kept where the local part needs them).
    public var address: String

    /// Creates a mailbox from a display name and an address.
    public init(displayName: String? = nil, address: String) {
        self.displayName = (displayName?.isEmpty ?? true) ? nil : displayName
        self.address = address
    }

    /// Parses a single mailbox such as `发件人名称 <alice@example.test>`, `"Doe, John" <j@example.test>`
    /// or `alice@example.test`. Returns `nil` when the text holds no address with an `@`.
    ///
    /// Unquoted display names may contain any script; encoded words are decoded.
    /// - SeeAlso: RFC 5322 §3.4
    public init?(_ text: String) {
        guard let first = AddressListParser.parse(text).flatMap(\.mailboxes).first, first.address.contains("@") else {
            return nil
        }
        self = first
    }

    /// The local part (before the last `@`).
    public var localPart: String {
        guard let at = address.lastIndex(of: "@") else { return address }
        return String(address[..<at])
    }

    /// The domain (after the last `@`).
    public var domain: String {
        guard let at = address.lastIndex(of: "@") else { return "" }
        return String(address[address.index(after: at)...])
    }

    /// The address as a MailCore ``EmailAddress`` for the SMTP envelope, or `nil` when it is not a
    /// valid RFC 5321 mailbox (UTF-8 allowed, RFC 6531).
    public var emailAddress: EmailAddress? {
        try? EmailAddress.parse(address, allowUTF8: true).get()
    }

    /// The mailbox as UTF-8 text (`Name <address>`), with the name quoted when it needs to be.
    /// For headers, ``MessageBuilder`` encodes names with RFC 2047 instead.
    public var description: String {
        guard let name = displayName else { return address }
        return "\(MailboxAddress.phrase(name)) <\(address)>"
    }

    /// A display name as an RFC 5322 phrase: atoms as they are, anything else as a quoted string.
    static func phrase(_ name: String) -> String {
        let needsQuoting = name.utf8.contains { b in
            !(isAtext(b) || b == .space)
        } || name.hasPrefix(" ") || name.hasSuffix(" ") || name.contains("  ")
        guard needsQuoting else { return name }
        var q = "\""
        for ch in name {
            if ch == "\"" || ch == "\\" { q.append("\\") }
            q.append(ch)
        }
        return q + "\""
    }

    /// RFC 5322 atext, with UTF-8 octets allowed (RFC 6532 §3.2).
    static func isAtext(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return b >= 0x80 || "!#$%&'*+-/=?^_`{|}~".utf8.contains(b)
        }
    }
}

/// One element of an address list: a mailbox or a named group of mailboxes.
///
/// - SeeAlso: RFC 5322 §3.4 (`address = mailbox / group`)
public enum AddressListEntry: Hashable, Sendable {
    /// A single mailbox.
    case mailbox(MailboxAddress)
    /// `display-name ":" [group-list] ";"`, e.g. `undisclosed-recipients:;`.
    case group(name: String, members: [MailboxAddress])

    /// The mailboxes this entry stands for (a group's members).
    public var mailboxes: [MailboxAddress] {
        switch self {
        case .mailbox(let m): return [m]
        case .group(_, let members): return members
        }
    }
}

/// Parses RFC 5322 address lists leniently: display names, quoted strings, comments, groups,
/// obsolete routes, encoded words in names; never fails (junk yields fewer entries).
///
/// ```
/// address-list = (address *("," address)) / obs-addr-list
/// address      = mailbox / group
/// group        = display-name ":" [group-list] ";" [CFWS]
/// ```
/// - SeeAlso: RFC 5322 §3.4, §4.4 (obsolete forms), RFC 2047 §5 (encoded words in phrases)
public enum AddressListParser {
    enum Token: Equatable {
        case atom(String)
        case quoted(String)
        case literal(String)   // [domain literal]
        case special(Unicode.Scalar)
    }

    /// Parses an address list (the value of `From`, `To`, `Cc`, `Bcc`, `Reply-To`, …).
    public static func parse(_ text: String) -> [AddressListEntry] {
        let tokens = tokenize(text)
        var entries: [AddressListEntry] = []
        var phrase: [Token] = []
        var angle: String?
        var group: (name: String, members: [MailboxAddress])?
        var i = 0

        func finishMailbox() {
            defer { phrase = []; angle = nil }
            var mailbox: MailboxAddress?
            if let a = angle {
                let name = phraseText(phrase)
                mailbox = MailboxAddress(displayName: name, address: a)
                if a.isEmpty && name.isEmpty { mailbox = nil }
            } else if !phrase.isEmpty {
                let spec = addrSpecText(phrase)
                if !spec.isEmpty { mailbox = MailboxAddress(displayName: nil, address: spec) }
            }
            guard let m = mailbox else { return }
            if group != nil { group!.members.append(m) } else { entries.append(.mailbox(m)) }
        }

        while i < tokens.count {
            let t = tokens[i]
            switch t {
            case .special(","):
                finishMailbox()
            case .special("<"):
                var j = i + 1
                var inner: [Token] = []
                while j < tokens.count, tokens[j] != .special(">") {
                    inner.append(tokens[j])
                    j += 1
                }
                // obs-route: "@a,@b:" before the addr-spec.
                if let colon = inner.lastIndex(of: .special(":")), inner.first == .special("@") {
                    inner = Array(inner[(colon + 1)...])
                }
                if angle == nil { angle = addrSpecText(inner) }
                i = j
            case .special(":") where angle == nil && group == nil && !phrase.contains(.special("@")):
                group = (phraseText(phrase), [])
                phrase = []
            case .special(";") where group != nil:
                finishMailbox()
                entries.append(.group(name: group!.name, members: group!.members))
                group = nil
            case .special(">"):
                break
            default:
                if angle != nil, case .special = t { break }
                if angle == nil { phrase.append(t) }
            }
            i += 1
        }
        finishMailbox()
        if let g = group { entries.append(.group(name: g.name, members: g.members)) }
        return entries
    }

    /// Every mailbox of an address list, groups flattened.
    public static func mailboxes(_ text: String) -> [MailboxAddress] {
        parse(text).flatMap(\.mailboxes)
    }

    /// The display-name text of phrase tokens: words joined by one space, then encoded words decoded.
    static func phraseText(_ tokens: [Token]) -> String {
        var words: [String] = []
        for t in tokens {
            switch t {
            case .atom(let s), .quoted(let s): words.append(s)
            case .literal(let s): words.append("[\(s)]")
            case .special(let c): words.append(String(c))
            }
        }
        return EncodedWord.decode(words.joined(separator: " ")).trimmingSpaces()
    }

    /// The addr-spec text of tokens: concatenated without whitespace; quoted local parts keep their
    /// quotes only when the content is not a dot-atom.
    static func addrSpecText(_ tokens: [Token]) -> String {
        var s = ""
        for t in tokens {
            switch t {
            case .atom(let a): s += a
            case .quoted(let q):
                if !q.isEmpty, q.utf8.allSatisfy({ MailboxAddress.isAtext($0) || $0 == UInt8(ascii: ".") }),
                   !q.hasPrefix("."), !q.hasSuffix("."), !q.contains("..") {
                    s += q
                } else {
                    var e = "\""
                    for ch in q {
                        if ch == "\"" || ch == "\\" { e.append("\\") }
                        e.append(ch)
                    }
                    s += e + "\""
                }
            case .literal(let l): s += "[\(l)]"
            case .special(let c): s.unicodeScalars.append(c)
            }
        }
        return s
    }

    static let specials: Set<Unicode.Scalar> = ["(", ")", "<", ">", "[", "]", ":", ";", "@", ",", "\"", "\\"]

    /// Splits into atoms (dots included), quoted strings, domain literals and specials; comments and
    /// whitespace are dropped. Unbalanced quotes, comments and literals run to the end of the text.
    static func tokenize(_ text: String) -> [Token] {
        let s = Array(text.unicodeScalars)
        var tokens: [Token] = []
        var i = 0
        var atom = String.UnicodeScalarView()
        func flushAtom() {
            if !atom.isEmpty { tokens.append(.atom(String(atom))); atom = String.UnicodeScalarView() }
        }
        while i < s.count {
            let c = s[i]
            switch c {
            case " ", "\t", "\r", "\n":
                flushAtom()
                i += 1
            case "(":
                flushAtom()
                var depth = 0
                while i < s.count {
                    if s[i] == "\\" { i += 2; continue }
                    if s[i] == "(" { depth += 1 }
                    if s[i] == ")" { depth -= 1; if depth == 0 { i += 1; break } }
                    i += 1
                }
            case "\"":
                flushAtom()
                var q = String.UnicodeScalarView()
                i += 1
                while i < s.count, s[i] != "\"" {
                    if s[i] == "\\", i + 1 < s.count { i += 1 }
                    if s[i] != "\r" && s[i] != "\n" { q.append(s[i]) }
                    i += 1
                }
                i += 1
                tokens.append(.quoted(String(q)))
            case "[":
                flushAtom()
                var l = String.UnicodeScalarView()
                i += 1
                while i < s.count, s[i] != "]" {
                    if s[i] == "\\", i + 1 < s.count { i += 1 }
                    if s[i] != " " && s[i] != "\t" && s[i] != "\r" && s[i] != "\n" { l.append(s[i]) }
                    i += 1
                }
                i += 1
                tokens.append(.literal(String(l)))
            default:
                if specials.contains(c) {
                    flushAtom()
                    tokens.append(.special(c))
                } else {
                    atom.append(c)
                }
                i += 1
            }
        }
        flushAtom()
        return tokens
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
