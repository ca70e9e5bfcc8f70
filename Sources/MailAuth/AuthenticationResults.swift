/// An `Authentication-Results` header field: what one authentication service concluded about a
/// message, as a list of `method=result` statements with their supporting properties.
///
/// ```
/// authres-header-field = "Authentication-Results:" authres-payload
/// authres-payload = [CFWS] authserv-id [ CFWS authres-version ]
///                   ( no-result / 1*resinfo ) [CFWS] CRLF
/// authserv-id     = value                       ; token / quoted-string (RFC 2045 §5.1)
/// authres-version = 1*DIGIT [CFWS]
/// no-result       = [CFWS] ";" [CFWS] "none"
/// resinfo         = [CFWS] ";" methodspec [ CFWS reasonspec ] *( CFWS propspec )
/// methodspec      = [CFWS] method [CFWS] "=" [CFWS] result
/// reasonspec      = "reason" [CFWS] "=" [CFWS] value
/// propspec        = ptype [CFWS] "." [CFWS] property [CFWS] "=" pvalue
/// method          = Keyword [ [CFWS] "/" [CFWS] method-version ]
/// result, ptype   = Keyword                     ; Keyword = Ldh-str (RFC 5321 §4.1.2)
/// property        = special-smtp-verb / Keyword ; "mailfrom" / "rcptto"
/// pvalue          = [CFWS] ( value / [ [ local-part ] "@" ] domain-name ) [CFWS]
/// ```
/// (`resinfo` as corrected by erratum 6026: the propspecs are separated by CFWS.)
///
/// The builder (``field(lineEnding:)``) writes only what this grammar allows, whatever the strings
/// it is given; the parsers (``authservID(ofFieldValue:)``, ``parse(fieldValue:)``) read what other
/// receivers write, with bounded work on any input.
/// - SeeAlso: RFC 8601 §2.2 (grammar), §2.3 (ptypes), §2.5 (authserv-id), §2.6 (version), §2.7
///   (methods), §5 (removing forged fields); RFC 8617 §4.1.1 (`ARC-Authentication-Results` carries
///   the same `authres-payload` after `i=N;`)
public struct AuthenticationResults: Sendable, Hashable {
    /// One `ptype.property=value` statement: which property of the message a method evaluated
    /// (`smtp.mailfrom`, `smtp.helo`, `header.d`, `header.i`, `header.s`, `header.a`, `header.b`,
    /// `header.from`, `policy.…`).
    /// - SeeAlso: RFC 8601 §2.3 (ptypes `smtp`, `header`, `body`, `policy`), §2.4 (`policy`), §2.7
    ///   (properties per method); RFC 6008 (`header.b`); RFC 8617 and the IANA "Email Authentication
    ///   Methods" registry (`arc`: `smtp.remote-ip`, `header.oldest-pass`)
    public struct Property: Sendable, Hashable {
        /// The property type (RFC 8601 §2.3): `smtp`, `header`, `body` or `policy`.
        public var ptype: String
        /// The property within the type: `mailfrom`, `helo`, `d`, `from`, ….
        public var property: String
        /// The value: a domain, an address (`local@domain`, or `@domain` for `header.i`), or text.
        /// An address may be given with its local part as written in SMTP (quoted when it is not a
        /// dot-atom, `"a b"@example.org`) or bare (`a b@example.org`); the field gets the quoted form.
        public var value: String

        /// A `ptype.property=value` statement.
        public init(ptype: String, property: String, value: String) {
            self.ptype = ptype
            self.property = property
            self.value = value
        }
    }

