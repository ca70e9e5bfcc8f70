import ClientSupport
import MailCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import POP3Core

/// How a ``POP3Client`` connects.
public struct POP3ClientConfiguration: Sendable {
    /// Transport security.
    public enum Security: Hashable, Sendable {
        /// No TLS; logging in is refused unless ``allowPlaintextAuthentication``.
        case plain
        /// STLS (RFC 2595), required.
        case stls
        /// TLS from the first byte (RFC 8314, port 995).
        case implicitTLS
    }

    /// Certificate checking, as for SMTP.
    public enum CertificateVerification: Hashable, Sendable {
        case systemTrustStore
        case customCA(pemFile: String)
        case insecureNoVerification

        /// The same setting in ``ClientTLS``'s terms.
        var clientTLS: ClientTLS.Verification {
            switch self {
            case .systemTrustStore: .systemTrustStore
            case .customCA(let file): .customCA(pemFile: file)
            case .insecureNoVerification: .insecureNoVerification
            }
        }
    }

    public var host: String
    public var port: Int
    public var security: Security
    public var certificateVerification: CertificateVerification = .systemTrustStore
    /// Name for SNI and certificate checks; defaults to ``host``.
    public var serverName: String?
    /// Send USER/PASS or AUTH over a connection without TLS (never by default).
    public var allowPlaintextAuthentication = false
    /// How long to wait for any response.
    public var timeout: TimeAmount = .minutes(2)
    public var connectTimeout: TimeAmount = .seconds(30)

    /// A configuration for `host:port`.
    public init(host: String, port: Int, security: Security) {
        self.host = host
        self.port = port
        self.security = security
    }
}

/// A POP3 client (RFC 1939, 2449, 2595, 5034) usable from any Swift program.
///
/// ```swift
/// let pop = try await POP3Client.connect(.init(host: "mail.example.com", port: 995, security: .implicitTLS))
/// try await pop.login(user: "alice@example.com", password: secret)
/// for (n, uid) in try await pop.uniqueIDs() { let bytes = try await pop.retrieve(n) … }
/// await pop.quit()
/// ```
public final class POP3Client: Sendable {
    private let connection: ClientConnection<POP3ClientHandler>
    private let configuration: POP3ClientConfiguration
    private let state = NIOLockedValueBox(State())

    struct State: Sendable {
        var capabilities: [String: [String]] = [:]
        var encrypted = false
        var greeting = ""
    }

    /// CAPA keywords (upper case) and their parameters; empty when the server has no CAPA.
    public var capabilities: [String: [String]] { state.withLockedValue { $0.capabilities } }
    /// `true` once the connection is encrypted.
    public var isEncrypted: Bool { state.withLockedValue { $0.encrypted } }
    /// `true` when the server advertised PIPELINING (RFC 2449).
    public var supportsPipelining: Bool { capabilities["PIPELINING"] != nil }

    private init(_ connection: ClientConnection<POP3ClientHandler>, configuration: POP3ClientConfiguration) {
        self.connection = connection
        self.configuration = configuration
    }

