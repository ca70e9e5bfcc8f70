/// Something the parser noticed and worked around while reading a message.
///
/// The parser never throws on malformed input: it returns a best-effort ``MIMEMessage`` and a list of
/// these, so that callers can log or show what was repaired.
public struct MIMEDiagnostic: Hashable, Sendable, CustomStringConvertible {
    /// The class of problem.
    public enum Code: String, Hashable, Sendable {
        /// A header line was neither a field, a continuation nor the empty line (RFC 5322 §2.2).
        case malformedHeaderLine
        /// A continuation line came before the first field.
        case continuationWithoutField
        /// The header section exceeded the configured size or field limit; the rest was skipped.
        case headerLimitExceeded
        /// `Content-Type` could not be parsed; `text/plain` was assumed (RFC 2045 §5.2).
        case invalidContentType
        /// A `multipart/*` part had no `boundary` parameter (RFC 2046 §5.1.1).
        case missingBoundary
        /// No delimiter line for the boundary was found in a multipart body.
        case boundaryNotFound
        /// A multipart body ended without its close delimiter.
        case missingCloseDelimiter
        /// Nesting deeper than ``MIMEParser/Configuration/maximumDepth``; the part was kept as a leaf.
        case depthLimitExceeded
        /// More parts than ``MIMEParser/Configuration/maximumParts``; the remaining parts were dropped.
        case partLimitExceeded
        /// An unknown `Content-Transfer-Encoding`; the body was taken as is (RFC 2045 §6.4).
        case unknownTransferEncoding
        /// A base64 body contained characters outside the alphabet or bad padding.
        case invalidBase64
        /// A quoted-printable body contained an invalid `=` escape.
        case invalidQuotedPrintable
        /// A charset name that iconv does not know; bytes were decoded as UTF-8 with replacement.
        case unknownCharset
        /// Bytes that are invalid in the declared charset were replaced by U+FFFD.
        case invalidCharacters
    }

    /// The class of problem.
    public var code: Code
    /// Human-readable detail.
    public var detail: String
    /// Where: child indexes from the root (`[]` is the root part, `[1, 0]` the first child of the second child).
    public var path: [Int]

    /// Creates a diagnostic.
    public init(_ code: Code, _ detail: String, path: [Int] = []) {
        self.code = code
        self.detail = detail
        self.path = path
    }

    /// `code at path: detail`.
    public var description: String {
        let where_ = path.isEmpty ? "root" : path.map(String.init).joined(separator: ".")
        return "\(code.rawValue) at \(where_): \(detail)"
    }
}