    /// One `method=result` statement with its reason, properties and comment.
    /// - SeeAlso: RFC 8601 §2.2 (`resinfo`), §2.7 (methods and their result keywords)
    public struct Result: Sendable, Hashable {
        /// The method (RFC 8601 §2.7; IANA "Email Authentication Methods"): `dkim`, `spf`, `dmarc`,
        /// `arc`, `iprev`, `auth`, …; `method/version` for a method version other than 1.
        public var method: String
        /// The result keyword (RFC 8601 §2.7): `pass`, `fail`, `none`, `neutral`, `softfail`,
        /// `policy`, `temperror`, `permerror`, ….
        public var result: String
        /// Why the method produced the result (`reasonspec`, RFC 8601 §2.2): free text for people.
        public var reason: String?
        /// The properties the method evaluated, in order.
        public var properties: [Property]
        /// A comment for people (`(…)` after the result), e.g. `sender IP is 192.0.2.1`.
        public var comment: String?

        /// A statement; `reason`, `properties` and `comment` may be filled in later.
        public init(method: String, result: String, reason: String? = nil, properties: [Property] = [],
                    comment: String? = nil) {
            self.method = method
            self.result = result
            self.reason = reason
            self.properties = properties
            self.comment = comment
        }

        /// The value of the first property named `name` (`"header.d"`, `"smtp.mailfrom"`), compared
        /// case-insensitively.
        public subscript(name: String) -> String? {
            properties.first { AuthenticationResults.sameASCII("\($0.ptype).\($0.property)", name) }?.value
        }
    }

    /// The authentication service identifier (RFC 8601 §2.5): the receiver's host name, in
    /// practice. Its fields are the ones it removes from arriving mail (§5).
    public var authservID: String
    /// The statements; none means no authentication was done (`; none`, RFC 8601 §2.2 `no-result`).
    public var results: [Result]

    /// A field for `authservID` with `results` (RFC 8601 §2.2).
    public init(authservID: String, results: [Result]) {
        self.authservID = authservID
        self.results = results
    }

    /// `true` when this field's authserv-id is `id`, compared case-insensitively (ASCII): the
    /// test for RFC 8601 §5's "is this field one of ours?".
    public func claims(authservID id: String) -> Bool { Self.sameASCII(authservID, id) }

    // MARK: Limits

    /// ``parse(fieldValue:)`` refuses longer field values; ``authservID(ofFieldValue:)`` reads no
    /// further than this.
    public static let maximumFieldLength = 65_536
    /// ``parse(fieldValue:)`` refuses a field with more statements; ``field(lineEnding:)`` writes
    /// only the first this many.
    public static let maximumResults = 64
    /// Comments and reasons are cut to this many octets (UTF-8) before they are written.
    public static let maximumTextLength = 256
    /// Property values and the authserv-id are cut to this many octets before they are written, so
    /// that no line can pass RFC 5322's 998 (§2.1.1) even when every character is escaped.
    public static let maximumValueLength = 400
    /// Method, result, ptype and property names are cut to this many octets.
    public static let maximumKeywordLength = 64

    // MARK: Building

    /// The whole field, `Authentication-Results: ` and the value, ending with `lineEnding`.
    ///
    /// The authserv-id ends the first line; every statement starts a line of its own after
    /// `lineEnding` and a tab, and a statement that would pass 78 columns (RFC 5322 §2.1.1; a tab
    /// counted as 8) is folded before a property, the reason or a word of the comment, with a tab
    /// and two spaces. The output is always in the grammar above, whatever the input:
    /// - methods, results, ptypes and properties are lower-cased and kept to `Keyword` characters
    ///   (letters, digits, inner hyphens; `method/digits`); a statement whose method or result, or
    ///   a property whose ptype or property, is left empty is left out;
    /// - values are written as they are when they are RFC 2045 tokens (§5.1) or addresses in RFC
    ///   8601's `[local-part] "@" domain-name` form, which an email identity must use (§2.2); an
    ///   address whose local part is not a dot-atom gets it quoted (`"a b"@example.org`); anything
    ///   else is a quoted-string (RFC 5322 §3.2.4) with `\` and `"` escaped;
    /// - `reason=` is always a quoted-string;
    /// - comments keep balanced parentheses and escape unbalanced ones (RFC 5322 §3.2.2);
    /// - control characters (CR and LF included) become spaces, and text is cut to the limits above,
    ///   so nothing given can end the field or start another.
    /// With no statements the field says `none`. Non-ASCII text is written as UTF-8 (RFC 6532).
    public func field(lineEnding: String = "\r\n") -> String {
        Self.fold(first: "Authentication-Results: " + Self.plainValue(authservID), statements: statements, lineEnding: lineEnding)
    }

