/// IMAP's modified UTF-7 for mailbox names.
///
/// Printable US-ASCII (0x20–0x7E) stands for itself, except `&`, which is written `&-`. Any other run of
/// characters is UTF-16 (big endian), base64-encoded with `,` in place of `/` and no `=` padding, between
/// `&` and `-`. Maildir++ keeps folder names in this form on disk (`.Entw&APw-rfe`), as Dovecot does.
///
/// - SeeAlso: RFC 3501 §5.1.3, RFC 2152
public enum ModifiedUTF7 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,".utf8)
    private static let values: [Int8] = {
        var table = [Int8](repeating: -1, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = Int8(i) }
        return table
    }()

    /// Encodes `name` (any Unicode string) in modified UTF-7.
    public static func encode(_ name: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(name.utf8.count)
        var pending: [UInt16] = []
        func flush() {
            guard !pending.isEmpty else { return }
            out.append(UInt8(ascii: "&"))
            var bits: UInt32 = 0
            var count = 0
            for unit in pending {
                for byte in [UInt8(unit >> 8), UInt8(unit & 0xFF)] {
                    bits = (bits << 8) | UInt32(byte)
                    count += 8
                    while count >= 6 {
                        count -= 6
                        out.append(alphabet[Int((bits >> UInt32(count)) & 0x3F)])
                    }
                }
            }
            if count > 0 { out.append(alphabet[Int((bits << UInt32(6 - count)) & 0x3F)]) }
            out.append(UInt8(ascii: "-"))
            pending.removeAll(keepingCapacity: true)
        }
        for scalar in name.unicodeScalars {
            let v = scalar.value
            if v >= 0x20 && v <= 0x7E {
                flush()
                out.append(UInt8(v))
                if v == UInt32(UInt8(ascii: "&")) { out.append(UInt8(ascii: "-")) }
            } else {
                pending.append(contentsOf: String(scalar).utf16)
            }
        }
        flush()
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes a modified UTF-7 name strictly; `nil` for anything a conforming encoder would not produce:
    /// bytes outside 0x20–0x7E, a bare `&`, an unterminated shift, characters outside the alphabet,
    /// non-zero or whole unused padding bits, an odd number of octets, broken surrogate pairs, printable
    /// ASCII inside a shift, and two shifts in a row (one shift must cover the whole run).
    public static func decode(_ encoded: String) -> String? {
        let u = Array(encoded.utf8)
        var scalars = String.UnicodeScalarView()
        var i = 0
        var previousWasShift = false
        while i < u.count {
            let c = u[i]
            guard c >= 0x20 && c <= 0x7E else { return nil }
            if c != UInt8(ascii: "&") {
                scalars.append(Unicode.Scalar(c))
                i += 1
                previousWasShift = false
                continue
            }
            i += 1
            guard i < u.count else { return nil }
            if u[i] == UInt8(ascii: "-") {
                scalars.append("&")
                i += 1
                previousWasShift = false
                continue
            }
            if previousWasShift { return nil }  // "&AOQ-&AOQ-": must be one shift
            var bits: UInt32 = 0
            var count = 0
            var units: [UInt16] = []
            var octets: [UInt8] = []
            var chars = 0
            while true {
                guard i < u.count else { return nil }  // unterminated
                let d = u[i]
                i += 1
                if d == UInt8(ascii: "-") { break }
                let v = values[Int(d)]
                guard v >= 0 else { return nil }
                chars += 1
                bits = (bits << 6) | UInt32(v)
                count += 6
                if count >= 8 {
                    count -= 8
                    octets.append(UInt8((bits >> UInt32(count)) & 0xFF))
                    if octets.count == 2 {
                        units.append(UInt16(octets[0]) << 8 | UInt16(octets[1]))
                        octets.removeAll(keepingCapacity: true)
                    }
                }
            }
            // Empty shift, a half UTF-16 unit, a whole unused character, or non-zero padding bits.
            guard chars > 0, octets.isEmpty, count < 6, bits & ((1 << UInt32(count)) - 1) == 0 else { return nil }
            var iterator = units.makeIterator()
            var decoder = UTF16()
            loop: while true {
                switch decoder.decode(&iterator) {
                case .scalarValue(let s):
                    if s.value >= 0x20 && s.value <= 0x7E { return nil }  // printable ASCII must be direct
                    scalars.append(s)
                case .emptyInput: break loop
                case .error: return nil
                }
            }
            previousWasShift = true
        }
        return String(scalars)
    }
}
