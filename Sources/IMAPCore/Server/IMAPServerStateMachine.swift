import MailCore
import SASL

// IMAPServerStateMachine governs one IMAP session (RFC 9051, RFC 3501 and the extensions in
// `docs/imap.md`). It makes every protocol decision; the adapter parses, runs actions and reports
// what the store did.
//
// States (RFC 9051 §3):
//   notAuthenticated        greeting sent; CAPABILITY NOOP LOGOUT ID STARTTLS LOGIN AUTHENTICATE
//   authenticated           a user is logged in; mailbox commands; SELECT/EXAMINE move to selected
//   selected                a mailbox is open (`selected` holds this session's view of it)
//   logout                  BYE sent; the connection closes
// A command in progress (`running`) is one of: a login or SASL exchange, opening the session, a
// store request (select, list, status, fetch, search, store, copy/move, expunge, append, quota),
// or IDLE. One runs at a time; the adapter does not feed the next command before the action of the
// last one finished (it keeps reads paused while it works).
//
// Actions:
//   send(responses, then:)  write responses; then read commands / a SASL line / IDLE's DONE, accept
//                           or refuse a literal, start TLS or COMPRESS, or close
//   verifyPassword, lookUpSCRAMCredentials  the account check (shared Authenticator)
//   openSession(user)       prepare the account (default folders, connection limit)
//   select, listMailboxes, status, create, delete, rename, subscribe, unsubscribe, fetch, search,
//   sort, thread, store, copy, expunge, beginAppend/commitAppend, quota, unselect
//                           ask the store; each has one completion event
public struct IMAPServerStateMachine: Sendable {
    /// Listener settings.
    public struct Configuration: Hashable, Sendable {
        /// Host name for the greeting.
        public var hostname: String
        /// STARTTLS can be offered.
        public var tlsAvailable: Bool
        /// LOGIN and AUTHENTICATE without TLS (off by default: `LOGINDISABLED`, RFC 9051 §6.2.3).
        public var allowPlaintextAuthentication: Bool
        /// APPENDLIMIT (RFC 7889).
        public var appendLimit: Int
        /// COMPRESS=DEFLATE can be offered (the adapter has the compressor).
        public var compressionAvailable: Bool
        /// Consecutive bad commands before `* BYE` (Dovecot closes after 20).
        public var maxBadCommands: Int
        /// The server's name and version for ID (RFC 2971).
        public var serverID: [IMAPCommand.IDField]

        /// Creates a configuration.
        public init(hostname: String, tlsAvailable: Bool, allowPlaintextAuthentication: Bool = false,
                    appendLimit: Int = 50 * 1_048_576, compressionAvailable: Bool = false, maxBadCommands: Int = 20,
                    serverID: [IMAPCommand.IDField] = [.init(name: "name", value: "Swallow")]) {
            self.hostname = hostname
            self.tlsAvailable = tlsAvailable
            self.allowPlaintextAuthentication = allowPlaintextAuthentication
            self.appendLimit = appendLimit
            self.compressionAvailable = compressionAvailable
            self.maxBadCommands = maxBadCommands
            self.serverID = serverID
        }
    }

    /// What the adapter does after writing.
    public enum Continuation: Hashable, Sendable {
        case readCommands
        /// Read one SASL response line (parser mode `.saslResponse`).
        case readSASLResponse
        /// Read until `DONE` (parser mode `.idle`).
        case readIdle
        /// Call the parser's `literalAccepted()` and read on.
        case acceptLiteral
        /// Call the parser's `literalRejected()` and read on.
        case rejectLiteral
        /// Insert TLS before reading anything more; discard buffered plaintext.
        case startTLS
        /// Insert DEFLATE compression (RFC 4978) before reading or writing anything more.
        case startCompression
        case close
    }

