import MailCore
import struct NIOCore.ByteBuffer

// SMTPServerStateMachine governs one SMTP server session (RFC 5321 and the extensions we offer).
//
// States:
//   awaitingHello          greeting sent (or TLS just started); only EHLO/HELO, NOOP, RSET, QUIT, STARTTLS …
//   ready                  EHLO/HELO done, no transaction
//   mailTransaction        MAIL accepted: a child SMTPMailTransactionStateMachine collects recipients
//                          (each checked by the delegate), reads DATA or BDAT chunks and waits for the
//                          message to be durable
//   discardingChunk        a BDAT chunk outside any transaction (or without CHUNKING) is being consumed
//                          only to be refused
//   authenticating         AUTH in progress (a child SMTPAuthenticationStateMachine): waiting for a
//                          SASL line or for the delegate's verdict
//   closed                 QUIT answered or connection dropped
//
// Actions (what the adapter must do):
//   send(replies, then:)   write replies, then continue / close / start TLS / read DATA / read a chunk
//   verifySender           ask the delegate about an authenticated sender, then call senderAccepted/Rejected
//   verifyRecipient        ask the delegate about a recipient, then call recipientAccepted/Rejected
//   authenticate           check a user name and password (PLAIN, LOGIN)
//   saslResponse           pass a SASL response to the delegate's exchange (SCRAM), then call
//                          saslChallenge / authenticationSucceeded / authenticationFailed
//   appendMessageData      pass content bytes to the message sink
//   storeMessage           make the message durable, then call messageStored/messageStoreFailed
//   discardMessage         drop the sink, then send the reply
//   none                   nothing to do
public struct SMTPServerStateMachine: Sendable {
    /// What the server offers; fixed per listener.
    public struct Configuration: Hashable, Sendable {
        /// Our host name for the greeting and EHLO.
        public var hostname: String
        /// Largest message accepted, octets (RFC 1870 SIZE). 0 means no limit.
        public var maximumMessageSize: Int
        /// Most recipients per transaction (RFC 5321 §4.5.3.1.8 asks for at least 100).
        public var maximumRecipients: Int
        /// Errors tolerated per session before 421 and disconnect (like Postfix's smtpd_hard_error_limit).
        public var maximumErrors: Int
        /// `true` when STARTTLS can be offered on this listener.
        public var startTLSAvailable: Bool
        /// Offer CHUNKING/BDAT (RFC 3030).
        public var chunking: Bool
        /// Offer SMTPUTF8 (RFC 6531).
        public var smtpUTF8: Bool
        /// SASL mechanisms offered with AUTH (RFC 4954): `PLAIN` and `LOGIN` are run here (through
        /// SASL's `SASLServer`); any other (e.g. `SCRAM-SHA-256`) is run by the delegate through
        /// `saslResponse`. Empty: no AUTH.
        public var authMechanisms: [String] = []
        /// MAIL is refused until the client authenticated (submission, RFC 6409): `530 5.7.0`.
        public var requireAuthentication = false
        /// Offer and accept AUTH without TLS (never by default).
        public var allowPlaintextAuthentication = false
        /// A message already carrying this many `Received:` fields is refused as a mail loop
        /// (`554 5.4.6`, RFC 5321 §6.3; Postfix's `hopcount_limit`). 0 means no limit.
        public var maximumHops = 50

        /// Creates a configuration.
        public init(hostname: String, maximumMessageSize: Int = 26_214_400, maximumRecipients: Int = 100,
                    maximumErrors: Int = 20, startTLSAvailable: Bool = false, chunking: Bool = true, smtpUTF8: Bool = true) {
            self.hostname = hostname
            self.maximumMessageSize = maximumMessageSize
            self.maximumRecipients = maximumRecipients
            self.maximumErrors = maximumErrors
            self.startTLSAvailable = startTLSAvailable
            self.chunking = chunking
            self.smtpUTF8 = smtpUTF8
        }
    }

