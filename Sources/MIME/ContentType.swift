/// One parameter of a `Content-Type` or `Content-Disposition` field, after RFC 2231 reassembly.
public struct MIMEParameter: Hashable, Sendable {
    /// The attribute, lower-cased, without RFC 2231 `*N*` suffixes.
    public var name: String
    /// The value, decoded to a string (RFC 2231 charset applied, RFC 2047 words decoded).
    public var value: String

    /// Creates a parameter.
    public init(name: String, value: String) {
        self.name = name.lowercased()
        self.value = value
    }

    init(lowercasedName name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// A header value with parameters: `value *(";" parameter)`.
///
/// ```
/// content   := "Content-Type" ":" type "/" subtype *(";" parameter)
/// parameter := attribute "=" value
/// value     := token / quoted-string
/// ```
/// Parsing is lenient: unquoted values with spaces, missing closing quotes, stray semicolons and
/// comments are accepted. RFC 2231 continuations (`name*0*=utf-8''…; name*1*=…`) are joined and decoded;
/// RFC 2047 encoded words inside values (a common, non-standard practice) are decoded too.
/// - SeeAlso: RFC 2045 §5.1, RFC 2183 §2, RFC 2231 §3–§4
public struct ParameterizedValue: Hashable, Sendable {
    /// The part before the first `;`, trimmed (for example `text/plain` or `attachment`), as written.
    public var value: String
    /// The parameters in order of first appearance; each name once (the first occurrence wins).
    public var parameters: [MIMEParameter]

    /// Creates a value.
    public init(value: String, parameters: [MIMEParameter] = []) {
        self.value = value
        self.parameters = parameters
    }

    /// The value of parameter `name` (case-insensitive).
    public subscript(parameter name: String) -> String? {
        let n = name.lowercased()
        return parameters.first { $0.name == n }?.value
    }

    /// Parses a header value (already unfolded).
    public static func parse(_ text: String) -> ParameterizedValue {
        var text = text
        return text.withUTF8 { parse(utf8: $0) }
    }

    /// The parse over UTF-8 octets: every delimiter is ASCII, and no octet of a multi-byte UTF-8
    /// sequence is ASCII, so values are sliced as octets and decoded once at the end.
    static func parse(utf8 s: UnsafeBufferPointer<UInt8>) -> ParameterizedValue {
        let semicolon = UInt8(ascii: ";"), equals = UInt8(ascii: "="), quote = UInt8(ascii: "\""),
            backslash = UInt8(ascii: "\\"), open = UInt8(ascii: "(")
        func isSpace(_ b: UInt8) -> Bool { b == .space || b == .tab || b == .cr || b == .lf }
        var i = 0
        var buffer: [UInt8] = []
        // The value: up to the first ";" outside comments; comments dropped.
        while i < s.count, s[i] != semicolon {
            if s[i] == open { i = skipComment(s, i); continue }
            buffer.append(s[i])
            i += 1
        }
        let head = trimmedString(buffer)
        var raw: [(String, String, Bool)] = []  // name, value, wasQuoted
        while i < s.count {
            // at ";" or junk
            i += 1
            while i < s.count, isSpace(s[i]) || s[i] == semicolon { i += 1 }
            if i < s.count, s[i] == open { i = skipComment(s, i); continue }
            buffer.removeAll(keepingCapacity: true)
            var hasUpper = false
            while i < s.count, s[i] != equals, s[i] != semicolon {
                if !isSpace(s[i]) {
                    hasUpper = hasUpper || (s[i] >= 0x41 && s[i] <= 0x5A) || s[i] >= 0x80
                    buffer.append(s[i])
                }
                i += 1
            }
            guard i < s.count, s[i] == equals else {
                continue  // a parameter without "=": ignored
            }
            var name = String(decoding: buffer, as: UTF8.self)
            if hasUpper { name = name.lowercased() }
            i += 1
            while i < s.count, isSpace(s[i]) { i += 1 }
            buffer.removeAll(keepingCapacity: true)
            let value: String
            var quoted = false
            if i < s.count, s[i] == quote {
                quoted = true
                i += 1
                while i < s.count, s[i] != quote {
                    if s[i] == backslash, i + 1 < s.count { i += 1 }
                    if s[i] != .cr && s[i] != .lf { buffer.append(s[i]) }
                    i += 1
                }
                i += 1
                // Skip anything up to the next ";".
                while i < s.count, s[i] != semicolon { i += 1 }
                value = String(decoding: buffer, as: UTF8.self)
            } else {
                while i < s.count, s[i] != semicolon {
                    if s[i] == open { i = skipComment(s, i); continue }
                    buffer.append(s[i])
                    i += 1
                }
                value = trimmedString(buffer)
            }
            if !name.isEmpty { raw.append((name, value, quoted)) }
        }
        return ParameterizedValue(value: head, parameters: assemble(raw))
    }

    /// `bytes` as a string without leading and trailing spaces and tabs.
    static func trimmedString(_ bytes: [UInt8]) -> String {
        var lower = 0, upper = bytes.count
        while lower < upper, bytes[lower].isWSP { lower += 1 }
        while upper > lower, bytes[upper - 1].isWSP { upper -= 1 }
        return String(decoding: bytes[lower..<upper], as: UTF8.self)
    }

    static func skipComment(_ s: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int {
        var i = start
        var depth = 0
        while i < s.count {
            if s[i] == UInt8(ascii: "\\") { i += 2; continue }
            if s[i] == UInt8(ascii: "(") { depth += 1 }
            if s[i] == UInt8(ascii: ")") { depth -= 1; if depth == 0 { return i + 1 } }
            i += 1
        }
        return s.count
    }

    /// Joins RFC 2231 sections and decodes values.
    static func assemble(_ raw: [(String, String, Bool)]) -> [MIMEParameter] {
        if !raw.contains(where: { $0.0.utf8.contains(UInt8(ascii: "*")) }) {
            // No RFC 2231 sections (the usual case): the first occurrence of each name, in order.
            var result: [MIMEParameter] = []
            result.reserveCapacity(raw.count)
            for (name, value, _) in raw where !result.contains(where: { $0.name == name }) {
                result.append(MIMEParameter(lowercasedName: name, value: value.utf8.containsEncodedWordStart ? EncodedWord.decode(value) : value))
            }
            return result
        }
        struct Extended { var sections: [Int: (String, Bool)] = [:]; var order: Int }
        var plain: [String: String] = [:]
        var extended: [String: Extended] = [:]
        var order: [String] = []
        for (index, (name, value, _)) in raw.enumerated() {
            if let star = name.firstIndex(of: "*") {
                let base = String(name[..<star])
                var rest = name[name.index(after: star)...]
                var isEncoded = false
                var section = 0
                if rest.isEmpty {
                    isEncoded = true
                } else {
                    if rest.hasSuffix("*") { isEncoded = true; rest = rest.dropLast() }
                    guard let n = Int(rest), n >= 0, n < 10_000 else { continue }
                    section = n
                }
                if extended[base] == nil {
                    extended[base] = Extended(order: index)
                    if plain[base] == nil { order.append(base) }
                }
                if extended[base]!.sections[section] == nil { extended[base]!.sections[section] = (value, isEncoded) }
            } else {
                if plain[name] == nil {
                    plain[name] = value
                    if extended[name] == nil { order.append(name) }
                }
            }
        }
        var result: [MIMEParameter] = []
        for name in order {
            if let e = extended[name] {
                var bytes: [UInt8] = []
                var charset: String?
                for key in e.sections.keys.sorted() {
                    var (value, encoded) = e.sections[key]!
                    if encoded {
                        if key == 0 || (charset == nil && key == e.sections.keys.min()) {
                            // charset'language'value
                            let parts = value.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
                            if parts.count == 3 {
                                charset = parts[0].isEmpty ? nil : String(parts[0])
                                value = String(parts[2])
                            }
                        }
                        bytes.append(contentsOf: percentDecode(value))
                    } else {
                        bytes.append(contentsOf: value.utf8)
                    }
                }
                result.append(MIMEParameter(name: name, value: Charset.decode(bytes, charset: charset ?? "utf-8").text))
            } else if let v = plain[name] {
                result.append(MIMEParameter(name: name, value: v.utf8.containsEncodedWordStart ? EncodedWord.decode(v) : v))
            }
        }
        return result
    }

    static func percentDecode(_ s: String) -> [UInt8] {
        let b = Array(s.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "%"), i + 2 < b.count, let h = b[i + 1].hexValue, let l = b[i + 2].hexValue {
                out.append(h << 4 | l)
                i += 3
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return out
    }
}

/// A parsed `Content-Type` field.
///
/// - SeeAlso: RFC 2045 §5, RFC 2046
public struct ContentType: Hashable, Sendable, CustomStringConvertible {
    /// The top-level type, lower-cased (`text`, `multipart`, `image`, …).
    public var type: String
    /// The subtype, lower-cased (`plain`, `mixed`, …).
    public var subtype: String
    /// Parameters such as `charset`, `boundary`, `name`.
    public var parameters: [MIMEParameter]

    /// Creates a content type.
    public init(type: String, subtype: String, parameters: [MIMEParameter] = []) {
        self.type = type.lowercased()
        self.subtype = subtype.lowercased()
        self.parameters = parameters
    }

    /// `text/plain; charset=us-ascii`, the default when the field is absent (RFC 2045 §5.2).
    public static let defaultPlain = ContentType(type: "text", subtype: "plain", parameters: [MIMEParameter(name: "charset", value: "us-ascii")])

    /// Parses a field value; `nil` when it has no `type/subtype`.
    public init?(headerValue: String) {
        let p = ParameterizedValue.parse(headerValue)
        let parts = p.value.split(separator: "/", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        let t = parts[0].trimmingSpacesSub(), st = parts[1].trimmingSpacesSub()
        let tokenOK: (Substring) -> Bool = { s in
            !s.isEmpty && s.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && !isTSpecial($0) }
        }
        guard tokenOK(t), tokenOK(st) else { return nil }
        self.init(type: String(t), subtype: String(st), parameters: p.parameters)
    }

    /// `type/subtype`.
    public var mimeType: String { "\(type)/\(subtype)" }
    /// `true` for `multipart/*`.
    public var isMultipart: Bool { type == "multipart" }
    /// The `charset` parameter, lower-cased.
    public var charset: String? { self[parameter: "charset"].map { $0.lowercased() } }
    /// The `boundary` parameter.
    public var boundary: String? { self[parameter: "boundary"] }

    /// The value of parameter `name` (case-insensitive).
    public subscript(parameter name: String) -> String? {
        let n = name.lowercased()
        return parameters.first { $0.name == n }?.value
    }

    /// `type/subtype; name=value…` on one line (values quoted when needed; UTF-8 left as is).
    public var description: String {
        var s = mimeType
        for p in parameters { s += "; \(p.name)=\(quoteIfNeeded(p.value))" }
        return s
    }
}

/// A parsed `Content-Disposition` field.
///
/// - SeeAlso: RFC 2183 §2
public struct ContentDisposition: Hashable, Sendable {
    /// `inline`, `attachment` or another token, lower-cased.
    public var kind: String
    /// Parameters such as `filename`, `size`, `creation-date`.
    public var parameters: [MIMEParameter]

    /// Creates a disposition.
    public init(kind: String, parameters: [MIMEParameter] = []) {
        self.kind = kind.lowercased()
        self.parameters = parameters
    }

    /// Parses a field value.
    public init(headerValue: String) {
        let p = ParameterizedValue.parse(headerValue)
        self.init(kind: p.value, parameters: p.parameters)
    }

    /// `true` for `attachment`.
    public var isAttachment: Bool { kind == "attachment" }
    /// The `filename` parameter.
    public var filename: String? { self[parameter: "filename"] }

    /// The value of parameter `name` (case-insensitive).
    public subscript(parameter name: String) -> String? {
        let n = name.lowercased()
        return parameters.first { $0.name == n }?.value
    }
}

/// RFC 2045 §5.1 `tspecials`, which a token cannot contain.
func isTSpecial(_ b: UInt8) -> Bool {
    switch b {
    case UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "@"), UInt8(ascii: ","),
         UInt8(ascii: ";"), UInt8(ascii: ":"), UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "/"), UInt8(ascii: "["),
         UInt8(ascii: "]"), UInt8(ascii: "?"), UInt8(ascii: "="): return true
    default: return false
    }
}

func quoteIfNeeded(_ v: String) -> String {
    let tspecials = "()<>@,;:\\\"/[]?= \t"
    if !v.isEmpty, v.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F && !tspecials.unicodeScalars.contains($0) }) { return v }
    var q = "\""
    for ch in v {
        if ch == "\"" || ch == "\\" { q.append("\\") }
        q.append(ch)
    }
    return q + "\""
}

extension Substring {
    func trimmingSpacesSub() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}
