import MailCore
import MailQueue
import SMTPCore
import SMTPServer

/// The trace fields the intake prepends to every message (RFC 5321 §4.4): `Return-Path:` and
/// `Received:` with the RFC 3848 `with` keyword, the TLS version and cipher, and — only when
/// configured — the authenticated user.
struct TraceHeaders: Sendable {
    let hostname: String
    /// Name the authenticated user (`submission.received_header_user`).
    let showsUser: Bool

    /// `Return-Path:` (with `returnPath`: only a final delivery adds it, RFC 5321 §4.4 — a copy that
    /// is relayed gets none) and `Received:` (RFC 5321 §4.4, RFC 3848 `with` keywords), LF line ends.
    func render(queueID: QueueID, envelope: SMTPEnvelope, connection: SMTPConnectionInfo, returnPath: Bool = true) -> [UInt8] {
        let session = connection.session
        let helo = String(session.heloName.unicodeScalars.map { $0.value > 0x20 && $0.value < 0x7F && $0 != "(" && $0 != ")" ? Character($0) : "?" })
        let ip = connection.remoteIP.contains(":") ? "IPv6:\(connection.remoteIP)" : connection.remoteIP
        var h = returnPath ? "Return-Path: \(envelope.reversePath)\n" : ""
        h += "Received: from \(helo.isEmpty ? "unknown" : helo) ([\(ip)])\n"
        if let tls = session.tls {
            h += "\t(using \(tls.version)\(tls.cipher.map { " with cipher \($0)" } ?? ""))\n"
        }
        if showsUser, let user = session.authenticatedAs {
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
