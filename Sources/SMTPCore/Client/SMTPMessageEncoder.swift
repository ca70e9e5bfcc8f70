import struct NIOCore.ByteBuffer

/// Prepares message content for the wire: every line end becomes CRLF (a bare CR or LF never reaches
/// the wire), lines are checked against the 998-octet limit (RFC 5321 §4.5.3.1.6), 8-bit content is
/// detected, and for DATA the content is dot-stuffed and terminated (RFC 5321 §4.5.2).
public struct SMTPMessageEncoder: Sendable {
    /// Content in canonical CRLF form, ending with CRLF.
    public let canonical: ByteBuffer
    /// Any octet ≥ 0x80.
    public let hasEightBit: Bool
    /// The longest line, without its CRLF.
    public let longestLine: Int

    /// Canonicalises `content` (any mix of CRLF, LF and CR line ends).
    public init(_ content: ByteBuffer) {
        var out = ByteBuffer()
        out.reserveCapacity(content.readableBytes + content.readableBytes / 32 + 2)
        var eight = false
        var longest = 0
        var line = 0
        var previousCR = false
        content.withUnsafeReadableBytes { raw in
            for b in raw {
                if b == 0x0A {
                    if !previousCR { out.writeInteger(UInt8(0x0D)) }
                    out.writeInteger(UInt8(0x0A))
                    previousCR = false
                    longest = max(longest, line)
                    line = 0
                    continue
                }
                if previousCR {
                    out.writeInteger(UInt8(0x0A))  // bare CR → CRLF
                    longest = max(longest, line)
                    line = 0
                }
                previousCR = b == 0x0D
                if b == 0x0D {
                    out.writeInteger(b)
                    continue
                }
                if b >= 0x80 { eight = true }
                out.writeInteger(b)
                line += 1
            }
        }
        if previousCR {
            out.writeInteger(UInt8(0x0A))
        } else if line > 0 || out.readableBytes == 0 {
            out.writeStaticString("\r\n")
        }
        longest = max(longest, line)
        canonical = out
        hasEightBit = eight
        longestLine = longest
    }

    /// Octets as sent with BDAT (and counted for SIZE).
    public var size: Int { canonical.readableBytes }

    /// The DATA body: dot-stuffed, followed by `.` CRLF.
    public func dataEncoding() -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity(canonical.readableBytes + canonical.readableBytes / 64 + 5)
        var atLineStart = true
        canonical.withUnsafeReadableBytes { raw in
            var start = 0
            for i in 0..<raw.count {
                if atLineStart && raw[i] == UInt8(ascii: ".") {
                    out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[start..<i]))
                    out.writeStaticString(".")
                    start = i
                }
                atLineStart = raw[i] == 0x0A
            }
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[start..<raw.count]))
        }
        out.writeStaticString(".\r\n")
        return out
    }
}
