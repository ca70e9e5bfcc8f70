import MailCore

/// A `Content-Transfer-Encoding` value.
///
/// - SeeAlso: RFC 2045 §6.1
public enum ContentTransferEncoding: Hashable, Sendable, CustomStringConvertible {
    /// Lines of US-ASCII no longer than 998 octets (the default, RFC 2045 §6.2).
    case sevenBit
    /// Lines of octets, no NUL, no bare CR/LF (RFC 2045 §6.2).
    case eightBit
    /// Any octets (RFC 2045 §6.2, RFC 3030).
    case binary
    /// RFC 2045 §6.7.
    case quotedPrintable
    /// RFC 2045 §6.8.
    case base64
    /// Anything else, lower-cased; the body is taken as is.
    case other(String)

    /// Parses a header value (case-insensitive, surrounding whitespace and comments ignored).
    public init(headerValue: String) {
        var v = headerValue.lowercased()
        if let paren = v.firstIndex(of: "(") { v = String(v[..<paren]) }
        v = String(v.filter { $0 != " " && $0 != "\t" && $0 != "\"" })
        switch v {
        case "7bit", "": self = .sevenBit
        case "8bit": self = .eightBit
        case "binary": self = .binary
        case "quoted-printable": self = .quotedPrintable
        case "base64": self = .base64
        default: self = .other(v)
        }
    }

    /// The header value.
    public var description: String {
        switch self {
        case .sevenBit: return "7bit"
        case .eightBit: return "8bit"
        case .binary: return "binary"
        case .quotedPrintable: return "quoted-printable"
        case .base64: return "base64"
        case .other(let s): return s
        }
    }

    /// Decodes a body in this encoding. Unknown encodings return the input unchanged.
    /// - Returns: the bytes and `true` when the input was well formed.
    public func decode(_ body: some Collection<UInt8>) -> (bytes: [UInt8], wellFormed: Bool) {
        switch self {
        case .base64: return MIMEBase64.decode(body)
        case .quotedPrintable: return QuotedPrintable.decode(body)
        case .sevenBit, .eightBit, .binary: return (Array(body), true)
        case .other: return (Array(body), false)
        }
    }
}

/// Base64 for MIME bodies: the encoder wraps lines at 76 characters, the decoder is lenient.
///
/// - SeeAlso: RFC 2045 §6.8, RFC 4648 §4
public enum MIMEBase64 {
    private static let table: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    /// Encodes `bytes` as CRLF-separated lines of at most `lineLength` characters (76 by default).
    /// The result ends with CRLF unless it is empty.
    public static func encode(_ bytes: some Collection<UInt8>, lineLength: Int = 76) -> [UInt8] {
        let flat = Array(Base64.encode(bytes).utf8)
        var out: [UInt8] = []
        out.reserveCapacity(flat.count + flat.count / max(lineLength, 4) * 2 + 2)
        var i = 0
        let step = max(4, lineLength / 4 * 4)
        while i < flat.count {
            let end = min(i + step, flat.count)
            out.append(contentsOf: flat[i..<end])
            out.append(.cr)
            out.append(.lf)
            i = end
        }
        return out
    }

    /// Decodes base64, ignoring characters outside the alphabet (line breaks, spaces, junk) and stopping
    /// at padding. A trailing incomplete group yields the bytes it holds.
    /// - Returns: the bytes, and `false` when junk, a lone trailing character or missing padding was seen.
    public static func decode(_ text: some Collection<UInt8>) -> (bytes: [UInt8], wellFormed: Bool) {
        if let result = text.withContiguousStorageIfAvailable({ decode(UnsafeRawBufferPointer($0)) }) { return result }
        return Array(text).withUnsafeBytes { decode($0) }
    }

    /// The alphabet's values pre-shifted for each position of a group of four (`shifted[k][c]` is the
    /// value of `c` shifted left by 18, 12, 6, 0), so a group is four lookups ORed; anything outside the
    /// alphabet is `invalid`, which no valid group reaches (values fit in 24 bits).
    private static let shifted: [UInt32] = {
        var t = [UInt32](repeating: invalid, count: 4 * 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            for k in 0..<4 { t[k * 256 + Int(c)] = UInt32(i) << (18 - 6 * UInt32(k)) }
        }
        return t
    }()
    private static let invalid: UInt32 = 0xFF00_0000