    /// An instruction for the adapter.
    public enum Action: Hashable, Sendable {
        case send([IMAPResponse], then: Continuation)
        case verifyPassword(user: String, password: String)
        case lookUpSCRAMCredentials(user: String)
        /// Prepare `user`'s account; then ``sessionOpened(_:)``.
        case openSession(user: String)
        /// Open `mailbox` (Unicode name); then ``mailboxSelected(_:)``. `qresync` carries the
        /// client's known state (RFC 7162 §3.2.5).
        case select(mailbox: String, readOnly: Bool, qresync: SelectParameters.QResync?)
        /// Release the selected mailbox (UNSELECT, CLOSE after its expunge, a failed SELECT), then send.
        case unselect(then: [IMAPResponse])
        /// Every mailbox of the account; then ``mailboxesListed(_:)``.
        case listMailboxes
        /// STATUS of these mailboxes; then ``statusesFetched(_:)``.
        case status(mailboxes: [String])
        case create(mailbox: String, specialUse: String?)
        case delete(mailbox: String)
        case rename(from: String, to: String)
        case subscribe(mailbox: String)
        case unsubscribe(mailbox: String)
        /// Stream FETCH responses; then ``fetchCompleted(missing:)``.
        case fetch(FetchRequest)
        /// Evaluate a search; then ``searchCompleted(_:)``.
        case search(SearchRequest)
        /// Sort matching messages; then ``sortCompleted(_:)`` with UIDs in order.
        case sort(SearchRequest, criteria: [SortCriterion])
        /// Thread matching messages; then ``threadCompleted(_:)`` with UID trees.
        case thread(SearchRequest, algorithm: String)
        case store(StoreRequest)
        /// COPY or MOVE `uids` to `mailbox`; then ``copyCompleted(_:)``.
        case copy(uids: [UInt32], mailbox: String, move: Bool)
        /// Expunge `\Deleted` messages (only among `uids` for UID EXPUNGE); then ``expungeCompleted(_:)``.
        case expunge(uids: [UInt32]?)
        /// Prepare to receive an APPEND message into `mailbox`; the parser's `appendData` goes to it.
        /// Then send `continuation` (if any) and `then`.
        case beginAppend(mailbox: String, message: AppendMessage, continuation: [IMAPResponse], then: Continuation)
        /// The message is complete: store it; then ``appendCompleted(_:)``.
        case commitAppend
        /// Storage use; then ``quotaFetched(_:)``.
        case quota
        case close
        case none
    }

    enum Running: Sendable {
        case login(tag: String)
        case sasl(tag: String, SASLServer)
        case openSession(tag: String, user: String)
        case select(tag: String, readOnly: Bool, qresync: SelectParameters.QResync?, closedPrevious: Bool)
        case list(tag: String, ListCommand, patterns: [MailboxPattern], lsub: Bool)
        case listStatus(tag: String, items: [IMAPResponse], attributes: [StatusAttribute])
        case status(tag: String, name: String, attributes: [StatusAttribute])
        case mailboxOperation(tag: String, name: String)
        case fetch(tag: String, uid: Bool)
        case search(tag: String, SearchCommand, uid: Bool)
        case sort(tag: String, uid: Bool)
        case thread(tag: String, uid: Bool)
        case store(tag: String, uid: Bool, StoreModification)
        case copy(tag: String, move: Bool, uid: Bool)
        case expunge(tag: String, close: Bool, uid: Bool)
        case appendReceiving(tag: String)
        case appendCommitting(tag: String, mailbox: String)
        /// An APPEND that was refused but whose non-synchronising literal still arrives.
        case appendDiscarding(tag: String)
        case quota(tag: String, mailbox: String?)
        case idle(tag: String)
        case unselect(tag: String)
    }

    enum State: Sendable {
        case notAuthenticated
        case authenticated
        case selected
        case logout
    }

