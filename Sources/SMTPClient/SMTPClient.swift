import ClientSupport
import MailCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SASL
import SMTPCore

/// An SMTP client connection (RFC 5321) usable from any Swift program: connect, STARTTLS or implicit
/// TLS, EHLO (HELO fallback), AUTH, then any number of messages (RSET between when needed), QUIT.
///
/// ```swift
/// var config = SMTPClientConfiguration(host: "smtp.example.com", port: 587, security: .startTLS)
/// config.authentication = .password(user: "alice@example.com", password: secret)
/// let client = try await SMTPClient.connect(config)
/// let result = try await client.send(message, from: "alice@example.com", to: ["bob@example.org"])
/// await client.quit()
/// ```
public final class SMTPClient: Sendable {
    private let connection: ClientConnection<SMTPClientHandler>
    private let configuration: SMTPClientConfiguration
    private let state = NIOLockedValueBox(State())

    /// What the server offered in its last EHLO reply.
    public var capabilities: SMTPCapabilities { state.withLockedValue { $0 }.capabilities }
    /// `true` once the connection is encrypted.
    public var isEncrypted: Bool { state.withLockedValue { $0 }.encrypted }
    /// The mechanism used to authenticate, if any.
    public var authenticatedWith: String? { state.withLockedValue { $0 }.mechanism }
    /// The server's greeting line.
    public var greeting: SMTPReply { state.withLockedValue { $0 }.greeting! }

    struct State: Sendable {
        var capabilities = SMTPCapabilities()
        var encrypted = false
        var mechanism: String?
        var greeting: SMTPReply?
        var needsReset = false
    }

    private init(_ connection: ClientConnection<SMTPClientHandler>, configuration: SMTPClientConfiguration) {
        self.connection = connection
        self.configuration = configuration
    }

