import MailCore
import SASL

// POP3ServerStateMachine governs one POP3 session (RFC 1939, 2449, 2595, 3206, 5034).
//
// States:
//   authorization(user:)    greeting sent; USER/PASS, AUTH, CAPA, STLS, QUIT
//   saslResponse(exchange)  "+ " sent for AUTH PLAIN; the next line is the client's response, for the
//                           SASLServer exchange (SASL's one decoder of PLAIN)
//   authenticating          credentials (USER/PASS, or from the exchange) handed to the delegate
//   openingMaildrop         authenticated; the maildrop is being locked and listed
//   transaction             STAT LIST RETR DELE NOOP RSET TOP UIDL QUIT CAPA
//   updating                QUIT received; deletions being applied
//   closed
//
// Actions:
//   send(response, then:)   write a status line, then continue / close / start TLS / read a SASL line
//   sendLines(response, lines)  a status line and a dot-terminated list (CAPA, LIST, UIDL)
//   authenticate(user, password) ask the delegate; then authenticationSucceeded/Failed
//   openMaildrop(user)      lock and list; then maildropOpened / maildropUnavailable
//   sendMessage(index, topLines)  messageResponse(…) then stream message `index` (0-based) dot-stuffed,
//                           then "."; then messageSent (or messageUnavailable before the "+OK")
//   update(deleted:)        apply deletions; then updateFinished
//   close                   drop the connection without a reply (autologout)
public struct POP3ServerStateMachine: Sendable {
    /// Listener settings.
    public struct Configuration: Hashable, Sendable {
        /// Host name for the greeting.
        public var hostname: String
        /// STLS can be offered.
        public var tlsAvailable: Bool
        /// USER/PASS and AUTH are accepted without TLS (off by default, RFC 2595 §2.2, RFC 8314).
        public var allowPlaintextAuthentication: Bool

        /// Creates a configuration.
        public init(hostname: String, tlsAvailable: Bool, allowPlaintextAuthentication: Bool = false) {
            self.hostname = hostname
            self.tlsAvailable = tlsAvailable
            self.allowPlaintextAuthentication = allowPlaintextAuthentication
        }
    }

    /// What to do after writing a response.
    public enum Continuation: Hashable, Sendable {
        case readCommands
        case close
        /// Insert TLS before reading anything more; discard buffered plaintext.
        case startTLS
        /// The next line is a SASL response, not a command.
        case readSASLResponse
    }

    /// An instruction for the adapter.
    public enum Action: Hashable, Sendable {
        case send(POP3Response, then: Continuation)
        case sendLines(POP3Response, [String])
        case authenticate(user: String, password: String)
        case openMaildrop(user: String)
        case sendMessage(index: Int, topLines: Int?)
        case update(deleted: [Int])
        case close
        case none
    }

    /// One message of the maildrop snapshot.
    public struct MessageInfo: Hashable, Sendable {
        /// Size with CRLF line ends.
        public var size: Int
        /// Unique, stable ID (RFC 1939 §7: 1–70 characters 0x21–0x7E).
        public var uid: String

        /// Creates message facts.
        public init(size: Int, uid: String) {
            self.size = size
            self.uid = uid
        }
    }

    private enum State: Sendable {
        case authorization(user: String?)
        case saslResponse(SASLServer)
        /// `exchange` is the AUTH exchange that produced the credentials; `nil` for USER/PASS.
        case authenticating(user: String, exchange: SASLServer?)
        case openingMaildrop(user: String)
        case transaction(messages: [MessageInfo], deleted: Set<Int>)
        case updating
        case closed
    }

    private var state: State = .authorization(user: nil)
    private let configuration: Configuration
    private var tlsActive: Bool
    /// Messages sent whole by RETR: UPDATE marks them seen.
    public private(set) var retrievedMessages = Set<Int>()
    /// RETR commands answered in full (for the `disconnect` record).
    public private(set) var retrievals = 0

    /// A machine for a new connection; `implicitTLS` for the pop3s listener (RFC 8314).
    public init(configuration: Configuration, implicitTLS: Bool = false) {
        self.configuration = configuration
        self.tlsActive = implicitTLS
    }

    private var mayAuthenticate: Bool { tlsActive || configuration.allowPlaintextAuthentication }

    /// `true` in the TRANSACTION state (the autologout timer then closes silently).
    public var isInTransaction: Bool {
        if case .transaction = state { return true }
        return false
    }

    /// `true` while UPDATE applies deletions (the maildrop stays locked until it finishes).
    public var isUpdating: Bool {
        if case .updating = state { return true }
        return false
    }

