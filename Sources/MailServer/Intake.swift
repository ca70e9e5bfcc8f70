#if canImport(Glibc)
import Glibc
#endif
import Directory
import Logging
import MailCore
import MailQueue
import MailStore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SMTPCore
import SMTPServer

/// Receives messages from the SMTP listeners (like Postfix's cleanup): checks recipients, adds
/// `Return-Path:` and `Received:`, and stores each message durably in every recipient's Maildir before
/// the `250` goes out.
final class Intake: SMTPServerDelegate {
    let directory: any UserDirectory
    let store: MaildirStore
    let hostname: String
    let spoolDirectory: String
    let threadPool: NIOThreadPool
    let logger: Logger
    let firstDomain: String
    let relayNetworks: [CIDR]
    let queue: OutboundQueue
    let authenticator: Authenticator
    let submission: SubmissionPolicy
    let rateLimiter: SendingRateLimiter

    init(directory: any UserDirectory, store: MaildirStore, hostname: String, spoolDirectory: String,
         threadPool: NIOThreadPool, logger: Logger, firstDomain: String, relayNetworks: [CIDR], queue: OutboundQueue,
         authenticator: Authenticator, submission: SubmissionPolicy) {
        self.queue = queue
        self.authenticator = authenticator
        self.submission = submission
        self.rateLimiter = SendingRateLimiter(perHour: submission.maxMessagesPerHour)
        self.directory = directory
        self.store = store
        self.hostname = hostname
        self.spoolDirectory = spoolDirectory
        self.threadPool = threadPool
        self.logger = logger
        self.firstDomain = firstDomain
        self.relayNetworks = relayNetworks
    }

    func verifyRecipient(_ recipient: ForwardPath, envelope: SMTPEnvelope, connection: SMTPConnectionInfo) async throws {
        let resolution: RecipientResolution? = if case .mailbox(let address) = recipient { try await directory.resolve(address) } else { nil }
        if case .reject(let reply) = verdict(recipient, resolution, envelope: envelope, connection: connection) {
            throw SMTPRejection(reply)
        }
    }

    func immediateRecipientVerdict(_ recipient: ForwardPath, envelope: SMTPEnvelope, connection: SMTPConnectionInfo) -> SMTPRecipientVerdict? {
        guard case .mailbox(let address) = recipient else { return verdict(recipient, nil, envelope: envelope, connection: connection) }
        guard let known = directory.cachedResolution(address) else { return nil }
        return verdict(recipient, known, envelope: envelope, connection: connection)
    }

    /// The decision on one recipient given where it resolves (`nil` for `<Postmaster>`).
    private func verdict(_ recipient: ForwardPath, _ resolution: RecipientResolution?, envelope: SMTPEnvelope,
                         connection: SMTPConnectionInfo) -> SMTPRecipientVerdict {
        if connection.session.authenticatedAs != nil && envelope.recipients.count >= submission.maxRecipientsPerMessage {
            return .reject(SMTPReply(code: 452, .init(4, 5, 3), "Too many recipients for one message (limit \(submission.maxRecipientsPerMessage))"))
        }
        switch resolution {
        case nil, .mailboxes?: return .accept  // <Postmaster> is always accepted
        case .unknown?: return .reject(.unknownUser)
        case .notLocal?:
            // No open relay: only authenticated clients and those in relay_networks may send to other domains.
            return mayRelay(connection) ? .accept : .reject(.relayDenied)
        }
    }

    // MARK: Authentication and senders (RFC 4954, RFC 6409)

    func authenticate(user: String, password: String, connection: SMTPConnectionInfo) async throws -> String? {
        let verdict = await authenticator.check(user: user, password: password, remoteIP: connection.remoteIP)
        if case .accepted(let login) = verdict { return login }
        throw SMTPRejection(Self.reply(for: verdict))
    }

    func makeSASLExchange(mechanism: String, connection: SMTPConnectionInfo) -> (any SMTPSASLExchange)? {
        mechanism == "SCRAM-SHA-256" ? SCRAMExchange(authenticator: authenticator, remoteIP: connection.remoteIP) : nil
    }

    /// The reply for a failed or throttled login.
    static func reply(for verdict: Authenticator.Verdict) -> SMTPReply {
        switch verdict {
        case .accepted, .rejected: SMTPReply(code: 535, .init(5, 7, 8), "Authentication credentials invalid")
        case .accountThrottled: SMTPReply(code: 454, .init(4, 7, 0), "Too many failed logins for this account, try again later")
        case .clientThrottled: SMTPReply(code: 421, .init(4, 7, 0), "Too many failed logins from your address, try again later")
        }
    }

