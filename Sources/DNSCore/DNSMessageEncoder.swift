import struct NIOCore.ByteBuffer

/// Encodes DNS messages (RFC 1035 §4.1) to wire form, with name compression (RFC 1035 §4.1.4)
/// for owner names and for the names inside NS, CNAME, PTR, MX and SOA RDATA (RFC 3597 §4).
///
/// ``DNSMessage/edns`` becomes an OPT record at the end of the additional section, carrying the
/// upper 8 bits of a 12-bit RCODE (RFC 6891 §6.1.3); without it, only the low 4 bits are sent.
/// Counts are taken from the arrays; sections longer than 65,535 entries are a programming error.
public struct DNSMessageEncoder {
    /// Whether to compress names with pointers.
    public var compressNames: Bool

    private var out: [UInt8] = []
    private var suffixes: [DNSName: Int] = [:]

    public init(compressNames: Bool = true) { self.compressNames = compressNames }

    /// The wire form of `message`.
    public static func encode(_ message: DNSMessage, compressNames: Bool = true) -> [UInt8] {
        var encoder = DNSMessageEncoder(compressNames: compressNames)
        return encoder.encode(message)
    }

    /// The wire form of `message`; the encoder can be reused.
    public mutating func encode(_ message: DNSMessage) -> [UInt8] {
        out = []
        out.reserveCapacity(512)
        suffixes = [:]
        let h = message.header
        u16(h.id)
        var flags = UInt16(h.opcode & 0x0F) << 11 | (h.responseCode.rawValue & 0x000F)
        if h.isResponse { flags |= 0x8000 }
        if h.isAuthoritative { flags |= 0x0400 }
        if h.isTruncated { flags |= 0x0200 }
        if h.recursionDesired { flags |= 0x0100 }
        if h.recursionAvailable { flags |= 0x0080 }
        if h.authenticData { flags |= 0x0020 }
        if h.checkingDisabled { flags |= 0x0010 }
        u16(flags)
        u16(UInt16(message.questions.count))
        u16(UInt16(message.answers.count))
        u16(UInt16(message.authorities.count))
        u16(UInt16(message.additionals.count + (message.edns == nil ? 0 : 1)))
        for q in message.questions {
            name(q.name)
            u16(q.type.rawValue)
            u16(q.recordClass.rawValue)
        }
        for r in message.answers { record(r) }
        for r in message.authorities { record(r) }
        for r in message.additionals { record(r) }
        if let e = message.edns {
            let extended = UInt32(h.responseCode.rawValue >> 4) & 0xFF
            let ttl = extended << 24 | UInt32(e.version) << 16 | (e.dnssecOK ? 0x8000 : 0)
            record(DNSRecord(name: .root, recordClass: DNSClass(rawValue: e.udpPayloadSize), ttl: ttl, data: .opt(e.options)))
        }
        return out
    }

    private mutating func u16(_ v: UInt16) {
        out.append(UInt8(v >> 8))
        out.append(UInt8(v & 0xFF))
    }

    private mutating func u32(_ v: UInt32) {
        u16(UInt16(v >> 16))
        u16(UInt16(v & 0xFFFF))
    }

    private mutating func name(_ n: DNSName) {
        let wire = n.wire
        var i = 0
        while i < wire.count {
            let suffix = DNSName(wire: Array(wire[i...]))
            if compressNames, let target = suffixes[suffix] {
                u16(0xC000 | UInt16(target))
                return
            }
            if compressNames && out.count < 0x4000 && suffixes[suffix] == nil { suffixes[suffix] = out.count }
            let count = Int(wire[i])
            out.append(contentsOf: wire[i...(i + count)])  // length octet and label
            i += count + 1
        }
        out.append(0)
    }

    private mutating func record(_ r: DNSRecord) {
        name(r.name)
        u16(r.type.rawValue)
        u16(r.recordClass.rawValue)
        u32(r.ttl)
        let lengthAt = out.count
        u16(0)
        switch r.data {
        case .a(let a): out.append(contentsOf: a.bytes)
        case .aaaa(let a): out.append(contentsOf: a.bytes)
        case .cname(let n), .ns(let n), .ptr(let n): name(n)
        case .mx(let preference, let exchange):
            u16(preference)
            name(exchange)
        case .txt(let strings):
            for s in strings {
                let s = s.prefix(255)
                out.append(UInt8(s.count))
                out.append(contentsOf: s)
            }
        case .soa(let soa):
            name(soa.mname)
            name(soa.rname)
            for v in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] { u32(v) }
        case .tlsa(let t):
            out.append(contentsOf: [t.usage, t.selector, t.matchingType])
            out.append(contentsOf: t.data)
        case .opt(let bytes), .unknown(_, let bytes):
            out.append(contentsOf: bytes)
        }
        let length = out.count - lengthAt - 2
        out[lengthAt] = UInt8(length >> 8)
        out[lengthAt + 1] = UInt8(length & 0xFF)
    }
}

extension ByteBuffer {
    /// Writes the wire form of `message` (RFC 1035 §4.1) and returns the number of bytes written.
    @discardableResult
    public mutating func writeDNSMessage(_ message: DNSMessage) -> Int {
        writeBytes(DNSMessageEncoder.encode(message))
    }
}