    /// The greeting (RFC 1939 §4).
    public func connectionEstablished() -> Action {
        .send(.ok("\(configuration.hostname) POP3 server ready (Swallow)"), then: .readCommands)
    }

    /// A line arrived that was too long.
    public mutating func lineTooLong() -> Action {
        if case .saslResponse = state { state = .authorization(user: nil) }
        return .send(.err("Line too long"), then: .readCommands)
    }

    /// A whole line arrived: the client's response in an AUTH exchange, or a command.
    public mutating func lineReceived(_ line: [UInt8]) -> Action {
        if case .saslResponse = state { return saslResponseReceived(line) }
        return commandReceived(POP3Command.parse(line))
    }

    /// A command line parsed (or not).
    public mutating func commandReceived(_ parsed: Result<POP3Command, POP3CommandError>) -> Action {
        let command: POP3Command
        switch parsed {
        case .success(let c): command = c
        case .failure(.unknownCommand): return .send(.err("Unknown command"), then: .readCommands)
        case .failure(.syntax(let k)): return .send(.err("Syntax error in \(k) arguments"), then: .readCommands)
        case .failure(.invalidCharacters): return .send(.err("Invalid characters in command"), then: .readCommands)
        case .failure(.lineTooLong): return lineTooLong()
        }
        switch (state, command) {
        case (.closed, _), (.updating, _), (.authenticating, _), (.openingMaildrop, _), (.saslResponse, _):
            return .none
        case (_, .capa):
            return .sendLines(.ok("Capability list follows"), capabilities())
        case (.authorization, .quit):
            state = .closed
            return .send(.ok("\(configuration.hostname) POP3 server signing off"), then: .close)
        case (.authorization, .stls):
            if tlsActive { return .send(.err("TLS already active"), then: .readCommands) }
            guard configuration.tlsAvailable else { return .send(.err("TLS not available"), then: .readCommands) }
            state = .authorization(user: nil)
            return .send(.ok("Begin TLS negotiation"), then: .startTLS)
        case (.authorization, .user(let name)):
            guard mayAuthenticate else { return plaintextRefused() }
            state = .authorization(user: name)
            return .send(.ok("Send your password"), then: .readCommands)
        case (.authorization(let user), .pass(let password)):
            guard mayAuthenticate else { return plaintextRefused() }
            guard let user else { return .send(.err("USER first"), then: .readCommands) }
            state = .authenticating(user: user, exchange: nil)
            return .authenticate(user: user, password: password)
        case (.authorization, .auth(nil, _)):
            return .sendLines(.ok("Supported mechanisms"), mayAuthenticate ? ["PLAIN"] : [])
        case (.authorization(let user), .auth(let mechanism?, let initial)):
            guard mayAuthenticate else { return plaintextRefused() }
            guard mechanism == "PLAIN" else { return unsupportedMechanism() }
            var exchange = SASLServer()
            guard let initial else {
                let action = exchange.start(mechanism: mechanism, initialResponse: nil)
                return authenticating(exchange, action, malformedLeaves: .authorization(user: user))
            }
            // RFC 5034 §4: "=" is an empty initial response.
            guard let bytes = Base64.decode(initial == "=" ? "" : initial) else { return invalidBase64() }
            let action = exchange.start(mechanism: mechanism, initialResponse: bytes)
            return authenticating(exchange, action, malformedLeaves: .authorization(user: user))
        case (.authorization, .apop):
            return .send(.err("APOP not supported"), then: .readCommands)
        case (.authorization, _):
            return .send(.err("Not authenticated"), then: .readCommands)

        case (.transaction, .user), (.transaction, .pass), (.transaction, .auth), (.transaction, .apop), (.transaction, .stls):
            return .send(.err("Already authenticated"), then: .readCommands)
        case (.transaction(_, let deleted), .quit):
            state = .updating
            return .update(deleted: deleted.sorted())
        case (.transaction(let messages, let deleted), .stat):
            let live = messages.indices.filter { !deleted.contains($0) }
            return .send(.ok("\(live.count) \(live.reduce(0) { $0 + messages[$1].size })"), then: .readCommands)
        case (.transaction(let messages, let deleted), .list(nil)):
            let lines = messages.indices.filter { !deleted.contains($0) }.map { "\($0 + 1) \(messages[$0].size)" }
            return .sendLines(.ok("\(lines.count) messages"), lines)
        case (.transaction(let messages, let deleted), .list(let n?)):
            guard let i = index(n, messages, deleted) else { return noSuchMessage() }
            return .send(.ok("\(n) \(messages[i].size)"), then: .readCommands)
        case (.transaction(let messages, let deleted), .uidl(nil)):
            let lines = messages.indices.filter { !deleted.contains($0) }.map { "\($0 + 1) \(messages[$0].uid)" }
            return .sendLines(.ok("Unique-ID listing follows"), lines)
        case (.transaction(let messages, let deleted), .uidl(let n?)):
            guard let i = index(n, messages, deleted) else { return noSuchMessage() }
            return .send(.ok("\(n) \(messages[i].uid)"), then: .readCommands)
        case (.transaction(let messages, let deleted), .retr(let n)):
            guard let i = index(n, messages, deleted) else { return noSuchMessage() }
            return .sendMessage(index: i, topLines: nil)
        case (.transaction(let messages, let deleted), .top(let n, let lines)):
            guard let i = index(n, messages, deleted) else { return noSuchMessage() }
            return .sendMessage(index: i, topLines: lines)
        case (.transaction(let messages, var deleted), .dele(let n)):
            guard let i = index(n, messages, deleted) else { return noSuchMessage() }
            deleted.insert(i)
            state = .transaction(messages: messages, deleted: deleted)
            return .send(.ok("Message \(n) deleted"), then: .readCommands)
        case (.transaction(let messages, _), .rset):
            state = .transaction(messages: messages, deleted: [])
            return .send(.ok("\(messages.count) messages"), then: .readCommands)
        case (.transaction, .noop):
            return .send(.ok(""), then: .readCommands)
        }
    }

