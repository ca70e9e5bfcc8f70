import MIME
import struct NIOCore.ByteBuffer

/// One message parsed once for FETCH, SEARCH, SORT and THREAD: the MIME tree with, for every part,
/// where its header and body lie in the message, so that sections are slices of the message buffer
/// (no part body is copied).
///
/// Input is one whole message, normally with CRLF line ends (the store converts Maildir's LF files);
/// a bare LF is accepted as a line end for the structure, and octets are always counted as given.
/// Parsing never fails: malformed input gives a best-effort tree (see `MIME`'s diagnostics).
///
/// Numbering of parts (RFC 9051 §6.4.5): the parts of a multipart are numbered from 1; a
/// non-multipart part has one part, 1, its body; the parts of a `message/rfc822` part are those of
/// the message it holds.
///
/// A `message/rfc822` part in base64 or quoted-printable (not allowed by RFC 2046 §5.2.1) is read as
/// Dovecot reads it: its encoded body is parsed as the inner message, so every section stays a slice.
///
/// - SeeAlso: RFC 9051 §6.4.5 (sections), §7.5.2 (BODYSTRUCTURE), RFC 2045, RFC 2046
public struct MessageStructure: Sendable {
    /// One entity of the tree: the message, a body part, or a message inside a `message/*` part.
    public struct Node: Sendable {
        /// The entity's header section (for a body part, its MIME header).
        public var headers: MIMEHeaders
        /// The content type (`text/plain; charset=us-ascii` when absent or invalid).
        public var contentType: ContentType
        /// `Content-Disposition`, when present.
        public var contentDisposition: ContentDisposition?
        /// `Content-Transfer-Encoding` (7bit when absent).
        public var transferEncoding: ContentTransferEncoding
        /// The header section in ``MessageStructure/message``, including the empty line that ends it.
        public var headerRange: Range<Int>
        /// The body in ``MessageStructure/message``.
        public var bodyRange: Range<Int>
        /// Body parts of a multipart; for a `message/*` part, the one entity it holds (for
        /// `message/delivery-status`, one per header block).
        public var children: [Node]

        /// `true` for `multipart/*`.
        public var isMultipart: Bool { contentType.isMultipart }
        /// `true` for a `message/rfc822` or `message/global` part that holds a message.
        public var isEncapsulatedMessage: Bool {
            contentType.type == "message" && (contentType.subtype == "rfc822" || contentType.subtype == "global")
                && children.count == 1
        }
    }

    /// The whole message, as given (the reader index is 0 in every range).
    public let message: ByteBuffer
    /// The message entity.
    public let root: Node

    /// Parses a message.
    /// - Parameters:
    ///   - message: one whole message (its readable bytes).
    ///   - configuration: the MIME parser's limits (depth, parts, header size).
    public init(parsing message: ByteBuffer, configuration: MIMEParser.Configuration = MIMEParser.Configuration()) {
        var message = message
        if message.readerIndex != 0 { message = message.slice() }
        self.message = message
        var configuration = configuration
        configuration.retainsBodies = false
        configuration.checksTransferEncodings = false  // diagnostics are not used here
        let bytes = Array(message.readableBytesView)
        let parsed = MIMEParser(configuration: configuration).parse(bytes)
        self.root = Self.node(parsed.root, in: bytes, offset: 0, configuration: configuration, depth: 0)
    }

    /// Parses a message given as octets.
    public init(parsing bytes: [UInt8], configuration: MIMEParser.Configuration = MIMEParser.Configuration()) {
        self.init(parsing: ByteBuffer(bytes: bytes), configuration: configuration)
    }

    /// Converts a parsed MIME part into a node; `offset` is where `bytes` starts in the message.
    private static func node(_ part: MIMEPart, in bytes: [UInt8], offset: Int, configuration: MIMEParser.Configuration,
                             depth: Int) -> Node {
        let ranges = part.ranges ?? MIMEPart.ByteRanges(header: 0..<0, body: 0..<0)
        var node = Node(headers: part.headers, contentType: part.contentType, contentDisposition: part.contentDisposition,
                        transferEncoding: part.transferEncoding,
                        headerRange: (ranges.header.lowerBound + offset)..<(ranges.header.upperBound + offset),
                        bodyRange: (ranges.body.lowerBound + offset)..<(ranges.body.upperBound + offset), children: [])
        if part.contentType.type == "message", part.children.count == 1, part.children[0].ranges == nil,
           depth < configuration.maximumDepth {
            // A transfer-encoded message/* part: parse the encoded body itself (as Dovecot does).
            let body = Array(bytes[ranges.body])
            var inner = configuration
            inner.maximumDepth = max(0, configuration.maximumDepth - depth - 1)
            let parsed = MIMEParser(configuration: inner).parse(body)
            node.children = [Self.node(parsed.root, in: body, offset: node.bodyRange.lowerBound, configuration: inner, depth: 0)]
            return node
        }
        node.children = part.children.map { Self.node($0, in: bytes, offset: offset, configuration: configuration, depth: depth + 1) }
        return node
    }

    /// The node a part number names, or `nil` when there is no such part. `[]` is the message.
    ///
    /// For each number: in a multipart, the child of that number; in a `message/rfc822` part, the same
    /// number inside the message it holds; in any other part only `1`, the part itself.
    /// - SeeAlso: RFC 9051 §6.4.5
    public func node(at part: [Int]) -> Node? {
        var current = root
        var isTop = true
        for number in part {
            guard number >= 1 else { return nil }
            if !isTop, current.isEncapsulatedMessage { current = current.children[0] }
            isTop = false
            if current.isMultipart {
                guard number <= current.children.count else { return nil }
                current = current.children[number - 1]
            } else if number != 1 {
                return nil
            }
        }
        return current
    }

    /// The octets of `range` in the message, sharing its storage.
    func slice(_ range: Range<Int>) -> ByteBuffer {
        message.getSlice(at: range.lowerBound, length: range.count) ?? ByteBuffer()
    }
}
