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

    /// Canonicalises `content` (any mix of CRLF, LF and CR line ends). Runs of ordinary octets are
    /// copied whole; only bare line ends are rewritten.
    public init(_ content: ByteBuffer) {
        let (out, eight, longest) = content.withUnsafeReadableBytes { raw -> (ByteBuffer, Bool, Int) in
            var out = ByteBuffer()
            out.reserveCapacity(raw.count + raw.count / 32 + 2)
            var high: UInt8 = 0
            var longest = 0
            var lineStart = 0
            var spanStart = 0
            var endsWithLineEnd = false
            var i = 0
            let n = raw.count
            while i < n {
                let b = raw[i]
                high |= b
                if b == 0x0D && i + 1 < n && raw[i + 1] == 0x0A {  // CRLF: keep as is
                    longest = max(longest, i - lineStart)
                    i += 2
                    lineStart = i
                    endsWithLineEnd = true
                    continue
                }
                if b == 0x0D || b == 0x0A {  // a bare CR or LF becomes CRLF
                    longest = max(longest, i - lineStart)
                    out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[spanStart..<i]))
                    out.writeStaticString("\r\n")
                    i += 1
                    spanStart = i
                    lineStart = i
                    endsWithLineEnd = true
                    continue
                }
                endsWithLineEnd = false
                i += 1
            }
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[spanStart..<n]))
            if !endsWithLineEnd {
                longest = max(longest, n - lineStart)
                out.writeStaticString("\r\n")
            }
            return (out, high & 0x80 != 0, longest)
        }
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