    /// Connects, reads the greeting and CAPA, and performs STLS when configured.
    public static func connect(_ configuration: POP3ClientConfiguration,
                               eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws(POP3ClientError) -> POP3Client {
        let connection = try await ClientConnection<POP3ClientHandler>.connect(
            host: configuration.host, port: configuration.port, eventLoopGroup: eventLoopGroup,
            connectTimeout: configuration.connectTimeout,
            verification: configuration.security == .plain ? nil : configuration.certificateVerification.clientTLS,
            serverName: configuration.serverName, implicitTLS: configuration.security == .implicitTLS) { POP3ClientHandler() }
        let client = POP3Client(connection, configuration: configuration)
        try await connection.closingOnFailure { () async throws(POP3ClientError) in
            if configuration.security == .implicitTLS { client.state.withLockedValue { $0.encrypted = true } }
            let greeting = try await client.status(command: "greeting")
            guard greeting.ok else { throw POP3ClientError.refused(greeting, command: "greeting") }
            client.state.withLockedValue { $0.greeting = greeting.text }
            try await client.readCapabilities()
            if configuration.security == .stls {
                guard client.capabilities["STLS"] != nil else {
                    throw POP3ClientError(kind: .tls("the server does not offer STLS"), isPermanent: true)
                }
                let r = try await client.simple("STLS")
                _ = r
                // No limit on the handshake here (the SMTP client has one).
                try await connection.startTLS(timeout: nil)
                client.state.withLockedValue { $0.encrypted = true }
                try await client.readCapabilities()
            }
        }
        return client
    }

    private func readCapabilities() async throws(POP3ClientError) {
        guard let lines = try await multiLineOptional("CAPA") else {
            state.withLockedValue { $0.capabilities = [:] }
            return
        }
        var caps: [String: [String]] = [:]
        for line in String(decoding: lines, as: UTF8.self).split(separator: "\r\n") {
            let parts = line.split(separator: " ")
            guard let k = parts.first else { continue }
            caps[k.uppercased()] = parts.dropFirst().map(String.init)
        }
        state.withLockedValue { $0.capabilities = caps }
    }

    /// How to log in.
    public enum LoginMethod: Hashable, Sendable {
        /// SASL PLAIN when advertised, else USER/PASS.
        case automatic
        /// USER/PASS (RFC 1939 §7).
        case userPass
        /// AUTH PLAIN (RFC 5034, RFC 4616).
        case saslPlain
    }

    /// Logs in. The password is never part of an error.
    public func login(user: String, password: String, method: LoginMethod = .automatic) async throws(POP3ClientError) {
        guard isEncrypted || configuration.allowPlaintextAuthentication else {
            throw POP3ClientError(kind: .authenticationUnavailable("refusing to send credentials without TLS"), isPermanent: true)
        }
        let sasl = capabilities["SASL"]?.map { $0.uppercased() } ?? []
        let usePlain = method == .saslPlain || (method == .automatic && sasl.contains("PLAIN"))
        if usePlain {
            let token = Base64.encode([0] + Array(user.utf8) + [0] + Array(password.utf8))
            try await send("AUTH PLAIN \(token)", multiLine: false)
            let r = try await status(command: "AUTH PLAIN")
            guard r.ok else { throw POP3ClientError.refused(r, command: "AUTH PLAIN") }
        } else {
            _ = try await simple("USER \(user)")
            try await send("PASS \(password)", multiLine: false)
            let r = try await status(command: "PASS")
            guard r.ok else { throw POP3ClientError.refused(r, command: "PASS") }
        }
    }

    /// `STAT`: message count and total size.
    public func stat() async throws(POP3ClientError) -> (count: Int, size: Int) {
        let r = try await simple("STAT")
        let p = r.text.split(separator: " ")
        guard p.count >= 2, let c = Int(p[0]), let s = Int(p[1]) else {
            throw POP3ClientError(kind: .malformedResponse, command: "STAT", isPermanent: false)
        }
        return (c, s)
    }

    /// `LIST`: message numbers and sizes.
    public func list() async throws(POP3ClientError) -> [(number: Int, size: Int)] {
        try await pairs("LIST").compactMap { n, v in Int(v).map { (n, $0) } }
    }

    /// `UIDL`: message numbers and unique IDs.
    public func uniqueIDs() async throws(POP3ClientError) -> [(number: Int, uid: String)] {
        try await pairs("UIDL")
    }

    /// `RETR n`: the whole message, CRLF line ends.
    public func retrieve(_ number: Int) async throws(POP3ClientError) -> ByteBuffer {
        var all = ByteBuffer()
        try await retrieve(number) { chunk in
            var c = chunk
            all.writeBuffer(&c)
        }
        return all
    }

    /// `RETR n`, streamed: `body` receives the message in chunks (about 64 KiB) as they arrive.
    public func retrieve(_ number: Int, body: (ByteBuffer) throws -> Void) async throws(POP3ClientError) {
        try await send("RETR \(number)", multiLine: true)
        try await receiveBody(command: "RETR \(number)", body: body)
    }

    /// Retrieves several messages, pipelining the RETR commands when the server allows it.
    public func retrieve(_ numbers: [Int], body: (Int, ByteBuffer, Bool) throws -> Void) async throws(POP3ClientError) {
        let window = supportsPipelining ? 8 : 1
        var next = 0
        var inFlight: [Int] = []
        while next < numbers.count || !inFlight.isEmpty {
            while next < numbers.count && inFlight.count < window {
                try await send("RETR \(numbers[next])", multiLine: true)
                inFlight.append(numbers[next])
                next += 1
            }
            let n = inFlight.removeFirst()
            try await receiveBody(command: "RETR \(n)") { chunk in try body(n, chunk, false) }
            do { try body(n, ByteBuffer(), true) } catch {
                throw POP3ClientError(kind: .connectionClosed, command: "RETR \(n): \(error)", isPermanent: false)
            }
        }
    }

    /// `TOP n lines`: the header and the first `lines` body lines.
    public func top(_ number: Int, lines: Int) async throws(POP3ClientError) -> ByteBuffer {
        try await send("TOP \(number) \(lines)", multiLine: true)
        var all = ByteBuffer()
        try await receiveBody(command: "TOP") { chunk in
            var c = chunk
            all.writeBuffer(&c)
        }
        return all
    }

    /// `DELE n` (applied at QUIT).
    public func delete(_ number: Int) async throws(POP3ClientError) { _ = try await simple("DELE \(number)") }
    /// `RSET`.
    public func reset() async throws(POP3ClientError) { _ = try await simple("RSET") }
    /// `NOOP`.
    public func noop() async throws(POP3ClientError) { _ = try await simple("NOOP") }

    /// `QUIT`: the server deletes what was marked; throws if it reports it could not.
    public func quit() async throws(POP3ClientError) {
        defer { Task { [connection] in await connection.close() } }
        _ = try await simple("QUIT")
    }

    /// Closes without QUIT (nothing is deleted).
    public func close() async { await connection.close() }

    // MARK: I/O

    private func receiveBody(command: String, body: (ByteBuffer) throws -> Void) async throws(POP3ClientError) {
        let r = try await status(command: command)
        guard r.ok else { throw POP3ClientError.refused(r, command: command) }
        while true {
            switch try await item(command: command) {
            case .body(let chunk):
                do { try body(chunk) } catch {
                    throw POP3ClientError(kind: .connectionClosed, command: "\(command): \(error)", isPermanent: false)
                }
            case .end: return
            default: throw POP3ClientError(kind: .malformedResponse, command: command, isPermanent: false)
            }
        }
    }

    private func pairs(_ command: String) async throws(POP3ClientError) -> [(Int, String)] {
        guard let body = try await multiLineOptional(command) else {
            throw POP3ClientError(kind: .refused, command: command, isPermanent: true)
        }
        return String(decoding: body, as: UTF8.self).split(separator: "\r\n").compactMap { line in
            let p = line.split(separator: " ", maxSplits: 1)
            guard p.count == 2, let n = Int(p[0]) else { return nil }
            return (n, String(p[1]))
        }
    }

    /// A multi-line command; `nil` when the server answers `-ERR`.
    private func multiLineOptional(_ command: String) async throws(POP3ClientError) -> [UInt8]? {
        try await send(command, multiLine: true)
        let r = try await status(command: command)
        guard r.ok else { return nil }
        var out: [UInt8] = []
        while true {
            switch try await item(command: command) {
            case .body(let b): out += b.readableBytesView
            case .end: return out
            default: throw POP3ClientError(kind: .malformedResponse, command: command, isPermanent: false)
            }
        }
    }

    private func simple(_ command: String) async throws(POP3ClientError) -> POP3Response {
        let label = command.hasPrefix("PASS") ? "PASS" : command
        try await send(command, multiLine: false)
        let r = try await status(command: label)
        guard r.ok else { throw POP3ClientError.refused(r, command: label) }
        return r
    }

    private func send(_ line: String, multiLine: Bool) async throws(POP3ClientError) {
        do {
            try await connection.submit { handler, loop in loop.makeSucceededFuture(handler.expect(multiLine: multiLine)) }
            try await connection.channel.writeAndFlush(ByteBuffer(string: line + "\r\n"))
        } catch {
            throw POP3ClientError(kind: .connectionClosed, isPermanent: false)
        }
    }

    private func status(command: String) async throws(POP3ClientError) -> POP3Response {
        switch try await item(command: command) {
        case .status(let r): return r
        default: throw POP3ClientError(kind: .malformedResponse, command: command, isPermanent: false)
        }
    }

    private func item(command: String) async throws(POP3ClientError) -> POP3ClientHandler.Item {
        try await connection.next(timeout: configuration.timeout, command: command)
    }
}