    /// What to do after sending replies.
    public enum Continuation: Hashable, Sendable {
        /// Keep reading commands.
        case readCommands
        /// Close the connection.
        case close
        /// Insert TLS before any further read; discard bytes already buffered (RFC 3207 §4.2).
        case startTLS
        /// Switch the parser to DATA mode.
        case readData
        /// Switch the parser to read a BDAT chunk of this many octets.
        case readChunk(Int)
        /// The next line is a SASL response (base64), not a command.
        case readSASLResponse
    }

    /// An instruction for the adapter.
    public enum Action: Hashable, Sendable {
        /// Write these replies in order, then continue as told.
        case send([SMTPReply], then: Continuation)
        /// Ask the delegate whether this authenticated session may use this sender (MAIL FROM of an
        /// authenticated session only), then report `senderAccepted` or `senderRejected`.
        case verifySender(ReversePath, SMTPEnvelope, SMTPSessionFacts)
        /// Ask the delegate whether this recipient is acceptable.
        case verifyRecipient(ForwardPath, SMTPEnvelope, SMTPSessionFacts)
        /// Pass message content (already unstuffed) to the sink.
        case appendMessageData(ByteBuffer)
        /// Make the message durable, then report `messageStored` or `messageStoreFailed`.
        case storeMessage(SMTPEnvelope, SMTPSessionFacts)
        /// Drop the message content received so far, then write this reply.
        case discardMessage(SMTPReply, then: Continuation)
        /// Check these credentials (RFC 4954), then report `authenticationSucceeded` or
        /// `authenticationFailed`.
        case authenticate(mechanism: String, user: String, password: String)
        /// Hand this (decoded) SASL response to the exchange for `mechanism` — a new exchange when
        /// `first` — then report `saslChallenge`, `authenticationSucceeded` or `authenticationFailed`.
        case saslResponse(mechanism: String, response: [UInt8], first: Bool)
        /// Nothing to do.
        case none
    }

    private enum State: Sendable {
        case awaitingHello
        case ready
        /// MAIL accepted, until the message is stored, refused or abandoned.
        case mailTransaction(SMTPMailTransactionStateMachine)
        /// `error` is the reply owed once the chunk, consumed but refused, has been read.
        case discardingChunk(error: SMTPReply)
        /// An AUTH exchange: waiting for a SASL line or for the delegate's verdict.
        case authenticating(SMTPAuthenticationStateMachine)
        case closed
    }

    private var state: State = .awaitingHello
    private let configuration: Configuration
    private var facts: SMTPSessionFacts
    private var tlsActive: Bool
    private var errors = 0
    private var shutdownRequested = false

    /// Creates a machine for a new connection. `implicitTLS` is set for implicit-TLS listeners
    /// (RFC 8314); their ``tlsEstablished(_:)`` comes before the greeting.
    public init(configuration: Configuration, implicitTLS: Bool = false) {
        self.configuration = configuration
        self.facts = SMTPSessionFacts(heloName: "", isExtended: false)
        self.tlsActive = implicitTLS
    }

    /// `true` while message content is expected (the adapter uses the longer data timeout).
    public var isReceivingContent: Bool {
        switch state {
        case .mailTransaction(let transaction): return transaction.isReceivingContent
        case .discardingChunk: return true
        case .awaitingHello, .ready, .authenticating, .closed: return false
        }
    }

    /// `true` while a transaction is open (MAIL given and not finished).
    public var isInTransaction: Bool {
        switch state {
        case .mailTransaction, .discardingChunk: return true
        case .awaitingHello, .ready, .authenticating, .closed: return false
        }
    }

    /// The current session facts (for logs).
    public var sessionFacts: SMTPSessionFacts { facts }

    // MARK: Events

    /// The connection is open; returns the greeting (RFC 5321 §4.2, §3.1).
    public func connectionEstablished() -> Action {
        .send([SMTPReply(code: 220, nil, "\(configuration.hostname) ESMTP Swallow")], then: .readCommands)
    }

