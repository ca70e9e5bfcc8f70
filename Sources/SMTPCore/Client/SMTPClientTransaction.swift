import MailCore
import struct NIOCore.ByteBuffer

// SMTPClientTransaction governs one mail transaction from the client side (RFC 5321 §3.3, with
// PIPELINING RFC 2920, CHUNKING RFC 3030, SIZE RFC 1870, 8BITMIME RFC 6152, SMTPUTF8 RFC 6531, DSN
// RFC 3461 parameters).
//
// States (implicit in `expected`): the replies still owed by the server, in order —
//   mail, rcpt(i), data (354), content (final reply after CRLF.CRLF or BDAT LAST), rset.
// Events: replyReceived(_:).
// Actions: send(bytes) — write these bytes; wait — more replies are owed; finished(result).
public struct SMTPClientTransaction: Sendable {
    /// A recipient and its RCPT parameters (e.g. DSN NOTIFY/ORCPT).
    public struct Recipient: Hashable, Sendable {
        public var path: ForwardPath
        public var parameters: [ESMTPParameter]
        public init(_ path: ForwardPath, parameters: [ESMTPParameter] = []) {
            self.path = path
            self.parameters = parameters
        }
    }

    /// How the transaction ended.
    public struct Outcome: Hashable, Sendable {
        /// The final reply to the content (`250 … queued as …`), when the message was accepted.
        public var accepted: SMTPReply?
        /// Recipients the server refused, with its reply.
        public var refusedRecipients: [RefusedRecipient] = []
        /// Recipients the server accepted.
        public var acceptedRecipients: [ForwardPath] = []
        /// The error that ended the transaction without delivery, if any.
        public var error: SMTPClientError?
        /// `true` when the client should send RSET before another transaction.
        public var needsReset = false
    }

    /// A recipient the server refused.
    public struct RefusedRecipient: Hashable, Sendable {
        /// The recipient.
        public var path: ForwardPath
        /// The server's reply to its RCPT.
        public var reply: SMTPReply
    }

    /// What to do next.
    public enum Action: Hashable, Sendable {
        case send(ByteBuffer)
        case wait
        case finished(Outcome)
    }

    private enum Expect: Hashable, Sendable {
        case mail, rcpt(Int), data, content
    }

    private let reversePath: ReversePath
    private var mailParameters: [ESMTPParameter]
    private let recipients: [Recipient]
    private let capabilities: SMTPCapabilities
    private let message: SMTPMessageEncoder
    private let useChunking: Bool
    private var expected: [Expect] = []
    private var outcome = Outcome()
    private var mailFailed: SMTPReply?
    private var dataFailed: SMTPReply?
    private var contentSent = false

    /// Prepares a transaction, or explains why this server cannot take the message as it is.
    public init(from reversePath: ReversePath, to recipients: [Recipient], message: SMTPMessageEncoder,
                capabilities: SMTPCapabilities, mailParameters: [ESMTPParameter] = [], allowChunking: Bool = true) throws(SMTPClientError) {
        func refuse(_ s: String) -> SMTPClientError { SMTPClientError(kind: .messageNotSendable(s), isPermanent: true) }
        guard !recipients.isEmpty else { throw refuse("no recipients") }
        if message.longestLine > 998 { throw refuse("a line is longer than 998 octets (RFC 5321 §4.5.3.1.6)") }
        var params = mailParameters
        let needsUTF8 = !(reversePath.address?.isASCII ?? true)
            || recipients.contains { if case .mailbox(let a) = $0.path { return !a.isASCII } else { return false } }
        if needsUTF8 {
            guard capabilities.smtpUTF8 else { throw refuse("the addresses need SMTPUTF8, which the server does not offer") }
            params.append(ESMTPParameter("SMTPUTF8"))
        }
        if message.hasEightBit {
            guard capabilities.eightBitMIME || capabilities.smtpUTF8 && needsUTF8 else {
                throw refuse("the message has 8-bit content and the server does not offer 8BITMIME; encode it as quoted-printable or base64")
            }
            if capabilities.eightBitMIME { params.append(ESMTPParameter("BODY", "8BITMIME")) }
        }
        if let limit = capabilities.sizeLimit {
            if limit > 0 && message.size > limit { throw refuse("it is \(message.size) octets; the server accepts at most \(limit)") }
            params.insert(ESMTPParameter("SIZE", String(message.size)), at: 0)
        }
        if !capabilities.dsn {
            params.removeAll { ["RET", "ENVID"].contains($0.keyword) }
        }
        self.reversePath = reversePath
        self.mailParameters = params
        self.recipients = capabilities.dsn ? recipients : recipients.map {
            Recipient($0.path, parameters: $0.parameters.filter { !["NOTIFY", "ORCPT"].contains($0.keyword) })
        }
        self.capabilities = capabilities
        self.message = message
        self.useChunking = allowChunking && capabilities.chunking
    }

