import Directory
import Logging
import MailCore
import MailStore
import SMTPCore
import SMTPServer

/// Who may receive mail here and where each recipient's copy goes (like Postfix's
/// `smtpd_recipient_restrictions` and the resolve step of its cleanup): local users and aliases,
/// relaying only for authenticated clients and `relay_networks`, and a route for every accepted
/// recipient — a local mailbox or a remote address, never nowhere.
struct RecipientPolicy: Sendable {
    let directory: any UserDirectory
    /// Where `<Postmaster>` and recipients that vanished before delivery go (`postmaster@` it).
    let firstDomain: String
    let relayNetworks: [CIDR]
    /// Recipients per message for authenticated sessions (`452 4.5.3` beyond).
    let maxRecipientsPerMessage: Int
    let logger: Logger

    /// The decision on one recipient given where it resolves (`nil` for `<Postmaster>`).
    func verdict(_ recipient: ForwardPath, _ resolution: RecipientResolution?, envelope: SMTPEnvelope,
                 connection: SMTPConnectionInfo) -> SMTPRecipientVerdict {
        if connection.session.authenticatedAs != nil && envelope.recipients.count >= maxRecipientsPerMessage {
            return .reject(SMTPReply(code: 452, .init(4, 5, 3), "Too many recipients for one message (limit \(maxRecipientsPerMessage))"))
        }
        switch resolution {
        case nil, .mailboxes?: return .accept  // <Postmaster> is always accepted
        case .unknown?: return .reject(.unknownUser)
        case .notLocal?:
            // No open relay: only authenticated clients and those in relay_networks may send to other domains.
            return mayRelay(connection) ? .accept : .reject(.relayDenied)
        }
    }

    /// `true` when the client may send to foreign domains.
    func mayRelay(_ connection: SMTPConnectionInfo) -> Bool {
        connection.session.authenticatedAs != nil || relayNetworks.contains { $0.contains(connection.remoteIP) }
    }

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
        let local = keys.map { MaildirStore.Mailbox(address: $0)! }
        return (local, remote)
    }
}