    /// A command line parsed. `pipelinedBytes` is how many bytes the parser still holds after it
    /// (they matter after DATA and STARTTLS).
    public mutating func commandReceived(_ command: SMTPCommand, pipelinedBytes: Int = 0) -> Action {
        if case .closed = state { return .none }
        switch command {
        case .quit:
            let discard = sinkIsOpen
            state = .closed
            return discardingSink(discard, .send([SMTPReply(code: 221, .init(2, 0, 0), "\(configuration.hostname) closing connection")], then: .close))
        case .noop:
            return reply(250, .init(2, 0, 0), "Ok")
        case .rset:
            let discard = sinkIsOpen
            switch state {
            case .awaitingHello: break
            default: state = .ready
            }
            return discardingSink(discard, reply(250, .init(2, 0, 0), "Ok"))
        case .help:
            return reply(214, .init(2, 0, 0), "See RFC 5321 and https://swallow.invalid/help; commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY STARTTLS")
        case .vrfy:
            return reply(252, .init(2, 5, 0), "Cannot VRFY user, but will accept message and attempt delivery")
        case .expn:
            return error(502, .init(5, 5, 1), "EXPN not available")
        case .ehlo(let name), .helo(let name):
            let discard = sinkIsOpen
            return discardingSink(discard, hello(name: name, extended: { if case .ehlo = command { true } else { false } }()))
        case .startTLS:
            return startTLS()
        case .auth(let argument):
            return auth(argument)
        case .mail(let path, let params):
            return mail(path, params)
        case .rcpt(let path, let params):
            return rcpt(path, params)
        case .data:
            return data(pipelinedBytes: pipelinedBytes)
        case .bdat(let size, let last):
            return bdat(size: size, last: last)
        }
    }

    /// A command line did not parse.
    public mutating func invalidCommandReceived(_ problem: SMTPCommandError) -> Action {
        if case .closed = state { return .none }
        // A SASL response that cannot be read (too long, bad bytes) ends the exchange (RFC 4954 §4:
        // the server rejects the AUTH command); the session is back where it was before AUTH.
        if case .authenticating(let auth) = state, !auth.isVerifying { state = .ready }
        switch problem {
        case .unknownCommand:
            return error(500, .init(5, 5, 2), "Command unrecognized")
        case .invalidCharacters:
            return error(500, .init(5, 5, 2), "Invalid characters in command")
        case .lineTooLong:
            return error(500, .init(5, 5, 6), "Line too long")
        case .syntax(_, let reason):
            return error(501, .init(5, 5, 4), "Syntax error: \(reason)")
        case .badAddress(let verb, let reason):
            if reason == .nonASCIIWithoutSMTPUTF8 {
                return error(553, .init(5, 6, 7), "Non-ASCII address requires SMTPUTF8")
            }
            let detail = verb == "MAIL" ? 7 : 3
            let what: String = switch reason {
            case .localPartTooLong: "local part longer than 64 octets"
            case .domainTooLong: "domain longer than 255 octets"
            case .badDomain: "invalid domain"
            default: "invalid address syntax"
            }
            return error(501, .init(5, 1, detail), "Bad \(verb == "MAIL" ? "sender" : "recipient") address: \(what)")
        }
    }

    /// The delegate accepted the recipient being verified.
    public mutating func recipientAccepted() -> Action {
        guard case .mailTransaction(var transaction) = state else { preconditionFailure("recipientAccepted() in state \(state)") }
        let action = transaction.recipientAccepted()
        return transacting(transaction, action)
    }

    /// The delegate refused the recipient being verified with `reply` (4xx or 5xx).
    public mutating func recipientRejected(_ reply: SMTPReply) -> Action {
        guard case .mailTransaction(var transaction) = state else { preconditionFailure("recipientRejected() in state \(state)") }
        let action = transaction.recipientRejected(reply)
        return transacting(transaction, action)
    }