    /// The line after `+ ` in an AUTH exchange (base64, or `*` to cancel).
    public mutating func saslResponseReceived(_ line: [UInt8]) -> Action {
        guard case .saslResponse(var exchange) = state else { preconditionFailure("saslResponseReceived in state \(state)") }
        state = .authorization(user: nil)
        let text = String(decoding: line, as: UTF8.self)
        if text == "*" {
            let action = exchange.cancelReceived()
            return authenticating(exchange, action, malformedLeaves: .authorization(user: nil))
        }
        guard let bytes = Base64.decode(text) else { return invalidBase64() }
        let action = exchange.responseReceived(bytes)
        return authenticating(exchange, action, malformedLeaves: .authorization(user: nil))
    }

    /// The delegate accepted the credentials.
    public mutating func authenticationSucceeded() -> Action {
        guard case .authenticating(let user, let exchange) = state else {
            preconditionFailure("authenticationSucceeded in state \(state)")
        }
        if var exchange {
            guard case .succeed = exchange.passwordAccepted() else { preconditionFailure("AUTH PLAIN did not succeed") }
        }
        state = .openingMaildrop(user: user)
        return .openMaildrop(user: user)
    }

    /// The delegate refused (same answer whether or not the user exists, RFC 3206 §5 [AUTH]).
    public mutating func authenticationFailed() -> Action {
        guard case .authenticating = state else { preconditionFailure("authenticationFailed in state \(state)") }
        state = .authorization(user: nil)
        return .send(.err("Authentication failed", code: "AUTH"), then: .readCommands)
    }

    /// The maildrop is locked and listed (a snapshot: later arrivals show next session).
    public mutating func maildropOpened(_ messages: [MessageInfo]) -> Action {
        guard case .openingMaildrop = state else { preconditionFailure("maildropOpened in state \(state)") }
        state = .transaction(messages: messages, deleted: [])
        let total = messages.reduce(0) { $0 + $1.size }
        return .send(.ok("Logged in: \(messages.count) messages (\(total) octets)"), then: .readCommands)
    }

    /// The maildrop could not be opened: `inUse` → `[IN-USE]`, otherwise `[SYS/TEMP]`.
    public mutating func maildropUnavailable(inUse: Bool) -> Action {
        guard case .openingMaildrop = state else { preconditionFailure("maildropUnavailable in state \(state)") }
        state = .authorization(user: nil)
        return inUse ? .send(.err("Mailbox is locked by another session", code: "IN-USE"), then: .readCommands)
            : .send(.err("Mailbox temporarily unavailable", code: "SYS/TEMP"), then: .readCommands)
    }

    /// The status line before message `index` of a ``Action/sendMessage(index:topLines:)``.
    public func messageResponse(index: Int, topLines: Int?) -> POP3Response {
        guard topLines == nil else { return .ok("Top of message follows") }
        guard case .transaction(let messages, _) = state else { preconditionFailure("messageResponse in state \(state)") }
        return .ok("\(messages[index].size) octets")
    }

