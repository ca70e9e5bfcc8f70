import MailCore

/// RFC 2047 encoded words: `=?charset?B?…?=` and `=?charset?Q?…?=` in header text.
///
/// - SeeAlso: RFC 2047 §2 (syntax), §4 (B and Q encodings), §5 (where they may appear), §6.2 (display:
///   whitespace between adjacent encoded words is ignored), RFC 2231 §5 (`charset*language`)
public enum EncodedWord {
    /// Decodes every well-formed encoded word in `text`.
    ///
    /// Adjacent encoded words are joined (the whitespace between them is dropped) and, when they share
    /// a charset and encoding, their octets are joined before charset conversion, so a character split
    /// across two words is recovered. Malformed encoded words are left as they are. Encoded words that
    /// touch other text (`abc=?utf-8?q?x?=`) are decoded too, as most mail readers do.
    public static func decode(_ text: String) -> String {
        decodeReportingProblems(text).text
    }

    /// Like ``decode(_:)``, also reporting whether an unknown charset or invalid octets were met.
    public static func decodeReportingProblems(_ text: String) -> (text: String, unknownCharset: Bool, invalid: Bool) {
        guard text.utf8.containsEncodedWordStart else { return (text, false, false) }
        let scalars = Array(text.unicodeScalars)
        enum Piece { case literal([Unicode.Scalar]); case word(charset: String, encoding: UInt8, bytes: [UInt8]) }
        var pieces: [Piece] = []
        var literal: [Unicode.Scalar] = []
        var i = 0
        while i < scalars.count {
            if scalars[i] == "=", i + 1 < scalars.count, scalars[i + 1] == "?",
               let (charset, enc, bytes, next) = parseWord(scalars, at: i) {
                if !literal.isEmpty { pieces.append(.literal(literal)); literal = [] }
                pieces.append(.word(charset: charset, encoding: enc, bytes: bytes))
                i = next
                continue
            }
            literal.append(scalars[i])
            i += 1
        }
        if !literal.isEmpty { pieces.append(.literal(literal)) }

        // Drop whitespace-only literals between two encoded words (RFC 2047 §6.2).
        var kept: [Piece] = []
        for (index, piece) in pieces.enumerated() {
            if case .literal(let l) = piece, l.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }),
               index > 0, index + 1 < pieces.count,
               case .word = pieces[index - 1], case .word = pieces[index + 1] {
                continue
            }
            kept.append(piece)
        }
        var out = String.UnicodeScalarView()
        var unknown = false
        var invalid = false
        var pendingCharset: String?
        var pendingBytes: [UInt8] = []
        func flush() {
            guard let cs = pendingCharset else { return }
            let d = Charset.decode(pendingBytes, charset: cs)
            if !d.charsetKnown { unknown = true }
            if d.hadInvalidInput { invalid = true }
            out.append(contentsOf: d.text.unicodeScalars)
            pendingCharset = nil
            pendingBytes = []
        }
        for piece in kept {
            switch piece {
            case .literal(let l):
                flush()
                out.append(contentsOf: l)
            case .word(let charset, _, let bytes):
                if let p = pendingCharset, p.lowercased() != charset.lowercased() { flush() }
                pendingCharset = charset
                pendingBytes.append(contentsOf: bytes)
            }
        }
        flush()
        return (String(out), unknown, invalid)
    }

    /// Parses one encoded word starting at `start` (which holds `=?`).
    /// `encoded-word = "=?" charset ["*" language] "?" encoding "?" encoded-text "?="`
    static func parseWord(_ s: [Unicode.Scalar], at start: Int) -> (String, UInt8, [UInt8], Int)? {
        var i = start + 2
        var charset = ""
        while i < s.count, s[i] != "?" {
            let c = s[i]
            guard c.value > 0x20, c.value < 0x7F, c != "(", c != ")", c != "<", c != ">", c != "\"", c != "=" else { return nil }
            charset.unicodeScalars.append(c)
            i += 1
            if charset.unicodeScalars.count > 75 { return nil }
        }
        guard i + 2 < s.count, !charset.isEmpty else { return nil }
        let encoding = s[i + 1]
        guard s[i + 2] == "?" else { return nil }
        let enc: UInt8
        switch encoding {
        case "B", "b": enc = UInt8(ascii: "B")
        case "Q", "q": enc = UInt8(ascii: "Q")
        default: return nil
        }
        i += 3
        let textStart = i
        while i + 1 < s.count, !(s[i] == "?" && s[i + 1] == "=") {
            let c = s[i]
            if c == " " || c == "\t" || c == "\r" || c == "\n" || c.value >= 0x7F || c.value < 0x20 { return nil }
            i += 1
        }
        guard i + 1 < s.count else { return nil }
        let encoded = s[textStart..<i].map { UInt8($0.value) }
        if let star = charset.firstIndex(of: "*") { charset = String(charset[..<star]) }
        let bytes: [UInt8]
        if enc == UInt8(ascii: "B") {
            bytes = MIMEBase64.decode(encoded).bytes
        } else {
            bytes = decodeQ(encoded)
        }
        return (charset, enc, bytes, i + 2)
    }

    /// The Q encoding (RFC 2047 §4.2): `_` is a space, `=XX` an octet.
    static func decodeQ(_ encoded: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < encoded.count {
            let b = encoded[i]
            if b == UInt8(ascii: "_") {
                out.append(.space)
            } else if b == .equals, i + 2 < encoded.count,
                      let h = encoded[i + 1].hexValue, let l = encoded[i + 2].hexValue {
                out.append(h << 4 | l)
                i += 3
                continue
            } else {
                out.append(b)
            }
            i += 1
        }
        return out
    }

    // MARK: - Encoding

    /// Characters allowed literally in a Q-encoded word in any header position (RFC 2047 §5 (3)).
    static func isQSafe(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "!"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "/"):
            return true
        default:
            return false
        }
    }

    static func qLength(_ bytes: some Sequence<UInt8>) -> Int {
        bytes.reduce(0) { $0 + ((isQSafe($1) || $1 == .space) ? 1 : 3) }
    }

    static func bLength(_ count: Int) -> Int { (count + 2) / 3 * 4 }

    /// `true` when Q is the shorter encoding for `text` (mostly ASCII); B otherwise.
    static func prefersQ(_ text: String) -> Bool {
        qLength(text.utf8) <= bLength(text.utf8.count)
    }

    /// Encodes `text` as one UTF-8 encoded word.
    /// - Parameter useQ: Q encoding when `true`, B otherwise.
    public static func encode(_ text: String, useQ: Bool) -> String {
        let prefix = useQ ? "=?UTF-8?Q?" : "=?UTF-8?B?"
        if !useQ { return prefix + Base64.encode(Array(text.utf8)) + "?=" }
        var out = [UInt8]()
        for b in text.utf8 {
            if b == .space {
                out.append(UInt8(ascii: "_"))
            } else if isQSafe(b) {
                out.append(b)
            } else {
                out.append(contentsOf: [.equals, hexDigitsUpper[Int(b >> 4)], hexDigitsUpper[Int(b & 0x0F)]])
            }
        }
        return prefix + String(decoding: out, as: UTF8.self) + "?="
    }

    /// Splits `text` into encoded words of at most `firstLimit` characters for the first and
    /// `limit` for the rest, never splitting a character (grapheme cluster; an oversized cluster is
    /// split between Unicode scalars, never inside a UTF-8 sequence).
    static func encodeSplitting(_ text: String, useQ: Bool, firstLimit: Int, limit: Int) -> [String] {
        let overhead = 12  // "=?UTF-8?Q?" + "?="
        var words: [String] = []
        var current = ""
        var currentCount = 0 // bytes of UTF-8 in `current`
        var currentQ = 0
        func encodedLength(bytes: Int, q: Int) -> Int { overhead + (useQ ? q : bLength(bytes)) }
        func capacity() -> Int { words.isEmpty ? firstLimit : limit }
        var units: [String] = []
        for ch in text {
            let s = String(ch)
            if encodedLength(bytes: s.utf8.count, q: qLength(s.utf8)) > limit {
                for scalar in s.unicodeScalars { units.append(String(scalar)) }
            } else {
                units.append(s)
            }
        }
        for unit in units {
            let b = unit.utf8.count
            let q = qLength(unit.utf8)
            if !current.isEmpty, encodedLength(bytes: currentCount + b, q: currentQ + q) > capacity() {
                words.append(encode(current, useQ: useQ))
                current = ""
                currentCount = 0
                currentQ = 0
            }
            current += unit
            currentCount += b
            currentQ += q
        }
        if !current.isEmpty || words.isEmpty { words.append(encode(current, useQ: useQ)) }
        return words
    }
}

