import MailCore
import struct NIOCore.ByteBuffer

// SMTPMailTransactionStateMachine governs one mail transaction (RFC 5321 §3.3) inside an SMTP session:
// from an accepted MAIL FROM through RCPTs and DATA or BDAT chunks (RFC 3030) to the message being
// durable, refused or abandoned. The session machine holds it in its `.mailTransaction` state and
// decides what is the session's: sequencing outside the transaction, RSET/EHLO/QUIT abandoning it,
// error counting, shutdown and timeouts.
//
// States:
//   verifyingSender        MAIL of an authenticated session is with the delegate (ownership, limits)
//   collectingRecipients   MAIL accepted; RCPT, DATA and BDAT are the transaction's commands
//   verifyingRecipient     a RCPT is with the delegate
//   receivingData          354 sent; content flows until CRLF.CRLF
//   receivingChunk         a BDAT chunk is being read (only to be refused when `error` is set)
//   storing                the content ended; the message is being made durable
//
// Actions:
//   send(reply)                      write it; the transaction goes on
//   refuse(reply)                    write it and count it as an error; the transaction goes on
//   verifySender / verifyRecipient   ask the delegate; then senderAccepted/Rejected, recipientAccepted/Rejected
//   readData(reply)                  write the 354 and switch the parser to DATA
//   readChunk(size)                  switch the parser to a BDAT chunk of `size` octets
//   appendMessageData(bytes)         pass content to the sink
//   storeMessage(envelope)           make the message durable; then messageStored/messageStoreFailed
//   none                             nothing to do
//   ended(ending)                    the transaction is over (see Ending)

/// One SMTP mail transaction, a child of ``SMTPServerStateMachine``.
///
/// - SeeAlso: RFC 5321 §3.3, §4.1.1.2–§4.1.1.4, §4.5.3.1; RFC 1870; RFC 3030; RFC 6531 §3.4
struct SMTPMailTransactionStateMachine: Sendable {
    /// What the session machine does next.
    enum Action: Hashable, Sendable {
        /// Write this reply; the transaction goes on.
        case send(SMTPReply)
        /// Write this refusal, counted as an error; the transaction goes on.
        case refuse(SMTPReply)
        /// Ask the delegate about the authenticated session's sender.
        case verifySender(ReversePath, SMTPEnvelope)
        /// Ask the delegate about this recipient.
        case verifyRecipient(ForwardPath, SMTPEnvelope)
        /// Write this `354` and read DATA.
        case readData(SMTPReply)
        /// Read a BDAT chunk of this many octets.
        case readChunk(Int)
        /// Pass this (unstuffed) content to the sink.
        case appendMessageData(ByteBuffer)
        /// Make the message durable.
        case storeMessage(SMTPEnvelope)
        /// Nothing to do.
        case none
        /// The transaction is over; the session is ready for the next one unless told otherwise.
        case ended(Ending)
    }

    /// How a transaction ends.
    enum Ending: Hashable, Sendable {
        /// Refused with this reply, counted as an error (the sender, a BDAT chunk without recipients).
        case refused(SMTPReply)
        /// The content is refused: drop the sink, then write the reply; `countsAsError` for content
        /// that breaks the protocol (bare CR/LF, overlong lines) rather than a limit.
        case discarded(SMTPReply, countsAsError: Bool)
        /// Content pipelined before our `354` (RFC 2920 §3.1): write the reply and close.
        case closing(SMTPReply)
        /// The message is durable under this queue ID.
        case stored(queueID: String)
        /// Storing failed with this reply.
        case storeFailed(SMTPReply)
    }

    private enum State: Sendable {
        case verifyingSender
        case collectingRecipients
        case verifyingRecipient(ForwardPath)
        case receivingData
        /// `error` is the reply owed after a chunk that must be consumed but is refused.
        case receivingChunk(last: Bool, error: SMTPReply?)
        case storing
    }