    var state: State = .notAuthenticated
    var running: Running?
    let configuration: Configuration
    var tlsActive: Bool
    /// The logged-in user.
    public internal(set) var user: String?
    var selected: SelectedMailbox?
    /// UIDs of the last `SEARCH RETURN (SAVE)` (RFC 5182), in the selected mailbox.
    var savedSearch: [UInt32] = []
    var badCommands = 0
    var compressionActive = false

    /// `ENABLE`d extensions (RFC 5161).
    public internal(set) var imap4rev2 = false
    public internal(set) var utf8 = false
    public internal(set) var condStore = false
    public internal(set) var qresync = false

    /// A machine for a new connection; `implicitTLS` for the imaps listener (RFC 8314).
    public init(configuration: Configuration, implicitTLS: Bool = false) {
        self.configuration = configuration
        self.tlsActive = implicitTLS
    }

    private var mayAuthenticate: Bool { tlsActive || configuration.allowPlaintextAuthentication }

    /// The encoder options the session needs now.
    public var encoderOptions: IMAPResponseEncoder.Options { .init(utf8: utf8) }

    /// `true` while no command runs (the autologout timer applies; RFC 9051 §5.4).
    public var isIdleBetweenCommands: Bool { running == nil }

    /// `true` in IDLE (updates are pushed as they come).
    public var isIdling: Bool {
        if case .idle = running { return true }
        return false
    }

    /// `true` while an APPEND's message is arriving for a store sink (otherwise a sink the adapter
    /// holds is to be discarded).
    public var isReceivingAppend: Bool {
        if case .appendReceiving = running { return true }
        return false
    }

    /// `true` after a successful login.
    public var isAuthenticated: Bool { state == .authenticated || state == .selected }

    /// The selected mailbox's name (Unicode), for the adapter's update subscription.
    public var selectedMailbox: String? { selected?.name }

    // MARK: Capabilities

    /// The capabilities in the current state (RFC 9051 §7.2.2). Only what works is listed.
    public var capabilities: [String] {
        var caps = ["IMAP4rev1", "IMAP4rev2", "SASL-IR", "LITERAL+", "ID", "ENABLE", "IDLE"]
        if !isAuthenticated {
            if configuration.tlsAvailable, !tlsActive { caps.append("STARTTLS") }
            if mayAuthenticate {
                caps += ["AUTH=PLAIN", "AUTH=SCRAM-SHA-256"]
            } else {
                caps.append("LOGINDISABLED")
            }
            return caps
        }
        caps += ["NAMESPACE", "UNSELECT", "UIDPLUS", "MOVE", "CHILDREN", "LIST-EXTENDED", "LIST-STATUS",
                 "SPECIAL-USE", "CREATE-SPECIAL-USE", "STATUS=SIZE", "ESEARCH", "SEARCHRES", "CONDSTORE", "QRESYNC",
                 "BINARY", "UTF8=ACCEPT", "APPENDLIMIT=\(configuration.appendLimit)", "QUOTA", "QUOTA=RES-STORAGE",
                 "SORT", "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT"]
        if configuration.compressionAvailable, !compressionActive { caps.append("COMPRESS=DEFLATE") }
        return caps
    }

    // MARK: Connection events

    /// The greeting (RFC 9051 §7.1.1): `* OK [CAPABILITY …]`.
    public func connectionEstablished() -> Action {
        .send([.untagged(status: .ok, code: .capability(capabilities), text: "\(configuration.hostname) IMAP server ready (Swallow)")],
              then: .readCommands)
    }

    /// TLS is up (after STARTTLS).
    public mutating func tlsEstablished() {
        tlsActive = true
    }

    /// The server is shutting down: `* BYE` and close (RFC 9051 §7.1.5).
    public mutating func shutdownRequested() -> Action {
        state = .logout
        return .send([.untagged(status: .bye, code: nil, text: "Server shutting down")], then: .close)
    }

    /// The autologout timer fired (RFC 9051 §5.4).
    public mutating func autologoutTimerFired() -> Action {
        state = .logout
        return .send([.untagged(status: .bye, code: nil, text: "Autologout; idle for too long")], then: .close)
    }

