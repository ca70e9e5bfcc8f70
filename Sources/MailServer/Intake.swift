#if canImport(Glibc)
import Glibc
#endif
import Directory
import Logging
import MailCore
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
    private let sequence = NIOLockedValueBox<UInt32>(0)

    init(directory: any UserDirectory, store: MaildirStore, hostname: String, spoolDirectory: String,
         threadPool: NIOThreadPool, logger: Logger, firstDomain: String, relayNetworks: [CIDR]) {
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
            // Relaying needs the outbound queue (not in this version): refuse for every client, so
            // nothing is accepted that could not be delivered.
            throw SMTPRejection(.relayDenied)
        }
    }

    func makeMessageSink(connection: SMTPConnectionInfo) -> any SMTPMessageSink {
        IntakeSink(intake: self)
    }

    func nextQueueID() -> QueueID {
        var tv = timeval()
        gettimeofday(&tv, nil)
        let micros = UInt64(tv.tv_sec) * 1_000_000 + UInt64(tv.tv_usec)
        let n = sequence.withLockedValue { v -> UInt32 in
            v &+= 1
            return v
        }
        return QueueID(microseconds: micros, sequence: n)
    }

    /// Mailboxes for every recipient, each once, in order.
    func mailboxes(for recipients: [ForwardPath]) async throws -> [MaildirStore.Mailbox] {
        var keys: [String] = []
        for r in recipients {
            let address: EmailAddress
            switch r {
            case .postmaster: address = EmailAddress(localPart: "postmaster", domain: firstDomain)
            case .mailbox(let a): address = a
            }
            guard case .mailboxes(let found) = try await directory.resolve(address) else {
                // Removed between RCPT and the end of data: keep it safe in postmaster's box.
                logger.warning("recipient vanished before delivery; delivering to postmaster", metadata: ["rcpt": "\(address)"])
                keys.append("postmaster@\(firstDomain)")
                continue
            }
            for k in found where !keys.contains(k) { keys.append(k) }
        }
        return keys.map { key in
            let at = key.lastIndex(of: "@")!
            return MaildirStore.Mailbox(domain: String(key[key.index(after: at)...]), localPart: String(key[..<at]))
        }
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
        let mailboxes = try await intake.mailboxes(for: envelope.recipients)
        let headers = intake.traceHeaders(queueID: id, envelope: envelope, connection: connection)
        let spool = lock.withLock { self.spool }
        let receipt: MaildirStore.Receipt
        do {
            receipt = try await intake.threadPool.runIfActive {
                defer { spool?.remove() }
                return try intake.store.deliver(headers: headers, spool: spool, tail: bytes, to: mailboxes)
            }
        } catch let e as StoreError {
            intake.logger.error("delivery failed: \(e)", metadata: ["id": "\(id)"])
            throw SMTPRejection(e.isOutOfSpace ? .insufficientStorage : .localError)
        }
        intake.logger.info("accepted", metadata: [
            "id": "\(id)", "client": "\(connection.remoteIP)", "from": "\(envelope.reversePath)",
            "to": "\(envelope.recipients.map(\.description).joined(separator: ","))",
            "mailboxes": "\(mailboxes.count)", "size": "\(receipt.size)", "tls": "\(connection.session.tls?.version ?? "no")",
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