    private var state: State
    /// The listener's limits: message size (0: none), recipients, `Received:` fields (0: none).
    private let maximumMessageSize: Int
    private let maximumRecipients: Int
    private let maximumHops: Int
    private var envelope: SMTPEnvelope
    private var rejectedRecipients = 0
    private var octets = 0
    private var tooBig = false
    private var usingChunks = false
    private var chunkChecker = ContentChecker()
    /// Content has gone to the sink (DATA started, or a BDAT chunk was accepted).
    private var sinkOpened = false

    private init(envelope: SMTPEnvelope, configuration: SMTPServerStateMachine.Configuration, state: State) {
        self.envelope = envelope
        self.maximumMessageSize = configuration.maximumMessageSize
        self.maximumRecipients = configuration.maximumRecipients
        self.maximumHops = configuration.maximumHops
        self.state = state
    }

    /// `true` between transaction commands: RCPT, DATA, BDAT (and EHLO, which abandons it) apply.
    var isCollectingRecipients: Bool {
        if case .collectingRecipients = state { return true }
        return false
    }

    /// `true` while content is expected.
    var isReceivingContent: Bool {
        switch state {
        case .receivingData, .receivingChunk: true
        case .verifyingSender, .collectingRecipients, .verifyingRecipient, .storing: false
        }
    }

    /// `true` while the message is being made durable.
    var isStoring: Bool {
        if case .storing = state { return true }
        return false
    }

    /// `true` when content has been handed to the sink and neither store nor discard has ended it.
    var sinkIsOpen: Bool {
        if case .storing = state { return false }
        return sinkOpened
    }

    // MARK: Events

    /// MAIL FROM with its parameters (RFC 5321 §4.1.1.2; SIZE RFC 1870, BODY RFC 6152, SMTPUTF8
    /// RFC 6531, AUTH RFC 4954 §5): a transaction and its first action, or `nil` and the refusal.
    static func mailReceived(_ path: ReversePath, _ parameters: [ESMTPParameter], configuration: SMTPServerStateMachine.Configuration,
                             extended: Bool, authenticated: Bool) -> (Self?, Action) {
        var envelope = SMTPEnvelope(reversePath: path)
        func refuse(_ code: Int, _ e: EnhancedStatusCode, _ text: String) -> (Self?, Action) {
            (nil, .refuse(SMTPReply(code: code, e, text)))
        }
        for p in parameters {
            if p.keyword == "AUTH" && !configuration.authMechanisms.isEmpty { continue }  // RFC 4954 §5: accepted, not used
            guard extended else { return refuse(555, .init(5, 5, 4), "Parameters not allowed after HELO") }
            switch p.keyword {
            case "SIZE":
                guard let v = p.value, v.count <= 18, v.allSatisfy(\.isASCIIDigitChar), let n = Int(v) else {
                    return refuse(501, .init(5, 5, 4), "Bad SIZE parameter")
                }
                if configuration.maximumMessageSize > 0 && n > configuration.maximumMessageSize {
                    return refuse(552, .init(5, 3, 4), "Message size exceeds fixed limit")
                }
                envelope.declaredSize = n
            case "BODY":
                switch p.value?.uppercased() {
                case "7BIT": envelope.eightBitMIME = false
                case "8BITMIME": envelope.eightBitMIME = true
                default: return refuse(501, .init(5, 5, 4), "Bad BODY parameter (7BIT or 8BITMIME)")
                }
            case "SMTPUTF8" where configuration.smtpUTF8:
                guard p.value == nil else { return refuse(501, .init(5, 5, 4), "SMTPUTF8 takes no value") }
                envelope.smtpUTF8 = true
            default:
                return refuse(555, .init(5, 5, 4), "Unsupported parameter \(p.keyword)")
            }
        }
        if let a = path.address, !a.isASCII, !envelope.smtpUTF8 {
            return refuse(553, .init(5, 6, 7), "Non-ASCII address requires SMTPUTF8")
        }
        if authenticated {
            return (Self(envelope: envelope, configuration: configuration, state: .verifyingSender), .verifySender(path, envelope))
        }
        return (Self(envelope: envelope, configuration: configuration, state: .collectingRecipients), .send(Self.mailOK))
    }