    // MARK: Parser items

    /// A command line arrived.
    public mutating func commandReceived(_ command: TaggedCommand) -> Action {
        guard state != .logout else { return .none }
        if running != nil {
            // The adapter feeds one command at a time; anything else is a bug there.
            preconditionFailure("command \(command.command.name) while \(String(describing: running)) runs")
        }
        badCommands = 0
        return dispatch(command.tag, command.command)
    }

    /// The parser could not read a command.
    public mutating func parseFailed(_ error: IMAPParseError) -> Action {
        badCommands += 1
        if case .appendDiscarding = running {
            // The rest of an APPEND that was already answered: no second reply.
            running = nil
            if badCommands >= configuration.maxBadCommands {
                state = .logout
                return .send([.untagged(status: .bye, code: nil, text: "Too many invalid commands")], then: .close)
            }
            return .none
        }
        let code: ResponseCode?
        switch error.kind {
        case .commandTooLong, .literalTooLarge: code = .tooBig
        case .tooDeep: code = .limit
        case .syntax, .unknownCommand, .invalidUTF8: code = .clientBug
        }
        var responses: [IMAPResponse]
        var commandTag = error.tag
        switch running {
        case .idle(let tag):
            // Anything but DONE ends IDLE with a BAD for it (RFC 2177 §3).
            running = nil
            commandTag = tag
        case .appendReceiving(let tag):
            // The line after APPEND's message is malformed: the APPEND fails, its message is dropped.
            running = nil
            commandTag = tag
        case .sasl(let tag, _):
            // An unreadable SASL line (too long) ends the exchange (RFC 9051 §6.2.2).
            running = nil
            pendingUser = nil
            pendingSuccess = false
            commandTag = tag
        default:
            break
        }
        if let tag = commandTag {
            if case .literalTooLarge = error.kind {
                responses = [.tagged(tag: tag, status: .no, code: .tooBig, text: error.message)]
            } else {
                responses = [.tagged(tag: tag, status: .bad, code: code == .clientBug ? nil : code, text: error.message)]
            }
        } else {
            responses = [.untagged(status: .bad, code: code == .clientBug ? nil : code, text: error.message)]
        }
        if badCommands >= configuration.maxBadCommands {
            state = .logout
            responses.append(.untagged(status: .bye, code: nil, text: "Too many invalid commands"))
            return .send(responses, then: .close)
        }
        return .send(responses, then: .readCommands)
    }

    /// A synchronising literal was announced inside a command: `+` lets the client send it.
    public mutating func continuationRequested(tag: String, size: Int) -> Action {
        .send([.continuation("Ready for literal data")], then: .acceptLiteral)
    }

    // MARK: Dispatch

    private mutating func dispatch(_ tag: String, _ command: IMAPCommand) -> Action {
        switch command {
        case .capability:
            return ok(tag, [.capability(capabilities)], "CAPABILITY completed")
        case .noop, .check:
            if case .check = command, state != .selected { return wrongState(tag, command) }
            return ok(tag, [], "\(command.name) completed")
        case .logout:
            state = .logout
            return .send([.untagged(status: .bye, code: nil, text: "Logging out"),
                          .tagged(tag: tag, status: .ok, code: nil, text: "LOGOUT completed")], then: .close)
        case .id:
            return ok(tag, [.id(configuration.serverID)], "ID completed")
        case .startTLS:
            guard state == .notAuthenticated else { return wrongState(tag, command) }
            guard configuration.tlsAvailable, !tlsActive else {
                return .send([.tagged(tag: tag, status: .bad, code: nil, text: tlsActive ? "TLS is already active" : "STARTTLS is not available")],
                             then: .readCommands)
            }
            return .send([.tagged(tag: tag, status: .ok, code: nil, text: "Begin TLS negotiation now")], then: .startTLS)
        case .login(let user, let password):
            guard state == .notAuthenticated else { return wrongState(tag, command) }
            guard mayAuthenticate else { return plaintextRefused(tag) }
            running = .login(tag: tag)
            return .verifyPassword(user: user, password: password)
        case .authenticate(let mechanism, let initialResponse):
            guard state == .notAuthenticated else { return wrongState(tag, command) }
            guard mayAuthenticate else { return plaintextRefused(tag) }
            return startSASL(tag, mechanism: mechanism, initialResponse: initialResponse)
        default:
            guard isAuthenticated else {
                return .send([.tagged(tag: tag, status: .bad, code: nil, text: "\(command.name) needs a login first")], then: .readCommands)
            }
            return dispatchAuthenticated(tag, command)
        }
    }

