import MailCore

/// A parsed SMTP command.
///
/// - SeeAlso: RFC 5321 §4.1.1, RFC 3030 (BDAT), RFC 3207 (STARTTLS), RFC 4954 (AUTH)
public enum SMTPCommand: Hashable, Sendable {
    /// `EHLO domain / address-literal`
    case ehlo(String)
    /// `HELO domain`
    case helo(String)
    /// `MAIL FROM:<reverse-path> [SP Mail-parameters]`
    case mail(ReversePath, [ESMTPParameter])
    /// `RCPT TO:<forward-path> [SP Rcpt-parameters]`
    case rcpt(ForwardPath, [ESMTPParameter])
    /// `DATA`
    case data
    /// `BDAT chunk-size [SP LAST]`
    case bdat(size: Int, last: Bool)
    /// `RSET`
    case rset
    /// `NOOP [SP String]`
    case noop
    /// `QUIT`
    case quit
    /// `VRFY SP String`
    case vrfy(String)
    /// `EXPN SP String`
    case expn(String)
    /// `HELP [SP String]`
    case help(String?)
    /// `STARTTLS`
    case startTLS
    /// `AUTH mechanism [initial-response]`, kept raw (mechanisms are decided by the state machine).
    case auth(String)

    /// The verb, upper case, for logs.
    public var verb: String {
        switch self {
        case .ehlo: "EHLO"
        case .helo: "HELO"
        case .mail: "MAIL"
        case .rcpt: "RCPT"
        case .data: "DATA"
        case .bdat: "BDAT"
        case .rset: "RSET"
        case .noop: "NOOP"
        case .quit: "QUIT"
        case .vrfy: "VRFY"
        case .expn: "EXPN"
        case .help: "HELP"
        case .startTLS: "STARTTLS"
        case .auth: "AUTH"
        }
    }
}

/// `Reverse-path = Path / "<>"`
public enum ReversePath: Hashable, Sendable, CustomStringConvertible {
    /// The null reverse-path `<>` (bounces, RFC 5321 §4.5.5).
    case null
    /// A sender mailbox.
    case mailbox(EmailAddress)

    /// The path as written in `MAIL FROM:`, with angle brackets.
    public var description: String {
        switch self {
        case .null: "<>"
        case .mailbox(let a): "<\(a)>"
        }
    }

    /// The mailbox, or `nil` for the null path.
    public var address: EmailAddress? {
        if case .mailbox(let a) = self { return a }
        return nil
    }
}

/// `Forward-path = Path`, or the special `<Postmaster>` (RFC 5321 §4.1.1.3).
public enum ForwardPath: Hashable, Sendable, CustomStringConvertible {
    /// `<Postmaster>` without a domain: the server's own postmaster.
    case postmaster
    /// A recipient mailbox.
    case mailbox(EmailAddress)

    /// The path as written in `RCPT TO:`, with angle brackets.
    public var description: String {
        switch self {
        case .postmaster: "<Postmaster>"
        case .mailbox(let a): "<\(a)>"
        }
    }
}

/// An ESMTP parameter on MAIL or RCPT: `esmtp-keyword ["=" esmtp-value]`.
///
/// - SeeAlso: RFC 5321 §4.1.2
public struct ESMTPParameter: Hashable, Sendable {
    /// The keyword, upper-cased.
    public var keyword: String
    /// The value, if any.
    public var value: String?

    /// Creates a parameter.
    public init(_ keyword: String, _ value: String? = nil) {
        self.keyword = keyword.uppercased()
        self.value = value
    }

    /// A parameter whose keyword is already upper case.
    init(uppercasedKeyword: String, _ value: String?) {
        self.keyword = uppercasedKeyword
        self.value = value
    }
}

/// Why a command line was not understood. The state machine maps each case to a reply.
public enum SMTPCommandError: Error, Hashable, Sendable {
    /// The verb is not one we know (500 5.5.2).
    case unknownCommand(String)
    /// The verb is known but its arguments are malformed (501 5.5.4).
    case syntax(verb: String, reason: String)
    /// An address in MAIL/RCPT is malformed (501 5.1.3 / 5.1.7) or non-ASCII without SMTPUTF8 (553 5.6.7).
    case badAddress(verb: String, AddressError)
    /// The command line exceeded the length limit (500 5.5.6).
    case lineTooLong
    /// The command line is not valid UTF-8 or contains NUL/control characters (500 5.5.2).
    case invalidCharacters
}
