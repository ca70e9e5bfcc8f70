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

    /// The items for `attributes`, in order. `message` (CRLF line ends) is required when
    /// ``needsContent(_:)``.
    public static func items(_ attributes: [FetchAttribute], facts: MessageFacts, message: ByteBuffer?) throws(MailboxError) -> [FetchItem] {
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

    static func contentItem(_ attribute: FetchAttribute, _ message: ByteBuffer) throws(MailboxError) -> FetchItem {
        switch attribute {
        case .rfc822: return .section(name: "RFC822", data: message)
        default: return .section(name: "BODY[]", data: message)
        }
    }
}
