/// A mailbox name as a client sent it (RFC 9051 §5.1): the decoded `astring`, still in modified
/// UTF-7 unless the session enabled UTF-8 (RFC 6855, IMAP4rev2).
///
/// ```
/// mailbox         = "INBOX" / astring
///                   ; INBOX is case-insensitive.  All case variants of
///                   ; INBOX (e.g., "iNbOx") MUST be interpreted as INBOX
///                   ; not as an astring.
/// ```
public struct MailboxName: Hashable, Sendable, CustomStringConvertible {
    /// The name as sent (after quoting and literals were removed).
    public var wire: String

    /// Creates a name from its wire form.
    public init(_ wire: String) {
        self.wire = wire
    }

    /// `true` for any case of `INBOX`.
    public var isInbox: Bool { wire.utf8.count == 5 && wire.uppercased() == "INBOX" }

    public var description: String { wire }
}