    /// Unstuffed DATA content arrived.
    public mutating func messageDataReceived(_ bytes: ByteBuffer) -> Action {
        guard case .mailTransaction(var transaction) = state else { preconditionFailure("messageDataReceived in state \(state)") }
        let action = transaction.messageDataReceived(bytes)
        return transacting(transaction, action)
    }

    /// DATA ended with CRLF.CRLF.
    public mutating func endOfMessageReceived(_ content: ContentFlags) -> Action {
        guard case .mailTransaction(var transaction) = state else { preconditionFailure("endOfMessageReceived in state \(state)") }
        let action = transaction.endOfMessageReceived(content)
        return transacting(transaction, action)
    }

    /// Bytes of the current BDAT chunk arrived.
    public mutating func chunkDataReceived(_ bytes: ByteBuffer) -> Action {
        switch state {
        case .discardingChunk:
            return .none
        case .mailTransaction(var transaction):
            let action = transaction.chunkDataReceived(bytes)
            return transacting(transaction, action)
        case .awaitingHello, .ready, .authenticating, .closed:
            preconditionFailure("chunkDataReceived in state \(state)")
        }
    }

    /// The current BDAT chunk has been read completely.
    public mutating func endOfChunkReceived() -> Action {
        switch state {
        case .discardingChunk(let reply):
            state = facts.heloName.isEmpty ? .awaitingHello : .ready
            return error(reply)
        case .mailTransaction(var transaction):
            let action = transaction.endOfChunkReceived()
            return transacting(transaction, action)
        case .awaitingHello, .ready, .authenticating, .closed:
            preconditionFailure("endOfChunkReceived in state \(state)")
        }
    }

    /// The message is durable under `queueID`.
    public mutating func messageStored(queueID: String) -> Action {
        guard case .mailTransaction(var transaction) = state else { preconditionFailure("messageStored in state \(state)") }
        let action = transaction.messageStored(queueID: queueID)
        return transacting(transaction, action)
    }

    /// Storing the message failed; `reply` is 4xx (or 5xx for a policy refusal).
    public mutating func messageStoreFailed(_ reply: SMTPReply) -> Action {
        guard case .mailTransaction(var transaction) = state else { preconditionFailure("messageStoreFailed in state \(state)") }
        let action = transaction.messageStoreFailed(reply)
        return transacting(transaction, action)
    }

    /// TLS is established (after STARTTLS): all session state is forgotten (RFC 3207 §4.2).
    public mutating func tlsEstablished(_ tls: TLSFacts) -> Action {
        tlsActive = true
        facts = SMTPSessionFacts(heloName: "", isExtended: false, tls: tls)
        state = .awaitingHello
        return .none
    }

    /// The peer was silent too long (RFC 5321 §4.5.3.2).
    public mutating func timeoutFired() -> Action {
        if case .closed = state { return .none }
        if case .mailTransaction(let transaction) = state, transaction.isStoring {
            return .none  // the store finishes; its reply goes out first
        }
        let sinkOpen = isReceivingContent || sinkIsOpen
        state = .closed
        let r = SMTPReply(code: 421, .init(4, 4, 2), "\(configuration.hostname) Error: timeout exceeded")
        return sinkOpen ? .discardMessage(r, then: .close) : .send([r], then: .close)
    }

    /// The server is shutting down: idle sessions are closed now, busy ones after their transaction.
    public mutating func shutdownRequestedEvent() -> Action {
        shutdownRequested = true
        switch state {
        case .closed: return .none
        case .authenticating(let auth) where auth.isVerifying:
            return .none
        case .mailTransaction(let transaction) where !transaction.isCollectingRecipients:
            return .none  // a delegate is deciding, content flows or the message is being stored
        case .awaitingHello, .ready, .mailTransaction, .authenticating:
            let discard = sinkIsOpen
            state = .closed
            return discardingSink(discard, .send([Self.shuttingDown(configuration.hostname)], then: .close))
        case .discardingChunk:
            return .none
        }
    }

