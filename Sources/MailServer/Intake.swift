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

    init(directory: any UserDirectory, store: MaildirStore, hostname: String, spoolDirectory: String,
         threadPool: NIOThreadPool, logger: Logger, firstDomain: String, relayNetworks: [CIDR], queue: OutboundQueue) {
        self.queue = queue
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
        guard case .mailbox(let address) = recipient else { return }  // <Postmaster>: always
        switch try await directory.resolve(address) {
        case .mailboxes: return
        case .unknown: throw SMTPRejection(.unknownUser)
        case .notLocal:
            // No open relay: only clients in relay_networks (and, later, authenticated ones) may send
            // to other domains.
            guard mayRelay(connection) else { throw SMTPRejection(.relayDenied) }
        }
    }

    /// `true` when the client may send to foreign domains.
    func mayRelay(_ connection: SMTPConnectionInfo) -> Bool {
        connection.session.authenticatedAs != nil || relayNetworks.contains { $0.contains(connection.remoteIP) }
    }

    func makeMessageSink(connection: SMTPConnectionInfo) -> any SMTPMessageSink {
        IntakeSink(intake: self)
    }

    /// One ID sequence for intake and generated messages (DSNs), so IDs never collide.
    func nextQueueID() -> QueueID { queue.nextID() }

    /// Where the recipients go: local mailboxes (each once, in order) and remote addresses.
    func route(_ recipients: [ForwardPath]) async throws -> (local: [MaildirStore.Mailbox], remote: [String]) {
        var keys: [String] = []
        var remote: [String] = []
        for r in recipients {
            let address: EmailAddress
            switch r {
            case .postmaster: address = EmailAddress(localPart: "postmaster", domain: firstDomain)
            case .mailbox(let a): address = a
            }
            switch try await directory.resolve(address) {
            case .mailboxes(let found):
                for k in found where !keys.contains(k) { keys.append(k) }
            case .notLocal:
                let text = "\(address.localPart)@\(address.domain)"
                if !remote.contains(text) { remote.append(text) }
            case .unknown:
                // Removed between RCPT and the end of data: keep it safe in postmaster's box.
                logger.warning("recipient vanished before delivery; delivering to postmaster", metadata: ["rcpt": "\(address)"])
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
        h += "\tby \(hostname) (Swallow) with \(session.receivedProtocol(smtpUTF8: envelope.smtpUTF8)) id \(queueID)"
        if envelope.recipients.count == 1, case .mailbox(let a) = envelope.recipients[0] {
            h += "\n\tfor <\(a)>"
        }
        h += "; \(MessageDate.now())\n"
        return Array(h.utf8)
    }
}

/// One message on its way in. Calls come one at a time from the connection.
final class IntakeSink: SMTPMessageSink, @unchecked Sendable {
    private let intake: Intake
    private let lock = NIOLock()
    private var spool: SpoolFile?

    init(intake: Intake) { self.intake = intake }

    func write(_ bytes: ByteBuffer) async throws {
        let intake = self.intake
        try await intake.threadPool.runIfActive { [self] in
            try lock.withLock {
                if spool == nil {
                    spool = try SpoolFile(directory: intake.spoolDirectory, name: intake.nextQueueID().rawValue)
                }
                try spool!.write(bytes)
            }
        }
    }

    func commit(_ bytes: ByteBuffer, envelope: SMTPEnvelope, connection: SMTPConnectionInfo) async throws -> String {
        let intake = self.intake
        let id = intake.nextQueueID()
        let (local, remote) = try await intake.route(envelope.recipients)
        let headers = intake.traceHeaders(queueID: id, envelope: envelope, connection: connection)
        let spool = lock.withLock { self.spool }
        let sender = envelope.reversePath.address.map { "\($0.localPart)@\($0.domain)" } ?? ""
        var size = 0
        do {
            size = try await intake.threadPool.runIfActive {
                defer { spool?.remove() }
                // Remote recipients: durable in queue/tmp first; then the local mailboxes; then the
                // queue entry becomes visible. A failure before the end leaves nothing behind.
                if !remote.isEmpty { try intake.queue.prepare(id: id, headers: headers, spool: spool, tail: bytes) }
                var stored = 0
                if !local.isEmpty {
                    do {
                        stored = try intake.store.deliver(headers: headers, spool: spool, tail: bytes, to: local).size
                    } catch {
                        if !remote.isEmpty { intake.queue.discard(id: id) }
                        throw error
                    }
                }
                if !remote.isEmpty { try intake.queue.commit(id: id, sender: sender, recipients: remote) }
                return stored
            }
        } catch let e as StoreError {
            intake.logger.error("delivery failed: \(e)", metadata: ["id": "\(id)"])
            throw SMTPRejection(e.isOutOfSpace ? .insufficientStorage : .localError)
        } catch let e as QueueError {
            intake.logger.error("queueing failed: \(e)", metadata: ["id": "\(id)"])
            throw SMTPRejection(e.isOutOfSpace ? .insufficientStorage : .localError)
        }
        intake.logger.info("accepted", metadata: [
            "id": "\(id)", "client": "\(connection.remoteIP)", "from": "\(envelope.reversePath)",
            "to": "\(envelope.recipients.map(\.description).joined(separator: ","))",
            "mailboxes": "\(local.count)", "queued": "\(remote.count)", "size": "\(size)",
            "tls": "\(connection.session.tls?.version ?? "no")",
        ])
        return id.rawValue
    }

    func abort() async {
        let spool = lock.withLock { () -> SpoolFile? in
            defer { self.spool = nil }
            return self.spool
        }
        spool?.remove()
    }
}
