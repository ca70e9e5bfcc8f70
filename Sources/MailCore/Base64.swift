/// RFC 4648 §4 base64, strict: decoding rejects characters outside the alphabet and bad padding.
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let table: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    /// Encodes bytes.
    public static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        // Contiguous input (arrays, slices, buffers) is encoded from a buffer pointer: the generic
        // iterator path is not specialized across modules and costs far more per byte.
        if let fast = bytes.withContiguousStorageIfAvailable({ encode(buffer: $0) }) { return fast }
        return encode(buffer: Array(bytes))
    }

    private static func encode(buffer bytes: [UInt8]) -> String {
        bytes.withUnsafeBufferPointer { encode(buffer: $0) }
    }

    private static func encode(buffer bytes: UnsafeBufferPointer<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var it = bytes.makeIterator()
        while let a = it.next() {
            let b = it.next()
            let c = it.next()
            out.append(alphabet[Int(a >> 2)])
            out.append(alphabet[Int((a & 0x03) << 4 | (b ?? 0) >> 4)])
            out.append(b == nil ? UInt8(ascii: "=") : alphabet[Int((b! & 0x0F) << 2 | (c ?? 0) >> 6)])
            out.append(c == nil ? UInt8(ascii: "=") : alphabet[Int(c! & 0x3F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes `text`; `nil` when it is not valid base64 (whitespace is not allowed).
    public static func decode<S: StringProtocol>(_ text: S) -> [UInt8]? {
        let input = Array(text.utf8)
        guard input.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(input.count / 4 * 3)
        var i = 0
        while i < input.count {
            let last = i + 4 == input.count
            var v: [UInt8] = [0, 0, 0, 0]
            var pad = 0
            for j in 0..<4 {
                let ch = input[i + j]
                if ch == UInt8(ascii: "=") {
                    guard last, j >= 2 else { return nil }
                    pad += 1
                    continue
                }
                guard pad == 0 else { return nil }
                let d = table[Int(ch)]
                guard d != 0xFF else { return nil }
                v[j] = d
            }
            out.append(v[0] << 2 | v[1] >> 4)
            if pad < 2 { out.append(v[1] << 4 | v[2] >> 2) }
            if pad < 1 { out.append(v[2] << 6 | v[3]) }
            i += 4
        }
        return out
    }
}
