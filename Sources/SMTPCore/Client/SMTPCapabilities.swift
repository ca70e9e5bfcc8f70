/// What a server offered in its EHLO reply.
///
/// - SeeAlso: RFC 5321 §4.1.1.1, RFC 1870, 2920, 3030, 3207, 3461, 4954, 6152, 6531, 2034
public struct SMTPCapabilities: Hashable, Sendable {
    /// The server answered EHLO (not only HELO).
    public var isExtended = false
    /// Keywords, upper case, with their parameters.
    public var keywords: [String: [String]] = [:]

    /// No extensions (after HELO).
    public init() {}

    /// Parses the lines of a 250 EHLO reply (the first line is the greeting name).
    public init(ehloReply: SMTPReply) {
        isExtended = true
        for line in ehloReply.lines.dropFirst() {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let k = parts.first else { continue }
            var key = k.uppercased()
            var params = parts.dropFirst().map(String.init)
            // Some servers write "AUTH=LOGIN PLAIN" (pre-RFC 4954 form).
            if key.hasPrefix("AUTH=") {
                params.insert(String(key.dropFirst(5)), at: 0)
                key = "AUTH"
            }
            if key == "AUTH", let existing = keywords["AUTH"] {
                params = existing + params.filter { p in !existing.contains { $0.uppercased() == p.uppercased() } }
            }
            keywords[key] = params
        }
    }

    /// `true` when `keyword` was offered.
    public func supports(_ keyword: String) -> Bool { keywords[keyword.uppercased()] != nil }

    public var pipelining: Bool { supports("PIPELINING") }
    public var startTLS: Bool { supports("STARTTLS") }
    public var eightBitMIME: Bool { supports("8BITMIME") }
    public var smtpUTF8: Bool { supports("SMTPUTF8") }
    public var chunking: Bool { supports("CHUNKING") }
    public var dsn: Bool { supports("DSN") }
    public var enhancedStatusCodes: Bool { supports("ENHANCEDSTATUSCODES") }
    /// The SIZE limit, `0` for "no fixed limit", `nil` when SIZE is not offered.
    public var sizeLimit: Int? {
        guard let p = keywords["SIZE"] else { return nil }
        return p.first.flatMap { Int($0) } ?? 0
    }
    /// SASL mechanisms, upper case.
    public var authMechanisms: [String] { (keywords["AUTH"] ?? []).map { $0.uppercased() } }
}