    /// Authenticated senders must own the address (Postfix's `reject_sender_login_mismatch`); the
    /// null sender is not theirs to use; past the hourly limit MAIL is deferred.
    func verifySender(_ sender: ReversePath, envelope: SMTPEnvelope, connection: SMTPConnectionInfo) async throws {
        guard let user = connection.session.authenticatedAs else { return }
        guard let address = sender.address else {
            throw SMTPRejection(SMTPReply(code: 553, .init(5, 7, 1), "Null sender not allowed for authenticated users"))
        }
        guard try await owns(user, address) else {
            throw SMTPRejection(SMTPReply(code: 553, .init(5, 7, 1), "Sender address rejected: <\(address)> not owned by user \(user)"))
        }
        guard rateLimiter.mayStart(user) else {
            throw SMTPRejection(SMTPReply(code: 450, .init(4, 7, 1), "Sending rate limit exceeded (\(submission.maxMessagesPerHour) messages per hour), try again later"))
        }
    }

    /// `true` when `address` is the user's own (any `+tag`, any case) or an alias that delivers to it.
    func owns(_ user: String, _ address: EmailAddress) async throws -> Bool {
        if address.canonicalKey == user { return true }
        if case .mailboxes(let boxes) = try await directory.resolve(address) { return boxes.contains(user) }
        return false
    }

    /// `true` when the client may send to foreign domains.
    func mayRelay(_ connection: SMTPConnectionInfo) -> Bool {
        connection.session.authenticatedAs != nil || relayNetworks.contains { $0.contains(connection.remoteIP) }
    }

    func makeMessageSink(connection: SMTPConnectionInfo) -> any SMTPMessageSink {
        IntakeSink(intake: self, submittedBy: connection.session.authenticatedAs)
    }

    /// One ID sequence for intake and generated messages (DSNs), so IDs never collide.
    func nextQueueID() -> QueueID { queue.nextID() }

    /// Where the recipients go: local mailboxes (each once, in order) and remote addresses.
    func route(_ recipients: [ForwardPath]) async throws -> (local: [MaildirStore.Mailbox], remote: [String]) {
        var resolved: [(EmailAddress, RecipientResolution)] = []
        for r in recipients {
            let address = self.address(r)
            resolved.append((address, try await directory.resolve(address)))
        }
        return route(resolved)
    }

    /// `route` from the directory's cache alone; `nil` when a recipient is not cached.
    func cachedRoute(_ recipients: [ForwardPath]) -> (local: [MaildirStore.Mailbox], remote: [String])? {
        var resolved: [(EmailAddress, RecipientResolution)] = []
        for r in recipients {
            let address = self.address(r)
            guard let known = directory.cachedResolution(address) else { return nil }
            resolved.append((address, known))
        }
        return route(resolved)
    }

    private func address(_ recipient: ForwardPath) -> EmailAddress {
        switch recipient {
        case .postmaster: EmailAddress(localPart: "postmaster", domain: firstDomain)
        case .mailbox(let a): a
        }
    }

    private func route(_ resolved: [(EmailAddress, RecipientResolution)]) -> (local: [MaildirStore.Mailbox], remote: [String]) {
        var keys: [String] = []
        var remote: [String] = []
        for (address, resolution) in resolved {
            switch resolution {
            case .mailboxes(let found) where !found.isEmpty:
                for k in found where !keys.contains(k) { keys.append(k) }
            case .notLocal:
                let text = address.description  // SMTP path form: a local part with spaces stays quoted
                if !remote.contains(text) { remote.append(text) }
            case .unknown, .mailboxes:
                // Removed between RCPT and the end of data: keep it safe in postmaster's box.
                logger.warning("recipient vanished before delivery; delivering to postmaster", metadata: ["rcpt": "\(address.description.logEscaped())"])
                let pm = "postmaster@\(firstDomain)"
                if !keys.contains(pm) { keys.append(pm) }
            }
        }
        let local = keys.map { key in
            let at = key.lastIndex(of: "@")!
            return MaildirStore.Mailbox(domain: String(key[key.index(after: at)...]), localPart: String(key[..<at]))
        }
        return (local, remote)
    }

    /// The reply for a failed store (452 when the disk is full), logged.
    func rejection(for error: any Error, id: QueueID) -> any Error {
        if let e = error as? StoreError {
            logger.error("delivery failed: \(e)", metadata: ["id": "\(id)"])
            return SMTPRejection(e.isOutOfSpace ? .insufficientStorage : .localError)
        }
        if let e = error as? QueueError {
            logger.error("queueing failed: \(e)", metadata: ["id": "\(id)"])
            return SMTPRejection(e.isOutOfSpace ? .insufficientStorage : .localError)
        }
        if let e = error as? IntakeError {
            logger.error("not accepted: \(e)", metadata: ["id": "\(id)"])
            return SMTPRejection(.localError)
        }
        return error
    }