    /// The statements as written: at most ``maximumResults``, each as its pieces.
    private var statements: [[String]] {
        var statements: [[String]] = []
        for r in results {
            guard statements.count < Self.maximumResults else { break }
            if let s = Self.segments(r) { statements.append(s) }
        }
        return statements
    }

    /// The same results as an `ARC-Authentication-Results` field of ARC set `instance` (RFC 8617
    /// §4.1.1: `i=` before the authserv-id), folded like ``field(lineEnding:)``.
    public func arcField(instance: Int, lineEnding: String = "\r\n") -> String {
        Self.fold(first: "ARC-Authentication-Results: i=\(instance); " + Self.plainValue(authservID), statements: statements,
                         lineEnding: lineEnding)
    }

    /// `first;` then each statement on a line of its own (tab-indented, continuation lines with a tab
    /// and two spaces), or `first; none`; then `lineEnding`. Same column rule as DKIMSigner's `fold`.
    static func fold(first: String, statements: [[String]], lineEnding: String) -> String {
        var out = first
        guard !statements.isEmpty else {
            out += first.utf8.count + 6 <= 78 ? "; none" : ";" + lineEnding + "\tnone"
            return out + lineEnding
        }
        for (i, segments) in statements.enumerated() {
            out += ";" + lineEnding + "\t"
            var column = 8
            for (j, piece) in segments.enumerated() {
                // The ";" that ends a statement stays on the line of its last piece.
                let width = piece.utf8.count + (j == segments.count - 1 && i < statements.count - 1 ? 1 : 0)
                if j > 0 {
                    if column + 1 + width > 78 {
                        out += lineEnding + "\t  "
                        column = 10
                    } else {
                        out += " "
                        column += 1
                    }
                }
                out += piece
                column += piece.utf8.count
            }
        }
        return out + lineEnding
    }

    /// The pieces of one statement, between which the field may be folded: `method=result`, the
    /// comment word by word, `reason="…"`, each property. Nil when method or result is unusable.
    static func segments(_ r: Result) -> [String]? {
        let method = methodKeyword(r.method)
        let result = keyword(r.result)
        guard !method.isEmpty, !result.isEmpty else { return nil }
        var out = ["\(method)=\(result)"]
        if let comment = r.comment, let text = commentText(comment) {
            // FWS inside a comment is not significant: fold at its spaces.
            let words = text.split(separator: " ", omittingEmptySubsequences: true)
            for (k, w) in words.enumerated() {
                out.append((k == 0 ? "(" : "") + w + (k == words.count - 1 ? ")" : ""))
            }
        }
        if let reason = r.reason {
            out.append("reason=" + quoted(cleaned(reason, limit: maximumTextLength)))
        }
        for p in r.properties {
            let ptype = keyword(p.ptype)
            let property = keyword(p.property)
            guard !ptype.isEmpty, !property.isEmpty else { continue }
            out.append("\(ptype).\(property)=\(propertyValue(p.value))")
        }
        return out
    }

    /// `s` lower-cased, kept to `Keyword` characters (RFC 5321 `Ldh-str`: letters, digits and
    /// hyphens, not ending with a hyphen) and to ``maximumKeywordLength``.
    static func keyword(_ s: some StringProtocol) -> String {
        var out: [UInt8] = []
        for b in s.utf8 {
            guard out.count < maximumKeywordLength else { break }
            switch b {
            case 0x41...0x5A: out.append(b + 0x20)
            case 0x61...0x7A, 0x30...0x39, 0x2D: out.append(b)
            default: continue
            }
        }
        while out.last == 0x2D { out.removeLast() }
        return String(decoding: out, as: UTF8.self)
    }

