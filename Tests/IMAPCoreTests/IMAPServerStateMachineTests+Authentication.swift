import IMAPCore
import MailCore
import SASL
import Testing

private func plain(_ authzid: String, _ authcid: String, _ password: String) -> String {
    Base64.encode(Array(authzid.utf8) + [0] + Array(authcid.utf8) + [0] + Array(password.utf8))
}

private let loggedIn = ["a OK [CAPABILITY \(authenticatedCapabilities.joined(separator: " "))] Logged in", "→ read"]

/// Greeting, CAPABILITY, STARTTLS, LOGIN, AUTHENTICATE (RFC 9051 §6.1–§6.2, RFC 4959, RFC 5802/7677, RFC 5530).
@Suite struct IMAPServerStateMachineAuthenticationTests {
    struct CapabilityCase: Sendable, CustomTestStringConvertible {
        var tlsAvailable: Bool
        var implicitTLS: Bool
        var plaintext: Bool
        var extra: [String]
        var testDescription: String { "tls:\(tlsAvailable) implicit:\(implicitTLS) plaintext:\(plaintext)" }
    }

    @Test(arguments: [
        CapabilityCase(tlsAvailable: true, implicitTLS: false, plaintext: false, extra: ["STARTTLS", "LOGINDISABLED"]),
        CapabilityCase(tlsAvailable: false, implicitTLS: false, plaintext: false, extra: ["LOGINDISABLED"]),
        CapabilityCase(tlsAvailable: true, implicitTLS: false, plaintext: true, extra: ["STARTTLS", "AUTH=PLAIN", "AUTH=SCRAM-SHA-256"]),
        CapabilityCase(tlsAvailable: false, implicitTLS: false, plaintext: true, extra: ["AUTH=PLAIN", "AUTH=SCRAM-SHA-256"]),
        CapabilityCase(tlsAvailable: true, implicitTLS: true, plaintext: false, extra: ["AUTH=PLAIN", "AUTH=SCRAM-SHA-256"]),
    ])
    func greetingCapabilities(_ c: CapabilityCase) {
        var m = Machine(configuration: configuration(tls: c.tlsAvailable, plaintext: c.plaintext), implicitTLS: c.implicitTLS)
        let caps = (baseCapabilities + c.extra).joined(separator: " ")
        #expect(render(m.connectionEstablished()) == ["* OK [CAPABILITY \(caps)] \(host) IMAP server ready (Swallow)", "→ read"])
        #expect(m.run("a", .capability) == ["* CAPABILITY \(caps)", "a OK CAPABILITY completed", "→ read"])
        #expect(!m.isAuthenticated)
    }

