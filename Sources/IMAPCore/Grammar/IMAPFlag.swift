/// A message flag: a system flag (`\Seen`, …) or a keyword (`$Forwarded`, `NonJunk`).
///
/// ```
/// flag            = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" /
///                   flag-keyword / flag-extension
/// flag-keyword    = "$MDNSent" / "$Forwarded" / "$Junk" / "$NotJunk" / "$Phishing" / atom
/// flag-extension  = "\" atom
/// ```
/// Flags compare case-insensitively (RFC 9051 §2.3.2); ``name`` keeps the spelling first seen.
public struct IMAPFlag: Hashable, Sendable, CustomStringConvertible {
    /// The flag as written, with its backslash for system flags.
    public let name: String
    private let key: String

    /// Creates a flag from its wire form (`\Seen`, `$Forwarded`).
    public init(_ name: String) {
        let lower = name.lowercased()
        switch lower {
        case "\\answered": self.name = "\\Answered"
        case "\\flagged": self.name = "\\Flagged"
        case "\\deleted": self.name = "\\Deleted"
        case "\\seen": self.name = "\\Seen"
        case "\\draft": self.name = "\\Draft"
        case "\\recent": self.name = "\\Recent"
        default: self.name = name
        }
        self.key = lower
    }

    public static let answered = IMAPFlag("\\Answered")
    public static let flagged = IMAPFlag("\\Flagged")
    public static let deleted = IMAPFlag("\\Deleted")
    public static let seen = IMAPFlag("\\Seen")
    public static let draft = IMAPFlag("\\Draft")
    /// `\Recent` (IMAP4rev1 only; never stored, never settable).
    public static let recent = IMAPFlag("\\Recent")

    /// The five flags every mailbox stores (RFC 9051 §2.3.2).
    public static let systemFlags: [IMAPFlag] = [.answered, .flagged, .deleted, .seen, .draft]

    /// `true` for a backslash flag.
    public var isSystem: Bool { name.hasPrefix("\\") }
    /// A `flag-extension` no RFC defines (`\Bogus`; RFC 9051 §2.3.2 reserves them): STORE and
    /// APPEND answer BAD, as Dovecot does. `\Recent` is defined (but cannot be stored).
    public var isUnknownSystemFlag: Bool { isSystem && !Self.systemFlags.contains(self) && self != .recent }

    public static func == (a: IMAPFlag, b: IMAPFlag) -> Bool { a.key == b.key }
    public func hash(into hasher: inout Hasher) { hasher.combine(key) }
    public var description: String { name }
}
