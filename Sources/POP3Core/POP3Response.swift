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
    /// `true` for a SASL continuation line `+ challenge` (RFC 5034 §4) rather than a status line.
    public var isContinuation = false

    /// `+OK text`.
    public static func ok(_ text: String) -> POP3Response { POP3Response(ok: true, code: nil, text: text) }
    /// `+ challenge`: a SASL continuation (RFC 5034 §4); `challenge` is base64, empty for PLAIN.
    public static func continuation(_ challenge: String = "") -> POP3Response {
        POP3Response(ok: true, code: nil, text: challenge, isContinuation: true)
    }
    /// `-ERR [code] text`.
    public static func err(_ text: String, code: String? = nil) -> POP3Response { POP3Response(ok: false, code: code, text: text) }

    /// The line without CRLF.
    public var description: String {
        if isContinuation { return "+ " + text }
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