    @Test func startTLSThenCapabilitiesChange() {
        var m = Machine(configuration: configuration())
        #expect(m.run("a", .login(user: user, password: "pw"))
            == ["a NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure connections; use STARTTLS", "→ read"])
        #expect(m.run("b", .authenticate(mechanism: "PLAIN", initialResponse: plain("", user, "pw")))
            == ["b NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure connections; use STARTTLS", "→ read"])
        #expect(m.run("c", .startTLS) == ["c OK Begin TLS negotiation now", "→ starttls"])
        m.tlsEstablished()
        let caps = (baseCapabilities + ["AUTH=PLAIN", "AUTH=SCRAM-SHA-256"]).joined(separator: " ")
        #expect(m.run("d", .capability) == ["* CAPABILITY \(caps)", "d OK CAPABILITY completed", "→ read"])
        #expect(m.run("e", .startTLS) == ["e BAD TLS is already active", "→ read"])
        #expect(m.run("f", .login(user: user, password: "pw")) == ["verifyPassword \(user) pw"])
    }

    @Test func startTLSNotAvailableOrAfterLogin() {
        var m = Machine(configuration: configuration(tls: false))
        #expect(m.run("a", .startTLS) == ["a BAD STARTTLS is not available", "→ read"])
        var n = authenticated()
        #expect(n.run("b", .startTLS) == ["b BAD STARTTLS is not valid after login", "→ read"])
    }

    @Test func loginSuccess() {
        var m = Machine(configuration: configuration(), implicitTLS: true)
        #expect(m.run("a", .login(user: user, password: "pw")) == ["verifyPassword \(user) pw"])
        #expect(!m.isIdleBetweenCommands)
        #expect(render(m.passwordVerified(true, user: user)) == ["openSession \(user)"])
        #expect(render(m.sessionOpened(.success(()))) == loggedIn)
        #expect(m.isAuthenticated)
        #expect(m.user == user)
        #expect(m.isIdleBetweenCommands)
        #expect(m.run("b", .login(user: user, password: "pw")) == ["b BAD LOGIN is not valid after login", "→ read"])
        #expect(m.run("c", .authenticate(mechanism: "PLAIN", initialResponse: nil)) == ["c BAD AUTHENTICATE is not valid after login", "→ read"])
    }

    @Test func loginFailure() {
        var m = Machine(configuration: configuration(), implicitTLS: true)
        _ = m.run("a", .login(user: user, password: "wrong"))
        #expect(render(m.passwordVerified(false, user: user)) == ["a NO [AUTHENTICATIONFAILED] Authentication failed", "→ read"])
        #expect(!m.isAuthenticated)
        #expect(m.user == nil)
        // A retry works.
        _ = m.run("b", .login(user: user, password: "pw"))
        _ = m.passwordVerified(true, user: user)
        #expect(render(m.sessionOpened(.success(()))).first?.hasPrefix("b OK [CAPABILITY") == true)
    }

    @Test func sessionRefusedByConnectionLimit() {
        var m = Machine(configuration: configuration(), implicitTLS: true)
        _ = m.run("a", .login(user: user, password: "pw"))
        _ = m.passwordVerified(true, user: user)
        #expect(render(m.sessionOpened(.failure(.limit("Too many connections"))))
            == ["a NO [LIMIT] Too many connections", "* BYE Too many connections", "→ close"])
        #expect(!m.isAuthenticated)
        #expect(render(m.commandReceived(TaggedCommand(tag: "b", command: .noop))) == ["none"])
    }

    @Test func sessionStoreUnavailable() {
        var m = Machine(configuration: configuration(), implicitTLS: true)
        _ = m.run("a", .login(user: user, password: "pw"))
        _ = m.passwordVerified(true, user: user)
        #expect(render(m.sessionOpened(.failure(.unavailable))) == ["a NO [UNAVAILABLE] Mailbox storage is unavailable", "→ read"])
        #expect(!m.isAuthenticated)
        #expect(m.user == nil)
    }

    @Test func plaintextAllowedWithoutTLS() {
        var m = Machine(configuration: configuration(tls: false, plaintext: true))
        #expect(m.run("a", .login(user: user, password: "pw")) == ["verifyPassword \(user) pw"])
    }

    // MARK: AUTHENTICATE PLAIN

    @Test func authenticatePlainWithInitialResponse() {
        var m = Machine(configuration: configuration(), implicitTLS: true)
        #expect(m.run("a", .authenticate(mechanism: "plain", initialResponse: plain("", user, "pw"))) == ["verifyPassword \(user) pw"])
        #expect(render(m.passwordVerified(true, user: user)) == ["openSession \(user)"])
        #expect(render(m.sessionOpened(.success(()))) == loggedIn)
        #expect(m.user == user)
    }

    @Test func authenticatePlainWithContinuation() {
        var m = Machine(configuration: configuration(), implicitTLS: true)
        #expect(m.run("a", .authenticate(mechanism: "PLAIN", initialResponse: nil)) == ["+ ", "→ sasl"])
        #expect(render(m.saslResponseReceived(plain(user, user, "pw"))) == ["verifyPassword \(user) pw"])
        #expect(render(m.passwordVerified(false, user: user)) == ["a NO [AUTHENTICATIONFAILED] Authentication failed", "→ read"])
        #expect(m.isIdleBetweenCommands)
    }

    @Test func authenticateCancelled() {
        var m = Machine(configuration: configuration(), implicitTLS: true)
        _ = m.run("a", .authenticate(mechanism: "PLAIN", initialResponse: nil))
        #expect(render(m.saslResponseReceived("*")) == ["a BAD AUTHENTICATE cancelled", "→ read"])
        #expect(m.isIdleBetweenCommands)
        #expect(m.run("b", .noop) == ["b OK NOOP completed", "→ read"])
    }

    @Test func authenticateBadBase64() {
        var m = Machine(configuration: configuration(), implicitTLS: true)
        _ = m.run("a", .authenticate(mechanism: "PLAIN", initialResponse: nil))
        #expect(render(m.saslResponseReceived("not base64!")) == ["a BAD Invalid base64 in SASL response", "→ read"])
        #expect(m.run("b", .authenticate(mechanism: "PLAIN", initialResponse: "%%%")) == ["b BAD Invalid base64 in initial response", "→ read"])
        #expect(m.isIdleBetweenCommands)
    }

    @Test func authenticateMalformedAndUnsupported() {
        var m = Machine(configuration: configuration(), implicitTLS: true)
        // "=" is an empty initial response: PLAIN without fields is malformed.
        #expect(m.run("a", .authenticate(mechanism: "PLAIN", initialResponse: "=")) == ["a BAD Malformed SASL message", "→ read"])
        #expect(m.run("b", .authenticate(mechanism: "CRAM-MD5", initialResponse: nil)) == ["b NO [CANNOT] Unsupported authentication mechanism", "→ read"])
        // LOGIN is not advertised by IMAP.
        #expect(m.run("c", .authenticate(mechanism: "LOGIN", initialResponse: nil)) == ["c NO [CANNOT] Unsupported authentication mechanism", "→ read"])
        // Another user's authorization identity.
        #expect(m.run("d", .authenticate(mechanism: "PLAIN", initialResponse: plain("bob@example.test", user, "pw")))
            == ["d NO [AUTHENTICATIONFAILED] Authentication failed", "→ read"])
    }

    // MARK: SCRAM-SHA-256

    /// The whole exchange against the SASL module's client: client-first as initial response or
    /// after an empty challenge, server-first, client-final, server-final answered by an empty line.
    @Test(arguments: [true, false])
    func scramSHA256(initialResponse: Bool) throws {
        var m = Machine(configuration: configuration(), implicitTLS: true)
        var client = SASLSCRAMSHA256(user: user, password: "pencil")
        let first = Base64.encode(client.initialResponse()!)
        if initialResponse {
            #expect(m.run("a", .authenticate(mechanism: "SCRAM-SHA-256", initialResponse: first)) == ["lookUpSCRAMCredentials \(user)"])
        } else {
            #expect(m.run("a", .authenticate(mechanism: "SCRAM-SHA-256", initialResponse: nil)) == ["+ ", "→ sasl"])
            #expect(render(m.saslResponseReceived(first)) == ["lookUpSCRAMCredentials \(user)"])
        }
        let serverFirst = try #require(continuation(m.scramCredentialsFound(SCRAMCredentials(password: "pencil"), userExists: true)))
        let clientFinal = try client.respond(to: try #require(Base64.decode(serverFirst)))
        let serverFinal = try #require(continuation(m.saslResponseReceived(Base64.encode(clientFinal))))
        let final: [UInt8] = try #require(Base64.decode(serverFinal))
        try client.verifySuccess(final)
        #expect(!m.isAuthenticated)
        #expect(render(m.saslResponseReceived("")) == ["openSession \(user)"])
        #expect(render(m.sessionOpened(.success(()))) == loggedIn)
        #expect(m.user == user)
    }

    @Test func scramWrongPassword() throws {
        var m = Machine(configuration: configuration(), implicitTLS: true)
        var client = SASLSCRAMSHA256(user: user, password: "wrong")
        _ = m.run("a", .authenticate(mechanism: "SCRAM-SHA-256", initialResponse: Base64.encode(client.initialResponse()!)))
        let serverFirst = try #require(continuation(m.scramCredentialsFound(SCRAMCredentials(password: "pencil"), userExists: true)))
        let clientFinal = try client.respond(to: try #require(Base64.decode(serverFirst)))
        #expect(render(m.saslResponseReceived(Base64.encode(clientFinal))) == ["a NO [AUTHENTICATIONFAILED] Authentication failed", "→ read"])
        #expect(m.isIdleBetweenCommands)
    }

    @Test func scramUnknownUserFailsAtTheProof() throws {
        var m = Machine(configuration: configuration(), implicitTLS: true)
        var client = SASLSCRAMSHA256(user: "nobody@example.test", password: "pencil")
        _ = m.run("a", .authenticate(mechanism: "SCRAM-SHA-256", initialResponse: Base64.encode(client.initialResponse()!)))
        let serverFirst = try #require(continuation(m.scramCredentialsFound(SCRAMCredentials(password: "pencil"), userExists: false)))
        let clientFinal = try client.respond(to: try #require(Base64.decode(serverFirst)))
        #expect(render(m.saslResponseReceived(Base64.encode(clientFinal))) == ["a NO [AUTHENTICATIONFAILED] Authentication failed", "→ read"])
    }

    @Test func scramServerFinalAnsweredWithDataIsRefused() throws {
        var m = Machine(configuration: configuration(), implicitTLS: true)
        var client = SASLSCRAMSHA256(user: user, password: "pencil")
        _ = m.run("a", .authenticate(mechanism: "SCRAM-SHA-256", initialResponse: Base64.encode(client.initialResponse()!)))
        let serverFirst = try #require(continuation(m.scramCredentialsFound(SCRAMCredentials(password: "pencil"), userExists: true)))
        let clientFinal = try client.respond(to: try #require(Base64.decode(serverFirst)))
        _ = m.saslResponseReceived(Base64.encode(clientFinal))
        #expect(render(m.saslResponseReceived("Zm9v")) == ["a BAD Unexpected SASL response", "→ read"])
        #expect(!m.isAuthenticated)
        #expect(m.isIdleBetweenCommands)
    }

    @Test func scramMalformedClientFirst() {
        var m = Machine(configuration: configuration(), implicitTLS: true)
        #expect(m.run("a", .authenticate(mechanism: "SCRAM-SHA-256", initialResponse: Base64.encode(Array("garbage".utf8))))
            == ["a BAD Malformed SASL message", "→ read"])
    }

    /// A `+ base64` continuation's text, or `nil` for any other action.
    private func continuation(_ action: Machine.Action) -> String? {
        guard case .send(let responses, .readSASLResponse) = action, responses.count == 1,
              case .continuation(let text) = responses[0] else { return nil }
        return text
    }
}

/// Connection-level events and commands valid in any state.
@Suite struct IMAPServerStateMachineConnectionTests {
    @Test func logout() {
        var m = authenticated()
        #expect(m.run("a", .logout) == ["* BYE Logging out", "a OK LOGOUT completed", "→ close"])
        #expect(m.run("b", .noop) == ["none"])
    }

    @Test func logoutBeforeLogin() {
        var m = Machine(configuration: configuration())
        #expect(m.run("a", .logout) == ["* BYE Logging out", "a OK LOGOUT completed", "→ close"])
    }

    @Test func autologoutAndShutdown() {
        var m = authenticated()
        #expect(render(m.autologoutTimerFired()) == ["* BYE Autologout; idle for too long", "→ close"])
        var n = Machine(configuration: configuration())
        #expect(render(n.shutdownRequested()) == ["* BYE Server shutting down", "→ close"])
        #expect(n.run("a", .noop) == ["none"])
    }

    @Test func idAndNoop() {
        var m = Machine(configuration: configuration())
        #expect(m.run("a", .id([.init(name: "name", value: "mutt")])) == ["* ID (\"name\" \"Swallow\")", "a OK ID completed", "→ read"])
        #expect(m.run("b", .id(nil)) == ["* ID (\"name\" \"Swallow\")", "b OK ID completed", "→ read"])
        #expect(m.run("c", .noop) == ["c OK NOOP completed", "→ read"])
    }

    @Test(arguments: [
        IMAPCommand.select(MailboxName("INBOX"), SelectParameters()), .list(ListCommand(reference: "", patterns: ["*"])),
        .enable(["CONDSTORE"]), .namespace, .idle, .create(MailboxName("x"), specialUse: []), .fetch(.all, [.flags], FetchModifiers(), uid: false),
        .compress(mechanism: "DEFLATE"), .getQuotaRoot(MailboxName("INBOX")), .check, .close, .unselect, .expunge,
    ])
    func commandsBeforeLogin(_ command: IMAPCommand) {
        var m = Machine(configuration: configuration(), implicitTLS: true)
        #expect(m.run("a", command) == ["a BAD \(command.name) needs a login first", "→ read"])
    }

    @Test(arguments: [
        IMAPCommand.check, .close, .unselect, .expunge, .uidExpunge(set("1")), .search(SearchCommand(key: .all), uid: false),
        .fetch(.all, [.flags], FetchModifiers(), uid: true), .store(set("1"), StoreModification(operation: .add, flags: [.seen]), uid: false),
        .copy(set("1"), MailboxName("x"), uid: false), .move(set("1"), MailboxName("x"), uid: true),
    ])
    func selectedStateCommandsWhileAuthenticated(_ command: IMAPCommand) {
        var m = authenticated()
        #expect(m.run("a", command) == ["a BAD \(command.name) needs a selected mailbox", "→ read"])
    }

    // MARK: Parse failures

    struct ParseFailureCase: Sendable, CustomTestStringConvertible {
        var error: IMAPParseError
        var expected: String
        var testDescription: String { expected }
    }

    @Test(arguments: [
        ParseFailureCase(error: .init(tag: "a", kind: .syntax, message: "Missing argument"), expected: "a BAD Missing argument"),
        ParseFailureCase(error: .init(tag: "a", kind: .unknownCommand, message: "Unknown command"), expected: "a BAD Unknown command"),
        ParseFailureCase(error: .init(tag: nil, kind: .syntax, message: "No tag"), expected: "* BAD No tag"),
        ParseFailureCase(error: .init(tag: "a", kind: .commandTooLong, message: "Line too long"), expected: "a BAD [TOOBIG] Line too long"),
        ParseFailureCase(error: .init(tag: nil, kind: .commandTooLong, message: "Line too long"), expected: "* BAD [TOOBIG] Line too long"),
        ParseFailureCase(error: .init(tag: "a", kind: .literalTooLarge(100_000), message: "Literal too large"),
                         expected: "a NO [TOOBIG] Literal too large"),
        ParseFailureCase(error: .init(tag: "a", kind: .tooDeep, message: "Too deep"), expected: "a BAD [LIMIT] Too deep"),
        ParseFailureCase(error: .init(tag: "a", kind: .invalidUTF8, message: "Not UTF-8"), expected: "a BAD Not UTF-8"),
    ])
    func parseFailure(_ c: ParseFailureCase) {
        var m = authenticated()
        #expect(render(m.parseFailed(c.error)) == [c.expected, "→ read"])
    }

    @Test func tooManyBadCommandsEndTheSession() {
        var m = Machine(configuration: configuration(maxBadCommands: 3))
        let bad = IMAPParseError(tag: "x", kind: .unknownCommand, message: "Unknown command")
        #expect(render(m.parseFailed(bad)) == ["x BAD Unknown command", "→ read"])
        #expect(render(m.parseFailed(bad)) == ["x BAD Unknown command", "→ read"])
        // A good command resets the count.
        _ = m.run("a", .noop)
        #expect(render(m.parseFailed(bad)) == ["x BAD Unknown command", "→ read"])
        #expect(render(m.parseFailed(bad)) == ["x BAD Unknown command", "→ read"])
        #expect(render(m.parseFailed(bad)) == ["x BAD Unknown command", "* BYE Too many invalid commands", "→ close"])
        #expect(m.run("b", .noop) == ["none"])
    }

    @Test func continuationForLiteral() {
        var m = authenticated()
        #expect(render(m.continuationRequested(tag: "a", size: 10)) == ["+ Ready for literal data", "→ accept literal"])
    }

    /// A line other than DONE during IDLE (or a broken SASL line) ends that command with a tagged
    /// BAD; the session reads commands again instead of trapping on the next one.
    @Test func parseFailureDuringIdleEndsIdle() {
        var m = authenticated()
        _ = m.run("i", .idle)
        #expect(render(m.parseFailed(.init(tag: nil, kind: .syntax, message: "Expected DONE"))) == ["i BAD Expected DONE", "→ read"])
        #expect(!m.isIdling)
        #expect(m.run("n", .noop) == ["n OK NOOP completed", "→ read"])
    }

    @Test func parseFailureDuringSASLEndsTheExchange() {
        var m = Machine(configuration: configuration(), implicitTLS: true)
        _ = m.run("a", .authenticate(mechanism: "PLAIN", initialResponse: nil))
        #expect(render(m.parseFailed(.init(tag: nil, kind: .commandTooLong, message: "Line too long")))
            == ["a BAD [TOOBIG] Line too long", "→ read"])
        #expect(m.isIdleBetweenCommands)
        #expect(m.run("b", .noop) == ["b OK NOOP completed", "→ read"])
    }
}