    /// The shutdown deadline passed: close whatever is in progress.
    public mutating func shutdownDeadlinePassed() -> Action {
        if case .closed = state { return .none }
        let sinkOpen = isReceivingContent || sinkIsOpen
        state = .closed
        let r = Self.shuttingDown(configuration.hostname)
        return sinkOpen ? .discardMessage(r, then: .close) : .send([r], then: .close)
    }

    /// The connection was closed by the peer or the network.
    public mutating func connectionClosed() -> Action {
        let sinkOpen = sinkIsOpen
        state = .closed
        return sinkOpen ? .discardMessage(SMTPReply(code: 421, .init(4, 4, 0), "connection lost"), then: .close) : .none
    }

    // MARK: Commands

    private mutating func hello(name: String, extended: Bool) -> Action {
        switch state {
        case .awaitingHello, .ready: break
        case .mailTransaction(let transaction) where transaction.isCollectingRecipients: break
        default: return badSequence()
        }
        facts.heloName = name
        facts.isExtended = extended
        state = .ready
        guard extended else { return reply(250, nil, configuration.hostname) }
        var lines = [configuration.hostname, "PIPELINING"]
        lines.append(configuration.maximumMessageSize > 0 ? "SIZE \(configuration.maximumMessageSize)" : "SIZE")
        lines.append("8BITMIME")
        lines.append("ENHANCEDSTATUSCODES")
        if configuration.smtpUTF8 { lines.append("SMTPUTF8") }
        if configuration.chunking { lines.append("CHUNKING") }
        if configuration.startTLSAvailable && !tlsActive { lines.append("STARTTLS") }
        if !configuration.authMechanisms.isEmpty && (tlsActive || configuration.allowPlaintextAuthentication) {
            lines.append("AUTH " + configuration.authMechanisms.joined(separator: " "))
        }
        return .send([SMTPReply(code: 250, nil, lines)], then: .readCommands)
    }

    // MARK: AUTH (RFC 4954)

    private mutating func auth(_ argument: String) -> Action {
        guard !configuration.authMechanisms.isEmpty else { return error(503, .init(5, 5, 1), "Authentication not enabled") }
        guard tlsActive || configuration.allowPlaintextAuthentication else {
            return error(530, .init(5, 7, 0), "Must issue a STARTTLS command first")
        }
        guard case .ready = state else {
            if case .awaitingHello = state { return badSequence("send EHLO first") }
            return badSequence("AUTH not allowed during a mail transaction")
        }
        guard facts.isExtended else { return badSequence("send EHLO first") }
        guard facts.authenticatedAs == nil else { return badSequence("already authenticated") }
        let parts = argument.split(separator: " ", omittingEmptySubsequences: true)
        let mechanism = parts.first.map { $0.uppercased() } ?? ""
        guard configuration.authMechanisms.contains(mechanism) else { return error(SMTPAuthenticationStateMachine.unrecognized) }
        guard parts.count <= 2 else { return error(501, .init(5, 5, 4), "Syntax error in AUTH parameters") }
        let initial = parts.count == 2 ? String(parts[1]) : nil
        var exchange = SMTPAuthenticationStateMachine(mechanism: mechanism)
        let action = exchange.start(initialResponse: initial)
        return authenticating(exchange, action)
    }

    /// A line of an AUTH exchange arrived (base64, or `*` to cancel).
    public mutating func saslResponseReceived(_ line: [UInt8]) -> Action {
        guard case .authenticating(var exchange) = state else { preconditionFailure("saslResponseReceived in state \(state)") }
        let action = exchange.lineReceived(line)
        return authenticating(exchange, action)
    }

