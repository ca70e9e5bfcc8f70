// SASLServer governs the server side of one SASL authentication exchange (RFC 4422) for every
// mechanism Swallow's servers offer: PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login) and
// SCRAM-SHA-256 (RFC 5802, RFC 7677; ``SCRAMServer`` is the SCRAM engine). It is the only place those
// mechanisms' messages are decoded. It is pure: it sees decoded octets only. Base64, the protocol's
// continuation lines (SMTP `334`, POP3 `+ `), recognising the client's `*` and every reply text are
// the protocol core's business; checking a password and finding SCRAM credentials are the caller's.
//
// States:
//   idle                          not started
//   plainAwaitingResponse         PLAIN without initial response: the empty challenge is out
//   loginAwaitingUser             LOGIN: the `Username:` challenge is out
//   loginAwaitingPassword(user)   LOGIN: the `Password:` challenge is out
//   verifyingPassword             PLAIN/LOGIN: the credentials are with the caller
//   scramAwaitingClientFirst      SCRAM without initial response: the empty challenge is out
//   scramLookingUpCredentials     client-first parsed; the caller looks up the user's SCRAM credentials
//   scramAwaitingClientFinal      server-first is out; the client's proof is next
//   finished                      succeeded or failed; any further event is a programming error
//
// Events: start(mechanism:initialResponse:), responseReceived(_:), cancelReceived(),
//         passwordAccepted(), passwordRejected(), scramCredentialsFound(_:userExists:)
//
// Actions:
//   challenge(bytes)                          send this challenge; the answer goes to responseReceived
//   verifyPassword(authzid:user:password:)    check the password; then passwordAccepted/Rejected
//   lookUpSCRAMCredentials(user:)             find the user's credentials (decoys for an unknown user);
//                                             then scramCredentialsFound
//   succeed(additionalData:)                  authenticated; SCRAM's server-final message (`v=…`) is the
//                                             additional data (RFC 4422 §5 step 7)
//   fail(reason)                              the exchange is over

/// The server side of one SASL exchange (RFC 4422) for `PLAIN`, `LOGIN` and `SCRAM-SHA-256`, as a pure
/// event → action machine. Create one per exchange, call ``start(mechanism:initialResponse:)`` and
/// then the event that answers each action until ``Action/succeed(additionalData:)`` or
/// ``Action/fail(_:)``.
///
/// ```swift
/// var sasl = SASLServer()
/// sasl.start(mechanism: "PLAIN", initialResponse: bytes)   // .verifyPassword(authzid: "", user: "alice", password: "secret")
/// sasl.passwordAccepted()                                   // .succeed(additionalData: nil)
/// ```
///
/// - SeeAlso: RFC 4422 §3 and §5, RFC 4616 §2, RFC 5802 §5 and §7, RFC 7677
public struct SASLServer: Sendable {
    /// A mechanism this machine runs.
    public enum Mechanism: String, CaseIterable, Hashable, Sendable {
        /// `PLAIN` (RFC 4616): `[authzid] NUL authcid NUL passwd` in one response.
        case plain = "PLAIN"
        /// `LOGIN` (draft-murchison-sasl-login): the user name and the password in two responses.
        case login = "LOGIN"
        /// `SCRAM-SHA-256` (RFC 5802, RFC 7677) without channel binding.
        case scramSHA256 = "SCRAM-SHA-256"

        /// The mechanism registered as `name` (case-insensitive, RFC 4422 §3.1); `nil` for any other.
        public init?(name: String) {
            self.init(rawValue: name.uppercased())
        }
    }

    /// Settings for one exchange.
    public struct Configuration: Hashable, Sendable {
        /// RFC 4616's `passwd = 1*SAFE`: an empty PLAIN password is malformed (``Failure/malformed``).
        /// `false` hands an empty password to the verifier like any other, where it fails as a wrong
        /// password would (what SMTP AUTH has always answered). Default `true`.
        public var plainRequiresPassword: Bool
        /// The server part of SCRAM nonces; `nil` (the default) means 18 random bytes, base64. Tests
        /// set it to replay RFC 7677's vector.
        public var scramServerNonce: String?

        /// Creates settings.
        public init(plainRequiresPassword: Bool = true, scramServerNonce: String? = nil) {
            self.plainRequiresPassword = plainRequiresPassword
            self.scramServerNonce = scramServerNonce
        }
    }