    /// Runs of whole groups from `i`: four alphabet characters each, appended as three octets at `o`
    /// (written as one four-octet store; the output keeps a spare octet for the last one), two groups
    /// per step. Stops before the first group holding anything else (a line break, padding, junk),
    /// which the caller reads one character at a time.
    @inline(__always)
    private static func decodeGroups(_ input: UnsafeRawBufferPointer, _ i: inout Int, _ t: UnsafePointer<UInt32>,
                                     _ out: UnsafeMutableRawPointer?, _ o: inout Int) {
        let count = input.count
        while count &- i >= 8 {
            let v0 = t[Int(input[i])] | t[256 &+ Int(input[i &+ 1])] | t[512 &+ Int(input[i &+ 2])] | t[768 &+ Int(input[i &+ 3])]
            let v1 = t[Int(input[i &+ 4])] | t[256 &+ Int(input[i &+ 5])] | t[512 &+ Int(input[i &+ 6])] | t[768 &+ Int(input[i &+ 7])]
            if (v0 | v1) >= 0x0100_0000 { break }
            if let out {
                out.storeBytes(of: (v0 << 8).bigEndian, toByteOffset: o, as: UInt32.self)
                out.storeBytes(of: (v1 << 8).bigEndian, toByteOffset: o &+ 3, as: UInt32.self)
            }
            o &+= 6
            i &+= 8
        }
        if count &- i >= 4 {
            let v = t[Int(input[i])] | t[256 &+ Int(input[i &+ 1])] | t[512 &+ Int(input[i &+ 2])] | t[768 &+ Int(input[i &+ 3])]
            if v >= 0x0100_0000 { return }
            out?.storeBytes(of: (v << 8).bigEndian, toByteOffset: o, as: UInt32.self)
            o &+= 3
            i &+= 4
        }
    }

    static func decode(_ input: UnsafeRawBufferPointer) -> (bytes: [UInt8], wellFormed: Bool) {
        var clean = true
        // At most 3 octets per 4 characters, plus 2 from a trailing incomplete group, plus the spare
        // octet of the four-octet stores.
        let bytes = [UInt8](unsafeUninitializedCapacity: input.count / 4 * 3 + 4) { out, initialized in
            let (o, ok) = run(input, UnsafeMutableRawPointer(out.baseAddress!))
            clean = ok
            initialized = o
        }
        return (bytes, clean)
    }

    /// Whether `input` is well formed base64 (what ``decode(_:)`` reports), without producing the octets.
    public static func isWellFormed(_ input: some Collection<UInt8>) -> Bool {
        if let r = input.withContiguousStorageIfAvailable({ validate(UnsafeRawBufferPointer($0)) }) { return r }
        return Array(input).withUnsafeBytes { validate($0) }
    }

    /// What ``decode(_:)`` reports as `wellFormed`, without decoding: the decoder's loop with no output
    /// (it is inlined here with `out` nil, so the stores go away).
    static func validate(_ input: UnsafeRawBufferPointer) -> Bool {
        run(input, nil).wellFormed
    }

    /// The decoder: writes to `out` when given (room for `input.count / 4 * 3 + 4` octets), else only
    /// checks. Returns the number of octets and whether the input was well formed.
    @inline(__always)
    private static func run(_ input: UnsafeRawBufferPointer, _ out: UnsafeMutableRawPointer?) -> (count: Int, wellFormed: Bool) {
        // The table once: reading the lazily initialised global inside the loop cost a `swift_once`
        // check per byte, more than the decoding itself.
        let table = Self.table
        return Self.shifted.withUnsafeBufferPointer { shifted in
            let t = shifted.baseAddress!
            var clean = true
            var o = 0
            var quad: UInt32 = 0
            var n = 0
            var sawPad = false
            var i = 0
            let count = input.count
            func put(_ b: UInt32) {
                out?.storeBytes(of: UInt8(truncatingIfNeeded: b), toByteOffset: o, as: UInt8.self)
                o += 1
            }
            while i < count {
                if n == 0 {
                    decodeGroups(input, &i, t, out, &o)
                    if i == count { break }
                }
                // One character at a time: line breaks, padding, junk, and groups split by them.
                let c = input[i]
                i += 1
                if c == .equals {
                    if n >= 2 { sawPad = true; break }
                    clean = false
                    continue
                }
                let d = table[Int(c)]
                if d == 0xFF {
                    if !(c == .cr || c == .lf || c == .space || c == .tab) { clean = false }
                    continue
                }
                quad = quad << 6 | UInt32(d)
                n += 1
                if n == 4 {
                    put(quad >> 16)
                    put(quad >> 8)
                    put(quad)
                    quad = 0
                    n = 0
                }
            }
            switch n {
            case 2:
                put(quad >> 4)
                if !sawPad { clean = false }
            case 3:
                put(quad >> 10)
                put(quad >> 2)
                if !sawPad { clean = false }
            case 1:
                clean = false
            default:
                break
            }
            return (o, clean)
        }
    }
}