    /// The delegate accepted the credentials of `user` (the canonical login name). `additionalData`
    /// (SCRAM's server signature) goes out in a `334` first; `235` follows the client's empty answer
    /// (RFC 4954 §4).
    public mutating func authenticationSucceeded(user: String, additionalData: [UInt8]? = nil) -> Action {
        guard case .authenticating(var exchange) = state, exchange.isVerifying else {
            preconditionFailure("authenticationSucceeded in state \(state)")
        }
        let action = exchange.authenticationSucceeded(user: user, additionalData: additionalData)
        return authenticating(exchange, action)
    }

    /// The delegate's exchange needs another round: send this challenge in a `334`.
    public mutating func saslChallenge(_ challenge: [UInt8]) -> Action {
        guard case .authenticating(var exchange) = state, exchange.isVerifying else {
            preconditionFailure("saslChallenge in state \(state)")
        }
        let action = exchange.saslChallenge(challenge)
        return authenticating(exchange, action)
    }

    /// The delegate runs no exchange for the mechanism of a ``Action/saslResponse(mechanism:response:first:)``:
    /// `504 5.5.4`.
    public mutating func saslExchangeUnavailable() -> Action {
        authenticationFailed(SMTPAuthenticationStateMachine.unrecognized)
    }

    /// The delegate refused: `535 5.7.8`, or its own reply (`454 4.7.0` when the account is throttled,
    /// `421 4.7.0` — which closes the session — when the client is).
    public mutating func authenticationFailed(_ reply: SMTPReply? = nil) -> Action {
        guard case .authenticating(var exchange) = state, exchange.isVerifying else {
            preconditionFailure("authenticationFailed in state \(state)")
        }
        let action = exchange.authenticationFailed(reply)
        return authenticating(exchange, action)
    }

    /// Runs what the AUTH exchange asks for: the exchange stays the state while it goes on; its end
    /// leaves the session ready (authenticated after `235`), or closed after a `421`.
    private mutating func authenticating(_ exchange: SMTPAuthenticationStateMachine,
                                         _ action: SMTPAuthenticationStateMachine.Action) -> Action {
        switch action {
        case .challenge(let reply):
            state = .authenticating(exchange)
            return .send([reply], then: .readSASLResponse)
        case .authenticate(let mechanism, let user, let password):
            state = .authenticating(exchange)
            return .authenticate(mechanism: mechanism, user: user, password: password)
        case .saslResponse(let mechanism, let response, let first):
            state = .authenticating(exchange)
            return .saslResponse(mechanism: mechanism, response: response, first: first)
        case .succeeded(let user):
            state = .ready
            facts.authenticatedAs = user
            return .send([SMTPReply(code: 235, .init(2, 7, 0), "Authentication successful")], then: .readCommands)
        case .failed(let reply):
            state = .ready
            if reply.code == 421 {
                state = .closed
                return .send([reply], then: .close)
            }
            return error(reply)
        }
    }

    private mutating func startTLS() -> Action {
        if tlsActive { return error(554, .init(5, 5, 1), "TLS already active") }
        guard configuration.startTLSAvailable else { return error(454, .init(4, 7, 0), "TLS not available") }
        switch state {
        case .awaitingHello, .ready: break
        default: return badSequence("STARTTLS not allowed during a mail transaction")
        }
        state = .awaitingHello
        return .send([SMTPReply(code: 220, .init(2, 0, 0), "Ready to start TLS")], then: .startTLS)
    }

    // MARK: Mail transaction (RFC 5321 §3.3)

