import MailCore
import SASL
import SMTPCore

import struct Foundation.Data
import struct Foundation.URL

/// A golden SMTP transcript: what a client sends, what the server must answer, and how the
/// outside world (recipient checks, the message store) behaves. Only the *description* lives here;
/// ``TranscriptRunner`` plays it against ``SMTPServerStateMachine``, and a live driver can play the
/// same value against a TCP listener.
///
/// File format, one item per line (ARCHITECTURE §7.4):
///
/// ```
/// # comment                        ignored, as are blank lines
/// ! config: maximumRecipients=2 startTLSAvailable=true
///                                  listener configuration (fields of SMTPServerStateMachine.Configuration;
///                                  hostname defaults to mx.example.test)
/// ! implicit-tls                   the session starts inside TLS (RFC 8314)
/// ! login: alice@example.test secret
///                                  AUTH accepts this user name and password (anything else fails)
/// ! scram: user pencil W22ZaJ0SNY7soEsUEjb6gQ== 4096
///                                  SCRAM-SHA-256 accepts this user and password (salt base64, iterations)
/// ! scram-nonce: %hvYDpWUa2RaTCAfuxFIlj)hNlF$k0
///                                  the server nonce part of SCRAM exchanges (default: random)
/// ! reject-sender: <bob@example.test> 553 5.7.1 Sender address rejected
///                                  the delegate refuses this MAIL FROM of an authenticated session
/// ! reject-recipient: <nobody@example.test> 550 5.1.1 Recipient address rejected: User unknown
///                                  the delegate refuses this forward path (case-insensitive) with this reply
/// ! store: queued Q1               the next message stored gets queue ID Q1 (default: queued TESTQUEUEID)
/// ! store: failed 452 4.3.1 Insufficient system storage
///                                  the next store fails with this reply
/// ! store: held queued Q2          like `queued`, but the store completes only at `@ store-completes`
/// ! whole-writes-only              the outcome depends on how the client's writes are grouped (pipelining
///                                  violations), so the file is not replayed with split writes
/// C: MAIL FROM:<a@example.test>    the client sends this line; CRLF is appended
/// B: body\n.\nMAIL FROM:<x@y>\r\n   the client sends these bytes verbatim; escapes \r \n \t \0 \\ \xHH;
///                                  nothing is appended
/// S: 250 2.1.0 Ok                  the next line the server writes, exactly (without CRLF)
/// M: Subject: hi\r\n\r\nbody\r\n   the message stored last has exactly this content (escapes as for B:)
/// @ tls                            the TLS handshake after `220 Ready to start TLS` completes
/// @ timeout                        the command or data timer fires
/// @ shutdown                       the server begins a graceful shutdown
/// @ shutdown-deadline              the graceful shutdown's deadline passes
/// @ store-completes                a `held` store finishes now
/// @ client-closes                  the client drops the connection
/// @ closed                         expectation: the server has closed the connection, with nothing unread
/// ```
///
/// Consecutive `C:`/`B:` lines form one write (the client pipelines them before reading any reply).
public struct Transcript: Sendable {
    /// One client write, expectation or event, with the line number it came from (1-based).
    public enum Step: Hashable, Sendable {
        /// The client writes these bytes at once.
        case write([UInt8], line: Int)
        /// The server's next output line is exactly this text.
        case expectReply(String, line: Int)
        /// The most recently stored message has exactly this content.
        case expectMessage([UInt8], line: Int)
        /// Something outside the byte stream happens.
        case event(Event, line: Int)
        /// The server has closed the connection and written nothing more.
        case expectClosed(line: Int)
    }

    /// Events a driver injects.
    public enum Event: String, Hashable, Sendable, CaseIterable {
        case tls
        case timeout
        case shutdown
        case shutdownDeadline = "shutdown-deadline"
        case storeCompletes = "store-completes"
        case clientCloses = "client-closes"
    }

    /// What the message store does with the next message.
    public struct StoreOutcome: Hashable, Sendable {
        /// `.success(queueID)` or `.failure(reply)`.
        public var result: Result<String, SMTPRejectionReply>
        /// The store completes only at `@ store-completes`.
        public var held: Bool

        /// Creates an outcome.
        public init(result: Result<String, SMTPRejectionReply>, held: Bool = false) {
            self.result = result
            self.held = held
        }
    }

