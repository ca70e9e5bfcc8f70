import MailCore
import struct NIOCore.ByteBuffer

/// Assembles server replies from bytes (the client side of RFC 5321 §4.2).
///
/// ```
/// Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF
/// ```
/// Enhanced status codes (RFC 2034) are split off each line when present. A reply is bounded in line
/// length and in line count, so a hostile server cannot make the client buffer without end
/// (OpenSMTPD CVE-2020-8794 shape). Pull-based: ``append(_:)``, then ``next()``.
public struct SMTPReplyParser: Sendable {
    /// A malformed or oversized reply.
    public enum ParseError: Error, Hashable, Sendable {
        /// A line that does not start with three digits and a space or hyphen.
        case malformedLine(String)
        /// Continuation lines with different codes.
        case inconsistentCodes
        /// A line or a reply over the limits.
        case tooLong
    }

    private var buffer = ByteBuffer()
    private var lines: [String] = []
    private var code: Int?
    /// Longest reply line accepted (RFC 5321 §4.5.3.1.5 says 512; we allow slack).
    public var maximumLineLength = 2048
    /// Most lines in one reply.
    public var maximumLines = 256

    /// A parser with no bytes.
    public init() {}

    /// Bytes held but not yet returned as a reply (the STARTTLS response-injection check).
    public var bufferedByteCount: Int { buffer.readableBytes + lines.reduce(0) { $0 + $1.utf8.count } }

    /// Adds bytes read from the server.
    public mutating func append(_ bytes: ByteBuffer) {
        if buffer.readableBytes == 0 { buffer = bytes } else { var b = bytes; buffer.writeBuffer(&b) }
    }

    /// Drops everything buffered.
    public mutating func discardBufferedBytes() {
        buffer.clear()
        lines = []
        code = nil
    }

    /// The next complete reply, `nil` when more bytes are needed, or an error.
    public mutating func next() -> Result<SMTPReply, ParseError>? {
        while let lf = buffer.readableBytesView.firstIndex(of: 0x0A) {
            var end = lf
            if end > buffer.readerIndex, buffer.getInteger(at: end - 1, as: UInt8.self) == 0x0D { end -= 1 }
            let raw = buffer.getBytes(at: buffer.readerIndex, length: end - buffer.readerIndex) ?? []
            buffer.moveReaderIndex(to: lf + 1)
            if raw.count > maximumLineLength { return .failure(.tooLong) }
            let line = String(decoding: raw, as: UTF8.self)
            let u = Array(line.utf8)
            guard u.count >= 3, u[0...2].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  u.count == 3 || u[3] == UInt8(ascii: " ") || u[3] == UInt8(ascii: "-"),
                  let c = Int(String(decoding: u[0...2], as: UTF8.self)), (200...599).contains(c) else {
                return .failure(.malformedLine(String(line.prefix(80))))
            }
            if let code, code != c { return .failure(.inconsistentCodes) }
            code = c
            lines.append(u.count > 4 ? String(decoding: u[4...], as: UTF8.self) : "")
            if lines.count > maximumLines { return .failure(.tooLong) }
            let more = u.count > 3 && u[3] == UInt8(ascii: "-")
            if more { continue }
            defer { lines = []; code = nil }
            if buffer.readableBytes == 0 { buffer.clear() }
            return .success(Self.reply(code: c, lines: lines))
        }
        if buffer.readableBytes > maximumLineLength { return .failure(.tooLong) }
        return nil
    }

    /// Splits an enhanced status code off the lines when every line (or the first) carries one.
    static func reply(code: Int, lines: [String]) -> SMTPReply {
        var enhanced: EnhancedStatusCode?
        var texts = lines
        if let first = lines.first, let space = first.firstIndex(of: " ") ?? (first.isEmpty ? nil : first.endIndex),
           let e = EnhancedStatusCode(first[..<space]), e.statusClass == code / 100 {
            enhanced = e
            texts = lines.map { l in
                let token = l.prefix(while: { $0 != " " })
                if EnhancedStatusCode(token) != nil { return String(l.dropFirst(token.count).drop(while: { $0 == " " })) }
                return l
            }
        }
        return SMTPReply(code: code, enhanced, texts)
    }
}