    /// A method as `Keyword [ "/" method-version ]`; a version of `1` is implied and left out (§2.2).
    static func methodKeyword(_ s: String) -> String {
        guard let slash = s.firstIndex(of: "/") else { return keyword(s) }
        let name = keyword(s[..<slash])
        let version = String(s[s.index(after: slash)...].filter(\.isASCII).filter(\.isNumber).prefix(9))
        guard !name.isEmpty, !version.isEmpty, version.contains(where: { $0 != "0" }) else { return name }
        let trimmed = String(version.drop { $0 == "0" })
        return trimmed == "1" ? name : "\(name)/\(trimmed)"
    }

    /// A property value: as it is when it is a token or an address in `[local-part] "@" domain-name`
    /// form (RFC 8601 §2.2), an address with its local part quoted, or a quoted-string.
    static func propertyValue(_ raw: String) -> String {
        let s = cleaned(raw, limit: maximumValueLength)
        let bytes = Array(s.utf8)
        if !bytes.isEmpty, bytes.allSatisfy(isTokenByte) { return s }
        if let at = bytes.lastIndex(of: UInt8(ascii: "@")), isDomainName(bytes[(at + 1)...]) {
            let local = bytes[..<at]
            let domain = String(decoding: bytes[(at + 1)...], as: UTF8.self)
            if local.isEmpty || isDotAtom(local) || isQuotedString(local) {
                return s
            }
            return quoted(String(decoding: local, as: UTF8.self)) + "@" + domain
        }
        return quoted(s)
    }

    /// A `value` (RFC 2045 §5.1) that is not an address: a token as it is, else a quoted-string.
    static func plainValue(_ raw: String) -> String {
        let s = cleaned(raw, limit: maximumValueLength)
        return !s.isEmpty && s.utf8.allSatisfy(isTokenByte) ? s : quoted(s)
    }

    /// `s` as a quoted-string (RFC 5322 §3.2.4): `"` and `\` escaped as quoted-pairs.
    static func quoted(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        out.append("\"")
        for u in s.unicodeScalars {
            if u == "\"" || u == "\\" { out.append("\\") }
            out.append(u)
        }
        out.append("\"")
        return String(out)
    }

    /// `s` with control characters (CR, LF and TAB included) as spaces, cut to `limit` UTF-8 octets at
    /// a scalar boundary.
    static func cleaned(_ s: String, limit: Int) -> String {
        var out = String.UnicodeScalarView()
        var octets = 0
        for u in s.unicodeScalars {
            let c: Unicode.Scalar = u.value < 0x20 || u.value == 0x7F ? " " : u
            let n = UTF8.width(c)
            guard octets + n <= limit else { break }
            octets += n
            out.append(c)
        }
        return String(out)
    }

    /// The inside of a comment for `s`: cleaned, cut, runs of spaces as one, `\` escaped, and each
    /// parenthesis without a partner escaped (`ccontent`, RFC 5322 §3.2.2). Nil when nothing is left.
    static func commentText(_ s: String) -> String? {
        let words = cleaned(s, limit: maximumTextLength).split(separator: " ", omittingEmptySubsequences: true)
        let scalars = Array(words.joined(separator: " ").unicodeScalars)
        guard !scalars.isEmpty else { return nil }
        var balanced = [Bool](repeating: false, count: scalars.count)
        var open: [Int] = []
        for (k, u) in scalars.enumerated() {
            if u == "(" {
                open.append(k)
            } else if u == ")", let o = open.popLast() {
                balanced[o] = true
                balanced[k] = true
            }
        }
        var out = String.UnicodeScalarView()
        for (k, u) in scalars.enumerated() {
            if u == "\\" || ((u == "(" || u == ")") && !balanced[k]) { out.append("\\") }
            out.append(u)
        }
        return String(out)
    }

    // MARK: RFC 6008