    /// A reply used as an error value (the store's or delegate's refusal).
    public struct SMTPRejectionReply: Error, Hashable, Sendable {
        /// The reply.
        public var reply: SMTPReply
        /// Wraps `reply`.
        public init(_ reply: SMTPReply) { self.reply = reply }
    }

    /// The file name (for test names and failure messages).
    public var name: String
    /// The listener configuration.
    public var configuration: SMTPServerStateMachine.Configuration
    /// The session starts inside TLS.
    public var implicitTLS = false
    /// Forward paths the delegate refuses (key: the path without angle brackets, lower-cased).
    public var rejectedRecipients: [String: SMTPReply] = [:]
    /// Outcomes of successive stores, in order; once used up, stores succeed as `TESTQUEUEID`.
    public var storeOutcomes: [StoreOutcome] = []
    /// The transcript must be played with whole writes only.
    public var wholeWritesOnly = false
    /// Accounts the scripted delegate accepts at AUTH (`! login: USER PASSWORD`), user lower-cased.
    public var logins: [String: String] = [:]
    /// SCRAM-SHA-256 accounts (`! scram:`), user as typed.
    public var scramAccounts: [String: SCRAMCredentials] = [:]
    /// The SCRAM server nonce (`! scram-nonce:`).
    public var scramNonce: String?
    /// Senders the delegate refuses for authenticated sessions (key as for recipients).
    public var rejectedSenders: [String: SMTPReply] = [:]
    /// The steps in file order.
    public var steps: [Step] = []

    /// The host name used when `! config:` does not set one.
    public static let defaultHostname = "mx.example.test"
    /// The queue ID of a successful store with no `! store:` line left.
    public static let defaultQueueID = "TESTQUEUEID"

    /// `true` if the transcript needs events only an in-memory driver can inject at will
    /// (a live driver has to arrange timeouts and shutdowns itself, or skip the file).
    public var usesInjectedEvents: Bool {
        steps.contains { step in
            if case .event(let e, _) = step { return e != .tls && e != .clientCloses }
            return false
        }
    }

    /// The refusal for an authenticated session's sender, if the transcript says so.
    public func senderRejection(for path: ReversePath) -> SMTPReply? {
        rejectedSenders[Self.recipientKey(path.description)]
    }

    /// The refusal for `path`, if the transcript says the delegate refuses it.
    public func rejection(for path: ForwardPath) -> SMTPReply? {
        rejectedRecipients[Self.recipientKey(path.description)]
    }

    static func recipientKey(_ text: some StringProtocol) -> String {
        var t = Substring(text)
        if t.hasPrefix("<") && t.hasSuffix(">") && t.count >= 2 { t = t.dropFirst().dropLast() }
        return t.lowercased()
    }

