import MailCore
import SASL

// SMTPAuthenticationStateMachine governs one AUTH exchange (RFC 4954) inside an SMTP session, from the
// AUTH command the session machine accepted to `235` or a refusal; the session machine holds it in
// its `.authenticating` state. PLAIN and LOGIN run through SASL's `SASLServer`, the one place their
// responses are decoded; any other offered mechanism (SCRAM-SHA-256) is run by the delegate's
// exchange, one decoded response at a time (that exchange is again a `SASLServer`, with the stored
// SCRAM credentials). What is SMTP's own lives here: `334` + base64 challenges, base64 responses, `=`
// for an empty response, `*` to cancel, additional success data as a last `334` answered by an empty
// line (§4), and the refusal replies.
//
// States:
//   sasl(SASLServer)                 PLAIN/LOGIN: a 334 is out; the client's line is next
//   verifyingPassword(SASLServer)    PLAIN/LOGIN: the delegate checks the password
//   exchange(mechanism, started)     delegate-run: a 334 is out; the client's line is next
//   verifyingExchange(mechanism)     delegate-run: the delegate's exchange has the response
//   finalAcknowledgement(user)       additional success data went out in a 334; the empty line is next
//   finished                         over (the session machine has left `.authenticating`)
//
// Actions:
//   challenge(reply)                          send this 334; the next line is a SASL response
//   authenticate(mechanism, user, password)   ask the delegate; then authenticationSucceeded/Failed
//   saslResponse(mechanism, response, first)  hand the response to the delegate's exchange (a new one
//                                             when `first`); then saslChallenge/authenticationSucceeded/Failed
//   succeeded(user)                           authenticated as `user`: the session sends 235
//   failed(reply)                             the exchange failed with this reply

/// One SMTP AUTH exchange (RFC 4954), a child of ``SMTPServerStateMachine``.
///
/// - SeeAlso: RFC 4954 §4, RFC 4422 §3 (SASL framing), RFC 4616 (PLAIN)
struct SMTPAuthenticationStateMachine: Sendable {
    /// What the session machine does next.
    enum Action: Hashable, Sendable {
        /// Send this `334` and read the next line as a SASL response.
        case challenge(SMTPReply)
        /// Ask the delegate to check this user name and password (PLAIN, LOGIN).
        case authenticate(mechanism: String, user: String, password: String)
        /// Hand this decoded response to the delegate's exchange for `mechanism` (new when `first`).
        case saslResponse(mechanism: String, response: [UInt8], first: Bool)
        /// Authenticated as `user` (the canonical login name).
        case succeeded(user: String)
        /// The exchange is over without authentication; send this reply.
        case failed(SMTPReply)
    }

    private enum State: Sendable {
        case sasl(SASLServer)
        case verifyingPassword(SASLServer)
        case exchange(mechanism: String, started: Bool)
        case verifyingExchange(mechanism: String)
        case finalAcknowledgement(user: String)
        case finished
    }

    /// `501 5.5.2`: a response that is not base64 (or, for LOGIN, not a usable name or password).
    static let invalidBase64 = SMTPReply(code: 501, .init(5, 5, 2), "Invalid base64 in AUTH response")
    /// `501 5.5.2`: a PLAIN response that does not follow RFC 4616's grammar.
    static let malformedPlain = SMTPReply(code: 501, .init(5, 5, 2), "Malformed AUTH PLAIN response")
    /// `535 5.7.8`: wrong credentials, a foreign authorization identity, a bad last acknowledgement.
    static let invalidCredentials = SMTPReply(code: 535, .init(5, 7, 8), "Authentication credentials invalid")
    /// `501 5.7.0`: the client sent `*`.
    static let cancelled = SMTPReply(code: 501, .init(5, 7, 0), "Authentication cancelled")
    /// `504 5.5.4`: a mechanism we do not run.
    static let unrecognized = SMTPReply(code: 504, .init(5, 5, 4), "Unrecognized authentication type")

    private var state: State
    /// The mechanism's name as offered (upper case).
    let mechanism: String

    /// An exchange for `mechanism` (already checked against the offered list, upper case).
    init(mechanism: String) {
        self.mechanism = mechanism
        self.state = .finished  // nothing to answer until start(initialResponse:)
    }

    /// `true` while the delegate is deciding (no line may arrive; shutdown waits).
    var isVerifying: Bool {
        switch state {
        case .verifyingPassword, .verifyingExchange: true
        case .sasl, .exchange, .finalAcknowledgement, .finished: false
        }
    }

    // MARK: Events