    /// `header.b` values for the DKIM signatures of one message, in the same order: the first 8
    /// characters of each `b=` (folding whitespace removed), more where two signatures would
    /// otherwise share the same prefix, the whole value when it is shorter (RFC 6008 §4). Only
    /// the first ``maximumResults`` signatures are compared with each other (the work is quadratic).
    public static func signatureReferences(_ signatures: [String]) -> [String] {
        let values = signatures.map { Array($0.utf8.filter { !isWhitespace($0) }) }
        return values.enumerated().map { i, b -> String in
            var n = 8
            if i < maximumResults {
                for (j, other) in values.prefix(maximumResults).enumerated() where j != i && other != b {
                    var common = 0
                    while common < b.count, common < other.count, b[common] == other[common] { common += 1 }
                    n = max(n, common + 1)
                }
            }
            return String(decoding: b.prefix(n), as: UTF8.self)
        }
    }

    // MARK: Parsing

    /// The authserv-id of an `Authentication-Results` field value (the part after the colon, folding
    /// and trailing CRLF allowed): after CFWS (comments may nest), a quoted-string or a token/dot-atom,
    /// optionally an `authres-version`, then `;` or the end. Nil when the value does not start that
    /// way. At most ``maximumFieldLength`` octets are read, so a longer value still yields its id.
    ///
    /// A receiver removes arriving fields that claim its own authserv-id (RFC 8601 §5); comparing
    /// is the caller's, case-insensitively (``claims(authservID:fieldValue:)`` does it). A receiver
    /// may also drop fields this returns nil for: nobody can rely on those.
    public static func authservID(ofFieldValue value: some Collection<UInt8>) -> String? {
        var bytes = Array(value.prefix(maximumFieldLength + 1))
        let cut = bytes.count > maximumFieldLength
        if cut { bytes.removeLast() }
        var s = Scanner(bytes)
        guard let (id, _) = s.header(), !(cut && s.atEnd) else { return nil }
        return id
    }

    /// ``authservID(ofFieldValue:)`` for a value in a string.
    public static func authservID(ofFieldValue value: String) -> String? { authservID(ofFieldValue: value.utf8) }

    /// `true` when the field value's authserv-id is `id`, compared case-insensitively (ASCII): the
    /// field claims to come from the receiver `id` and, arriving from outside, is forged (RFC 8601 §5).
    public static func claims(authservID id: String, fieldValue: some Collection<UInt8>) -> Bool {
        authservID(ofFieldValue: fieldValue).map { sameASCII($0, id) } ?? false
    }

