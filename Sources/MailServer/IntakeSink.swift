#if canImport(Glibc)
import Glibc
#endif
import Directory
import Logging
import MailAuth
import MailCore
import MailQueue
import MailStore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SMTPCore
import SMTPServer

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
    /// Submitted mail: the body's relaxed DKIM hash, computed as it arrives (no second pass).
    private var bodyHash: DKIMBodyHasher?
    /// The empty line that ends the header (the first octets ``HeaderCapture`` hands on) is not body.
    private var separatorLeft = 2
    /// Mail from another server: its checks, and the body hashes its DKIM signatures ask for (set
    /// up once the header section is complete).
    private let checks: InboundAuthentication?
    private var verifyHashes: DKIMBodyHashes?
    /// The captured header section, parsed once for the checks.
    private var verifyHeader: DKIMMessage?

    /// Once the captured header is complete: the body hashes its signatures need.
    private func prepareVerification() {
        guard checks != nil, verifyHashes == nil, let capture, capture.complete else { return }
        let header = DKIMMessage(capture.header + [0x0D, 0x0A])
        verifyHeader = header
        // An ARC seal of ours needs the relaxed hash of the whole body.
        let more = (ARCVerifier.bodyHashRequirement(in: header).map { [$0] } ?? [])
            + (intake.forwarding.sealARC ? [(DKIMCanonicalization.relaxed, nil)] : [])
        verifyHashes = DKIMBodyHashes(signatures: DKIMVerifier.signatures(in: header).compactMap { try? $0.signature.get() }, more: more)
    }

    /// Hashes body octets, past the header's closing empty line.
    private func hashBody(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { raw in
            var start = 0
            while separatorLeft > 0, start < raw.count {
                let b = raw[start]
                if b == 0x0D && separatorLeft == 2 { separatorLeft = 1; start += 1; continue }
                if b == 0x0A { separatorLeft = 0; start += 1; break }
                separatorLeft = 0  // no empty line (a header section without one): everything is body
            }
            let body = UnsafeRawBufferPointer(rebasing: raw[start...])
            bodyHash?.update(bufferPointer: body)
            if verifyHashes?.isEmpty == false { verifyHashes!.update(bufferPointer: body) }
        }
    }

    init(intake: Intake, submittedBy: String?, checks: InboundAuthentication? = nil) {
        self.intake = intake
        self.submittedBy = submittedBy
        self.checks = submittedBy == nil ? checks : nil
        if submittedBy != nil {
            capture = HeaderCapture(limit: intake.submission.maxHeaderBytes)
            bodyHash = DKIMBodyHasher(.relaxed)
        } else if checks != nil {
            capture = HeaderCapture(limit: intake.submission.maxHeaderBytes)
        }
    }

    func write(_ bytes: ByteBuffer) async throws {
        let intake = self.intake
        let body = lock.withLock { () -> ByteBuffer in
            guard capture != nil else { return bytes }
            let body = capture!.feed(bytes)
            prepareVerification()
            hashBody(body)
            return body
        }
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
            let (tail, captured, hash) = lock.withLock { () -> (ByteBuffer, HeaderCapture, [UInt8]) in
                let tail = capture!.feed(content)
                capture!.end()
                hashBody(tail)
                return (tail, capture!, bodyHash?.finalize() ?? [])
            }
            last = tail
            do {
                submitted = try await intake.checkSubmission(captured, envelope: envelope, user: user, id: id)
            } catch {
                await abort()
                throw error
            }
            submitted = intake.dkimSignatures(header: submitted, bodyHash: hash, id: id) + submitted
        }
        var junk = false
        var authSummary: String?
        var sealing: (verdict: InboundAuthentication.Verdict, bodyHash: [UInt8])?
        if let checks {
            let (tail, captured, hashes, parsed) = lock.withLock { () -> (ByteBuffer, HeaderCapture, DKIMBodyHashes?, DKIMMessage?) in
                let tail = capture!.feed(content)
                capture!.end()
                prepareVerification()
                hashBody(tail)
                return (tail, capture!, verifyHashes, verifyHeader)
            }
            last = tail
            if captured.overflowed {
                // Everything went on as body; the message is stored as it came, unchecked.
                intake.logger.notice("header section too large to check authentication", metadata: ["id": "\(id)"])
            } else {
                let message = parsed ?? DKIMMessage(captured.header + [0x0D, 0x0A])
                let verdict = await checks.evaluate(message, bodyHashes: hashes ?? DKIMBodyHashes(signatures: []),
                                                    remoteIP: connection.remoteIP, helo: connection.session.heloName,
                                                    mailFrom: envelope.reversePath.address?.description ?? "")
                authSummary = verdict.summary
                if case .reject(let reply) = verdict.action {
                    intake.logger.notice("rejected by policy", metadata: [
                        "id": "\(id)", "client": "\(connection.remoteIP)", "from": "\(envelope.reversePath.description.logEscaped())",
                        "auth": "\(verdict.summary)", "reply": "\(reply.code) \(reply.lines.first ?? "")"])
                    await abort()
                    throw SMTPRejection(reply)
                }
                junk = verdict.action == .quarantine
                let (header, removed) = InboundAuthentication.cleaned(captured.header, parsed: message, authservID: checks.authservID)
                if removed > 0 {
                    intake.logger.notice("removed Authentication-Results claiming our authserv-id", metadata: ["id": "\(id)", "fields": "\(removed)"])
                }
                submitted = verdict.field + Self.storageForm(header)
                if let hash = hashes?.hash(.relaxed, limit: nil)?.hash { sealing = (verdict, hash) }
            }
        }
        let routes = try await intake.recipients.route(envelope.recipients)
        var arcSet: [UInt8] = []
        if let sealing, !routes.forwarded.isEmpty, let domain = routes.forwarder {
            do {
                arcSet = try intake.forwarding.arcSet(header: DKIMMessage(submitted), bodyHash: sealing.bodyHash,
                                                      results: sealing.verdict.results, chain: sealing.verdict.arc, domain: domain,
                                                      now: Int64(time(nil))) ?? []
            } catch {
                // The copy goes on unsealed: a missing seal costs less than a lost message.
                intake.logger.notice("not ARC-sealed: \(error)", metadata: ["id": "\(id)", "d": "\(domain)"])
            }
        }
        let size: Int
        do {
            size = try await intake.threadPool.runIfActive { [self, last, submitted, junk, arcSet] in
                try store(id: id, routes: routes, last: last, submitted: submitted, arcSet: arcSet, envelope: envelope,
                          connection: connection, junk: junk)
            }
        } catch {
            throw intake.rejection(for: error, id: id)
        }
        if let user = submittedBy { intake.rateLimiter.record(user) }
        logAccepted(id: id, routes: routes, size: size, envelope: envelope, connection: connection,
                    auth: authSummary, junk: junk)
        return id.rawValue
    }

    /// Wire form (CRLF) to storage form (LF); a bare CR stays.
    static func storageForm(_ wire: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(wire.count)
        var i = 0
        while i < wire.count {
            if wire[i] == 0x0D, i + 1 < wire.count, wire[i + 1] == 0x0A { i += 1; continue }
            out.append(wire[i])
            i += 1
        }
        return out
    }

    /// Mail from port 25 whose recipients are all known without waiting goes from the event loop to the
    /// thread pool and back (no task); anything else takes the general path.
    func commit(_ content: ByteBuffer, envelope: SMTPEnvelope, connection: SMTPConnectionInfo,
                on eventLoop: any EventLoop) -> EventLoopFuture<String> {
        guard submittedBy == nil, checks == nil, let routes = intake.recipients.cachedRoute(envelope.recipients) else {
            let promise = eventLoop.makePromise(of: String.self)
            promise.completeWithTask { try await self.commit(content, envelope: envelope, connection: connection) }
            return promise.futureResult
        }
        let intake = self.intake
        let id = intake.nextQueueID()
        return intake.threadPool.runIfActive(eventLoop: eventLoop) { [self] in
            try store(id: id, routes: routes, last: content, submitted: [], envelope: envelope, connection: connection)
        }.flatMapErrorThrowing { error in
            throw intake.rejection(for: error, id: id)
        }.map { [self] size in
            logAccepted(id: id, routes: routes, size: size, envelope: envelope, connection: connection)
            return id.rawValue
        }
    }

    /// The blocking part: queue copies durable in queue/tmp first (the relayed one, and the one
    /// aliases forward with its SRS sender and ARC set); then the local mailboxes; then the queue
    /// entries become visible. A failure before the end leaves nothing behind. Returns the stored
    /// size (0 when nothing went to a mailbox).
    private func store(id: QueueID, routes: RecipientPolicy.Routes, last: ByteBuffer, submitted: [UInt8], arcSet: [UInt8] = [],
                       envelope: SMTPEnvelope, connection: SMTPConnectionInfo, junk: Bool = false) throws -> Int {
        let spool = lock.withLock { self.spool }
        defer { spool?.remove() }
        let local = routes.local
        var remote = routes.remote
        var forwarded = routes.forwarded
        let sender = envelope.reversePath.address?.description ?? ""
        let forwardSender = forwarded.isEmpty ? sender
            : intake.forwarding.sender(sender, forwarderDomain: routes.forwarder ?? intake.configuredDomains[0], now: Int64(time(nil)))
        if forwardSender == sender && arcSet.isEmpty {
            // Nothing to tell the forwarded copy apart: one queue entry for every remote recipient.
            for f in forwarded where !remote.contains(f) { remote.append(f) }
            forwarded = []
        }
        // Accepted means at least one durable copy: a message routed to no mailbox and no queue
        // would be answered 250 and stored nowhere.
        guard !local.isEmpty || !remote.isEmpty || !forwarded.isEmpty else { throw IntakeError.noDestination }
        let trace = intake.trace.render(queueID: id, envelope: envelope, connection: connection, returnPath: false)
        let headers = Array("Return-Path: \(envelope.reversePath)\n".utf8) + trace + submitted
        let forwardID = forwarded.isEmpty ? nil : intake.nextQueueID()
        func discardQueued() {
            if !remote.isEmpty { intake.queue.discard(id: id) }
            if let forwardID { intake.queue.discard(id: forwardID) }
        }
        if !remote.isEmpty { try intake.queue.prepare(id: id, headers: trace + submitted, spool: spool, tail: last) }
        if let forwardID {
            do {
                try intake.queue.prepare(id: forwardID, headers: arcSet + trace + submitted, spool: spool, tail: last)
            } catch {
                if !remote.isEmpty { intake.queue.discard(id: id) }
                throw error
            }
        }
        var stored = 0
        if !local.isEmpty {
            do {
                stored = try intake.store.deliver(headers: headers, spool: spool, tail: last, to: local, folder: junk ? "Junk" : nil).size
                // The quota's cached use must see this message at once: otherwise every RCPT in the
                // next few seconds is checked against the use before it, and a burst overruns the limit.
                for mailbox in local { intake.quota.added(stored, to: "\(mailbox.localPart)@\(mailbox.domain)") }
            } catch {
                discardQueued()
                throw error
            }
        }
        if !remote.isEmpty {
            do { try intake.queue.commit(id: id, sender: sender, recipients: remote) } catch {
                if let forwardID { intake.queue.discard(id: forwardID) }
                throw error
            }
        }
        if let forwardID {
            try intake.queue.commit(id: forwardID, sender: forwardSender, recipients: forwarded)
            intake.logger.info("forwarded", metadata: [
                "id": "\(id)", "queue_id": "\(forwardID)", "from": "\(forwardSender.logEscaped())",
                "to": "\(forwarded.joined(separator: ",").logEscaped(limit: 4096))", "arc": "\(arcSet.isEmpty ? "no" : "sealed")"])
        }
        return stored
    }

    private func logAccepted(id: QueueID, routes: RecipientPolicy.Routes, size: Int, envelope: SMTPEnvelope,
                             connection: SMTPConnectionInfo, auth: String? = nil, junk: Bool = false) {
        var metadata: Logger.Metadata = [:]
        if let auth { metadata["auth"] = "\(auth)" }
        if junk { metadata["folder"] = "Junk" }
        if !routes.forwarded.isEmpty { metadata["forwarded"] = "\(routes.forwarded.count)" }
        intake.logger.info("accepted", metadata: metadata.merging([
            "id": "\(id)", "client": "\(connection.remoteIP)", "from": "\(envelope.reversePath.description.logEscaped())",
            "user": "\(submittedBy ?? "-")",
            "to": "\(envelope.recipients.map(\.description).joined(separator: ",").logEscaped(limit: 4096))",
            "mailboxes": "\(routes.local.count)", "queued": "\(routes.remote.count + routes.forwarded.count)", "size": "\(size)",
            "tls": "\(connection.session.tls?.version ?? "no")",
        ]) { a, _ in a })
    }

    func abort() async {
        let spool = lock.withLock { () -> SpoolFile? in
            defer { self.spool = nil }
            return self.spool
        }
        spool?.remove()
    }
}
