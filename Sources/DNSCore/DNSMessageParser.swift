import struct NIOCore.ByteBuffer

/// Parses DNS messages (RFC 1035 §4.1) from untrusted octets.
///
/// Hardening: every read is bounds-checked; compression pointers must point strictly before the
/// start of the run of labels that contains them (so they can neither point forward nor loop, and
/// decompression ends after at most one jump per octet); names are limited to 255 octets and
/// 128 labels; RDATA must fit its RDLENGTH exactly; record counts cost at least one octet each so a
/// huge count ends in ``DNSParseError/truncated``. Unknown record types are kept as raw octets.
/// - SeeAlso: RFC 1035 §4.1, §4.1.4; RFC 3597 §4, §5; RFC 6891 §6.1
public enum DNSMessageParser {
    /// Parses one whole message (a UDP payload, or a TCP message without its length prefix).
    public static func parse(_ bytes: [UInt8]) throws(DNSParseError) -> DNSMessage {
        var reader = Reader(bytes: bytes)
        return try reader.message()
    }

    /// Parses the readable bytes of `buffer` as one whole message; the buffer is not consumed.
    public static func parse(_ buffer: ByteBuffer) throws(DNSParseError) -> DNSMessage {
        try parse(Array(buffer.readableBytesView))
    }

    /// The ID of a message that may not parse, or `nil` when it is shorter than two octets.
    public static func peekID(_ bytes: [UInt8]) -> UInt16? {
        bytes.count >= 2 ? UInt16(bytes[0]) << 8 | UInt16(bytes[1]) : nil
    }

    struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func u8() throws(DNSParseError) -> UInt8 {
            guard offset < bytes.count else { throw .truncated }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func u16() throws(DNSParseError) -> UInt16 {
            guard bytes.count - offset >= 2 else { throw .truncated }
            defer { offset += 2 }
            return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
        }

        mutating func u32() throws(DNSParseError) -> UInt32 {
            guard bytes.count - offset >= 4 else { throw .truncated }
            defer { offset += 4 }
            return UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16
                | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
        }

        mutating func take(_ n: Int) throws(DNSParseError) -> [UInt8] {
            guard n >= 0, bytes.count - offset >= n else { throw .truncated }
            defer { offset += n }
            return Array(bytes[offset..<(offset + n)])
        }

        /// RFC 1035 §4.1.4: `name = *label (zero-octet / pointer)`; `label = len(1..63) *octet`;
        /// `pointer = 11xxxxxx xxxxxxxx` (14-bit offset from the start of the message).
        mutating func name() throws(DNSParseError) -> DNSName {
            var wire: [UInt8] = []
            var labelCount = 0
            var wireLength = 1
            var position = offset
            var runStart = offset
            var resumeAt: Int? = nil
            while true {
                guard position < bytes.count else { throw .truncated }
                let length = bytes[position]
                switch length & 0xC0 {
                case 0x00:
                    if length == 0 {
                        offset = resumeAt ?? position + 1
                        return DNSName(wire: wire)
                    }
                    let count = Int(length)
                    guard bytes.count - position - 1 >= count else { throw .truncated }
                    wireLength += count + 1
                    guard wireLength <= DNSName.maxWireLength, labelCount < DNSName.maxLabels - 1 else {
                        throw .nameTooLong
                    }
                    if wire.isEmpty { wire.reserveCapacity(64) }
                    wire.append(contentsOf: bytes[position...(position + count)])  // length octet and label
                    labelCount += 1
                    position += count + 1
                case 0xC0:
                    guard bytes.count - position >= 2 else { throw .truncated }
                    let target = Int(length & 0x3F) << 8 | Int(bytes[position + 1])
                    // Strictly before the run that holds this pointer: no forward pointers, no loops.
                    guard target < runStart else { throw .badPointer }
                    if resumeAt == nil { resumeAt = position + 2 }
                    runStart = target
                    position = target
                default:
                    throw .badLabelType
                }
            }
        }

        mutating func question() throws(DNSParseError) -> DNSQuestion {
            let name = try name()
            let type = DNSRecordType(rawValue: try u16())
            let recordClass = DNSClass(rawValue: try u16())
            return DNSQuestion(name: name, type: type, recordClass: recordClass)
        }

        mutating func record() throws(DNSParseError) -> DNSRecord {
            let owner = try name()
            let type = DNSRecordType(rawValue: try u16())
            let recordClass = DNSClass(rawValue: try u16())
            let ttl = try u32()
            let rdlength = Int(try u16())
            guard bytes.count - offset >= rdlength else { throw .rdataOverrun }
            let end = offset + rdlength
            let data = try rdata(type: type, end: end)
            guard offset == end else { throw .badRData(type) }
            return DNSRecord(name: owner, recordClass: recordClass, ttl: ttl, data: data)
        }

        /// A name inside RDATA: it may point anywhere earlier, but its own octets must end by `end`.
        mutating func rdataName(_ type: DNSRecordType, end: Int) throws(DNSParseError) -> DNSName {
            let n = try name()
            guard offset <= end else { throw .badRData(type) }
            return n
        }

        mutating func fixed(_ type: DNSRecordType, end: Int, need: Int) throws(DNSParseError) {
            guard end - offset >= need else { throw .badRData(type) }
        }

        mutating func rdata(type: DNSRecordType, end: Int) throws(DNSParseError) -> DNSRecordData {
            switch type {
            case .a:
                guard end - offset == 4, let a = IPv4Address(bytes: try take(4)) else { throw .badRData(type) }
                return .a(a)
            case .aaaa:
                guard end - offset == 16, let a = IPv6Address(bytes: try take(16)) else { throw .badRData(type) }
                return .aaaa(a)
            case .cname:
                return .cname(try rdataName(type, end: end))
            case .ns:
                return .ns(try rdataName(type, end: end))
            case .ptr:
                return .ptr(try rdataName(type, end: end))
            case .mx:
                try fixed(type, end: end, need: 3)
                let preference = try u16()
                return .mx(preference: preference, exchange: try rdataName(type, end: end))
            case .txt:
                // RFC 1035 §3.3.14: one or more <character-string>, each a length octet and that many octets.
                var strings: [[UInt8]] = []
                while offset < end {
                    let length = Int(try u8())
                    guard end - offset >= length else { throw .badRData(type) }
                    strings.append(try take(length))
                }
                return .txt(strings)
            case .soa:
                let mname = try rdataName(type, end: end)
                let rname = try rdataName(type, end: end)
                try fixed(type, end: end, need: 20)
                return .soa(SOAData(mname: mname, rname: rname, serial: try u32(), refresh: try u32(),
                                    retry: try u32(), expire: try u32(), minimum: try u32()))
            case .tlsa:
                try fixed(type, end: end, need: 3)
                let usage = try u8(), selector = try u8(), matching = try u8()
                return .tlsa(TLSAData(usage: usage, selector: selector, matchingType: matching, data: try take(end - offset)))
            case .opt:
                return .opt(try take(end - offset))
            default:
                return .unknown(type: type, rdata: try take(end - offset))
            }
        }

        mutating func message() throws(DNSParseError) -> DNSMessage {
            let id = try u16()
            let flags = try u16()
            let qdcount = try u16(), ancount = try u16(), nscount = try u16(), arcount = try u16()
            var header = DNSHeader(
                id: id,
                isResponse: flags & 0x8000 != 0,
                opcode: UInt8((flags >> 11) & 0x0F),
                isAuthoritative: flags & 0x0400 != 0,
                isTruncated: flags & 0x0200 != 0,
                recursionDesired: flags & 0x0100 != 0,
                recursionAvailable: flags & 0x0080 != 0,
                authenticData: flags & 0x0020 != 0,
                checkingDisabled: flags & 0x0010 != 0,
                responseCode: DNSResponseCode(rawValue: flags & 0x000F))
            var questions: [DNSQuestion] = []
            for _ in 0..<qdcount { questions.append(try question()) }
            var answers: [DNSRecord] = []
            for _ in 0..<ancount { answers.append(try record()) }
            var authorities: [DNSRecord] = []
            for _ in 0..<nscount { authorities.append(try record()) }
            var additionals: [DNSRecord] = []
            var edns: EDNS? = nil
            for _ in 0..<arcount {
                let r = try record()
                if case .opt(let options) = r.data {
                    guard edns == nil, r.name.isRoot else { throw .badOPT }
                    edns = EDNS(udpPayloadSize: r.recordClass.rawValue, version: UInt8((r.ttl >> 16) & 0xFF),
                                dnssecOK: r.ttl & 0x8000 != 0, options: options)
                    header.responseCode.rawValue |= UInt16(r.ttl >> 24) << 4
                } else {
                    additionals.append(r)
                }
            }
            guard offset == bytes.count else { throw .trailingBytes }
            return DNSMessage(header: header, questions: questions, answers: answers,
                              authorities: authorities, additionals: additionals, edns: edns)
        }
    }
}