    /// The delegate accepted the authenticated session's sender.
    mutating func senderAccepted() -> Action {
        guard case .verifyingSender = state else { preconditionFailure("senderAccepted() in state \(state)") }
        state = .collectingRecipients
        return .send(Self.mailOK)
    }

    /// The delegate refused the sender (`553 5.7.1` not owned, `450 4.7.1` rate limit).
    mutating func senderRejected(_ reply: SMTPReply) -> Action {
        guard case .verifyingSender = state else { preconditionFailure("senderRejected() in state \(state)") }
        return .ended(.refused(reply))
    }

    /// RCPT TO (RFC 5321 §4.1.1.3), while collecting recipients.
    mutating func rcptReceived(_ path: ForwardPath, _ parameters: [ESMTPParameter]) -> Action {
        guard case .collectingRecipients = state else { preconditionFailure("RCPT in state \(state)") }
        if let p = parameters.first { return .refuse(SMTPReply(code: 555, .init(5, 5, 4), "Unsupported parameter \(p.keyword)")) }
        if case .mailbox(let a) = path, !a.isASCII, !envelope.smtpUTF8 {
            return .refuse(SMTPReply(code: 553, .init(5, 6, 7), "Non-ASCII address requires SMTPUTF8"))
        }
        if envelope.recipients.contains(path) { return .send(Self.rcptOK) }
        if envelope.recipients.count >= maximumRecipients {
            return .send(SMTPReply(code: 452, .init(4, 5, 3), "Too many recipients"))  // §4.5.3.1.10: not an error
        }
        state = .verifyingRecipient(path)
        return .verifyRecipient(path, envelope)
    }

    /// The delegate accepted the recipient being verified.
    mutating func recipientAccepted() -> Action {
        guard case .verifyingRecipient(let path) = state else { preconditionFailure("recipientAccepted() in state \(state)") }
        if !envelope.recipients.contains(path) { envelope.recipients.append(path) }
        state = .collectingRecipients
        return .send(Self.rcptOK)
    }

    /// The delegate refused the recipient being verified (4xx or 5xx).
    mutating func recipientRejected(_ reply: SMTPReply) -> Action {
        guard case .verifyingRecipient = state else { preconditionFailure("recipientRejected() in state \(state)") }
        rejectedRecipients += 1
        state = .collectingRecipients
        return .refuse(reply)
    }

    /// DATA (RFC 5321 §4.1.1.4); `pipelinedBytes` is what the parser still holds after it.
    mutating func dataReceived(pipelinedBytes: Int) -> Action {
        guard case .collectingRecipients = state else { preconditionFailure("DATA in state \(state)") }
        if usingChunks { return .refuse(SMTPReply(code: 503, .init(5, 5, 1), "DATA not allowed after BDAT")) }
        guard !envelope.recipients.isEmpty else {
            if rejectedRecipients > 0 { return .refuse(SMTPReply(code: 554, .init(5, 5, 1), "No valid recipients")) }
            return .refuse(SMTPReply(code: 503, .init(5, 5, 1), "need RCPT before DATA"))
        }
        if pipelinedBytes > 0 {
            // RFC 2920 §3.1: DATA ends a command group; content before our 354 is not content.
            return .ended(.closing(SMTPReply(code: 503, .init(5, 5, 0), "Improper use of SMTP command pipelining")))
        }
        sinkOpened = true
        state = .receivingData
        return .readData(SMTPReply(code: 354, nil, "End data with <CR><LF>.<CR><LF>"))
    }

    /// BDAT (RFC 3030 §2), where CHUNKING is offered.
    mutating func bdatReceived(size: Int, last: Bool) -> Action {
        guard case .collectingRecipients = state else { preconditionFailure("BDAT in state \(state)") }
        guard !envelope.recipients.isEmpty else {
            let r = rejectedRecipients > 0 ? SMTPReply(code: 554, .init(5, 5, 1), "No valid recipients")
                : SMTPReply(code: 503, .init(5, 5, 1), "need RCPT before BDAT")
            state = .receivingChunk(last: last, error: r)
            return .readChunk(size)
        }
        usingChunks = true
        sinkOpened = true
        if maximumMessageSize > 0 && octets + size > maximumMessageSize {
            tooBig = true
        }
        state = .receivingChunk(last: last, error: nil)
        return .readChunk(size)
    }