    /// Parses an `Authentication-Results` field value (the part after the colon; folding, comments
    /// and a trailing CRLF allowed) as RFC 8601 §2.2 has it, leniently where receivers differ:
    /// - method, result, ptype and property are lower-cased; a method version of 1 is dropped;
    /// - a value is a quoted-string (its content), an address as written (`"a b"@example.org`,
    ///   `@example.org`), or any run of visible characters up to space, `;`, `(` or `"` (receivers
    ///   write IPv6 addresses and base64 without quotes);
    /// - the comments in a statement are joined into ``Result/comment`` (spaces collapsed);
    /// - `key=value` without a ptype (`action=none`, `x-bits=1024`) is skipped, and empty statements
    ///   (`;;`, a trailing `;`) are ignored.
    /// Nil for a value longer than ``maximumFieldLength``, with more than ``maximumResults``
    /// statements, an `authres-version` other than 1 (RFC 8601 §2.6: this is version 1; §5 has fields
    /// of versions a receiver does not know removed, not read), or anything else out of the grammar.
    /// The work is linear in the length of the value.
    public static func parse(fieldValue: some Collection<UInt8>) -> AuthenticationResults? {
        let bytes = Array(fieldValue.prefix(maximumFieldLength + 1))
        guard bytes.count <= maximumFieldLength else { return nil }
        var s = Scanner(bytes)
        // After the authserv-id comes ";" (no-result or a resinfo): an id alone is not a field.
        guard let (id, version) = s.header(), version == nil || version == 1, !s.atEnd else { return nil }
        var results: [Result] = []
        while !s.atEnd {
            // s.header() and each statement stop at ";" or the end.
            s.i += 1
            var comments: [String] = []
            guard s.skipCFWS(&comments) else { return nil }
            if s.atEnd { break }
            if s.peek == UInt8(ascii: ";") { continue }
            guard let method = s.method() else { return nil }
            guard s.skipCFWS(&comments) else { return nil }
            if method == "none", s.atEnd || s.peek == UInt8(ascii: ";") { continue }  // no-result
            guard s.peek == UInt8(ascii: "=") else { return nil }
            s.i += 1
            guard s.skipCFWS(&comments), let result = s.keyword() else { return nil }
            var r = Result(method: method, result: result)
            while true {
                guard s.skipCFWS(&comments) else { return nil }
                if s.atEnd || s.peek == UInt8(ascii: ";") { break }
                guard let name = s.keyword() else { return nil }
                guard s.skipCFWS(&comments) else { return nil }
                if s.peek == UInt8(ascii: ".") {
                    s.i += 1
                    guard s.skipCFWS(&comments), let property = s.keyword(), s.skipCFWS(&comments),
                          s.peek == UInt8(ascii: "=") else { return nil }
                    s.i += 1
                    guard let value = s.value(&comments) else { return nil }
                    r.properties.append(Property(ptype: name, property: property, value: value))
                } else if s.peek == UInt8(ascii: "=") {
                    s.i += 1
                    guard let value = s.value(&comments) else { return nil }
                    if name == "reason", r.reason == nil { r.reason = value }
                } else {
                    return nil
                }
            }
            if !comments.isEmpty { r.comment = comments.joined(separator: " ") }
            results.append(r)
            guard results.count <= maximumResults else { return nil }
        }
        return AuthenticationResults(authservID: id, results: results)
    }

    /// ``claims(authservID:fieldValue:)`` for a value in a string.
    public static func claims(authservID id: String, fieldValue: String) -> Bool {
        claims(authservID: id, fieldValue: fieldValue.utf8)
    }

    /// ``parse(fieldValue:)`` for a value in a string.
    public static func parse(fieldValue: String) -> AuthenticationResults? { parse(fieldValue: fieldValue.utf8) }

    /// A cursor over a field value; every method moves forward only, so the work is linear.
    struct Scanner {
        let b: [UInt8]
        var i = 0

        init(_ b: [UInt8]) { self.b = b }

        var atEnd: Bool { i >= b.count }
        var peek: UInt8? { i < b.count ? b[i] : nil }

        /// `[CFWS] authserv-id [CFWS authres-version]`, stopping at `;` or the end.
        mutating func header() -> (id: String, version: Int?)? {
            var ignored: [String] = []
            guard skipCFWS(&ignored) else { return nil }
            let id: String
            if peek == UInt8(ascii: "\"") {
                guard let q = quotedString() else { return nil }
                id = q
            } else {
                let start = i
                while let c = peek, AuthenticationResults.isIDByte(c) { i += 1 }
                id = String(decoding: b[start..<i], as: UTF8.self)
            }
            guard !id.isEmpty else { return nil }
            guard skipCFWS(&ignored) else { return nil }
            var version: Int?
            if let c = peek, AuthenticationResults.isDigit(c) {
                var v = 0
                while let d = peek, AuthenticationResults.isDigit(d) {
                    v = v < 100_000_000 ? v * 10 + Int(d - 0x30) : v  // an absurd version stays unsupported
                    i += 1
                }
                version = v
                guard skipCFWS(&ignored) else { return nil }
            }
            guard atEnd || peek == UInt8(ascii: ";") else { return nil }
            return (id, version)
        }

