import struct NIOCore.ByteBuffer

/// A POP3 status line: `+OK text` or `-ERR [CODE] text`.
///
/// - SeeAlso: RFC 1939 §3, RFC 2449 §8 (response codes), RFC 3206 (SYS, AUTH)
public struct POP3Response: Hashable, Sendable, CustomStringConvertible {
    /// `true` for `+OK`.
    public var ok: Bool
    /// An extended response code (`IN-USE`, `AUTH`, `SYS/TEMP`, `SYS/PERM`, `LOGIN-DELAY`).
    public var code: String?
    /// The text after the status.
    public var text: String

    /// `+OK text`.
    public static func ok(_ text: String) -> POP3Response { POP3Response(ok: true, code: nil, text: text) }
    /// `-ERR [code] text`.
    public static func err(_ text: String, code: String? = nil) -> POP3Response { POP3Response(ok: false, code: code, text: text) }

    /// The line without CRLF.
    public var description: String {
        var s = ok ? "+OK" : "-ERR"
        if let code { s += " [\(code)]" }
        if !text.isEmpty { s += " " + text }
        return s
    }
}

extension ByteBuffer {
    /// Writes a status line with CRLF.
    public mutating func writePOP3Response(_ r: POP3Response) {
        writeString(r.description)
        writeStaticString("\r\n")
    }

    /// Writes a multi-line body (already free of CR/LF per line): each line dot-stuffed, then `.`.
    public mutating func writePOP3MultiLine(_ lines: [String]) {
        for l in lines {
            if l.hasPrefix(".") { writeStaticString(".") }
            writeString(l)
            writeStaticString("\r\n")
        }
        writeStaticString(".\r\n")
    }
}