    /// Unstuffed DATA content arrived.
    mutating func messageDataReceived(_ bytes: ByteBuffer) -> Action {
        guard case .receivingData = state else { preconditionFailure("messageDataReceived in state \(state)") }
        octets += bytes.readableBytes
        if maximumMessageSize > 0 && octets > maximumMessageSize { tooBig = true }
        return tooBig ? .none : .appendMessageData(bytes)
    }

    /// DATA ended with CRLF.CRLF.
    mutating func endOfMessageReceived(_ content: ContentFlags) -> Action {
        guard case .receivingData = state else { preconditionFailure("endOfMessageReceived in state \(state)") }
        return finishContent(content)
    }

    /// Bytes of the current BDAT chunk arrived.
    mutating func chunkDataReceived(_ bytes: ByteBuffer) -> Action {
        guard case .receivingChunk(_, let error) = state else { preconditionFailure("chunkDataReceived in state \(state)") }
        guard error == nil else { return .none }  // consumed only to be refused
        octets += bytes.readableBytes
        bytes.withUnsafeReadableBytes { chunkChecker.feed($0) }
        if maximumMessageSize > 0 && octets > maximumMessageSize { tooBig = true }
        return tooBig ? .none : .appendMessageData(bytes)
    }

    /// The current BDAT chunk has been read completely.
    mutating func endOfChunkReceived() -> Action {
        guard case .receivingChunk(let last, let error) = state else { preconditionFailure("endOfChunkReceived in state \(state)") }
        if let error { return .ended(.refused(error)) }
        if tooBig { return .ended(.discarded(Self.tooBigReply, countsAsError: false)) }
        if !last {
            state = .collectingRecipients
            return .send(SMTPReply(code: 250, .init(2, 0, 0), "\(octets) octets received"))
        }
        chunkChecker.finish()
        var flags = chunkChecker.flags
        flags.missingFinalCRLF = false  // a BDAT message may end without CRLF; intake adds it
        return finishContent(flags)
    }

    /// The message is durable under `queueID`.
    mutating func messageStored(queueID: String) -> Action {
        guard case .storing = state else { preconditionFailure("messageStored in state \(state)") }
        return .ended(.stored(queueID: queueID))
    }

    /// Storing the message failed; `reply` is 4xx (or 5xx for a policy refusal).
    mutating func messageStoreFailed(_ reply: SMTPReply) -> Action {
        guard case .storing = state else { preconditionFailure("messageStoreFailed in state \(state)") }
        return .ended(.storeFailed(reply))
    }

    // MARK: Helpers

    private static let mailOK = SMTPReply(code: 250, .init(2, 1, 0), "Ok")
    private static let rcptOK = SMTPReply(code: 250, .init(2, 1, 5), "Ok")
    private static let tooBigReply = SMTPReply(code: 552, .init(5, 3, 4), "Message size exceeds fixed limit")

    /// The end of content: refused for size, bare line ends (SMTP smuggling), overlong lines or a
    /// mail loop (§6.3), otherwise stored.
    private mutating func finishContent(_ content: ContentFlags) -> Action {
        if tooBig { return .ended(.discarded(Self.tooBigReply, countsAsError: false)) }
        if content.bareLineEnding {
            return .ended(.discarded(SMTPReply(code: 550, .init(5, 5, 2), "Message contains bare CR or LF; lines must end with CRLF"),
                                     countsAsError: true))
        }
        if content.overlongLine {
            return .ended(.discarded(SMTPReply(code: 500, .init(5, 5, 6), "Line too long (over 1000 octets)"), countsAsError: true))
        }
        if maximumHops > 0 && content.receivedFields >= maximumHops {
            return .ended(.discarded(SMTPReply(code: 554, .init(5, 4, 6), "Mail loop: too many hops (\(content.receivedFields) Received: fields)"),
                                     countsAsError: false))
        }
        state = .storing
        return .storeMessage(envelope)
    }
}
