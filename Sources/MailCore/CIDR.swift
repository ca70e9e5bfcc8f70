/// An IPv4 or IPv6 network, `192.0.2.0/24` or `2001:db8::/32` (a bare address is a /32 or /128).
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    /// Network address bytes (4 or 16).
    public let address: [UInt8]
    /// Prefix length.
    public let prefixLength: Int

    /// Parses the textual form; `nil` when malformed.
    public static func parse(_ text: String) -> CIDR? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let bytes = parseIP(String(parts[0])) else { return nil }
        let maxBits = bytes.count * 8
        var bits = maxBits
        if parts.count == 2 {
            guard let b = Int(parts[1]), (0...maxBits).contains(b), parts[1].allSatisfy(\.isASCIIDigit) else { return nil }
            bits = b
        }
        return CIDR(address: mask(bytes, bits), prefixLength: bits)
    }

    /// `true` when `ip` (textual) lies in this network. IPv4-mapped IPv6 addresses match IPv4 networks.
    public func contains(_ ip: String) -> Bool {
        guard var bytes = Self.parseIP(ip) else { return false }
        if bytes.count == 16 && address.count == 4 && bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            bytes = Array(bytes[12...])
        }
        guard bytes.count == address.count else { return false }
        return Self.mask(bytes, prefixLength) == address
    }

    public var description: String {
        if address.count == 4 { return address.map(String.init).joined(separator: ".") + "/\(prefixLength)" }
        var groups: [String] = []
        for i in stride(from: 0, to: 16, by: 2) { groups.append(String(UInt16(address[i]) << 8 | UInt16(address[i + 1]), radix: 16)) }
        return groups.joined(separator: ":") + "/\(prefixLength)"
    }

    static func mask(_ bytes: [UInt8], _ bits: Int) -> [UInt8] {
        var out = bytes
        for i in 0..<out.count {
            let keep = max(0, min(8, bits - i * 8))
            out[i] &= keep == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - keep))
        }
        return out
    }

    /// Parses a dotted-quad IPv4 or an RFC 4291 §2.2 IPv6 address (with `::` and an embedded IPv4 tail).
    public static func parseIP(_ s: String) -> [UInt8]? {
        if !s.contains(":") {
            let parts = s.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var out: [UInt8] = []
            for p in parts {
                guard !p.isEmpty, p.count <= 3, p.allSatisfy(\.isASCIIDigit), let v = Int(p), v <= 255 else { return nil }
                out.append(UInt8(v))
            }
            return out
        }
        var text = Substring(s)
        if let pct = text.firstIndex(of: "%") { text = text[..<pct] }  // zone index
        let halves = text.components(separatedByDoubleColon: ())
        guard halves.count <= 2 else { return nil }
        func groups(_ part: Substring) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            let items = part.split(separator: ":", omittingEmptySubsequences: false)
            for (i, g) in items.enumerated() {
                if i == items.count - 1, g.contains("."), let v4 = parseIP(String(g)) {
                    out.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
                    out.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
                    continue
                }
                guard (1...4).contains(g.count), let v = UInt16(g, radix: 16) else { return nil }
                out.append(v)
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        var all: [UInt16]
        if halves.count == 2 {
            guard let tail = groups(halves[1]), head.count + tail.count <= 7 else { return nil }
            all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard head.count == 8 else { return nil }
            all = head
        }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }
}

extension Substring {
    fileprivate func components(separatedByDoubleColon: Void) -> [Substring] {
        var out: [Substring] = []
        var start = startIndex
        var i = startIndex
        while i < endIndex {
            let next = index(after: i)
            if self[i] == ":", next < endIndex, self[next] == ":" {
                out.append(self[start..<i])
                start = index(after: next)
                i = start
                continue
            }
            i = next
        }
        out.append(self[start..<endIndex])
        return out
    }
}