    /// `Return-Path:` and `Received:` (RFC 5321 §4.4, RFC 3848 `with` keywords), LF line ends.
    func traceHeaders(queueID: QueueID, envelope: SMTPEnvelope, connection: SMTPConnectionInfo) -> [UInt8] {
        let session = connection.session
        let helo = String(session.heloName.unicodeScalars.map { $0.value > 0x20 && $0.value < 0x7F && $0 != "(" && $0 != ")" ? Character($0) : "?" })
        let ip = connection.remoteIP.contains(":") ? "IPv6:\(connection.remoteIP)" : connection.remoteIP
        var h = "Return-Path: \(envelope.reversePath)\n"
        h += "Received: from \(helo.isEmpty ? "unknown" : helo) ([\(ip)])\n"
        if let tls = session.tls {
            h += "\t(using \(tls.version)\(tls.cipher.map { " with cipher \($0)" } ?? ""))\n"
        }
        if submission.receivedShowsUser, let user = session.authenticatedAs {
            h += "\t(Authenticated sender: \(user))\n"
        }
        h += "\tby \(hostname) (Swallow) with \(session.receivedProtocol(smtpUTF8: envelope.smtpUTF8)) id \(queueID)"
        if envelope.recipients.count == 1, case .mailbox(let a) = envelope.recipients[0] {
            h += "\n\tfor <\(a)>"
        }
        h += "; \(MessageDate.now())\n"
        return Array(h.utf8)
    }
}

/// Why the intake refused a message it could not store anywhere.
enum IntakeError: Error, CustomStringConvertible {
    /// The recipients routed to no mailbox and no queue entry.
    case noDestination

    var description: String {
        switch self {
        case .noDestination: "the recipients lead to no mailbox and no remote address"
        }
    }
}

/// One message on its way in. Calls come one at a time from the connection.
final class IntakeSink: SMTPMessageSink, @unchecked Sendable {
    private let intake: Intake
    private let lock = NIOLock()
    private var spool: SpoolFile?
    /// The authenticated user for submitted mail, whose header section is captured and fixed.
    private let submittedBy: String?
    private var capture: HeaderCapture?

    init(intake: Intake, submittedBy: String?) {
        self.intake = intake
        self.submittedBy = submittedBy
        if submittedBy != nil { capture = HeaderCapture(limit: intake.submission.maxHeaderBytes) }
    }

    func write(_ bytes: ByteBuffer) async throws {
        let intake = self.intake
        let body = lock.withLock { capture == nil ? bytes : capture!.feed(bytes) }
        guard body.readableBytes > 0 else { return }
        do {
            try await intake.threadPool.runIfActive { [self] in
                try lock.withLock {
                    if spool == nil {
                        spool = try SpoolFile(directory: intake.spoolDirectory, name: intake.nextQueueID().rawValue)
                    }
                    try spool!.write(body)
                }
            }
        } catch let e as StoreError {
            // Large content is spooled while it arrives: a full disk here is the same 452 as at commit.
            intake.logger.error("spooling failed: \(e)")
            throw SMTPRejection(e.isOutOfSpace ? .insufficientStorage : .localError)
        }
    }

    func commit(_ content: ByteBuffer, envelope: SMTPEnvelope, connection: SMTPConnectionInfo) async throws -> String {
        let intake = self.intake
        let id = intake.nextQueueID()
        var last = content
        var submitted: [UInt8] = []
        if let user = submittedBy {
            let (tail, captured) = lock.withLock { () -> (ByteBuffer, HeaderCapture) in
                let tail = capture!.feed(content)
                capture!.end()
                return (tail, capture!)
            }
            last = tail
            do {
                submitted = try await intake.checkSubmission(captured, envelope: envelope, user: user, id: id)
            } catch {
                await abort()
                throw error
            }
        }
        let (local, remote) = try await intake.route(envelope.recipients)
        let size: Int
        do {
            size = try await intake.threadPool.runIfActive { [self, last, submitted] in
                try store(id: id, local: local, remote: remote, last: last, submitted: submitted, envelope: envelope, connection: connection)
            }
        } catch {
            throw intake.rejection(for: error, id: id)
        }
        if let user = submittedBy { intake.rateLimiter.record(user) }
        logAccepted(id: id, local: local, remote: remote, size: size, envelope: envelope, connection: connection)
        return id.rawValue
    }

