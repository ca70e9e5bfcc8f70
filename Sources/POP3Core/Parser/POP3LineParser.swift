import struct NIOCore.ByteBuffer

/// Frames POP3 client input into lines (LF-terminated, a CR before the LF removed).
///
/// Pull-based: ``append(_:)``, then ``next()`` until `nil`. Lines longer than the limit (RFC 2449 §4:
/// 255 octets for commands; longer for an AUTH exchange) are reported once and skipped to their end.
/// ``bufferedByteCount`` exposes plaintext pipelined behind STLS (RFC 2595 §4).
public struct POP3LineParser: Sendable {
    /// One framed line.
    public enum Item: Hashable, Sendable {
        /// A line without its line end.
        case line([UInt8])
        /// A line over the limit was skipped.
        case lineTooLong
    }

    private var buffer = ByteBuffer()
    private var discarding = false
    /// Longest line accepted, including CRLF.
    public var maximumLineLength: Int

    /// Creates a parser. 255 is RFC 2449's command limit; AUTH PLAIN responses may need more, so the
    /// default leaves room for them.
    public init(maximumLineLength: Int = 2048) { self.maximumLineLength = maximumLineLength }

    /// Bytes held but not yet returned.
    public var bufferedByteCount: Int { buffer.readableBytes }

    /// Adds bytes read from the connection.
    public mutating func append(_ bytes: ByteBuffer) {
        if buffer.readableBytes == 0 { buffer = bytes } else { var b = bytes; buffer.writeBuffer(&b) }
    }

    /// Drops everything buffered.
    public mutating func discardBufferedBytes() {
        buffer.clear()
        discarding = false
    }

    /// The next line, or `nil` when more bytes are needed.
    public mutating func next() -> Item? {
        let item = nextLine()
        // An idle session keeps no read buffer.
        if item == nil && buffer.readableBytes == 0 && buffer.capacity > 0 { buffer = ByteBuffer() }
        return item
    }

    private mutating func nextLine() -> Item? {
        while true {
            let lf = buffer.readableBytesView.firstIndex(of: 0x0A)
            if discarding {
                guard let lf else { buffer.clear(); return nil }
                buffer.moveReaderIndex(to: lf + 1)
                discarding = false
                continue
            }
            guard let lf else {
                if buffer.readableBytes > maximumLineLength {
                    buffer.clear()
                    discarding = true
                    return .lineTooLong
                }
                return nil
            }
            var end = lf
            if end > buffer.readerIndex, buffer.getInteger(at: end - 1, as: UInt8.self) == 0x0D { end -= 1 }
            let length = end - buffer.readerIndex
            let line = buffer.getBytes(at: buffer.readerIndex, length: length) ?? []
            buffer.moveReaderIndex(to: lf + 1)
            if buffer.readableBytes == 0 { buffer.clear() }
            if length + 2 > maximumLineLength { return .lineTooLong }
            return .line(line)
        }
    }
}