    /// Why an exchange failed.
    public enum Failure: Hashable, Sendable {
        /// The mechanism is not one of ``Mechanism``.
        case unsupportedMechanism
        /// A PLAIN or LOGIN response does not follow the grammar (missing NULs, empty user, bytes that
        /// are not UTF-8, an empty PLAIN password when ``Configuration/plainRequiresPassword``).
        case malformed
        /// PLAIN named an authorization identity other than the user (RFC 4616 §2; we do not let one
        /// user act as another).
        case authorizationIdentityMismatch
        /// The client cancelled with `*` (RFC 4422 §3.5).
        case cancelled
        /// The password or the SCRAM proof does not verify (or the SCRAM user does not exist).
        case invalidCredentials
        /// A SCRAM message was refused for this reason (grammar, channel binding, nonce). A wrong
        /// proof is ``invalidCredentials`` instead.
        case scram(SCRAMServerError)
    }

    /// What the caller does next.
    public enum Action: Hashable, Sendable {
        /// Send this challenge (raw octets; the protocol encodes it) and pass the client's answer to
        /// ``SASLServer/responseReceived(_:)``.
        case challenge([UInt8])
        /// Check `password` for `user` (PLAIN, LOGIN), then report ``SASLServer/passwordAccepted()``
        /// or ``SASLServer/passwordRejected()``. `authzid` is empty or names `user` (case-insensitive).
        case verifyPassword(authzid: String, user: String, password: String)
        /// Look up `user`'s ``SCRAMCredentials`` — made-up ones (``SCRAMServer/decoyCredentials(for:secret:)``)
        /// for an unknown user, so the exchange looks the same — then report
        /// ``SASLServer/scramCredentialsFound(_:userExists:)``.
        case lookUpSCRAMCredentials(user: String)
        /// The client is authenticated. `additionalData` goes to the client with the outcome (SCRAM's
        /// server-final message); a protocol without that (SMTP) sends it as a last challenge.
        case succeed(additionalData: [UInt8]?)
        /// The exchange failed.
        case fail(Failure)
    }

    private enum State: Sendable {
        case idle
        case plainAwaitingResponse
        case loginAwaitingUser
        case loginAwaitingPassword(user: String)
        case verifyingPassword
        case scramAwaitingClientFirst
        case scramLookingUpCredentials(SCRAMServer)
        case scramAwaitingClientFinal(SCRAMServer, userExists: Bool)
        case finished
    }

    /// LOGIN's prompts (the de-facto standard text, sent base64-encoded by the protocol).
    public static let loginUserPrompt = Array("Username:".utf8)
    /// LOGIN's password prompt.
    public static let loginPasswordPrompt = Array("Password:".utf8)

    private var state: State = .idle
    private let configuration: Configuration
    /// The mechanism, once ``start(mechanism:initialResponse:)`` accepted it.
    public private(set) var mechanism: Mechanism?

    /// Creates a machine for one exchange.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    // MARK: Events

    /// The client chose `mechanism` (case-insensitive), with `initialResponse` when it sent one
    /// (RFC 4422 §3.3; an empty initial response is `[]`, not `nil`).
    public mutating func start(mechanism name: String, initialResponse: [UInt8]?) -> Action {
        guard case .idle = state else { preconditionFailure("start(mechanism:) in state \(stateName)") }
        guard let m = Mechanism(name: name) else {
            state = .finished
            return .fail(.unsupportedMechanism)
        }
        mechanism = m
        switch m {
        case .plain:
            guard let initialResponse else {
                state = .plainAwaitingResponse
                return .challenge([])
            }
            return plain(initialResponse)
        case .login:
            guard let initialResponse else {
                state = .loginAwaitingUser
                return .challenge(Self.loginUserPrompt)
            }
            return loginUser(initialResponse)
        case .scramSHA256:
            guard let initialResponse else {
                state = .scramAwaitingClientFirst
                return .challenge([])
            }
            return scramClientFirst(initialResponse)
        }
    }

    /// The client answered the last ``Action/challenge(_:)`` with `response` (decoded octets).
    public mutating func responseReceived(_ response: [UInt8]) -> Action {
        switch state {
        case .plainAwaitingResponse:
            return plain(response)
        case .loginAwaitingUser:
            return loginUser(response)
        case .loginAwaitingPassword(let user):
            guard let password = String(validating: response, as: UTF8.self) else { return fail(.malformed) }
            state = .verifyingPassword
            return .verifyPassword(authzid: "", user: user, password: password)
        case .scramAwaitingClientFirst:
            return scramClientFirst(response)
        case .scramAwaitingClientFinal(var server, let userExists):
            let final: [UInt8]
            do throws(SCRAMServerError) {
                final = try server.receiveClientFinal(response)
            } catch .invalidProof {
                return fail(.invalidCredentials)
            } catch {
                return fail(.scram(error))
            }
            guard userExists else { return fail(.invalidCredentials) }
            state = .finished
            return .succeed(additionalData: final)
        case .idle, .verifyingPassword, .scramLookingUpCredentials, .finished:
            preconditionFailure("responseReceived in state \(stateName)")
        }
    }

