/// A node of a parsed MIME tree: a message, a body part, or an embedded message.
///
/// Leaves keep their body as transfer-encoded octets (``body``); ``decodedBody`` and ``text`` decode it
/// on demand. Multiparts hold their body parts in ``children``; a `message/*` part holds the embedded
/// message as its single child (`message/delivery-status` holds one child per header block).
///
/// - SeeAlso: RFC 2045 (header fields), RFC 2046 §5 (composite types)
public struct MIMEPart: Hashable, Sendable {
    /// The part's header section.
    public var headers: MIMEHeaders
    /// The content type (the RFC 2045 §5.2 default when absent or invalid).
    public var contentType: ContentType
    /// The `Content-Disposition`, when present (RFC 2183).
    public var contentDisposition: ContentDisposition?
    /// The `Content-Transfer-Encoding` (7bit when absent).
    public var transferEncoding: ContentTransferEncoding
    /// The body octets as they appear in the message (still transfer-encoded). Empty for multiparts
    /// and `message/*` parts, whose content is in ``children``.
    public var body: [UInt8]
    /// The size in octets of the part's body as it appears in the message (including children).
    public var encodedSize: Int
    /// Body parts (multipart), or the embedded message (`message/*`).
    public var children: [MIMEPart]
    /// Where the part's header section and body lie in the octets given to ``MIMEParser``; `nil` for
    /// parts made by hand and for parts inside a `message/*` body that had to be transfer-decoded
    /// before it could be parsed (their octets are not in the input).
    public var ranges: ByteRanges?

    /// Offsets of a part in the parsed input.
    public struct ByteRanges: Hashable, Sendable {
        /// The header section, including the empty line that ends it (when there is one).
        public var header: Range<Int>
        /// The body: after the empty line up to the end of the part (for a body part, up to the line
        /// break that belongs to the next delimiter, RFC 2046 §5.1.1).
        public var body: Range<Int>

        /// Creates ranges.
        public init(header: Range<Int>, body: Range<Int>) {
            self.header = header
            self.body = body
        }
    }

    /// Creates a part.
    public init(headers: MIMEHeaders, contentType: ContentType, contentDisposition: ContentDisposition?,
                transferEncoding: ContentTransferEncoding, body: [UInt8], encodedSize: Int, children: [MIMEPart]) {
        self.headers = headers
        self.contentType = contentType
        self.contentDisposition = contentDisposition
        self.transferEncoding = transferEncoding
        self.body = body
        self.encodedSize = encodedSize
        self.children = children
    }

    /// The body with the transfer encoding removed (RFC 2045 §6).
    public var decodedBody: [UInt8] { transferEncoding.decode(body).bytes }

    /// For `text/*` parts, the decoded body converted from its charset to a string (invalid input
    /// becomes U+FFFD); `nil` for other types.
    /// - SeeAlso: RFC 2046 §4.1.2
    public var text: String? {
        guard contentType.type == "text" else { return nil }
        return Charset.decode(decodedBody, charset: contentType.charset).text
    }

    /// The file name: `Content-Disposition`'s `filename`, else `Content-Type`'s `name` (RFC 2183 §2.3,
    /// RFC 2231), surrounding whitespace removed.
    public var filename: String? {
        let f = contentDisposition?.filename ?? contentType[parameter: "name"]
        return f?.trimmingCharacters()
    }

    /// `true` for `Content-Disposition: attachment`, or a leaf that has a file name and is not an
    /// inline text part.
    public var isAttachment: Bool {
        guard children.isEmpty, !contentType.isMultipart else { return false }
        if contentDisposition?.isAttachment == true { return true }
        if filename != nil, contentDisposition?.kind != "inline" || contentType.type != "text" { return true }
        return false
    }

    /// The `Content-ID` without angle brackets (RFC 2392), used by `cid:` URLs in multipart/related.
    public var contentID: String? {
        guard var v = headers["Content-ID"]?.trimmingCharacters() else { return nil }
        if v.hasPrefix("<") { v.removeFirst() }
        if v.hasSuffix(">") { v.removeLast() }
        return v
    }

    /// Clears ``ranges`` here and in every descendant.
    mutating func removeRanges() {
        ranges = nil
        for i in children.indices { children[i].removeRanges() }
    }

    /// This part and all its descendants, depth first, parents before children.
    public func walk() -> [MIMEPart] {
        var out: [MIMEPart] = []
        var stack: [MIMEPart] = [self]
        while let p = stack.popLast() {
            out.append(p)
            stack.append(contentsOf: p.children.reversed())
        }
        return out
    }
}

extension String {
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