    /// Connects, secures and authenticates as `configuration` says.
    public static func connect(_ configuration: SMTPClientConfiguration,
                               eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws(SMTPClientError) -> SMTPClient {
        let verification: ClientTLS.Verification = switch configuration.certificateVerification {
        case .systemTrustStore: .systemTrustStore
        case .customCA(let file): .customCA(pemFile: file)
        case .insecureNoVerification: .insecureNoVerification
        }
        let connection = try await ClientConnection<SMTPClientHandler>.connect(
            host: configuration.host, port: configuration.port, eventLoopGroup: eventLoopGroup, connectTimeout: configuration.timeouts.connect,
            verification: configuration.security == .plain ? nil : verification, serverName: configuration.serverName,
            implicitTLS: configuration.security == .implicitTLS, makeHandler: { SMTPClientHandler() })
        let client = SMTPClient(connection, configuration: configuration)
        try await connection.closingOnFailure { () async throws(SMTPClientError) in try await client.open() }
        return client
    }

    // MARK: Session setup

    private func open() async throws(SMTPClientError) {
        if configuration.security == .implicitTLS { state.withLockedValue { $0.encrypted = true } }
        let greeting = try await reply(timeout: configuration.timeouts.greeting, command: "connection greeting")
        state.withLockedValue { $0.greeting = greeting }
        guard greeting.code == 220 else { throw .refused(greeting, command: "connection greeting") }
        try await hello()
        switch configuration.security {
        case .startTLS, .startTLSIfAvailable:
            if capabilities.startTLS {
                let r = try await command("STARTTLS")
                guard r.code == 220 else {
                    if configuration.security == .startTLS { throw .refused(r, command: "STARTTLS") }
                    break
                }
                try await connection.startTLS(timeout: configuration.timeouts.command)
                state.withLockedValue { $0.encrypted = true }
                try await hello()
            } else if configuration.security == .startTLS {
                throw SMTPClientError(kind: .tls("the server does not offer STARTTLS"), isPermanent: true)
            }
        case .plain, .implicitTLS:
            break
        }
        try await authenticate()
    }

    private func hello() async throws(SMTPClientError) {
        let r = try await command("EHLO \(configuration.heloName)")
        if r.code == 250 {
            state.withLockedValue { $0.capabilities = SMTPCapabilities(ehloReply: r) }
            return
        }
        guard r.code >= 500 else { throw .refused(r, command: "EHLO") }
        let h = try await command("HELO \(configuration.heloName)")
        guard h.code == 250 else { throw .refused(h, command: "HELO") }
        state.withLockedValue { $0.capabilities = SMTPCapabilities() }
    }

    private func authenticate() async throws(SMTPClientError) {
        var mechanism: any SASLClientMechanism
        switch configuration.authentication {
        case .none:
            return
        case .password(let user, let password, let preferences):
            let offered = capabilities.authMechanisms
            guard let name = preferences.map({ $0.uppercased() }).first(where: { offered.contains($0) }) else {
                throw SMTPClientError(kind: .authenticationUnavailable(
                    offered.isEmpty ? "the server offers no AUTH mechanism" : "no mechanism in common (server offers \(offered.joined(separator: " ")))"),
                    isPermanent: true)
            }
            switch name {
            case "SCRAM-SHA-256": mechanism = SASLSCRAMSHA256(user: user, password: password)
            case "PLAIN": mechanism = SASLPlain(user: user, password: password)
            case "LOGIN": mechanism = SASLLogin(user: user, password: password)
            default:
                throw SMTPClientError(kind: .authenticationUnavailable("mechanism \(name) is not implemented"), isPermanent: true)
            }
        case .oauth2(let user, let token):
            guard capabilities.authMechanisms.contains("XOAUTH2") else {
                throw SMTPClientError(kind: .authenticationUnavailable("the server does not offer XOAUTH2"), isPermanent: true)
            }
            mechanism = SASLXOAuth2(user: user, accessToken: token)
        }
        guard isEncrypted || configuration.allowPlaintextAuthentication else {
            throw SMTPClientError(kind: .authenticationUnavailable("refusing to send credentials without TLS"), isPermanent: true)
        }
        let label = "AUTH \(mechanism.name)"
        var line = label
        if let initial = mechanism.initialResponse() { line += " " + (initial.isEmpty ? "=" : Base64.encode(initial)) }
        var r = try await command(line, label: label)
        var rounds = 0
        while r.code == 334 {
            rounds += 1
            guard rounds < 10 else { throw SMTPClientError(kind: .malformedReply, command: label, isPermanent: false) }
            let text = r.lines.first ?? ""
            guard let challenge = Base64.decode(text) else {
                _ = try? await command("*", label: label)
                throw SMTPClientError(kind: .malformedReply, command: label, isPermanent: false)
            }
            do {
                let response: [UInt8]
                if mechanism is SASLSCRAMSHA256, rounds >= 2 {
                    try mechanism.verifySuccess(challenge)
                    response = []
                } else {
                    response = try mechanism.respond(to: challenge)
                }
                r = try await command(Base64.encode(response), label: label)
            } catch let e as SASLError {
                _ = try? await command("*", label: label)
                throw SMTPClientError(kind: .authenticationUnavailable("\(e)"), command: label, isPermanent: true)
            } catch let e as SMTPClientError {
                throw e
            } catch {
                throw SMTPClientError(kind: .malformedReply, command: label, isPermanent: false)
            }
        }
        guard r.code == 235 else { throw .refused(r, command: label) }
        state.withLockedValue { $0.mechanism = mechanism.name }
    }

    // MARK: Messages

    /// The result of sending one message.
    public struct SendResult: Hashable, Sendable {
        /// The server's reply to the content (e.g. `250 2.0.0 Ok: queued as …`).
        public var reply: SMTPReply
        /// Recipients the server accepted.
        public var acceptedRecipients: [ForwardPath]
        /// Recipients the server refused (the message went to the others).
        public var refusedRecipients: [SMTPClientTransaction.RefusedRecipient]
    }

    /// Sends one message. Throws when no recipient was accepted or the content was refused; partial
    /// refusals are reported in the result.
    ///
    /// - Parameters:
    ///   - message: a complete RFC 5322 message, any line ends (they become CRLF).
    ///   - from: the envelope sender (`<>` allowed).
    ///   - to: envelope recipients, with RCPT parameters if any (DSN NOTIFY/ORCPT are sent only when the
    ///     server offers DSN).
    ///   - mailParameters: extra MAIL parameters (DSN RET/ENVID).
    public func send(_ message: ByteBuffer, from: ReversePath, to: [SMTPClientTransaction.Recipient],
                     mailParameters: [ESMTPParameter] = []) async throws(SMTPClientError) -> SendResult {
        if state.withLockedValue({ $0.needsReset }) {
            let r = try await command("RSET")
            guard r.code == 250 else { throw .refused(r, command: "RSET") }
            state.withLockedValue { $0.needsReset = false }
        }
        let transaction = try SMTPClientTransaction(from: from, to: to, message: SMTPMessageEncoder(message),
                                                    capabilities: capabilities, mailParameters: mailParameters,
                                                    allowChunking: configuration.useChunking)
        let channel = connection.channel
        let timeouts = configuration.timeouts
        let outcome: SMTPClientTransaction.Outcome
        do {
            outcome = try await connection.submit { [transaction] handler, _ in
                TransactionDriver(transaction, channel: channel, handler: handler, timeouts: timeouts).run()
            }
        } catch let e as SMTPClientError {
            throw e
        } catch {
            throw SMTPClientError(kind: .connectionClosed, isPermanent: false)
        }
        if outcome.needsReset { state.withLockedValue { $0.needsReset = true } }
        if let e = outcome.error { throw e }
        return SendResult(reply: outcome.accepted!, acceptedRecipients: outcome.acceptedRecipients,
                          refusedRecipients: outcome.refusedRecipients)
    }

    /// Sends one message to plain addresses given as text.
    public func send(_ message: ByteBuffer, from: String, to: [String]) async throws(SMTPClientError) -> SendResult {
        func parse(_ s: String) throws(SMTPClientError) -> EmailAddress {
            let bare = s.hasPrefix("<") && s.hasSuffix(">") ? String(s.dropFirst().dropLast()) : s
            switch EmailAddress.parse(bare, allowUTF8: true) {
            case .success(let a): return a
            case .failure: throw SMTPClientError(kind: .messageNotSendable("'\(s)' is not a valid address"), isPermanent: true)
            }
        }
        let sender: ReversePath = from.isEmpty || from == "<>" ? .null : .mailbox(try parse(from))
        var recipients: [SMTPClientTransaction.Recipient] = []
        for t in to { recipients.append(.init(.mailbox(try parse(t)))) }
        return try await send(message, from: sender, to: recipients)
    }

    /// Sends NOOP (keeps the session alive; checks it is still usable).
    public func noop() async throws(SMTPClientError) {
        let r = try await command("NOOP")
        guard r.code == 250 else { throw .refused(r, command: "NOOP") }
    }

    /// Sends QUIT and closes the connection.
    public func quit() async {
        _ = try? await command("QUIT")
        await connection.close()
    }

    /// Closes without QUIT.
    public func close() async {
        await connection.close()
    }

    // MARK: I/O

    /// Writes `bytes` (in blocks that must each leave within `timeouts.dataBlock`).
    private func write(_ bytes: ByteBuffer) async throws(SMTPClientError) {
        let channel = connection.channel
        let limit = configuration.timeouts.dataBlock
        do {
            try await channel.eventLoop.flatSubmit { TransactionDriver.write(bytes, on: channel, blockTimeout: limit) }.get()
        } catch let e as SMTPClientError {
            throw e
        } catch {
            throw SMTPClientError(kind: .connectionClosed, isPermanent: false)
        }
    }

    private func reply(timeout: TimeAmount, command: String) async throws(SMTPClientError) -> SMTPReply {
        try await connection.next(timeout: timeout, command: command)
    }

    /// Sends one command line and reads its reply; `label` replaces the line in errors (AUTH data).
    private func command(_ line: String, label: String? = nil) async throws(SMTPClientError) -> SMTPReply {
        try await write(ByteBuffer(string: line + "\r\n"))
        return try await reply(timeout: configuration.timeouts.command, command: label ?? line)
    }
}

