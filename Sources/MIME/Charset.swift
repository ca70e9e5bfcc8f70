#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Converts text in a MIME charset to Swift strings (UTF-8), using the C library's `iconv` for
/// everything that is not UTF-8, US-ASCII or ISO-8859-1.
///
/// Names are matched case-insensitively with the common aliases found in mail (`gb2312` is read as
/// GB18030, `ks_c_5601-1987` as CP949, `shift_jis` as CP932, `iso-2022-jp` as ISO-2022-JP-2 and so on,
/// supersets that decode everything the narrower charset can). Invalid sequences become U+FFFD.
///
/// - SeeAlso: RFC 2045 §5.1 (`charset` parameter), RFC 2046 §4.1.2, RFC 2978 (IANA charset registry)
public enum Charset {
    /// The result of a conversion.
    public struct Decoded: Hashable, Sendable {
        /// The text; invalid input became U+FFFD.
        public var text: String
        /// `false` when the charset is unknown (the bytes were then read as UTF-8).
        public var charsetKnown: Bool
        /// `true` when some input could not be converted and was replaced.
        public var hadInvalidInput: Bool
    }

    /// Decodes `bytes` from `charset` into a string.
    /// - Parameters:
    ///   - bytes: the encoded text.
    ///   - charset: a MIME charset name such as `iso-8859-1`, `GB2312` or `Shift_JIS`; `nil` means US-ASCII.
    public static func decode(_ bytes: some Collection<UInt8>, charset: String?) -> Decoded {
        let name = normalize(charset ?? "us-ascii")
        switch name {
        case "utf-8", "utf8", "us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "us", "", "unknown-8bit", "x-unknown", "unknown", "7bit", "8bit":
            // US-ASCII labelled text that carries 8-bit bytes is nearly always UTF-8 in practice.
            if let s = String(validating: bytes, as: UTF8.self) {
                return Decoded(text: s, charsetKnown: true, hadInvalidInput: false)
            }
            let known = name.hasPrefix("utf") || name.hasPrefix("us") || name.hasPrefix("ascii") || name.hasPrefix("ansi") || name.hasPrefix("iso646") || name == ""
            return Decoded(text: String(decoding: bytes, as: UTF8.self), charsetKnown: known, hadInvalidInput: true)
        case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "iso_8859-1", "iso-ir-100", "cp819", "ibm819":
            return Decoded(text: String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) })), charsetKnown: true, hadInvalidInput: false)
        default:
            break
        }
        if bytes.allSatisfy({ $0 < 0x80 }) && !name.contains("2022") && !name.hasPrefix("utf-16") && !name.hasPrefix("utf-32")
            && !name.hasPrefix("utf-7") && !name.hasPrefix("ucs") {
            return Decoded(text: String(decoding: bytes, as: UTF8.self), charsetKnown: true, hadInvalidInput: false)
        }
        if let r = iconvDecode(Array(bytes), from: iconvName(name)) { return r }
        let s = String(decoding: bytes, as: UTF8.self)
        return Decoded(text: s, charsetKnown: false, hadInvalidInput: String(validating: bytes, as: UTF8.self) == nil)
    }

    /// `true` when `charset` can be decoded (built in or known to iconv).
    public static func isKnown(_ charset: String) -> Bool {
        let name = normalize(charset)
        switch name {
        case "utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin1", "latin-1": return true
        default: return canOpen(iconvName(name))
        }
    }

    static func normalize(_ charset: String) -> String {
        var s = charset.lowercased()
        s = String(s.drop(while: { $0 == " " || $0 == "\t" || $0 == "\"" }))
        while let last = s.last, last == " " || last == "\t" || last == "\"" { s.removeLast() }
        return s
    }

    /// The iconv name for a normalised MIME charset name.
    static func iconvName(_ name: String) -> String {
        switch name {
        case "gb2312", "gbk", "x-gbk", "cp936", "euc-cn", "x-euc-cn", "csgb2312", "gb_2312-80", "chinese", "ms936", "windows-936", "gb18030":
            return "GB18030"
        case "ks_c_5601-1987", "ks_c_5601", "euc-kr", "x-euc-kr", "ksc5601", "ksc_5601", "korean", "cp949", "windows-949", "uhc":
            return "CP949"
        case "shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "csshiftjis", "windows-31j", "cp932", "x-ms-cp932", "ms932":
            return "CP932"
        case "iso-2022-jp", "csiso2022jp", "iso-2022-jp-2", "iso2022jp":
            return "ISO-2022-JP-2"
        case "big5", "big-5", "cn-big5", "x-x-big5", "csbig5", "big5-hkscs", "cp950", "windows-950":
            return "BIG5-HKSCS"
        case "euc-jp", "x-euc-jp", "eucjp", "cseucpkdfmtjapanese":
            return "EUC-JP"
        case "tis-620", "windows-874", "cp874":
            return "CP874"
        default:
            if name.hasPrefix("windows-") { return "CP" + name.dropFirst("windows-".count) }
            if name.hasPrefix("x-mac-") { return "MAC" + name.dropFirst("x-mac-".count).uppercased() }
            return name.uppercased()
        }
    }

    static func canOpen(_ name: String) -> Bool {
        let cd = iconv_open("UTF-8", name)
        if Int(bitPattern: cd) == -1 { return false }
        iconv_close(cd)
        return true
    }

    /// Converts with iconv; `nil` when iconv does not know the charset.
    static func iconvDecode(_ input: [UInt8], from name: String) -> Decoded? {
        guard !name.isEmpty else { return nil }
        let cd = iconv_open("UTF-8", name)
        if Int(bitPattern: cd) == -1 { return nil }
        defer { iconv_close(cd) }
        var output: [UInt8] = []
        output.reserveCapacity(input.count * 2 + 16)
        var invalid = false
        var chunk = [UInt8](repeating: 0, count: 4096)
        var inputCopy = input
        inputCopy.withUnsafeMutableBufferPointer { inBuf in
            chunk.withUnsafeMutableBufferPointer { outBuf in
                var inPtr: UnsafeMutablePointer<CChar>? = inBuf.baseAddress.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: CChar.self) }
                var inLeft = inBuf.count
                let outBase = UnsafeMutableRawPointer(outBuf.baseAddress!).assumingMemoryBound(to: CChar.self)
                var guardCount = 0
                while true {
                    guardCount += 1
                    if guardCount > input.count * 4 + 1000 { invalid = true; break }
                    var outPtr: UnsafeMutablePointer<CChar>? = outBase
                    var outLeft = outBuf.count
                    let flushing = inLeft == 0
                    let r: Int
                    if flushing {
                        r = iconv(cd, nil, nil, &outPtr, &outLeft)
                    } else {
                        r = iconv(cd, &inPtr, &inLeft, &outPtr, &outLeft)
                    }
                    let produced = outBuf.count - outLeft
                    if produced > 0 {
                        output.append(contentsOf: UnsafeRawBufferPointer(start: outBase, count: produced))
                    }
                    if r != -1 {
                        if flushing { break }
                        continue
                    }
                    let e = errno
                    if e == E2BIG { continue }
                    if e == EILSEQ || e == EINVAL {
                        // Skip one input byte and emit U+FFFD; EINVAL means a truncated sequence at the end.
                        invalid = true
                        output.append(contentsOf: [0xEF, 0xBF, 0xBD])
                        if inLeft > 0 {
                            inPtr = inPtr?.advanced(by: 1)
                            inLeft -= 1
                        }
                        if e == EINVAL { inLeft = 0 }
                        continue
                    }
                    invalid = true
                    break
                }
            }
        }
        return Decoded(text: String(decoding: output, as: UTF8.self), charsetKnown: true, hadInvalidInput: invalid)
    }
}