    /// The client cancelled the exchange (`*`, RFC 4422 §3.5) while a challenge was out.
    public mutating func cancelReceived() -> Action {
        switch state {
        case .plainAwaitingResponse, .loginAwaitingUser, .loginAwaitingPassword, .scramAwaitingClientFirst, .scramAwaitingClientFinal:
            return fail(.cancelled)
        case .idle, .verifyingPassword, .scramLookingUpCredentials, .finished:
            preconditionFailure("cancelReceived in state \(stateName)")
        }
    }

    /// The password handed out in ``Action/verifyPassword(authzid:user:password:)`` is right.
    public mutating func passwordAccepted() -> Action {
        guard case .verifyingPassword = state else { preconditionFailure("passwordAccepted in state \(stateName)") }
        state = .finished
        return .succeed(additionalData: nil)
    }

    /// The password handed out in ``Action/verifyPassword(authzid:user:password:)`` is wrong (or the
    /// user unknown).
    public mutating func passwordRejected() -> Action {
        guard case .verifyingPassword = state else { preconditionFailure("passwordRejected in state \(stateName)") }
        return fail(.invalidCredentials)
    }

    /// The credentials asked for by ``Action/lookUpSCRAMCredentials(user:)``; `userExists` is `false`
    /// for decoys, and the exchange then fails at the proof whatever the client sends.
    public mutating func scramCredentialsFound(_ credentials: SCRAMCredentials, userExists: Bool) -> Action {
        guard case .scramLookingUpCredentials(var server) = state else {
            preconditionFailure("scramCredentialsFound in state \(stateName)")
        }
        let serverFirst = server.serverFirst(credentials: credentials)
        state = .scramAwaitingClientFinal(server, userExists: userExists)
        return .challenge(serverFirst)
    }

    // MARK: Mechanisms

    /// RFC 4616 §2:
    ///
    ///     message   = [authzid] UTF8NUL authcid UTF8NUL passwd
    ///     authcid   = 1*SAFE ; MUST accept up to 255 octets
    ///     authzid   = 1*SAFE ; MUST accept up to 255 octets
    ///     passwd    = 1*SAFE ; MUST accept up to 255 octets
    ///
    /// Longer fields are accepted too (the protocol's line limit bounds them); a NUL inside the
    /// password is kept as part of it.
    private mutating func plain(_ message: [UInt8]) -> Action {
        let fields = message.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3, !fields[1].isEmpty, !configuration.plainRequiresPassword || !fields[2].isEmpty,
              let authzid = String(validating: fields[0], as: UTF8.self),
              let user = String(validating: fields[1], as: UTF8.self),
              let password = String(validating: fields[2], as: UTF8.self) else {
            return fail(.malformed)
        }
        guard authzid.isEmpty || authzid.lowercased() == user.lowercased() else {
            return fail(.authorizationIdentityMismatch)
        }
        state = .verifyingPassword
        return .verifyPassword(authzid: authzid, user: user, password: password)
    }

    /// LOGIN's first response: a non-empty UTF-8 user name.
    private mutating func loginUser(_ response: [UInt8]) -> Action {
        guard let user = String(validating: response, as: UTF8.self), !user.isEmpty else { return fail(.malformed) }
        state = .loginAwaitingPassword(user: user)
        return .challenge(Self.loginPasswordPrompt)
    }

    /// SCRAM's client-first message (`gs2-header client-first-message-bare`, RFC 5802 §7).
    private mutating func scramClientFirst(_ message: [UInt8]) -> Action {
        var server = SCRAMServer(serverNonce: configuration.scramServerNonce)
        let user: String
        do throws(SCRAMServerError) {
            user = try server.receiveClientFirst(message)
        } catch {
            return fail(.scram(error))
        }
        state = .scramLookingUpCredentials(server)
        return .lookUpSCRAMCredentials(user: user)
    }

    /// The state's name for precondition messages (never its contents: SCRAM keys stay out of them).
    private var stateName: String {
        switch state {
        case .idle: "idle"
        case .plainAwaitingResponse: "plainAwaitingResponse"
        case .loginAwaitingUser: "loginAwaitingUser"
        case .loginAwaitingPassword: "loginAwaitingPassword"
        case .verifyingPassword: "verifyingPassword"
        case .scramAwaitingClientFirst: "scramAwaitingClientFirst"
        case .scramLookingUpCredentials: "scramLookingUpCredentials"
        case .scramAwaitingClientFinal: "scramAwaitingClientFinal"
        case .finished: "finished"
        }
    }

    private mutating func fail(_ reason: Failure) -> Action {
        state = .finished
        return .fail(reason)
    }
}