    private static func line(_ verb: String, _ path: String, _ params: [ESMTPParameter]) -> String {
        var s = "\(verb)\(path)"
        for p in params { s += " \(p.keyword)" + (p.value.map { "=\($0)" } ?? "") }
        return s
    }

    private var mailCommand: String { Self.line("MAIL FROM:", reversePath.description, mailParameters) }
    private func rcptCommand(_ i: Int) -> String { Self.line("RCPT TO:", recipients[i].path.description, recipients[i].parameters) }

    private func chunk() -> ByteBuffer {
        var out = ByteBuffer(string: "BDAT \(message.size) LAST\r\n")
        var c = message.canonical
        out.writeBuffer(&c)
        return out
    }

    /// The bytes to send first.
    public mutating func start() -> Action {
        var out = ByteBuffer()
        out.writeString(mailCommand + "\r\n")
        expected = [.mail]
        guard capabilities.pipelining else { return .send(out) }
        for i in recipients.indices {
            out.writeString(rcptCommand(i) + "\r\n")
            expected.append(.rcpt(i))
        }
        if useChunking {
            var c = chunk()
            out.writeBuffer(&c)
            expected.append(.content)
            contentSent = true
        } else {
            out.writeStaticString("DATA\r\n")
            expected.append(.data)
        }
        return .send(out)
    }

    /// The next reply arrived.
    public mutating func replyReceived(_ reply: SMTPReply) -> Action {
        guard !expected.isEmpty else { return .wait }
        let what = expected.removeFirst()
        switch what {
        case .mail:
            if !reply.isPositive {
                mailFailed = reply
                if expected.isEmpty {
                    outcome.error = .refused(reply, command: mailCommand)
                    return .finished(outcome)
                }
                return .wait  // pipelined RCPT/DATA replies still owed
            }
            if !capabilities.pipelining { return sendNextAfterMail() }
            return .wait
        case .rcpt(let i):
            if reply.isPositive && mailFailed == nil {
                outcome.acceptedRecipients.append(recipients[i].path)
            } else if mailFailed == nil {
                outcome.refusedRecipients.append(.init(path: recipients[i].path, reply: reply))
            }
            if !capabilities.pipelining {
                if i + 1 < recipients.count {
                    expected = [.rcpt(i + 1)]
                    return .send(ByteBuffer(string: rcptCommand(i + 1) + "\r\n"))
                }
                if outcome.acceptedRecipients.isEmpty {
                    outcome.error = allRefused()
                    outcome.needsReset = true
                    return .finished(outcome)
                }
                if useChunking {
                    expected = [.content]
                    contentSent = true
                    return .send(chunk())
                }
                expected = [.data]
                return .send(ByteBuffer(string: "DATA\r\n"))
            }
            return .wait
        case .data:
            if reply.code == 354 {
                if mailFailed != nil || outcome.acceptedRecipients.isEmpty {
                    // RFC 2920 §3.1: the server wants data although nothing was accepted; end it empty.
                    expected = [.content]
                    dataFailed = reply
                    return .send(ByteBuffer(string: ".\r\n"))
                }
                expected = [.content]
                contentSent = true
                return .send(message.dataEncoding())
            }
            return finishFailed(dataReply: reply, command: "DATA")
        case .content:
            if let m = mailFailed {
                outcome.error = .refused(m, command: mailCommand)
                outcome.needsReset = true
                return .finished(outcome)
            }
            if dataFailed != nil || outcome.acceptedRecipients.isEmpty {
                outcome.error = outcome.acceptedRecipients.isEmpty ? allRefused() : .refused(reply, command: "DATA")
                outcome.needsReset = true
                return .finished(outcome)
            }
            if reply.isPositive {
                outcome.accepted = reply
                return .finished(outcome)
            }
            outcome.error = .refused(reply, command: useChunking ? "BDAT" : "end of data")
            outcome.needsReset = useChunking
            return .finished(outcome)
        }
    }

    private mutating func sendNextAfterMail() -> Action {
        expected = [.rcpt(0)]
        return .send(ByteBuffer(string: rcptCommand(0) + "\r\n"))
    }

    private func allRefused() -> SMTPClientError {
        // Report the first refusal; a 5xx on every recipient is permanent, any 4xx makes it transient.
        let first = outcome.refusedRecipients.first?.reply ?? SMTPReply(code: 554, .init(5, 5, 1), "no valid recipients")
        var e = SMTPClientError.refused(first, command: "RCPT TO")
        e.isPermanent = outcome.refusedRecipients.allSatisfy { $0.reply.isPermanent }
        return e
    }

    private mutating func finishFailed(dataReply: SMTPReply, command: String) -> Action {
        if let m = mailFailed {
            outcome.error = .refused(m, command: mailCommand)
        } else if outcome.acceptedRecipients.isEmpty {
            outcome.error = allRefused()
            outcome.needsReset = true
        } else {
            outcome.error = .refused(dataReply, command: command)
            outcome.needsReset = true
        }
        return .finished(outcome)
    }
}