    /// The AUTH command, with its initial response (base64, `=` for an empty one) when given.
    mutating func start(initialResponse: String?) -> Action {
        let bytes: [UInt8]?
        if let initialResponse {
            guard let decoded = Self.decode(initialResponse, equalsSignIsEmpty: true) else { return fail(Self.invalidBase64) }
            bytes = decoded
        } else {
            bytes = nil
        }
        switch SASLServer.Mechanism(name: mechanism) {
        case .plain, .login:
            // SMTP has always let an empty PLAIN password reach the delegate (which refuses it with 535).
            var sasl = SASLServer(configuration: .init(plainRequiresPassword: false))
            let action = sasl.start(mechanism: mechanism, initialResponse: bytes)
            return run(sasl, action)
        case .scramSHA256, nil:
            guard let bytes else {
                state = .exchange(mechanism: mechanism, started: false)
                return .challenge(SMTPReply(code: 334, nil, ""))
            }
            state = .verifyingExchange(mechanism: mechanism)
            return .saslResponse(mechanism: mechanism, response: bytes, first: true)
        }
    }

    /// A line after a `334`: base64, or `*` to cancel.
    mutating func lineReceived(_ line: [UInt8]) -> Action {
        let text = String(decoding: line, as: UTF8.self)
        switch state {
        case .sasl(var sasl):
            if text == "*" { return run(sasl, sasl.cancelReceived()) }
            // `=` as an empty PLAIN response: accepted in the continuation too, as it always was.
            guard let bytes = Self.decode(text, equalsSignIsEmpty: sasl.mechanism == .plain) else {
                return fail(Self.invalidBase64)
            }
            let action = sasl.responseReceived(bytes)
            return run(sasl, action)
        case .exchange(let mechanism, let started):
            if text == "*" { return fail(Self.cancelled) }
            guard let bytes = Base64.decode(text) else { return fail(Self.invalidBase64) }
            state = .verifyingExchange(mechanism: mechanism)
            return .saslResponse(mechanism: mechanism, response: bytes, first: !started)
        case .finalAcknowledgement(let user):
            if text == "*" { return fail(Self.cancelled) }
            guard text.isEmpty else { return fail(Self.invalidCredentials) }
            state = .finished
            return .succeeded(user: user)
        case .verifyingPassword, .verifyingExchange, .finished:
            preconditionFailure("SASL line in state \(state)")
        }
    }

    /// The delegate accepted: `user` is the canonical login name; `additionalData` (SCRAM's server
    /// signature) goes out in a `334` first, and `235` follows the client's empty line (§4).
    mutating func authenticationSucceeded(user: String, additionalData: [UInt8]?) -> Action {
        switch state {
        case .verifyingPassword(var sasl):
            guard case .succeed = sasl.passwordAccepted() else { preconditionFailure("PLAIN/LOGIN did not succeed") }
        case .verifyingExchange:
            break
        case .sasl, .exchange, .finalAcknowledgement, .finished:
            preconditionFailure("authenticationSucceeded in state \(state)")
        }
        if let additionalData {
            state = .finalAcknowledgement(user: user)
            return .challenge(SMTPReply(code: 334, nil, Base64.encode(additionalData)))
        }
        state = .finished
        return .succeeded(user: user)
    }

    /// The delegate's exchange needs another round: this challenge goes out in a `334`.
    mutating func saslChallenge(_ challenge: [UInt8]) -> Action {
        guard case .verifyingExchange(let mechanism) = state else { preconditionFailure("saslChallenge in state \(state)") }
        state = .exchange(mechanism: mechanism, started: true)
        return .challenge(SMTPReply(code: 334, nil, Base64.encode(challenge)))
    }

    /// The delegate refused: `535 5.7.8`, or its own reply (`454 4.7.0`, `421 4.7.0`, `504 5.5.4` when
    /// it runs no exchange for the mechanism).
    mutating func authenticationFailed(_ reply: SMTPReply?) -> Action {
        guard isVerifying else { preconditionFailure("authenticationFailed in state \(state)") }
        return fail(reply ?? Self.invalidCredentials)
    }

    // MARK: Helpers

    /// Turns what `SASLServer` says into SMTP.
    private mutating func run(_ sasl: SASLServer, _ action: SASLServer.Action) -> Action {
        switch action {
        case .challenge(let challenge):
            state = .sasl(sasl)
            return .challenge(SMTPReply(code: 334, nil, Base64.encode(challenge)))
        case .verifyPassword(_, let user, let password):
            state = .verifyingPassword(sasl)
            return .authenticate(mechanism: mechanism, user: user, password: password)
        case .fail(let failure):
            switch failure {
            case .malformed: return fail(sasl.mechanism == .plain ? Self.malformedPlain : Self.invalidBase64)
            case .cancelled: return fail(Self.cancelled)
            case .unsupportedMechanism: return fail(Self.unrecognized)
            case .authorizationIdentityMismatch, .invalidCredentials, .scram: return fail(Self.invalidCredentials)
            }
        case .lookUpSCRAMCredentials, .succeed:
            preconditionFailure("\(action) from PLAIN/LOGIN")
        }
    }

    private mutating func fail(_ reply: SMTPReply) -> Action {
        state = .finished
        return .failed(reply)
    }

    /// Base64 as RFC 4954 §4 frames it; `=` alone is an empty response where `equalsSignIsEmpty`.
    private static func decode(_ text: String, equalsSignIsEmpty: Bool) -> [UInt8]? {
        Base64.decode(equalsSignIsEmpty && text == "=" ? "" : text)
    }
}
