import MIME
import struct NIOCore.ByteBuffer

/// Why a `BINARY[…]` section cannot be given (the server answers `NO [UNKNOWN-CTE]`).
/// - SeeAlso: RFC 3516 §4.3
public enum BinarySectionError: Error, Hashable, Sendable {
    /// The part's `Content-Transfer-Encoding` is not one the server can decode (lower-cased).
    case unknownTransferEncoding(String)
}

extension MessageStructure {
    /// `RFC822.SIZE`: the message's octets.
    public var size: Int { message.readableBytes }

    /// `BODY[section]<partial>` (also `BODY.PEEK`): a slice of the message wherever the section is
    /// contiguous (all but `HEADER.FIELDS`, which is assembled).
    ///
    /// - A part that does not exist, and `HEADER`/`TEXT`/`HEADER.FIELDS` of a part that is not
    ///   `message/rfc822`, give an empty string, as Dovecot answers (RFC 9051 §6.4.5 leaves it open;
    ///   an empty string never breaks a client that expected data).
    /// - `HEADER` includes the empty line that ends the header; `HEADER.FIELDS` gives the matching
    ///   fields as written (folding kept), in message order, and always ends with an empty line.
    /// - `partial` clips: an offset past the end gives an empty string.
    /// - SeeAlso: RFC 9051 §6.4.5, §7.5.2
    public func section(_ section: SectionSpecifier, partial: Partial? = nil) -> ByteBuffer {
        clip(unclippedSection(section), partial)
    }

    /// `RFC822` (= `BODY[]`).
    public var rfc822: ByteBuffer { message }
    /// `RFC822.HEADER` (= `BODY.PEEK[HEADER]`).
    public var rfc822Header: ByteBuffer { slice(root.headerRange) }
    /// `RFC822.TEXT` (= `BODY[TEXT]`).
    public var rfc822Text: ByteBuffer { slice(root.bodyRange) }

    /// `BINARY[part]<partial>` (RFC 3516): the part's body with its transfer encoding removed
    /// (base64, quoted-printable; 7bit, 8bit and binary as they are). A part that does not exist gives
    /// an empty string; a multipart gives its body as it is.
    /// - Throws: ``BinarySectionError/unknownTransferEncoding(_:)`` for any other encoding.
    /// - SeeAlso: RFC 3516 §4.2
    public func binary(part: [Int], partial: Partial? = nil) throws(BinarySectionError) -> ByteBuffer {
        clip(try decodedBody(part: part), partial)
    }

    /// `BINARY.SIZE[part]`: the size of ``binary(part:partial:)`` without a partial.
    /// - SeeAlso: RFC 3516 §4.2
    public func binarySize(part: [Int]) throws(BinarySectionError) -> Int {
        guard let node = node(at: part) else { return 0 }
        switch node.transferEncoding {
        case .sevenBit, .eightBit, .binary: return node.bodyRange.count
        case .other(let name) where !node.isMultipart: throw .unknownTransferEncoding(name)
        default: return try decodedBody(part: part).readableBytes
        }
    }

    private func decodedBody(part: [Int]) throws(BinarySectionError) -> ByteBuffer {
        guard let node = node(at: part) else { return ByteBuffer() }
        let body = slice(node.bodyRange)
        if node.isMultipart { return body }
        switch node.transferEncoding {
        case .sevenBit, .eightBit, .binary:
            return body
        case .base64:
            return ByteBuffer(bytes: MIMEBase64.decode(body.readableBytesView).bytes)
        case .quotedPrintable:
            return ByteBuffer(bytes: QuotedPrintable.decode(body.readableBytesView).bytes)
        case .other(let name):
            throw .unknownTransferEncoding(name)
        }
    }

    private func unclippedSection(_ section: SectionSpecifier) -> ByteBuffer {
        guard let node = node(at: section.part) else { return ByteBuffer() }
        // HEADER, TEXT and HEADER.FIELDS name the message itself or the message in a message/rfc822 part.
        let message: Node?
        if section.part.isEmpty {
            message = node
        } else if node.isEncapsulatedMessage {
            message = node.children[0]
        } else {
            message = nil
        }
        switch section.kind {
        case .complete:
            return section.part.isEmpty ? self.message : slice(node.bodyRange)
        case .mime:
            return section.part.isEmpty ? ByteBuffer() : slice(node.headerRange)
        case .header:
            return message.map { slice($0.headerRange) } ?? ByteBuffer()
        case .text:
            return message.map { slice($0.bodyRange) } ?? ByteBuffer()
        case .headerFields(let names):
            return message.map { headerFields(in: $0.headerRange, names: names, matching: true) } ?? ByteBuffer()
        case .headerFieldsNot(let names):
            return message.map { headerFields(in: $0.headerRange, names: names, matching: false) } ?? ByteBuffer()
        }
    }

    /// The fields of a header section whose names are (or, with `matching` false, are not) in `names`,
    /// each as written, then CRLF. Lines that are not fields are left out.
    func headerFields(in range: Range<Int>, names: [String], matching: Bool) -> ByteBuffer {
        let wanted = Set(names.map { $0.lowercased() })
        var out = ByteBuffer()
        message.withUnsafeReadableBytes { raw in
            var i = range.lowerBound
            var keep = false
            while i < range.upperBound {
                var end = i
                while end < range.upperBound, raw[end] != 0x0A { end += 1 }
                let lineEnd = end < range.upperBound ? end + 1 : end
                var contentEnd = end
                if contentEnd > i, raw[contentEnd - 1] == 0x0D { contentEnd -= 1 }
                if contentEnd == i { break }  // the empty line ending the section
                let first = raw[i]
                if first == 0x20 || first == 0x09 {
                    // A continuation belongs to the field before it.
                } else {
                    var colon = i
                    while colon < contentEnd, raw[colon] != 0x3A { colon += 1 }
                    if colon == contentEnd {
                        keep = false
                    } else {
                        var nameEnd = colon
                        while nameEnd > i, raw[nameEnd - 1] == 0x20 || raw[nameEnd - 1] == 0x09 { nameEnd -= 1 }
                        let name = String(decoding: UnsafeRawBufferPointer(rebasing: raw[i..<nameEnd]), as: UTF8.self).lowercased()
                        keep = wanted.contains(name) == matching
                    }
                }
                if keep { out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[i..<lineEnd])) }
                i = lineEnd
            }
        }
        // A last field without a line end still gets one before the empty line.
        if out.readableBytes > 0, out.getInteger(at: out.writerIndex - 1, as: UInt8.self) != 0x0A {
            out.writeString("\r\n")
        }
        out.writeString("\r\n")
        return out
    }

    private func clip(_ buffer: ByteBuffer, _ partial: Partial?) -> ByteBuffer {
        guard let partial else { return buffer }
        let count = UInt64(buffer.readableBytes)
        guard partial.offset < count else { return ByteBuffer() }
        let length = min(partial.length, count - partial.offset)
        return buffer.getSlice(at: buffer.readerIndex + Int(partial.offset), length: Int(length)) ?? ByteBuffer()
    }
}