    // MARK: Authentication

    private mutating func startSASL(_ tag: String, mechanism: String, initialResponse: String?) -> Action {
        guard let mech = SASLServer.Mechanism(name: mechanism), mech != .login else {
            return .send([.tagged(tag: tag, status: .no, code: .cannot, text: "Unsupported authentication mechanism")], then: .readCommands)
        }
        var sasl = SASLServer()
        var initial: [UInt8]?
        if let ir = initialResponse {
            if ir == "=" {
                initial = []
            } else {
                guard let bytes = Base64.decode(ir) else {
                    return .send([.tagged(tag: tag, status: .bad, code: nil, text: "Invalid base64 in initial response")], then: .readCommands)
                }
                initial = bytes
            }
        }
        let action = sasl.start(mechanism: mech.rawValue, initialResponse: initial)
        return saslStep(tag, sasl, action)
    }

    /// A line during AUTHENTICATE (RFC 9051 §6.2.2): base64, or `*` to cancel.
    public mutating func saslResponseReceived(_ line: String) -> Action {
        guard case .sasl(let tag, var sasl) = running else { preconditionFailure("SASL response without an exchange") }
        if pendingSuccess {
            // The answer to the SCRAM server-final continuation must be empty (RFC 9051 §6.2.2).
            guard line.isEmpty else {
                running = nil
                pendingSuccess = false
                pendingUser = nil
                return .send([.tagged(tag: tag, status: .bad, code: nil, text: "Unexpected SASL response")], then: .readCommands)
            }
            return finishPendingSuccess(tag)
        }
        if line == "*" {
            running = nil
            return .send([.tagged(tag: tag, status: .bad, code: nil, text: "AUTHENTICATE cancelled")], then: .readCommands)
        }
        guard let bytes = Base64.decode(line) else {
            running = nil
            return .send([.tagged(tag: tag, status: .bad, code: nil, text: "Invalid base64 in SASL response")], then: .readCommands)
        }
        let action = sasl.responseReceived(bytes)
        return saslStep(tag, sasl, action)
    }

    private mutating func saslStep(_ tag: String, _ sasl: SASLServer, _ action: SASLServer.Action) -> Action {
        switch action {
        case .challenge(let bytes):
            running = .sasl(tag: tag, sasl)
            return .send([.continuation(Base64.encode(bytes))], then: .readSASLResponse)
        case .verifyPassword(_, let user, let password):
            running = .sasl(tag: tag, sasl)
            pendingUser = user
            return .verifyPassword(user: user, password: password)
        case .lookUpSCRAMCredentials(let user):
            running = .sasl(tag: tag, sasl)
            pendingUser = user
            return .lookUpSCRAMCredentials(user: user)
        case .succeed(let data):
            guard let user = pendingUser else { preconditionFailure("SASL success without a user") }
            running = .openSession(tag: tag, user: user)
            if let data, !data.isEmpty {
                // RFC 9051 §6.2.2: additional data with success goes in a final continuation… but
                // RFC 4959 lets it ride in the challenge; clients expect the SCRAM server-final as
                // a challenge they answer with an empty line.
                running = .sasl(tag: tag, sasl)
                pendingSuccess = true
                return .send([.continuation(Base64.encode(data))], then: .readSASLResponse)
            }
            return .openSession(user: user)
        case .fail(let failure):
            running = nil
            pendingUser = nil
            switch failure {
            case .malformed, .scram:
                return .send([.tagged(tag: tag, status: .bad, code: nil, text: "Malformed SASL message")], then: .readCommands)
            case .unsupportedMechanism:
                return .send([.tagged(tag: tag, status: .no, code: .cannot, text: "Unsupported authentication mechanism")], then: .readCommands)
            case .cancelled:
                return .send([.tagged(tag: tag, status: .bad, code: nil, text: "AUTHENTICATE cancelled")], then: .readCommands)
            case .invalidCredentials, .authorizationIdentityMismatch:
                return authenticationFailed(tag)
            }
        }
    }