/// Quoted-printable content transfer encoding.
///
/// - SeeAlso: RFC 2045 §6.7
public enum QuotedPrintable {
    /// Encodes text whose line breaks are CRLF (or LF, which is read as a line break too).
    ///
    /// Encoded lines are at most 76 characters (soft breaks `=` CRLF), `=XX` escapes are never split,
    /// trailing whitespace is escaped, and `From ` at the start of a line is written `=46rom ` so that
    /// mbox files cannot mangle it. Output line breaks are CRLF.
    public static func encode(_ bytes: some Collection<UInt8>) -> [UInt8] {
        let input = Array(bytes)
        var out: [UInt8] = []
        out.reserveCapacity(input.count + input.count / 8)
        var lines = LineIterator(input, 0..<input.count)
        while let line = lines.next() {
            var column = 0
            var i = line.start
            while i < line.contentEnd {
                let b = input[i]
                let isLast = i == line.contentEnd - 1
                // The token for this byte: itself, or "=XX" (no array per byte: this runs per octet).
                var escaped = !((b >= 33 && b <= 126 && b != .equals) || (b.isWSP && !isLast))
                if i == line.start, b == UInt8(ascii: "F"), line.contentEnd - i >= 5,
                   input[i + 1] == UInt8(ascii: "r"), input[i + 2] == UInt8(ascii: "o"), input[i + 3] == UInt8(ascii: "m"),
                   input[i + 4] == UInt8(ascii: " ") {
                    escaped = true  // "From " at the start of a line: "=46rom "
                }
                let width = escaped ? 3 : 1
                // Keep room for a soft break "=" (76 columns) unless this is the last token of the line.
                let limit = isLast ? 76 : 75
                if column + width > limit {
                    out.append(.equals)
                    out.append(.cr)
                    out.append(.lf)
                    column = 0
                }
                if escaped {
                    out.append(.equals)
                    out.append(hexDigitsUpper[Int(b >> 4)])
                    out.append(hexDigitsUpper[Int(b & 0x0F)])
                } else {
                    out.append(b)
                }
                column += width
                i += 1
            }
            if line.end > line.contentEnd {
                out.append(.cr)
                out.append(.lf)
            }
        }
        return out
    }

    /// Decodes quoted-printable. `=` followed by optional whitespace and a line break is a soft break;
    /// `=XX` (either case) is an octet; a malformed `=` is kept literally; trailing whitespace on a line
    /// is removed (RFC 2045 §6.7 rule 3). Line breaks come out as they were (LF or CRLF).
    /// - Returns: the bytes, and `false` when a malformed escape was seen.
    public static func decode(_ text: some Collection<UInt8>) -> (bytes: [UInt8], wellFormed: Bool) {
        let input = Array(text)
        var out: [UInt8] = []
        out.reserveCapacity(input.count)
        var clean = true
        var lines = LineIterator(input, 0..<input.count)
        while let line = lines.next() {
            var end = line.contentEnd
            while end > line.start, input[end - 1].isWSP { end -= 1 }
            var soft = false
            var i = line.start
            while i < end {
                let b = input[i]
                if b == .equals {
                    if i + 1 == end {
                        soft = true
                        i += 1
                        continue
                    }
                    if i + 2 < end, let h = input[i + 1].hexValue, let l = input[i + 2].hexValue {
                        out.append(h << 4 | l)
                        i += 3
                        continue
                    }
                    clean = false
                    out.append(b)
                    i += 1
                    continue
                }
                out.append(b)
                i += 1
            }
            if !soft && line.end > line.contentEnd {
                out.append(contentsOf: input[line.contentEnd..<line.end])
            }
        }
        return (out, clean)
    }
}
