#if canImport(Glibc)
import Glibc
#endif
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
    /// SRS: bounces to the senders of forwarded mail lead back to them.
    let forwarding: Forwarding?
    let logger: Logger

    /// Where each accepted recipient's copy goes.
    struct Routes: Sendable {
        /// Local mailboxes, each once, in order.
        var local: [MaildirStore.Mailbox] = []
        /// Remote addresses the client sent to (relayed with the envelope sender as it is).
        var remote: [String] = []
        /// Remote addresses aliases forward to (and senders SRS bounces lead back to).
        var forwarded: [String] = []
        /// The domain of the first recipient that forwards: the SRS and ARC domain of the copy.
        var forwarder: String?
    }

    /// Where `address` leads: the directory's answer, with an SRS address of ours that reverses
    /// validly forwarding to the address it came from.
    func resolve(_ address: EmailAddress) async throws -> RecipientResolution {
        srsMapped(address, try await directory.resolve(address))
    }

    /// ``resolve(_:)`` from the directory's cache alone; `nil` when not cached.
    func cachedResolution(_ address: EmailAddress) -> RecipientResolution? {
        directory.cachedResolution(address).map { srsMapped(address, $0) }
    }

    private func srsMapped(_ address: EmailAddress, _ resolution: RecipientResolution) -> RecipientResolution {
        guard resolution == .unknown, case .success(let back)? = forwarding?.reverse(address, now: Int64(time(nil))) else {
            return resolution
        }
        return .forward(mailboxes: [], remote: [back])
    }

    /// The decision on one recipient given where it resolves (`nil` for `<Postmaster>`).
    func verdict(_ recipient: ForwardPath, _ resolution: RecipientResolution?, envelope: SMTPEnvelope,
                 connection: SMTPConnectionInfo) -> SMTPRecipientVerdict {
        if connection.session.authenticatedAs != nil && envelope.recipients.count >= maxRecipientsPerMessage {
            return .reject(SMTPReply(code: 452, .init(4, 5, 3), "Too many recipients for one message (limit \(maxRecipientsPerMessage))"))
        }
        switch resolution {
        case nil, .mailboxes?, .forward?: return .accept  // <Postmaster> is always accepted
        case .unknown?:
            // An SRS address of ours that does not reverse: forged, altered or too old.
            if case .mailbox(let address) = recipient, case .failure(let why)? = forwarding?.reverse(address, now: Int64(time(nil))) {
                return .reject(SMTPReply(code: 550, .init(5, 1, 1), "<\(address.description.prefix(256))>: \(why)"))
            }
            return .reject(.unknownUser)
        case .notLocal?:
            // No open relay: only authenticated clients and those in relay_networks may send to other domains.
            return mayRelay(connection) ? .accept : .reject(.relayDenied)
        }
    }

    /// `true` when the client may send to foreign domains.
    func mayRelay(_ connection: SMTPConnectionInfo) -> Bool {
        connection.session.authenticatedAs != nil || relayNetworks.contains { $0.contains(connection.remoteIP) }
    }

    /// Where the recipients go.
    func route(_ recipients: [ForwardPath]) async throws -> Routes {
        var resolved: [(EmailAddress, RecipientResolution)] = []
        for r in recipients {
            let address = self.address(r)
            resolved.append((address, try await resolve(address)))
        }
        return route(resolved)
    }

    /// `route` from the directory's cache alone; `nil` when a recipient is not cached.
    func cachedRoute(_ recipients: [ForwardPath]) -> Routes? {
        var resolved: [(EmailAddress, RecipientResolution)] = []
        for r in recipients {
            let address = self.address(r)
            guard let known = cachedResolution(address) else { return nil }
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

    private func route(_ resolved: [(EmailAddress, RecipientResolution)]) -> Routes {
        var keys: [String] = []
        var routes = Routes()
        for (address, resolution) in resolved {
            switch resolution {
            case .mailboxes(let found) where !found.isEmpty:
                for k in found where !keys.contains(k) { keys.append(k) }
            case .forward(let found, let remote):
                for k in found where !keys.contains(k) { keys.append(k) }
                for r in remote where !routes.forwarded.contains(r) { routes.forwarded.append(r) }
                if routes.forwarder == nil { routes.forwarder = address.normalizedDomain }
            case .notLocal:
                let text = address.description  // SMTP path form: a local part with spaces stays quoted
                if !routes.remote.contains(text) { routes.remote.append(text) }
            case .unknown, .mailboxes:
                // Removed between RCPT and the end of data: keep it safe in postmaster's box.
                logger.warning("recipient vanished before delivery; delivering to postmaster", metadata: ["rcpt": "\(address.description.logEscaped())"])
                let pm = "postmaster@\(firstDomain)"
                if !keys.contains(pm) { keys.append(pm) }
            }
        }
        routes.local = keys.map { MaildirStore.Mailbox(address: $0)! }
        return routes
    }
}