    var pendingUser: String?
    var pendingSuccess = false


    /// The password check finished.
    public mutating func passwordVerified(_ accepted: Bool, user: String) -> Action {
        switch running {
        case .login(let tag):
            running = nil
            guard accepted else { return authenticationFailed(tag) }
            running = .openSession(tag: tag, user: user)
            return .openSession(user: user)
        case .sasl(let tag, var sasl):
            let action = accepted ? sasl.passwordAccepted() : sasl.passwordRejected()
            return saslStep(tag, sasl, action)
        default:
            preconditionFailure("password result without a login")
        }
    }

    /// SCRAM credentials were looked up (decoys for an unknown user).
    public mutating func scramCredentialsFound(_ credentials: SCRAMCredentials, userExists: Bool) -> Action {
        guard case .sasl(let tag, var sasl) = running else { preconditionFailure("SCRAM credentials without an exchange") }
        let action = sasl.scramCredentialsFound(credentials, userExists: userExists)
        return saslStep(tag, sasl, action)
    }

    /// The client answered the SCRAM server-final continuation (an empty line).
    private mutating func finishPendingSuccess(_ tag: String) -> Action {
        pendingSuccess = false
        guard let user = pendingUser else { preconditionFailure("SASL success without a user") }
        running = .openSession(tag: tag, user: user)
        return .openSession(user: user)
    }

    /// The account was prepared (or refused: too many connections, store unavailable).
    public mutating func sessionOpened(_ result: Result<Void, MailboxError>) -> Action {
        guard case .openSession(let tag, let user) = running else { preconditionFailure("sessionOpened without a login") }
        running = nil
        pendingUser = nil
        switch result {
        case .success:
            self.user = user
            state = .authenticated
            return .send([.tagged(tag: tag, status: .ok, code: .capability(capabilities), text: "Logged in")], then: .readCommands)
        case .failure(.limit(let why)):
            state = .logout
            return .send([.tagged(tag: tag, status: .no, code: .limit, text: why),
                          .untagged(status: .bye, code: nil, text: why)], then: .close)
        case .failure(let error):
            return .send([.tagged(tag: tag, status: .no, code: Self.code(error), text: "Mailbox storage is unavailable")], then: .readCommands)
        }
    }

    private mutating func authenticationFailed(_ tag: String) -> Action {
        .send([.tagged(tag: tag, status: .no, code: .authenticationFailed, text: "Authentication failed")], then: .readCommands)
    }

    private func plaintextRefused(_ tag: String) -> Action {
        .send([.tagged(tag: tag, status: .no, code: .privacyRequired, text: "Plaintext authentication disallowed on non-secure connections; use STARTTLS")],
              then: .readCommands)
    }

    // MARK: Helpers shared by the command files

    /// `tag OK text` after `responses`, with the selected mailbox's pending changes announced first
    /// when `expungesAllowed` (every completion except FETCH/STORE/SEARCH without UID, §7.5.1).
    mutating func ok(_ tag: String, _ responses: [IMAPResponse], _ text: String, code: ResponseCode? = nil,
                     expungesAllowed: Bool = true) -> Action {
        finish(tag, responses, .ok, code, text, expungesAllowed: expungesAllowed)
    }

