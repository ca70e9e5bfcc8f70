/// The ENVELOPE of a message (RFC 9051 §7.5.2): header fields as the client gets them, undecoded.
///
/// ```
/// envelope        = "(" env-date SP env-subject SP env-from SP
///                   env-sender SP env-reply-to SP env-to SP env-cc SP
///                   env-bcc SP env-in-reply-to SP env-message-id ")"
/// ```
/// Strings are the raw field values with folding removed (encoded words stay encoded; 8-bit bytes
/// stay as they are and are sent as literals unless UTF-8 is enabled). An absent field is `nil`
/// (`NIL`); an empty address list is `[]` (also `NIL` on the wire).
public struct Envelope: Hashable, Sendable {
    public var date: String?
    public var subject: String?
    public var from: [EnvelopeAddress]
    /// Defaults to `from` when absent (RFC 9051 §7.5.2).
    public var sender: [EnvelopeAddress]
    /// Defaults to `from` when absent.
    public var replyTo: [EnvelopeAddress]
    public var to: [EnvelopeAddress]
    public var cc: [EnvelopeAddress]
    public var bcc: [EnvelopeAddress]
    public var inReplyTo: String?
    public var messageID: String?

    /// Creates an envelope.
    public init(date: String? = nil, subject: String? = nil, from: [EnvelopeAddress] = [], sender: [EnvelopeAddress] = [],
                replyTo: [EnvelopeAddress] = [], to: [EnvelopeAddress] = [], cc: [EnvelopeAddress] = [],
                bcc: [EnvelopeAddress] = [], inReplyTo: String? = nil, messageID: String? = nil) {
        self.date = date
        self.subject = subject
        self.from = from
        self.sender = sender
        self.replyTo = replyTo
        self.to = to
        self.cc = cc
        self.bcc = bcc
        self.inReplyTo = inReplyTo
        self.messageID = messageID
    }
}

/// One address of an envelope list (RFC 9051 §7.5.2).
///
/// ```
/// address         = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"
/// ```
/// RFC 5322 groups are encoded as a start marker (`mailbox` = group name, `host` = `nil`) and an end
/// marker (`mailbox` and `host` both `nil`).
public struct EnvelopeAddress: Hashable, Sendable {
    public var name: String?
    public var adl: String?
    public var mailbox: String?
    public var host: String?

    /// Creates an address.
    public init(name: String? = nil, adl: String? = nil, mailbox: String?, host: String?) {
        self.name = name
        self.adl = adl
        self.mailbox = mailbox
        self.host = host
    }
}
