import struct NIOCore.ByteBuffer

/// What FETCH reports about a message without reading it.
public struct MessageFacts: Hashable, Sendable {
    public var uid: UInt32
    public var flags: [IMAPFlag]
    /// RFC822.SIZE: octets with CRLF line ends.
    public var size: Int
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
public enum FetchResponseBuilder {
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

    /// The items for `attributes`, in order. `message` is required when ``needsContent(_:)``.
    public static func items(_ attributes: [FetchAttribute], facts: MessageFacts, message: MessageStructure?) throws(MailboxError) -> [FetchItem] {
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
                guard let message else { preconditionFailure("FETCH \(a) without the message") }
                out.append(try contentItem(a, message))
            }
        }
        return out
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
