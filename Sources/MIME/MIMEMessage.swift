/// A parsed message: the MIME tree, the top-level header fields decoded, and what the parser repaired.
///
/// - SeeAlso: RFC 5322 §3.6 (fields), RFC 2045–2047, RFC 2183, RFC 2231
public struct MIMEMessage: Hashable, Sendable {
    /// The root part; its headers are the message headers.
    public var root: MIMEPart
    /// Problems found and worked around while parsing (empty for well-formed input).
    public var diagnostics: [MIMEDiagnostic]

    /// Creates a message from a parsed tree.
    public init(root: MIMEPart, diagnostics: [MIMEDiagnostic] = []) {
        self.root = root
        self.diagnostics = diagnostics
    }

    /// Parses `bytes` with the default limits (a shorthand for ``MIMEParser/parse(_:)-([UInt8])``).
    public init(parsing bytes: [UInt8]) {
        self = MIMEParser().parse(bytes)
    }

    /// The message header section.
    public var headers: MIMEHeaders { root.headers }
    /// `Subject`, encoded words decoded (RFC 5322 §3.6.5, RFC 2047).
    public var subject: String? { headers.decoded("Subject") }
    /// `From` mailboxes (RFC 5322 §3.6.2).
    public var from: [MailboxAddress] { headers.addresses("From") }
    /// `Sender` (RFC 5322 §3.6.2).
    public var sender: MailboxAddress? { headers.addresses("Sender").first }
    /// `Reply-To` mailboxes (RFC 5322 §3.6.2).
    public var replyTo: [MailboxAddress] { headers.addresses("Reply-To") }
    /// `To` mailboxes (RFC 5322 §3.6.3).
    public var to: [MailboxAddress] { headers.addresses("To") }
    /// `Cc` mailboxes (RFC 5322 §3.6.3).
    public var cc: [MailboxAddress] { headers.addresses("Cc") }
    /// `Bcc` mailboxes, when the field is present (RFC 5322 §3.6.3).
    public var bcc: [MailboxAddress] { headers.addresses("Bcc") }
    /// `Date` as written (RFC 5322 §3.6.1).
    public var date: String? { headers["Date"] }
    /// `Message-ID` as written, angle brackets included (RFC 5322 §3.6.4).
    public var messageID: String? { headers["Message-ID"] }

    /// Every part, depth first (the root first).
    public var allParts: [MIMEPart] { root.walk() }

    /// The first `text/plain` part that is not an attachment, as a string.
    public var textBody: String? { firstText(subtype: "plain") }
    /// The first `text/html` part that is not an attachment, as a string.
    public var htmlBody: String? { firstText(subtype: "html") }

    /// Leaf parts that are attachments (see ``MIMEPart/isAttachment``), depth first.
    public var attachments: [MIMEPart] { allParts.filter(\.isAttachment) }

    private func firstText(subtype: String) -> String? {
        allParts.first { $0.contentType.type == "text" && $0.contentType.subtype == subtype && !$0.isAttachment && $0.children.isEmpty }?.text
    }
}
