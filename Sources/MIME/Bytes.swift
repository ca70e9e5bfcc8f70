#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
// Small byte helpers shared by the parser and the builder.

extension UInt8 {
    static let cr: UInt8 = 0x0D
    static let lf: UInt8 = 0x0A
    static let space: UInt8 = 0x20
    static let tab: UInt8 = 0x09
    static let equals: UInt8 = 0x3D
    static let dash: UInt8 = 0x2D
    static let colon: UInt8 = 0x3A

    var isWSP: Bool { self == .space || self == .tab }

    /// The value of a hexadecimal digit, either case.
    var hexValue: UInt8? {
        switch self {
        case 0x30...0x39: return self - 0x30
        case 0x41...0x46: return self - 0x41 + 10
        case 0x61...0x66: return self - 0x61 + 10
        default: return nil
        }
    }
}

let hexDigitsUpper: [UInt8] = Array("0123456789ABCDEF".utf8)

/// One line of a byte buffer: `content` excludes the terminator (LF or CRLF); `end` is past it.
struct LineRange {
    var start: Int
    var contentEnd: Int
    var end: Int
}

/// Iterates the lines of `bytes[range]`, accepting LF and CRLF line ends. The last line may have no terminator.
struct LineIterator: IteratorProtocol {
    let bytes: [UInt8]
    var position: Int
    let limit: Int

    init(_ bytes: [UInt8], _ range: Range<Int>) {
        self.bytes = bytes
        self.position = range.lowerBound
        self.limit = range.upperBound
    }

    mutating func next() -> LineRange? {
        guard position < limit else { return nil }
        let start = position
        // memchr (vectorised) instead of a loop over the array: lines of long bodies are scanned here.
        let i = bytes.withUnsafeBufferPointer { buffer -> Int in
            guard let base = buffer.baseAddress, let hit = memchr(base + start, Int32(UInt8.lf), limit - start) else { return limit }
            return UnsafeRawPointer(base).distance(to: UnsafeRawPointer(hit))
        }
        if i < limit {
            let contentEnd = (i > start && bytes[i - 1] == .cr) ? i - 1 : i
            position = i + 1
            return LineRange(start: start, contentEnd: contentEnd, end: i + 1)
        }
        position = limit
        return LineRange(start: start, contentEnd: limit, end: limit)
    }
}

/// `true` when `needle` occurs in `haystack`.
func containsSequence(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard !needle.isEmpty, haystack.count >= needle.count else { return needle.isEmpty }
    let first = needle[0]
    var i = 0
    let last = haystack.count - needle.count
    while i <= last {
        if haystack[i] == first {
            var j = 1
            while j < needle.count, haystack[i + j] == needle[j] { j += 1 }
            if j == needle.count { return true }
        }
        i += 1
    }
    return false
}

extension String {
    /// Decodes `bytes` as UTF-8 when valid, otherwise as ISO-8859-1 (every byte maps to a character).
    init(utf8OrLatin1 bytes: some Collection<UInt8>) {
        if let s = String(validating: bytes, as: UTF8.self) {
            self = s
        } else {
            self = String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
        }
    }

    var isASCII: Bool { utf8.allSatisfy { $0 < 0x80 } }
}

extension String.UTF8View {
    /// `true` when the text contains `=?`, the start of an RFC 2047 encoded word (a byte scan: cheaper
    /// than `String.contains`, which works on characters).
    var containsEncodedWordStart: Bool {
        var previous: UInt8 = 0
        for b in self {
            if b == UInt8(ascii: "?"), previous == .equals { return true }
            previous = b
        }
        return false
    }
}

/// ASCII case-insensitive equality of two field names (no lower-cased copies).
func equalsIgnoringASCIICase(_ a: String, _ b: String) -> Bool {
    guard a.utf8.count == b.utf8.count else { return false }
    func lower(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5A ? c | 0x20 : c }
    let fast = a.utf8.withContiguousStorageIfAvailable { x in
        b.utf8.withContiguousStorageIfAvailable { y in
            for k in 0..<x.count where x[k] != y[k] && lower(x[k]) != lower(y[k]) { return false }
            return true
        }
    }
    if let result = fast ?? nil { return result }
    for (p, q) in zip(a.utf8, b.utf8) where p != q && lower(p) != lower(q) { return false }
    return true
}
