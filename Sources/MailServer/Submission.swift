import MailCore
import MIME
import NIOConcurrencyHelpers
import NIOCore
import SASL
import SMTPCore
import SMTPServer

/// What applies to authenticated sessions (submission on 587/465, or AUTH on port 25 when enabled):
/// sender ownership, sending limits and the RFC 6409 §8 header fixes.
struct SubmissionPolicy: Sendable {
    /// Accepted messages per user per rolling hour; 0 = no limit.
    var maxMessagesPerHour: Int
    /// Recipients per message for authenticated users.
    var maxRecipientsPerMessage: Int
    /// Name the authenticated user in `Received:` (Postfix's `smtpd_sasl_authenticated_header`).
    var receivedShowsUser: Bool
    /// Largest header section kept in memory for the header fixes; larger is refused.
    var maxHeaderBytes = 1 << 20

    /// The policy of `[submission]`.
    init(_ submission: ServerConfiguration.Submission) {
        maxMessagesPerHour = submission.maxMessagesPerHour
        maxRecipientsPerMessage = submission.maxRecipientsPerMessage
        receivedShowsUser = submission.receivedHeaderUser
    }
}

/// Counts each user's accepted messages over a rolling hour (in memory; a restart forgets).
final class SendingRateLimiter: Sendable {
    private let perHour: Int
    private let clock: MonotonicClock
    /// Acceptance times (``MonotonicClock/now`` values) per user.
    private let sent = NIOLockedValueBox<[String: [Duration]]>([:])

    init(perHour: Int, clock: MonotonicClock = .continuous) {
        self.perHour = perHour
        self.clock = clock
    }

    /// `true` while `user` is under the limit.
    func mayStart(_ user: String) -> Bool {
        guard perHour > 0 else { return true }
        let now = clock.now
        return sent.withLockedValue { table in
            let recent = (table[user] ?? []).filter { now - $0 < .seconds(3600) }
            table[user] = recent.isEmpty ? nil : recent
            return recent.count < perHour
        }
    }

    /// Counts one accepted message.
    func record(_ user: String) {
        guard perHour > 0 else { return }
        let now = clock.now
        sent.withLockedValue { table in
            var list = (table[user] ?? []).filter { now - $0 < .seconds(3600) }
            list.append(now)
            table[user] = list
        }
    }
}

/// One SCRAM-SHA-256 exchange for SMTP AUTH, run by SASL's `SASLServer`: client-first → (credentials
/// lookup here: throttling, stored keys or decoys) → server-first → client-final → proof check →
/// server-final. Throttling and failure delays as for PLAIN.
final class SCRAMExchange: SMTPSASLExchange, @unchecked Sendable {
    private let authenticator: Authenticator
    private let remoteIP: String
    private let lock = NIOLock()
    private var sasl = SASLServer()
    /// The user named by the client-first message, once its credentials were looked up.
    private var user: String?

    init(authenticator: Authenticator, remoteIP: String) {
        self.authenticator = authenticator
        self.remoteIP = remoteIP
    }

    func respond(to response: [UInt8]) async throws -> SMTPSASLStep {
        let (action, user) = lock.withLock { () -> (SASLServer.Action, String?) in
            guard sasl.mechanism != nil else {
                return (sasl.start(mechanism: SASLServer.Mechanism.scramSHA256.rawValue, initialResponse: response), nil)
            }
            return (sasl.responseReceived(response), self.user)
        }
        switch action {
        case .lookUpSCRAMCredentials(let name):
            if let verdict = authenticator.throttled(user: name, remoteIP: remoteIP) {
                await authenticator.failed(user: name, remoteIP: remoteIP)
                throw SMTPRejection(Intake.reply(for: verdict))
            }
            let (credentials, known) = await authenticator.scramCredentials(user: name)
            let next = lock.withLock { () -> SASLServer.Action in
                self.user = name
                return sasl.scramCredentialsFound(credentials, userExists: known)
            }
            guard case .challenge(let serverFirst) = next else { preconditionFailure("SCRAM answered the credentials with \(next)") }
            return .challenge(serverFirst)
        case .succeed(let serverFinal):
            guard let user else { preconditionFailure("SCRAM succeeded without a user") }
            authenticator.succeeded(user: user)
            return .success(user: Authenticator.canonical(user), additionalData: serverFinal)
        case .fail:
            guard let user else {
                throw SMTPRejection(SMTPReply(code: 501, .init(5, 5, 2), "Malformed SCRAM client-first message"))
            }
            await authenticator.failed(user: user, remoteIP: remoteIP)
            return .failure
        case .challenge, .verifyPassword:
            preconditionFailure("SCRAM answered a client message with \(action)")
        }
    }
}

