import struct NIOCore.ByteBuffer

/// Reads what a POP3 server sends (the client side of RFC 1939 §3): status lines, and on request the
/// dot-terminated multi-line body that follows a `+OK`, unstuffed.
///
/// Pull-based: ``append(_:)``; then ``next()``. Call ``expectMultiLine()`` after a positive status
/// line whose command has a multi-line answer (CAPA, LIST, UIDL, RETR, TOP). Lines are bounded.
public struct POP3ResponseParser: Sendable {
    /// One item from the server.
    public enum Item: Hashable, Sendable {
        /// `+OK …`, `-ERR …` (with response code), or `+ challenge` (SASL).
        case status(POP3Response)
        /// `+ base64` continuation during AUTH (RFC 5034).
        case continuation(String)
        /// One line of a multi-line body, unstuffed, without CRLF.
        case line([UInt8])
        /// The terminating `.` of a multi-line body.
        case end
    }

    /// The server's bytes are not POP3.
    public enum ParseError: Error, Hashable, Sendable {
        case malformedStatus(String)
        case lineTooLong
    }

    private var buffer = ByteBuffer()
    private var inMultiLine = false
    /// Longest line accepted (RFC 2449 §4: 512 for status lines; message lines can be 998+).
    public var maximumLineLength = 65536

    /// An empty parser.
    public init() {}

    /// Bytes held but not returned (STLS response-injection check).
    public var bufferedByteCount: Int { buffer.readableBytes }

    /// Adds bytes.
    public mutating func append(_ bytes: ByteBuffer) {
        if buffer.readableBytes == 0 { buffer = bytes } else { var b = bytes; buffer.writeBuffer(&b) }
    }

    /// Drops buffered bytes.
    public mutating func discardBufferedBytes() { buffer.clear() }

    /// The next status line's body follows as lines until `.`.
    public mutating func expectMultiLine() { inMultiLine = true }

    /// The next item, `nil` for "need more bytes", or an error.
    public mutating func next() -> Result<Item, ParseError>? {
        guard let lf = buffer.readableBytesView.firstIndex(of: 0x0A) else {
            if buffer.readableBytes > maximumLineLength { return .failure(.lineTooLong) }
            return nil
        }
        var end = lf
        if end > buffer.readerIndex, buffer.getInteger(at: end - 1, as: UInt8.self) == 0x0D { end -= 1 }
        var line = buffer.getBytes(at: buffer.readerIndex, length: end - buffer.readerIndex) ?? []
        buffer.moveReaderIndex(to: lf + 1)
        if buffer.readableBytes == 0 { buffer.clear() }
        if line.count > maximumLineLength { return .failure(.lineTooLong) }
        if inMultiLine {
            if line == [UInt8(ascii: ".")] {
                inMultiLine = false
                return .success(.end)
            }
            if line.first == UInt8(ascii: ".") { line.removeFirst() }
            return .success(.line(line))
        }
        let text = String(decoding: line, as: UTF8.self)
        if text.hasPrefix("+OK") {
            return .success(.status(.ok(String(text.dropFirst(3).drop(while: { $0 == " " })))))
        }
        if text.hasPrefix("-ERR") {
            var rest = text.dropFirst(4).drop(while: { $0 == " " })
            var code: String?
            if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
                code = String(rest[rest.index(after: rest.startIndex)..<close])
                rest = rest[rest.index(after: close)...].drop(while: { $0 == " " })
            }
            return .success(.status(.err(String(rest), code: code)))
        }
        if text == "+" || text.hasPrefix("+ ") {
            return .success(.continuation(String(text.dropFirst(text == "+" ? 1 : 2))))
        }
        return .failure(.malformedStatus(String(text.prefix(80))))
    }
}