        /// Skips folding whitespace (CR and LF included) and comments, appending each comment's text
        /// (nested parentheses kept, quoted-pairs undone, spaces collapsed). False for a comment that
        /// does not end.
        mutating func skipCFWS(_ comments: inout [String]) -> Bool {
            while let c = peek {
                if AuthenticationResults.isWhitespace(c) {
                    i += 1
                } else if c == UInt8(ascii: "(") {
                    guard let text = comment() else { return false }
                    if !text.isEmpty { comments.append(text) }
                } else {
                    break
                }
            }
            return true
        }

        /// A comment at `(`, nesting by counting (no recursion, so any depth is fine).
        mutating func comment() -> String? {
            var depth = 0
            var text: [UInt8] = []
            var space = false
            func add(_ c: UInt8) {
                if space, !text.isEmpty { text.append(0x20) }
                space = false
                text.append(c)
            }
            while let c = peek {
                i += 1
                switch c {
                case UInt8(ascii: "("):
                    depth += 1
                    if depth > 1 { add(c) }
                case UInt8(ascii: ")"):
                    depth -= 1
                    if depth == 0 { return String(decoding: text, as: UTF8.self) }
                    add(c)
                case UInt8(ascii: "\\"):
                    guard let next = peek else { return nil }
                    i += 1
                    if AuthenticationResults.isWhitespace(next) { space = true } else { add(next) }
                default:
                    if AuthenticationResults.isWhitespace(c) { space = true } else { add(c) }
                }
            }
            return nil
        }

        /// A quoted-string at `"`: its content, quoted-pairs undone, folding CR LF removed.
        mutating func quotedString() -> String? {
            guard let raw = quotedStringBytes() else { return nil }
            var out: [UInt8] = []
            var k = raw.startIndex + 1
            while k < raw.endIndex - 1 {
                let c = raw[k]
                if c == UInt8(ascii: "\\"), k + 1 < raw.endIndex - 1 {
                    out.append(raw[k + 1])
                    k += 2
                } else {
                    if c != 0x0D, c != 0x0A { out.append(c) }
                    k += 1
                }
            }
            return String(decoding: out, as: UTF8.self)
        }

        /// The bytes of a quoted-string at `"`, both quotes included.
        mutating func quotedStringBytes() -> ArraySlice<UInt8>? {
            let start = i
            i += 1
            while let c = peek {
                i += 1
                if c == UInt8(ascii: "\"") { return b[start..<i] }
                if c == UInt8(ascii: "\\") {
                    guard !atEnd else { return nil }
                    i += 1
                }
            }
            return nil
        }

        /// A Keyword, lower-cased (`_` tolerated). Nil when there is none here.
        mutating func keyword() -> String? {
            let start = i
            while let c = peek, AuthenticationResults.isAlnum(c) || c == UInt8(ascii: "-") || c == UInt8(ascii: "_") {
                i += 1
            }
            guard i > start else { return nil }
            return String(decoding: b[start..<i].map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }, as: UTF8.self)
        }

        /// `Keyword [ [CFWS] "/" [CFWS] method-version ]`, the version left out when it is 1.
        mutating func method() -> String? {
            guard let name = keyword() else { return nil }
            let mark = i
            var ignored: [String] = []
            guard skipCFWS(&ignored) else { return nil }
            guard peek == UInt8(ascii: "/") else {
                i = mark
                return name
            }
            i += 1
            guard skipCFWS(&ignored) else { return nil }
            let start = i
            while let c = peek, AuthenticationResults.isDigit(c) { i += 1 }
            let digits = b[start..<i].drop { $0 == UInt8(ascii: "0") }
            guard i > start else { return nil }
            if digits.elementsEqual("1".utf8) || digits.isEmpty { return name }
            return name + "/" + String(decoding: digits.prefix(9), as: UTF8.self)
        }

