import MailCore
import struct NIOCore.ByteBuffer

/// An SMTP reply: a three-digit code, an optional enhanced status code and one or more text lines.
///
/// - SeeAlso: RFC 5321 §4.2, RFC 2034 §4 (enhanced code on every line)
public struct SMTPReply: Hashable, Sendable, CustomStringConvertible {
    /// The reply code, 200…599.
    public var code: Int
    /// The enhanced status code written after the reply code on every line, if any.
    public var enhancedCode: EnhancedStatusCode?
    /// The text lines (at least one, may be empty strings). Never contain CR or LF.
    public var lines: [String]

    /// Creates a reply.
    public init(code: Int, _ enhanced: EnhancedStatusCode?, _ lines: [String]) {
        precondition((200...599).contains(code), "SMTP reply code \(code) out of range")
        self.code = code
        self.enhancedCode = enhanced
        // Filter scalars, not Characters: "\r\n" is one Character, equal to neither "\r" nor "\n".
        self.lines = lines.isEmpty ? [""] : lines.map { line in
            String(String.UnicodeScalarView(line.unicodeScalars.filter { $0 != "\r" && $0 != "\n" }))
        }
    }

    /// Creates a single-line reply.
    public init(code: Int, _ enhanced: EnhancedStatusCode?, _ text: String) {
        self.init(code: code, enhanced, [text])
    }

    /// 2xx.
    public var isPositive: Bool { code < 300 }
    /// 4xx.
    public var isTransient: Bool { (400..<500).contains(code) }
    /// 5xx.
    public var isPermanent: Bool { code >= 500 }

    /// The reply as text without the final CRLF, lines joined by `\n` (for logs and tests).
    public var description: String {
        encodedLines().joined(separator: "\n")
    }

    /// The wire lines without CRLF: `250-first`, …, `250 last`.
    public func encodedLines() -> [String] {
        var out: [String] = []
        for (i, line) in lines.enumerated() {
            let sep = i == lines.count - 1 ? " " : "-"
            var text = "\(code)\(sep)"
            if let e = enhancedCode { text += line.isEmpty ? "\(e)" : "\(e) \(line)" } else { text += line }
            out.append(text)
        }
        return out
    }
}

extension ByteBuffer {
    /// Writes `reply` in wire form, each line ending in CRLF; returns the number of bytes written.
    @discardableResult
    public mutating func writeSMTPReply(_ reply: SMTPReply) -> Int {
        var n = 0
        for line in reply.encodedLines() {
            n += writeString(line)
            n += writeStaticString("\r\n")
        }
        return n
    }
}
