/// An IPv4 address as carried in an A record (RFC 1035 §3.4.1).
public struct IPv4Address: Hashable, Sendable, CustomStringConvertible {
    /// The four octets in network order.
    public let bytes: [UInt8]

    /// Creates an address from exactly four octets; `nil` otherwise.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 else { return nil }
        self.bytes = bytes
    }

    /// Parses dotted-quad notation (`192.0.2.1`); no leading zeros, no shorthand.
    public init?(_ string: String) {
        let parts = string.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  part == "0" || !part.hasPrefix("0"), let v = UInt8(part) else { return nil }
            bytes.append(v)
        }
        self.bytes = bytes
    }

    public var description: String { bytes.map(String.init).joined(separator: ".") }
}

/// An IPv6 address as carried in an AAAA record (RFC 3596 §2.2).
public struct IPv6Address: Hashable, Sendable, CustomStringConvertible {
    /// The sixteen octets in network order.
    public let bytes: [UInt8]

    /// Creates an address from exactly sixteen octets; `nil` otherwise.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Parses RFC 4291 §2.2 text (`2001:db8::1`, `::ffff:192.0.2.1`); no zone index.
    public init?(_ string: String) {
        func groups(_ s: Substring) -> [UInt16]? {
            if s.isEmpty { return [] }
            var out: [UInt16] = []
            let parts = s.split(separator: ":", omittingEmptySubsequences: false)
            for (i, part) in parts.enumerated() {
                if i == parts.count - 1, part.contains("."), let v4 = IPv4Address(String(part)) {
                    out.append(UInt16(v4.bytes[0]) << 8 | UInt16(v4.bytes[1]))
                    out.append(UInt16(v4.bytes[2]) << 8 | UInt16(v4.bytes[3]))
                    continue
                }
                guard (1...4).contains(part.count), let v = UInt16(part, radix: 16) else { return nil }
                out.append(v)
            }
            return out
        }
        var words: [UInt16]
        let chars = Array(string)
        let doubleColons = chars.indices.dropLast().filter { chars[$0] == ":" && chars[$0 + 1] == ":" }
        let halves = doubleColons.count == 1
            ? [String(chars[..<doubleColons[0]]), String(chars[(doubleColons[0] + 2)...])]
            : doubleColons.isEmpty ? [string] : []
        switch halves.count {
        case 1:
            guard let all = groups(Substring(string)), all.count == 8 else { return nil }
            words = all
        case 2:
            guard let head = groups(Substring(halves[0])), let tail = groups(Substring(halves[1])),
                  head.count + tail.count <= 7 else { return nil }
            words = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        default:
            return nil
        }
        self.bytes = words.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    /// RFC 5952 text: lower-case hex, leading zeros dropped, the longest run (≥ 2) of zero groups as `::`.
    public var description: String {
        let words = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        var bestStart = -1, bestLength = 1, i = 0
        while i < 8 {
            if words[i] == 0 {
                var j = i
                while j < 8 && words[j] == 0 { j += 1 }
                if j - i > bestLength { bestStart = i; bestLength = j - i }
                i = j
            } else {
                i += 1
            }
        }
        let hex = words.map { String($0, radix: 16) }
        if bestStart < 0 { return hex.joined(separator: ":") }
        return hex[0..<bestStart].joined(separator: ":") + "::" + hex[(bestStart + bestLength)...].joined(separator: ":")
    }
}

/// An IPv4 or IPv6 address from an A or AAAA record.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(IPv4Address)
    case v6(IPv6Address)

    /// Parses either textual form.
    public init?(_ string: String) {
        if let v4 = IPv4Address(string) {
            self = .v4(v4)
        } else if let v6 = IPv6Address(string) {
            self = .v6(v6)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .v4(let a): a.description
        case .v6(let a): a.description
        }
    }
}