        /// A `pvalue` or `value`: see ``AuthenticationResults/parse(fieldValue:)``.
        mutating func value(_ comments: inout [String]) -> String? {
            guard skipCFWS(&comments) else { return nil }
            if peek == UInt8(ascii: "\"") {
                let start = i
                guard let content = quotedString() else { return nil }
                guard peek == UInt8(ascii: "@") else { return content }
                // A quoted local part: keep the address as written.
                i += 1
                while let c = peek, AuthenticationResults.isValueByte(c) { i += 1 }
                return String(decoding: b[start..<i].filter { $0 != 0x0D && $0 != 0x0A }, as: UTF8.self)
            }
            let start = i
            while let c = peek, AuthenticationResults.isValueByte(c) { i += 1 }
            guard i > start else { return nil }
            return String(decoding: b[start..<i], as: UTF8.self)
        }
    }

    // MARK: Character classes

    static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    static func isAlnum(_ c: UInt8) -> Bool { isDigit(c) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) }
    /// SP, HTAB, CR, LF: folding whitespace, read leniently.
    static func isWhitespace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0D || c == 0x0A }

    /// RFC 2045 §5.1 token: US-ASCII except SPACE, CTLs and tspecials `()<>@,;:\"/[]?=`.
    static func isTokenByte(_ c: UInt8) -> Bool {
        guard c > 0x20, c < 0x7F else { return false }
        return !"()<>@,;:\\\"/[]?=".utf8.contains(c)
    }

    /// RFC 5322 §3.2.3 atext.
    static func isAtext(_ c: UInt8) -> Bool { isAlnum(c) || "!#$%&'*+-/=?^_`{|}~".utf8.contains(c) }

    /// What an unquoted authserv-id may contain: token or dot-atom characters.
    static func isIDByte(_ c: UInt8) -> Bool { isTokenByte(c) || isAtext(c) }

    /// What the lenient parser takes into an unquoted value: visible characters (UTF-8 too) but
    /// `;`, `(`, `)` and `"`.
    static func isValueByte(_ c: UInt8) -> Bool {
        c > 0x20 && c != 0x7F && c != UInt8(ascii: ";") && c != UInt8(ascii: "(") && c != UInt8(ascii: ")")
            && c != UInt8(ascii: "\"")
    }

    /// RFC 5322 §3.2.3 dot-atom-text: `1*atext *("." 1*atext)`.
    static func isDotAtom(_ s: ArraySlice<UInt8>) -> Bool {
        !s.isEmpty && s.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
            .allSatisfy { !$0.isEmpty && $0.allSatisfy(isAtext) }
    }

    /// RFC 5322 §3.2.4 quoted-string without CFWS: `DQUOTE *(qtext / quoted-pair / WSP) DQUOTE`,
    /// UTF-8 allowed in qtext (RFC 6532 §3.2).
    static func isQuotedString(_ s: ArraySlice<UInt8>) -> Bool {
        guard s.count >= 2, s.first == UInt8(ascii: "\""), s.last == UInt8(ascii: "\"") else { return false }
        var k = s.startIndex + 1
        while k < s.endIndex - 1 {
            let c = s[k]
            if c == UInt8(ascii: "\\") {
                guard k + 1 < s.endIndex - 1, s[k + 1] >= 0x20, s[k + 1] != 0x7F else { return false }
                k += 2
            } else {
                guard c >= 0x20, c != 0x7F, c != UInt8(ascii: "\"") else { return false }
                k += 1
            }
        }
        return true
    }

    /// RFC 6376 §3.5 `domain-name = sub-domain 1*("." sub-domain)`, sub-domains per RFC 5321
    /// (`Let-dig [Ldh-str]`).
    static func isDomainName(_ s: ArraySlice<UInt8>) -> Bool {
        let labels = s.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        return labels.count >= 2 && labels.allSatisfy { label in
            guard let first = label.first, let last = label.last, isAlnum(first), isAlnum(last) else { return false }
            return label.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: "-") }
        }
    }

    /// ASCII case-insensitive equality (authserv-ids are host names).
    static func sameASCII(_ a: String, _ b: String) -> Bool {
        a.utf8.elementsEqual(b.utf8) { x, y in
            (x >= 0x41 && x <= 0x5A ? x + 0x20 : x) == (y >= 0x41 && y <= 0x5A ? y + 0x20 : y)
        }
    }
}
