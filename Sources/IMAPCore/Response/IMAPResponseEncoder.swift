import struct NIOCore.ByteBuffer

/// Writes server responses (RFC 9051 §7). Strings are sent as atoms, quoted strings or literals,
/// whichever the bytes allow; 8-bit text is a literal unless UTF-8 is enabled (RFC 6855).
///
/// FETCH bodies too large to hold are streamed: ``beginFetch(sequenceNumber:into:)``,
/// ``writeFetchItem(_:first:into:)``, ``beginStreamedSection(name:size:binary:first:into:)``, then the
/// octets themselves, then ``endFetch(into:)``.
public struct IMAPResponseEncoder: Sendable {
    /// Session options that change the encoding.
    public struct Options: Hashable, Sendable {
        /// `ENABLE UTF8=ACCEPT` or IMAP4rev2: UTF-8 may appear in quoted strings.
        public var utf8: Bool
        public init(utf8: Bool = false) {
            self.utf8 = utf8
        }
    }

    public var options: Options

    /// Creates an encoder.
    public init(options: Options = Options()) {
        self.options = options
    }

    /// Writes one response, CRLF included.
    public func encode(_ response: IMAPResponse, into buffer: inout ByteBuffer) {
        buffer.writeString("* OK not yet implemented\r\n")
    }

    /// Writes `* n FETCH (`.
    public func beginFetch(sequenceNumber: Int, into buffer: inout ByteBuffer) {}

    /// Writes one item, preceded by a space unless `first`.
    public func writeFetchItem(_ item: FetchItem, first: Bool, into buffer: inout ByteBuffer) {}

    /// Writes `name {size}\r\n` (`~{size}` for binary content), preceded by a space unless `first`;
    /// the caller writes exactly `size` octets next.
    public func beginStreamedSection(name: String, size: Int, binary: Bool, first: Bool, into buffer: inout ByteBuffer) {}

    /// Writes `)\r\n`.
    public func endFetch(into buffer: inout ByteBuffer) {}
}
