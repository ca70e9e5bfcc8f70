#if canImport(Glibc)
import Glibc
#endif
import struct Foundation.Date
import Directory
import Logging
import MIME
import MailAuth
import MailCore
import MailQueue
import MailStore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SMTPCore
import SMTPServer

/// What the SMTP listeners call (their delegate, like Postfix's smtpd checks plus cleanup): recipients
/// through the ``RecipientPolicy``, logins through the ``Authenticator``, sender ownership and limits
/// of submitted mail, and each message through an ``IntakeSink`` that stores it durably (every
/// recipient's Maildir and/or the queue, with ``TraceHeaders``) before the `250` goes out.
final class Intake: SMTPServerDelegate {
    let directory: any UserDirectory
    let store: MaildirStore
    let hostname: String
    let spoolDirectory: String
    let threadPool: NIOThreadPool
    let logger: Logger
    let recipients: RecipientPolicy
    let trace: TraceHeaders
    let queue: OutboundQueue
    let authenticator: Authenticator
    let submission: SubmissionPolicy
    let rateLimiter: SendingRateLimiter
    let quota: QuotaService
    /// DKIM keys: submitted mail whose `From:` domain has active keys is signed here, once.
    let dkimKeys: DKIMKeyStore

    /// The intake for configuration `c`: host name, domains, relay networks and submission limits
    /// come from it; the stores and services it calls are passed in.
    init(configuration c: ServerConfiguration, layout: DataLayout, directory: any UserDirectory, store: MaildirStore,
         queue: OutboundQueue, authenticator: Authenticator, quota: QuotaService, threadPool: NIOThreadPool, logger: Logger) {
        self.queue = queue
        self.quota = quota
        self.dkimKeys = DKIMKeyStore(root: layout.dkim)
        self.authenticator = authenticator
        self.submission = SubmissionPolicy(c.submission)
        self.rateLimiter = SendingRateLimiter(perHour: submission.maxMessagesPerHour)
        self.directory = directory
        self.store = store
        self.hostname = c.hostname
        self.spoolDirectory = layout.spool
        self.threadPool = threadPool
        self.logger = logger
        self.recipients = RecipientPolicy(directory: directory, firstDomain: c.domains[0],
                                          relayNetworks: c.smtp.relayNetworks.compactMap(CIDR.parse),
                                          maxRecipientsPerMessage: c.submission.maxRecipientsPerMessage, logger: logger)
        self.trace = TraceHeaders(hostname: c.hostname, showsUser: c.submission.receivedHeaderUser)
    }

    /// `DKIM-Signature` fields (storage form, LF) for a submitted message with header section
    /// `header` (storage form) and body hash `bodyHash` (relaxed): one per active key of the `From:`
    /// domain, Ed25519 first; none when that domain has no active key. A signing failure is logged
    /// and the message goes out unsigned.
    func dkimSignatures(header: [UInt8], bodyHash: [UInt8], id: QueueID) -> [UInt8] {
        let message = DKIMMessage(header + [0x0A])
        guard let from = message.fields.first(where: { $0.name.lowercased() == "from" }),
              let address = AddressListParser.mailboxes(from.value).first?.address,
              let at = address.lastIndex(of: "@") else { return [] }
        let domain = String(address[address.index(after: at)...]).lowercased()
        let signers = dkimKeys.signers(for: domain)
        guard !signers.isEmpty else { return [] }
        var out: [UInt8] = []
        let now = Int64(Date().timeIntervalSince1970)
        for signer in signers {
            do {
                let field = try signer.signatureField(fields: message.fields, bodyHash: bodyHash, time: now)
                out += field.filter { $0 != 0x0D }
            } catch {
                logger.error("DKIM signing failed", metadata: ["id": "\(id)", "d": "\(domain)", "s": "\(signer.selector)", "error": "\(error)"])
            }
        }
        logger.info("dkim signed", metadata: ["id": "\(id)", "d": "\(domain)", "s": "\(signers.map(\.selector).joined(separator: ","))"])
        return out
    }

    func verifyRecipient(_ recipient: ForwardPath, envelope: SMTPEnvelope, connection: SMTPConnectionInfo) async throws {
        let resolution: RecipientResolution? = if case .mailbox(let address) = recipient { try await directory.resolve(address) } else { nil }
        if case .reject(let reply) = recipients.verdict(recipient, resolution, envelope: envelope, connection: connection) {
            throw SMTPRejection(reply)
        }
        if case .mailboxes(let boxes)? = resolution, let full = await quota.refusal(for: boxes) { throw SMTPRejection(full) }
    }

    func immediateRecipientVerdict(_ recipient: ForwardPath, envelope: SMTPEnvelope, connection: SMTPConnectionInfo) -> SMTPRecipientVerdict? {
        guard case .mailbox(let address) = recipient else { return recipients.verdict(recipient, nil, envelope: envelope, connection: connection) }
        guard let known = directory.cachedResolution(address) else { return nil }
        let verdict = recipients.verdict(recipient, known, envelope: envelope, connection: connection)
        // A mailbox with a storage limit is checked on the slow path (its use may need a scan).
        if case .accept = verdict, case .mailboxes(let boxes) = known, !quota.knownUnlimited(boxes) { return nil }
        return verdict
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

    func makeMessageSink(connection: SMTPConnectionInfo) -> any SMTPMessageSink {
        IntakeSink(intake: self, submittedBy: connection.session.authenticatedAs)
    }

    /// One ID sequence for intake and generated messages (DSNs), so IDs never collide.
    func nextQueueID() -> QueueID { queue.nextID() }

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