    private mutating func mail(_ path: ReversePath, _ params: [ESMTPParameter]) -> Action {
        switch state {
        case .awaitingHello: return badSequence("send HELO/EHLO first")
        case .ready: break
        case .mailTransaction(let transaction) where transaction.isCollectingRecipients: return badSequence("nested MAIL command")
        default: return badSequence()
        }
        if configuration.requireAuthentication && facts.authenticatedAs == nil {
            return error(530, .init(5, 7, 0), "Authentication required")
        }
        let (transaction, action) = SMTPMailTransactionStateMachine.mailReceived(
            path, params, configuration: configuration, extended: facts.isExtended, authenticated: facts.authenticatedAs != nil)
        guard let transaction else {
            guard case .refuse(let reply) = action else { preconditionFailure("MAIL refused with \(action)") }
            return error(reply)
        }
        return transacting(transaction, action)
    }

    /// The delegate accepted the authenticated session's sender.
    public mutating func senderAccepted() -> Action {
        guard case .mailTransaction(var transaction) = state else { preconditionFailure("senderAccepted() in state \(state)") }
        let action = transaction.senderAccepted()
        return transacting(transaction, action)
    }

    /// The delegate refused the sender with `reply` (`553 5.7.1` not owned, `450 4.7.1` rate limit).
    public mutating func senderRejected(_ reply: SMTPReply) -> Action {
        guard case .mailTransaction(var transaction) = state else { preconditionFailure("senderRejected() in state \(state)") }
        let action = transaction.senderRejected(reply)
        return transacting(transaction, action)
    }

    private mutating func rcpt(_ path: ForwardPath, _ params: [ESMTPParameter]) -> Action {
        guard case .mailTransaction(var transaction) = state, transaction.isCollectingRecipients else {
            if case .awaitingHello = state { return badSequence("send HELO/EHLO first") }
            return badSequence("need MAIL before RCPT")
        }
        let action = transaction.rcptReceived(path, params)
        return transacting(transaction, action)
    }

    private mutating func data(pipelinedBytes: Int) -> Action {
        guard case .mailTransaction(var transaction) = state, transaction.isCollectingRecipients else {
            if case .awaitingHello = state { return badSequence("send HELO/EHLO first") }
            return badSequence("need MAIL before DATA")
        }
        let action = transaction.dataReceived(pipelinedBytes: pipelinedBytes)
        return transacting(transaction, action)
    }

    private mutating func bdat(size: Int, last: Bool) -> Action {
        guard configuration.chunking && facts.isExtended else {
            state = .discardingChunk(error: SMTPReply(code: 503, .init(5, 5, 1), "BDAT not available"))
            return .send([], then: .readChunk(size))
        }
        guard case .mailTransaction(var transaction) = state, transaction.isCollectingRecipients else {
            state = .discardingChunk(error: SMTPReply(code: 503, .init(5, 5, 1), "need MAIL and RCPT before BDAT"))
            return .send([], then: .readChunk(size))
        }
        let action = transaction.bdatReceived(size: size, last: last)
        return transacting(transaction, action)
    }

    /// Runs what the mail transaction asks for: it stays the state while it goes on; its end leaves
    /// the session ready for the next one (or closed).
    private mutating func transacting(_ transaction: SMTPMailTransactionStateMachine,
                                      _ action: SMTPMailTransactionStateMachine.Action) -> Action {
        if case .ended = action {} else { state = .mailTransaction(transaction) }
        switch action {
        case .send(let reply):
            return .send([reply], then: .readCommands)
        case .refuse(let reply):
            return error(reply)
        case .verifySender(let path, let envelope):
            return .verifySender(path, envelope, facts)
        case .verifyRecipient(let path, let envelope):
            return .verifyRecipient(path, envelope, facts)
        case .readData(let reply):
            return .send([reply], then: .readData)
        case .readChunk(let size):
            return .send([], then: .readChunk(size))
        case .appendMessageData(let bytes):
            return .appendMessageData(bytes)
        case .storeMessage(let envelope):
            return .storeMessage(envelope, facts)
        case .none:
            return .none
        case .ended(let ending):
            state = .ready
            switch ending {
            case .refused(let reply):
                return error(reply)
            case .discarded(let reply, let countsAsError):
                if countsAsError { errors += 1 }
                return .discardMessage(reply, then: .readCommands)
            case .closing(let reply):
                state = .closed
                return .send([reply], then: .close)
            case .stored(let queueID):
                let ok = SMTPReply(code: 250, .init(2, 0, 0), "Ok: queued as \(queueID)")
                if shutdownRequested {
                    state = .closed
                    return .send([ok, Self.shuttingDown(configuration.hostname)], then: .close)
                }
                return .send([ok], then: .readCommands)
            case .storeFailed(let reply):
                if shutdownRequested {
                    state = .closed
                    return .send([reply, Self.shuttingDown(configuration.hostname)], then: .close)
                }
                return .send([reply], then: .readCommands)
            }
        }
    }