    mutating func finish(_ tag: String, _ responses: [IMAPResponse], _ status: IMAPStatus, _ code: ResponseCode?, _ text: String,
                         expungesAllowed: Bool = true, then: Continuation = .readCommands) -> Action {
        running = nil
        var out = responses
        if var s = selected {
            out += s.flush(expungesAllowed: expungesAllowed, vanished: qresync, condStore: condStore, imap4rev2: imap4rev2)
            selected = s
        }
        out.append(.tagged(tag: tag, status: status, code: code, text: text))
        return .send(out, then: then)
    }

    mutating func no(_ tag: String, _ error: MailboxError, _ text: String? = nil) -> Action {
        finish(tag, [], .no, Self.code(error), text ?? Self.text(error))
    }

    func bad(_ tag: String, _ text: String, code: ResponseCode? = nil) -> Action {
        .send([.tagged(tag: tag, status: .bad, code: code, text: text)], then: .readCommands)
    }

    func wrongState(_ tag: String, _ command: IMAPCommand) -> Action {
        let text: String
        switch state {
        case .notAuthenticated: text = "\(command.name) needs a login first"
        case .authenticated: text = state == .authenticated && Self.needsSelection(command) ? "\(command.name) needs a selected mailbox" : "\(command.name) is not valid after login"
        case .selected: text = "\(command.name) is not valid in the selected state"
        case .logout: text = "Logging out"
        }
        return .send([.tagged(tag: tag, status: .bad, code: nil, text: text)], then: .readCommands)
    }

    static func needsSelection(_ command: IMAPCommand) -> Bool {
        switch command {
        case .check, .close, .unselect, .expunge, .uidExpunge, .search, .fetch, .store, .copy, .move, .sort, .thread: true
        default: false
        }
    }

    static func code(_ error: MailboxError) -> ResponseCode {
        switch error {
        case .nonexistent: .nonexistent
        case .alreadyExists: .alreadyExists
        case .hasChildren: .hasChildren
        case .cannot: .cannot
        case .overQuota: .overQuota
        case .inUse: .inUse
        case .noPermission: .noPerm
        case .limit: .limit
        case .expungeIssued: .expungeIssued
        case .unknownTransferEncoding: .unknownCTE
        case .unavailable: .unavailable
        }
    }

    static func text(_ error: MailboxError) -> String {
        switch error {
        case .nonexistent: "Mailbox does not exist"
        case .alreadyExists: "Mailbox already exists"
        case .hasChildren: "Mailbox has children; delete them first"
        case .cannot(let why): why
        case .overQuota: "Quota exceeded"
        case .inUse: "Mailbox is in use"
        case .noPermission: "Permission denied"
        case .limit(let why): why
        case .expungeIssued: "Some messages were expunged meanwhile"
        case .unknownTransferEncoding: "Unknown Content-Transfer-Encoding"
        case .unavailable: "Temporary storage failure; try again later"
        }
    }

    /// Decodes a mailbox name sent by the client (modified UTF-7 unless UTF-8 is on); `INBOX` in
    /// any case becomes `INBOX`, also as a hierarchy prefix. `nil` for a broken name.
    func decode(_ name: MailboxName) -> String? {
        let unicode: String
        if utf8 {
            unicode = name.wire
        } else {
            guard let decoded = ModifiedUTF7.decode(name.wire) else { return nil }
            unicode = decoded
        }
        if unicode.utf8.count >= 5, unicode.prefix(5).uppercased() == "INBOX", unicode.count == 5 || unicode.dropFirst(5).first == "/" {
            return "INBOX" + unicode.dropFirst(5)
        }
        return unicode
    }

    /// The wire form of a Unicode mailbox name for this session.
    func encode(_ name: String) -> String {
        utf8 ? name : ModifiedUTF7.encode(name)
    }

}