/// Keeps the header section of a submitted message in memory (bounded) so it can be checked and
/// fixed; everything after it goes on to the spool as usual.
struct HeaderCapture: Sendable {
    let limit: Int
    /// The header lines with their CRLFs, without the empty line that ends the section.
    private(set) var header: [UInt8] = []
    private(set) var complete = false
    /// The section was larger than `limit`.
    private(set) var overflowed = false

    init(limit: Int) { self.limit = limit }

    /// Takes the next content bytes; returns what belongs to the body (from the empty line on).
    mutating func feed(_ buffer: ByteBuffer) -> ByteBuffer {
        guard !complete else { return buffer }
        let searchFrom = max(0, header.count - 3)
        header.append(contentsOf: buffer.readableBytesView)
        if header.starts(with: [13, 10]) {
            return finish(at: 0)
        }
        var i = searchFrom
        while i + 3 < header.count {
            if header[i] == 13 && header[i + 1] == 10 && header[i + 2] == 13 && header[i + 3] == 10 {
                return finish(at: i + 2)
            }
            i += 1
        }
        if header.count > limit {
            overflowed = true
            return finish(at: 0)
        }
        return ByteBuffer()
    }

    /// The content ended: whatever was captured is the header section.
    mutating func end() { complete = true }

    private mutating func finish(at cut: Int) -> ByteBuffer {
        complete = true
        let body = ByteBuffer(bytes: header[cut...])
        header.removeSubrange(cut...)
        return body
    }
}

/// The RFC 6409 §8 fixes for a submitted header section and the `From:` addresses to authorise.
struct SubmissionHeaders: Sendable {
    /// The `From:` mailboxes (all `From:` fields).
    var fromAddresses: [String] = []
    /// `From:` fields present but none held a parseable address.
    var fromUnparseable = false
    /// The rewritten section in storage form (LF line ends): `Bcc:` removed; `From:`, `Date:` and
    /// `Message-ID:` added when missing.
    var storage: [UInt8] = []

    /// Parses `header` (CRLF lines) and builds the fixed section.
    init(header: [UInt8], envelopeSender: String?, messageID: String, date: String) {
        // Split into fields: a line starting with SP/HT continues the previous one.
        var fields: [(name: String, raw: ArraySlice<UInt8>)] = []
        var start = 0
        var i = 0
        func lineEnd(_ from: Int) -> Int {
            var j = from
            while j < header.count && header[j] != 10 { j += 1 }
            return min(j + 1, header.count)
        }
        while i < header.count {
            let end = lineEnd(i)
            let continuation = header[i] == 32 || header[i] == 9
            if !continuation && i > start {
                fields.append((Self.name(header[start..<i]), header[start..<i]))
                start = i
            }
            i = end
        }
        if i > start { fields.append((Self.name(header[start..<i]), header[start..<i])) }

        var hasDate = false, hasMessageID = false, hasFrom = false
        var out: [UInt8] = []
        out.reserveCapacity(header.count + 128)
        for f in fields {
            switch f.name {
            case "bcc": continue
            case "date": hasDate = true
            case "message-id": hasMessageID = true
            case "from":
                hasFrom = true
                let value = Self.unfoldedValue(f.raw)
                let found = AddressListParser.mailboxes(value).map(\.address)
                if found.isEmpty { fromUnparseable = true }
                fromAddresses += found
            default: break
            }
            out.append(contentsOf: f.raw.lazy.filter { $0 != 13 })
        }
        if let last = out.last, last != 10 { out.append(10) }
        if !hasFrom, let s = envelopeSender { out += Array("From: <\(s)>\n".utf8) }
        if !hasDate { out += Array("Date: \(date)\n".utf8) }
        if !hasMessageID { out += Array("Message-ID: <\(messageID)>\n".utf8) }
        storage = out
    }

    private static func name(_ raw: ArraySlice<UInt8>) -> String {
        guard let colon = raw.firstIndex(of: 58) else { return "" }
        return String(decoding: raw[raw.startIndex..<colon], as: UTF8.self).trimmingSpaces().lowercased()
    }

    private static func unfoldedValue(_ raw: ArraySlice<UInt8>) -> String {
        guard let colon = raw.firstIndex(of: 58) else { return "" }
        let value = raw[(colon + 1)...].filter { $0 != 13 && $0 != 10 }
        return String(decoding: value, as: UTF8.self)
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        var s = self[...]
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}