    /// Mail from port 25 whose recipients are all known without waiting goes from the event loop to the
    /// thread pool and back (no task); anything else takes the general path.
    func commit(_ content: ByteBuffer, envelope: SMTPEnvelope, connection: SMTPConnectionInfo,
                on eventLoop: any EventLoop) -> EventLoopFuture<String> {
        guard submittedBy == nil, let (local, remote) = intake.cachedRoute(envelope.recipients) else {
            let promise = eventLoop.makePromise(of: String.self)
            promise.completeWithTask { try await self.commit(content, envelope: envelope, connection: connection) }
            return promise.futureResult
        }
        let intake = self.intake
        let id = intake.nextQueueID()
        return intake.threadPool.runIfActive(eventLoop: eventLoop) { [self] in
            try store(id: id, local: local, remote: remote, last: content, submitted: [], envelope: envelope, connection: connection)
        }.flatMapErrorThrowing { error in
            throw intake.rejection(for: error, id: id)
        }.map { [self] size in
            logAccepted(id: id, local: local, remote: remote, size: size, envelope: envelope, connection: connection)
            return id.rawValue
        }
    }

    /// The blocking part: remote recipients durable in queue/tmp first; then the local mailboxes; then
    /// the queue entry becomes visible. A failure before the end leaves nothing behind. Returns the
    /// stored size (0 when nothing went to a mailbox).
    private func store(id: QueueID, local: [MaildirStore.Mailbox], remote: [String], last: ByteBuffer, submitted: [UInt8],
                       envelope: SMTPEnvelope, connection: SMTPConnectionInfo) throws -> Int {
        let spool = lock.withLock { self.spool }
        defer { spool?.remove() }
        // Accepted means at least one durable copy: a message routed to no mailbox and no queue
        // would be answered 250 and stored nowhere.
        guard !local.isEmpty || !remote.isEmpty else { throw IntakeError.noDestination }
        let headers = intake.traceHeaders(queueID: id, envelope: envelope, connection: connection) + submitted
        if !remote.isEmpty { try intake.queue.prepare(id: id, headers: headers, spool: spool, tail: last) }
        var stored = 0
        if !local.isEmpty {
            do {
                stored = try intake.store.deliver(headers: headers, spool: spool, tail: last, to: local).size
            } catch {
                if !remote.isEmpty { intake.queue.discard(id: id) }
                throw error
            }
        }
        if !remote.isEmpty {
            try intake.queue.commit(id: id, sender: envelope.reversePath.address?.description ?? "", recipients: remote)
        }
        return stored
    }

    private func logAccepted(id: QueueID, local: [MaildirStore.Mailbox], remote: [String], size: Int, envelope: SMTPEnvelope,
                             connection: SMTPConnectionInfo) {
        intake.logger.info("accepted", metadata: [
            "id": "\(id)", "client": "\(connection.remoteIP)", "from": "\(envelope.reversePath.description.logEscaped())",
            "user": "\(submittedBy ?? "-")",
            "to": "\(envelope.recipients.map(\.description).joined(separator: ",").logEscaped(limit: 4096))",
            "mailboxes": "\(local.count)", "queued": "\(remote.count)", "size": "\(size)",
            "tls": "\(connection.session.tls?.version ?? "no")",
        ])
    }

    func abort() async {
        let spool = lock.withLock { () -> SpoolFile? in
            defer { self.spool = nil }
            return self.spool
        }
        spool?.remove()
    }
}

extension Intake {
    /// RFC 6409 §8 for a submitted message: every `From:` address must be the user's; `Bcc:` goes,
    /// `Date:`/`Message-ID:` (and `From:`) are added when missing. Returns the fixed header section
    /// in storage form.
    func checkSubmission(_ capture: HeaderCapture, envelope: SMTPEnvelope, user: String, id: QueueID) async throws -> [UInt8] {
        if capture.overflowed {
            throw SMTPRejection(SMTPReply(code: 552, .init(5, 3, 4), "Message header section too large (limit \(submission.maxHeaderBytes) octets)"))
        }
        let sender = envelope.reversePath.address?.description
        let fixed = SubmissionHeaders(header: capture.header, envelopeSender: sender,
                                      messageID: "\(id.rawValue).\(UInt32.random(in: 0...UInt32.max))@\(hostname)",
                                      date: MessageDate.now())
        if fixed.fromUnparseable {
            throw SMTPRejection(SMTPReply(code: 553, .init(5, 7, 1), "From: header has no valid address"))
        }
        for text in fixed.fromAddresses {
            guard case .success(let address) = EmailAddress.parse(text, allowUTF8: true), try await owns(user, address) else {
                throw SMTPRejection(SMTPReply(code: 553, .init(5, 7, 1), "From: header address <\(text.logEscaped(limit: 200))> not owned by user \(user)"))
            }
        }
        return fixed.storage
    }
}
