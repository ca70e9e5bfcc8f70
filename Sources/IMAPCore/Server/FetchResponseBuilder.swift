import struct NIOCore.ByteBuffer

/// What FETCH reports about a message without reading it.
public struct MessageFacts: Hashable, Sendable {
    public var uid: UInt32
    public var flags: [IMAPFlag]
    /// RFC822.SIZE: octets with CRLF line ends.
    public var size: Int
    /// INTERNALDATE (a store may leave it at the epoch when the FETCH does not ask for it).
    public var internalDate: IMAPDateTime
    public var modSeq: UInt64

    public init(uid: UInt32, flags: [IMAPFlag], size: Int, internalDate: IMAPDateTime, modSeq: UInt64) {
        self.uid = uid
        self.flags = flags
        self.size = size
        self.internalDate = internalDate
        self.modSeq = modSeq
    }
}

/// Turns FETCH data items into response items for one message (RFC 9051 §6.4.5, §7.5.2).
///
/// ENVELOPE, BODY and BODYSTRUCTURE depend only on the message's octets, which never change for a UID:
/// their wire form (without UTF-8) can be cached by the store (``cacheRecord(_:)``, ``cachedItems(_:_:)``),
/// so a second header fetch reads no file.
public enum FetchResponseBuilder {
    /// The items whose wire form can be cached.
    public static func isCacheable(_ a: FetchAttribute) -> Bool {
        switch a {
        case .envelope, .bodyStructure: true
        default: false
        }
    }

    private static func tag(_ a: FetchAttribute) -> UInt8? {
        switch a {
        case .envelope: UInt8(ascii: "E")
        case .bodyStructure(let extensible): extensible ? UInt8(ascii: "S") : UInt8(ascii: "B")
        default: nil
        }
    }