    /// Message `index` went out whole (with its final "."); a RETR marks it retrieved (seen at UPDATE).
    public mutating func messageSent(index: Int, topLines: Int?) {
        guard topLines == nil else { return }
        retrievedMessages.insert(index)
        retrievals += 1
    }

    /// Streaming a message failed (file vanished or unreadable).
    public func messageUnavailable() -> Action {
        .send(.err("Message could not be read", code: "SYS/TEMP"), then: .readCommands)
    }

    /// Deletions applied (or not): the session ends either way (RFC 1939 §6).
    public mutating func updateFinished(success: Bool) -> Action {
        guard case .updating = state else { preconditionFailure("updateFinished in state \(state)") }
        state = .closed
        return success ? .send(.ok("\(configuration.hostname) POP3 server signing off"), then: .close)
            : .send(.err("Some deleted messages were not removed", code: "SYS/TEMP"), then: .close)
    }

    /// STLS handshake done: forget everything (RFC 2595 §4).
    public mutating func tlsEstablished() -> Action {
        tlsActive = true
        state = .authorization(user: nil)
        return .none
    }

    /// The autologout timer fired (RFC 1939 §3): close without UPDATE and without a reply.
    public mutating func timeoutFired() -> Action {
        switch state {
        case .closed, .updating: return .none
        default:
            state = .closed
            return .close
        }
    }

    /// Server shutdown: sessions outside TRANSACTION end at once; in TRANSACTION nothing is deleted.
    public mutating func shutdownRequested() -> Action {
        switch state {
        case .closed, .updating: return .none
        default:
            state = .closed
            return .send(.err("Server shutting down", code: "SYS/TEMP"), then: .close)
        }
    }

    /// The drain deadline passed: close without a reply (an UPDATE in flight still completes).
    public mutating func shutdownDeadlinePassed() -> Action {
        if !isUpdating { state = .closed }
        return .close
    }

    // MARK: Helpers

    /// Turns what the SASL exchange says into POP3 (RFC 5034 §4): challenges as `+ ` lines, failures
    /// as `-ERR`. A malformed response leaves the session in `malformedLeaves` (an initial response
    /// keeps a USER given before it); every other failure forgets the user.
    private mutating func authenticating(_ exchange: SASLServer, _ action: SASLServer.Action, malformedLeaves: State) -> Action {
        switch action {
        case .challenge(let challenge):
            state = .saslResponse(exchange)
            return .send(.continuation(Base64.encode(challenge)), then: .readSASLResponse)
        case .verifyPassword(_, let user, let password):
            state = .authenticating(user: user, exchange: exchange)
            return .authenticate(user: user, password: password)
        case .fail(.malformed):
            state = malformedLeaves
            return .send(.err("Malformed AUTH PLAIN response"), then: .readCommands)
        case .fail(.cancelled):
            state = .authorization(user: nil)
            return .send(.err("Authentication cancelled"), then: .readCommands)
        case .fail(.unsupportedMechanism):
            return unsupportedMechanism()
        case .fail(.authorizationIdentityMismatch), .fail(.invalidCredentials), .fail(.scram):
            state = .authorization(user: nil)
            return .send(.err("Authentication failed", code: "AUTH"), then: .readCommands)
        case .lookUpSCRAMCredentials, .succeed:
            preconditionFailure("\(action) from AUTH PLAIN")
        }
    }

    private func invalidBase64() -> Action {
        .send(.err("Invalid base64 in AUTH PLAIN response"), then: .readCommands)
    }

    private func unsupportedMechanism() -> Action {
        .send(.err("Unsupported authentication mechanism"), then: .readCommands)
    }

    private func plaintextRefused() -> Action {
        .send(.err("Plaintext authentication disallowed on non-secure connections; use STLS", code: "AUTH"), then: .readCommands)
    }

    private func noSuchMessage() -> Action {
        .send(.err("No such message"), then: .readCommands)
    }

    private func index(_ n: Int, _ messages: [MessageInfo], _ deleted: Set<Int>) -> Int? {
        guard n >= 1, n <= messages.count, !deleted.contains(n - 1) else { return nil }
        return n - 1
    }

    private func capabilities() -> [String] {
        var caps = ["TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER",
                    "IMPLEMENTATION Swallow"]
        if mayAuthenticate { caps.insert("SASL PLAIN", at: 3) }
        if configuration.tlsAvailable && !tlsActive { caps.append("STLS") }
        return caps
    }
}