    /// Why a transcript file could not be read.
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        /// The file name.
        public var name: String
        /// The 1-based line number.
        public var line: Int
        /// What is wrong.
        public var message: String
        public var description: String { "\(name):\(line): \(message)" }
    }

    /// Reads a transcript file.
    public static func load(contentsOf url: URL) throws -> Transcript {
        let data = try Data(contentsOf: url)
        return try parse(String(decoding: data, as: UTF8.self), name: url.lastPathComponent)
    }

    /// Parses transcript text.
    public static func parse(_ text: String, name: String) throws(ParseError) -> Transcript {
        var t = Transcript(name: name, configuration: .init(hostname: defaultHostname))
        var pendingWrite: [UInt8]?
        var pendingWriteLine = 0
        func flushWrite() {
            if let w = pendingWrite { t.steps.append(.write(w, line: pendingWriteLine)) }
            pendingWrite = nil
        }
        func fail(_ line: Int, _ message: String) -> ParseError { ParseError(name: name, line: line, message: message) }

        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            var line = Substring(rawLine)
            if line.hasSuffix("\r") { line = line.dropLast() }
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) || line.hasPrefix("#") { continue }

            if line.hasPrefix("C: ") || line == "C:" {
                if pendingWrite == nil { pendingWrite = []; pendingWriteLine = lineNumber }
                pendingWrite!.append(contentsOf: Array(line.dropFirst(3).utf8) + [0x0D, 0x0A])
                continue
            }
            if line.hasPrefix("B: ") {
                if pendingWrite == nil { pendingWrite = []; pendingWriteLine = lineNumber }
                guard let bytes = unescape(line.dropFirst(3)) else { throw fail(lineNumber, "bad escape in B: line") }
                pendingWrite!.append(contentsOf: bytes)
                continue
            }
            flushWrite()
            if line.hasPrefix("S: ") {
                t.steps.append(.expectReply(String(line.dropFirst(3)), line: lineNumber))
            } else if line.hasPrefix("M: ") || line == "M:" {
                guard let bytes = unescape(line.dropFirst(min(3, line.count))) else {
                    throw fail(lineNumber, "bad escape in M: line")
                }
                t.steps.append(.expectMessage(bytes, line: lineNumber))
            } else if line.hasPrefix("@ ") {
                let word = line.dropFirst(2).trimmingSpaces()
                if word == "closed" {
                    t.steps.append(.expectClosed(line: lineNumber))
                } else if let e = Event(rawValue: String(word)) {
                    t.steps.append(.event(e, line: lineNumber))
                } else {
                    throw fail(lineNumber, "unknown event '\(word)'")
                }
            } else if line.hasPrefix("! ") {
                try parseDirective(line.dropFirst(2), into: &t, line: lineNumber, fail: fail)
            } else {
                throw fail(lineNumber, "expected '# ', '! ', 'C: ', 'B: ', 'S: ', 'M: ' or '@ '")
            }
        }
        flushWrite()
        return t
    }

    private static func parseDirective(_ text: Substring, into t: inout Transcript, line: Int,
                                       fail: (Int, String) -> ParseError) throws(ParseError) {
        let colon = text.firstIndex(of: ":")
        let key = (colon.map { text[..<$0] } ?? text).trimmingSpaces()
        let value = colon.map { text[text.index(after: $0)...].trimmingSpaces() } ?? ""
        switch key {
        case "config":
            for setting in value.split(separator: " ") {
                let kv = setting.split(separator: "=", maxSplits: 1)
                guard kv.count == 2 else { throw fail(line, "config setting '\(setting)' is not key=value") }
                let v = String(kv[1])
                func int() throws(ParseError) -> Int {
                    guard let n = Int(v) else { throw fail(line, "'\(kv[0])' needs a number") }
                    return n
                }
                func bool() throws(ParseError) -> Bool {
                    switch v {
                    case "true": return true
                    case "false": return false
                    default: throw fail(line, "'\(kv[0])' needs true or false")
                    }
                }
                switch kv[0] {
                case "hostname": t.configuration.hostname = v
                case "maximumMessageSize": t.configuration.maximumMessageSize = try int()
                case "maximumRecipients": t.configuration.maximumRecipients = try int()
                case "maximumErrors": t.configuration.maximumErrors = try int()
                case "startTLSAvailable": t.configuration.startTLSAvailable = try bool()
                case "chunking": t.configuration.chunking = try bool()
                case "smtpUTF8": t.configuration.smtpUTF8 = try bool()
                case "authMechanisms": t.configuration.authMechanisms = v.split(separator: ",").map(String.init)
                case "requireAuthentication": t.configuration.requireAuthentication = try bool()
                case "allowPlaintextAuthentication": t.configuration.allowPlaintextAuthentication = try bool()
                default: throw fail(line, "unknown config setting '\(kv[0])'")
                }
            }
        case "implicit-tls":
            t.implicitTLS = true
        case "login":
            let parts = value.split(separator: " ", maxSplits: 1)
            guard parts.count == 2 else { throw fail(line, "expected 'login: USER PASSWORD'") }
            t.logins[String(parts[0]).lowercased()] = String(parts[1])
        case "scram":
            let parts = value.split(separator: " ")
            guard parts.count == 4, let salt = Base64.decode(parts[2]), let iterations = Int(parts[3]) else {
                throw fail(line, "expected 'scram: USER PASSWORD SALT-BASE64 ITERATIONS'")
            }
            t.scramAccounts[String(parts[0])] = SCRAMCredentials(password: String(parts[1]), iterations: iterations, salt: salt)
        case "scram-nonce":
            t.scramNonce = String(value)
        case "reject-sender":
            let parts = value.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let reply = parseReply(parts[1]) else {
                throw fail(line, "expected 'reject-sender: <path> CODE [X.Y.Z] text'")
            }
            t.rejectedSenders[recipientKey(parts[0])] = reply
        case "whole-writes-only":
            t.wholeWritesOnly = true
        case "reject-recipient":
            let parts = value.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let reply = parseReply(parts[1]) else {
                throw fail(line, "expected 'reject-recipient: <path> CODE [X.Y.Z] text'")
            }
            t.rejectedRecipients[recipientKey(parts[0])] = reply
        case "store":
            var words = value
            var held = false
            if words.hasPrefix("held ") { held = true; words = words.dropFirst(5).trimmingSpaces() }
            if words.hasPrefix("queued ") {
                let id = words.dropFirst(7).trimmingSpaces()
                guard !id.isEmpty, !id.contains(" ") else { throw fail(line, "expected 'store: queued ID'") }
                t.storeOutcomes.append(StoreOutcome(result: .success(String(id)), held: held))
            } else if words.hasPrefix("failed "), let reply = parseReply(words.dropFirst(7)) {
                t.storeOutcomes.append(StoreOutcome(result: .failure(SMTPRejectionReply(reply)), held: held))
            } else {
                throw fail(line, "expected 'store: [held] queued ID' or 'store: [held] failed CODE X.Y.Z text'")
            }
        default:
            throw fail(line, "unknown directive '\(key)'")
        }
    }

    /// Parses `CODE [X.Y.Z] text` into a single-line reply.
    public static func parseReply(_ text: some StringProtocol) -> SMTPReply? {
        let words = text.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard let first = words.first, first.count == 3, let code = Int(first), (200...599).contains(code) else {
            return nil
        }
        if words.count >= 2, let enhanced = EnhancedStatusCode(Substring(words[1])) {
            return SMTPReply(code: code, enhanced, words.count == 3 ? String(words[2]) : "")
        }
        return SMTPReply(code: code, nil, words.dropFirst().joined(separator: " "))
    }

    /// Decodes `\r \n \t \0 \\ \xHH`; every other character stands for its UTF-8 bytes.
    public static func unescape(_ text: some StringProtocol) -> [UInt8]? {
        var out: [UInt8] = []
        var bytes = Array(text.utf8)[...]
        while let b = bytes.popFirst() {
            guard b == UInt8(ascii: "\\") else { out.append(b); continue }
            guard let e = bytes.popFirst() else { return nil }
            switch e {
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "0"): out.append(0x00)
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "x"):
                guard bytes.count >= 2, let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16) else {
                    return nil
                }
                out.append(v)
                bytes = bytes.dropFirst(2)
            default: return nil
            }
        }
        return out
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return s
    }
}