/// Builds folded header fields: plain words, and text that needs RFC 2047 encoding, laid out on lines
/// of at most 78 characters where possible (RFC 5322 §2.1.1, §2.2.3; RFC 2047 §2 limits an encoded word
/// to 75 characters).
struct HeaderFolder {
    enum Token {
        /// ASCII text placed as is (never split); a space or fold goes before it.
        case plain(String)
        /// Text to encode as one or more encoded words.
        case encoded(String)
        /// ASCII text glued to the previous token with no space (for example `,` or `>`).
        case glued(String)
    }

    static let maxLine = 78

    /// `Name: tokens…` folded; no trailing CRLF.
    static func fold(name: String, _ tokens: [Token]) -> String {
        var out = name + ":"
        var column = out.utf8.count
        var first = true
        for token in tokens {
            switch token {
            case .glued(let s):
                out += s
                column += s.utf8.count
            case .plain(let s):
                let need = 1 + s.utf8.count
                if !s.isEmpty, column + need > maxLine, column > 1, first ? need <= maxLine : true {
                    out += "\r\n " + s
                    column = 1 + s.utf8.count
                } else {
                    out += " " + s
                    column += need
                }
            case .encoded(let s):
                let useQ = EncodedWord.prefersQ(s)
                var room = maxLine - column - 1
                if room < 20 && !first {
                    out += "\r\n"
                    column = 0
                    room = maxLine - 1
                }
                let words = EncodedWord.encodeSplitting(s, useQ: useQ, firstLimit: min(75, max(room, 16)), limit: 75)
                for w in words {
                    if column == 0 {
                        out += " " + w
                        column = 1 + w.utf8.count
                    } else if column + 1 + w.utf8.count > maxLine, column > 1 {
                        out += "\r\n " + w
                        column = 1 + w.utf8.count
                    } else {
                        out += " " + w
                        column += 1 + w.utf8.count
                    }
                }
            }
            first = false
        }
        return out
    }
}