    // MARK: Helpers

    static func shuttingDown(_ host: String) -> SMTPReply {
        SMTPReply(code: 421, .init(4, 3, 2), "\(host) Service shutting down, closing connection")
    }

    /// `true` when content has been handed to the sink and neither store nor discard has ended it:
    /// DATA in progress, or BDAT chunks accepted in a transaction still waiting for `BDAT … LAST`.
    private var sinkIsOpen: Bool {
        if case .mailTransaction(let transaction) = state { return transaction.sinkIsOpen }
        return false
    }

    /// Turns a single-reply `send` into `discardMessage` when a transaction with an open sink is being
    /// abandoned (RSET, EHLO/HELO, QUIT, shutdown after non-last BDAT chunks), so the adapter drops
    /// the partial content instead of prepending it to the next message.
    private func discardingSink(_ discard: Bool, _ action: Action) -> Action {
        guard discard, case .send(let replies, let then) = action, replies.count == 1 else { return action }
        return .discardMessage(replies[0], then: then)
    }

    private func reply(_ code: Int, _ e: EnhancedStatusCode?, _ text: String) -> Action {
        .send([SMTPReply(code: code, e, text)], then: .readCommands)
    }

    private mutating func badSequence(_ text: String = "Bad sequence of commands") -> Action {
        error(503, .init(5, 5, 1), text)
    }

    private mutating func error(_ code: Int, _ e: EnhancedStatusCode, _ text: String) -> Action {
        error(SMTPReply(code: code, e, text))
    }

    private mutating func error(_ r: SMTPReply) -> Action {
        countingError(.send([r], then: .readCommands), r)
    }

    /// Counts an error; past the limit the session ends with 421 4.7.0.
    private mutating func countingError(_ action: Action, _ r: SMTPReply) -> Action {
        errors += 1
        guard errors > configuration.maximumErrors else { return action }
        let discard = sinkIsOpen
        state = .closed
        let bye = SMTPReply(code: 421, .init(4, 7, 0), "\(configuration.hostname) Error: too many errors")
        if case .discardMessage(let reply, _) = action { return .discardMessage(reply, then: .close) }
        if discard { return .discardMessage(r, then: .close) }
        return .send([r, bye], then: .close)
    }
}

extension SMTPReply {
    /// `421 4.7.0` sent instead of the greeting when the connection limits are reached.
    public static func tooManyConnections(_ host: String) -> SMTPReply {
        SMTPReply(code: 421, .init(4, 7, 0), "\(host) Error: too many connections, try again later")
    }
    /// `554 5.7.1` for a recipient outside our domains from a client that may not relay.
    public static let relayDenied = SMTPReply(code: 554, .init(5, 7, 1), "Relay access denied")
    /// `550 5.1.1` for an unknown local recipient.
    public static let unknownUser = SMTPReply(code: 550, .init(5, 1, 1), "Recipient address rejected: User unknown")
    /// `451 4.3.0` for a local failure whose details go to the log only.
    public static let localError = SMTPReply(code: 451, .init(4, 3, 0), "Local error in processing, try again later")
    /// `452 4.3.1` when storage is full.
    public static let insufficientStorage = SMTPReply(code: 452, .init(4, 3, 1), "Insufficient system storage")
}