/// The scripted side of a SCRAM-SHA-256 exchange for transcripts, shared by the in-memory runner and
/// the live driver: a real ``SASLServer`` over the transcript's `! scram:` accounts.
public struct ScriptedSCRAM: Sendable {
    /// What the exchange answers.
    public enum Step: Hashable, Sendable {
        case challenge([UInt8])
        case success(user: String, additionalData: [UInt8])
        case failure
    }

    private var sasl: SASLServer
    private var user: String?
    private let accounts: [String: SCRAMCredentials]

    /// Starts an exchange for `transcript`.
    public init(_ transcript: Transcript) {
        sasl = SASLServer(configuration: .init(scramServerNonce: transcript.scramNonce))
        accounts = transcript.scramAccounts
    }

    /// The next step for a client response.
    public mutating func respond(_ response: [UInt8]) -> Step {
        let action = sasl.mechanism == nil
            ? sasl.start(mechanism: SASLServer.Mechanism.scramSHA256.rawValue, initialResponse: response)
            : sasl.responseReceived(response)
        switch action {
        case .lookUpSCRAMCredentials(let name):
            user = name
            let credentials = accounts[name] ?? SCRAMServer.decoyCredentials(for: name, secret: [1, 2, 3])
            guard case .challenge(let serverFirst) = sasl.scramCredentialsFound(credentials, userExists: accounts[name] != nil) else {
                preconditionFailure("SCRAM did not answer the credentials with a challenge")
            }
            return .challenge(serverFirst)
        case .succeed(let serverFinal?):
            guard let user else { preconditionFailure("SCRAM succeeded without a user") }
            return .success(user: user, additionalData: serverFinal)
        case .fail:
            return .failure
        case .challenge, .verifyPassword, .succeed(nil):
            preconditionFailure("SCRAM answered a client message with \(action)")
        }
    }
}