    /// The cache record of a parsed message: ENVELOPE, BODY and BODYSTRUCTURE in wire form, each as
    /// a tag octet, a 4-octet big-endian length and the octets.
    public static func cacheRecord(_ m: MessageStructure) -> [UInt8] {
        let encoder = IMAPResponseEncoder()
        var out: [UInt8] = []
        let structure = m.bodyStructure
        for (t, item) in [(UInt8(ascii: "E"), FetchItem.envelope(m.envelope)),
                          (UInt8(ascii: "B"), .bodyStructure(structure, extensible: false)),
                          (UInt8(ascii: "S"), .bodyStructure(structure, extensible: true))] {
            var b = ByteBuffer()
            encoder.writeFetchItem(item, first: true, into: &b)
            let n = UInt32(b.readableBytes)
            out.append(t)
            out += [UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)]
            out += b.readableBytesView
        }
        return out
    }

    /// The cached wire form of `attribute` in `record`, or `nil`.
    public static func cachedItem(_ attribute: FetchAttribute, in record: [UInt8]) -> FetchItem? {
        guard let want = tag(attribute) else { return nil }
        var i = 0
        while i + 5 <= record.count {
            let n = Int(record[i + 1]) << 24 | Int(record[i + 2]) << 16 | Int(record[i + 3]) << 8 | Int(record[i + 4])
            guard i + 5 + n <= record.count else { return nil }
            if record[i] == want { return .encoded(ByteBuffer(bytes: record[(i + 5)..<(i + 5 + n)])) }
            i += 5 + n
        }
        return nil
    }

    /// `true` when an item needs the message's octets.
    public static func needsContent(_ attributes: [FetchAttribute]) -> Bool {
        attributes.contains { a in
            switch a {
            case .uid, .flags, .internalDate, .rfc822Size, .modSeq: false
            default: true
            }
        }
    }

    /// `true` when fetching sets `\Seen` (a non-PEEK body, RFC822, RFC822.TEXT).
    public static func setsSeen(_ attributes: [FetchAttribute]) -> Bool {
        attributes.contains { a in
            switch a {
            case .rfc822, .rfc822Text: true
            case .bodySection(_, _, let peek), .binary(_, _, let peek): !peek
            default: false
            }
        }
    }

    /// `true` when every item that needs the message can come from a cache record.
    public static func cacheSuffices(_ attributes: [FetchAttribute]) -> Bool {
        attributes.allSatisfy { a in
            switch a {
            case .uid, .flags, .internalDate, .rfc822Size, .modSeq, .envelope, .bodyStructure: true
            default: false
            }
        }
    }

    /// `true` when an item needs the message's MIME structure, not only its octets (`BODY[]`,
    /// `BODY.PEEK[]<p>` and `RFC822` are sent as they are stored, without parsing).
    public static func needsStructure(_ attributes: [FetchAttribute]) -> Bool {
        attributes.contains { a in
            switch a {
            case .uid, .flags, .internalDate, .rfc822Size, .modSeq, .rfc822: false
            case .bodySection(let section, _, _): section != .complete
            default: true
            }
        }
    }

    /// The items for `attributes`, in order. `content` (the message with CRLF line ends) is required
    /// when ``needsContent(_:)``; it is parsed only when ``needsStructure(_:)``. `seenWasSet`: this fetch
    /// set `\Seen`, so the new FLAGS are reported even if not asked for (RFC 9051 §6.4.5). Returns the
    /// cache record made while parsing, if any.
    public static func items(_ attributes: [FetchAttribute], facts: MessageFacts, content: ByteBuffer?,
                             cached: [UInt8]? = nil, seenWasSet: Bool = false) throws(MailboxError) -> (items: [FetchItem], record: [UInt8]?) {
        var structure: MessageStructure?
        var record: [UInt8]?
        var out: [FetchItem] = []
        out.reserveCapacity(attributes.count)
        for a in attributes {
            switch a {
            case .uid: out.append(.uid(facts.uid))
            case .flags: out.append(.flags(facts.flags))
            case .internalDate: out.append(.internalDate(facts.internalDate))
            case .rfc822Size: out.append(.rfc822Size(facts.size))
            case .modSeq: out.append(.modSeq(facts.modSeq))
            default:
                if let r = cached ?? record, let item = cachedItem(a, in: r) {
                    out.append(item)
                    continue
                }
                // The store skips reading a message only when its cache record covers every item.
                guard let content else { throw .unavailable }
                switch a {
                case .rfc822:
                    out.append(.section(name: "RFC822", data: content))
                case .bodySection(let section, let partial, _) where section == .complete:
                    out.append(.section(name: "BODY[]\(partial.map { "<\($0.offset)>" } ?? "")", data: slice(content, partial)))
                default:
                    if structure == nil { structure = MessageStructure(parsing: content) }
                    if isCacheable(a), let m = structure {
                        // Encoded once: sent now and kept for the next fetch.
                        let r = cacheRecord(m)
                        record = r
                        if let item = cachedItem(a, in: r) {
                            out.append(item)
                            continue
                        }
                    }
                    out.append(try contentItem(a, structure!))
                }
            }
        }
        if seenWasSet, !attributes.contains(.flags) { out.append(.flags(facts.flags)) }
        return (out, record)
    }

    /// `<offset.length>` of the whole message (RFC 9051 §6.4.5: past the end is an empty string).
    static func slice(_ message: ByteBuffer, _ partial: Partial?) -> ByteBuffer {
        guard let partial else { return message }
        let size = UInt64(message.readableBytes)
        guard partial.offset < size else { return ByteBuffer() }
        let length = Int(min(partial.length, size - partial.offset))
        return message.getSlice(at: message.readerIndex + Int(partial.offset), length: length) ?? ByteBuffer()
    }

    static func contentItem(_ attribute: FetchAttribute, _ m: MessageStructure) throws(MailboxError) -> FetchItem {
        switch attribute {
        case .envelope: return .envelope(m.envelope)
        case .bodyStructure(let extensible): return .bodyStructure(m.bodyStructure, extensible: extensible)
        case .rfc822: return .section(name: "RFC822", data: m.rfc822)
        case .rfc822Header: return .section(name: "RFC822.HEADER", data: m.rfc822Header)
        case .rfc822Text: return .section(name: "RFC822.TEXT", data: m.rfc822Text)
        case .bodySection(let section, let partial, _):
            return .section(name: "BODY[\(name(of: section))]\(partial.map { "<\($0.offset)>" } ?? "")",
                            data: m.section(section, partial: partial))
        case .binary(let part, let partial, _):
            do {
                return .section(name: "BINARY[\(part.map(String.init).joined(separator: "."))]\(partial.map { "<\($0.offset)>" } ?? "")",
                                data: try m.binary(part: part, partial: partial))
            } catch {
                throw .unknownTransferEncoding
            }
        case .binarySize(let part):
            do { return .binarySize(part: part, size: try m.binarySize(part: part)) } catch { throw .unknownTransferEncoding }
        case .uid, .flags, .internalDate, .rfc822Size, .modSeq:
            preconditionFailure("\(attribute) needs no content")
        }
    }

    /// The section as it is echoed in the response (RFC 9051 §7.5.2: `BODY[1.HEADER.FIELDS (A B)]`).
    public static func name(of section: SectionSpecifier) -> String {
        var parts = section.part.map(String.init)
        switch section.kind {
        case .complete: break
        case .header: parts.append("HEADER")
        case .headerFields(let names): parts.append("HEADER.FIELDS (\(names.map { $0.uppercased() }.joined(separator: " ")))")
        case .headerFieldsNot(let names): parts.append("HEADER.FIELDS.NOT (\(names.map { $0.uppercased() }.joined(separator: " ")))")
        case .text: parts.append("TEXT")
        case .mime: parts.append("MIME")
        }
        return parts.joined(separator: ".")
    }
}
