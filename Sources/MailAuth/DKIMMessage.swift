/// A message split for DKIM: its header fields (raw, in order) and where its body starts.
public struct DKIMMessage: Sendable {
    public var fields: [DKIMHeaderField]
    /// The whole message; the body is `bytes[bodyStart...]`.
    public var bytes: [UInt8]
    public var bodyStart: Int

    /// Splits `bytes` (CRLF or LF line ends) at the first empty line. A line that is neither a field
    /// nor a continuation ends the header section there (the rest is body).
    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        var fields: [DKIMHeaderField] = []
        var i = 0
        var start: Int?
        var name = ""
        func lineEnd(from j: Int) -> Int {
            var k = j
            while k < bytes.count, bytes[k] != 0x0A { k += 1 }
            return k < bytes.count ? k + 1 : k
        }
        var body = bytes.count
        while i < bytes.count {
            let end = lineEnd(from: i)
            let isEmpty = bytes[i] == 0x0A || (bytes[i] == 0x0D && i + 1 < bytes.count && bytes[i + 1] == 0x0A)
            if isEmpty {
                if let s = start { fields.append(DKIMHeaderField(name: name, raw: Array(bytes[s..<i]))) }
                start = nil
                body = end
                break
            }
            if bytes[i] == 0x20 || bytes[i] == 0x09 {
                if start == nil { start = i; name = "" }  // a continuation before any field: kept as junk
                i = end
                continue
            }
            if let s = start { fields.append(DKIMHeaderField(name: name, raw: Array(bytes[s..<i]))) }
            guard let colon = bytes[i..<end].firstIndex(of: UInt8(ascii: ":")) else {
                start = nil
                body = i
                break
            }
            var nameEnd = colon
            while nameEnd > i, bytes[nameEnd - 1] == 0x20 || bytes[nameEnd - 1] == 0x09 { nameEnd -= 1 }
            name = String(decoding: bytes[i..<nameEnd], as: UTF8.self)
            start = i
            i = end
        }
        if let s = start, body == bytes.count, i >= bytes.count {
            fields.append(DKIMHeaderField(name: name, raw: Array(bytes[s..<bytes.count])))
        }
        self.fields = fields.filter { !$0.name.isEmpty }
        self.bodyStart = min(body, bytes.count)
    }

    /// The body hash of this message for `c` (with `limit`, `l=`: only that many canonical octets),
    /// and the canonical body's whole length.
    public func bodyHash(_ c: DKIMCanonicalization, limit: Int? = nil) -> (hash: [UInt8], length: Int) {
        var h = DKIMBodyHasher(c, limit: limit)
        bytes.withUnsafeBytes { h.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[bodyStart...])) }
        return (h.finalize(), h.finalizedLength())
    }
}

/// Header field names compared as DKIM does: ASCII case-insensitively.
func sameFieldName(_ a: String, _ b: String) -> Bool {
    a.utf8.count == b.utf8.count && zip(a.utf8, b.utf8).allSatisfy { x, y in
        (x >= 0x41 && x <= 0x5A ? x | 0x20 : x) == (y >= 0x41 && y <= 0x5A ? y | 0x20 : y)
    }
}

/// The fields `names` select, in the order of `names`: for a name listed n times, its last n
/// occurrences from the bottom up; a name listed more often than it occurs selects nothing more
/// (over-signing). - SeeAlso: RFC 6376 §5.4.2
func selectFields(_ names: [String], from fields: [DKIMHeaderField], excluding excluded: Int? = nil) -> [DKIMHeaderField] {
    var used: [String: Int] = [:]
    var out: [DKIMHeaderField] = []
    for n in names {
        let key = n.lowercased()
        let taken = used[key, default: 0]
        var seen = 0
        for (i, f) in fields.enumerated().reversed() where i != excluded && sameFieldName(f.name, n) {
            if seen == taken {
                out.append(f)
                break
            }
            seen += 1
        }
        used[key] = taken + 1
    }
    return out
}
