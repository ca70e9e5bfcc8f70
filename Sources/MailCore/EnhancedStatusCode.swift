/// An enhanced mail system status code, `class.subject.detail`.
///
/// - SeeAlso: RFC 3463 §2, RFC 2034 (ENHANCEDSTATUSCODES), RFC 5248 (registry)
public struct EnhancedStatusCode: Hashable, Sendable, CustomStringConvertible {
    /// 2 = success, 4 = persistent transient failure, 5 = permanent failure.
    public var statusClass: Int
    /// The subject (0 other, 1 addressing, 2 mailbox, 3 mail system, 4 network/routing,
    /// 5 protocol, 6 content, 7 security/policy).
    public var subject: Int
    /// The detail within the subject.
    public var detail: Int

    /// Creates a status code from its three numbers.
    public init(_ statusClass: Int, _ subject: Int, _ detail: Int) {
        self.statusClass = statusClass
        self.subject = subject
        self.detail = detail
    }

    /// The code as written on the wire, e.g. `5.1.1`.
    public var description: String { "\(statusClass).\(subject).\(detail)" }

    /// Parses `class.subject.detail` (RFC 3463 §2: class 2/4/5, subject 1–3 digits, detail 1–3 digits).
    public init?(_ text: Substring) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3,
              parts.allSatisfy({ (1...3).contains($0.count) && $0.allSatisfy(\.isASCIIDigit) }),
              let c = Int(parts[0]), [2, 4, 5].contains(c), parts[0].count == 1,
              let s = Int(parts[1]), let d = Int(parts[2])
        else { return nil }
        self.init(c, s, d)
    }
}

extension Character {
    @usableFromInline var isASCIIDigit: Bool { asciiValue.map { $0 >= 0x30 && $0 <= 0x39 } ?? false }
}
