import MailCore

/// Builds RFC 3464 delivery status notifications: `multipart/report; report-type=delivery-status`
/// with a human-readable part, a `message/delivery-status` part and the original headers
/// (`text/rfc822-headers`). Sent with the null sender so that it is never bounced itself.
public struct DeliveryStatusNotification: Sendable {
    /// Per-recipient facts.
    public struct RecipientReport: Hashable, Sendable {
        public var address: String
        /// `failed` or `delayed`.
        public var action: String
        /// RFC 3463 status, e.g. `5.1.1`.
        public var status: String
        /// The remote MTA's reply, if any (`smtp; 550 5.1.1 …`).
        public var diagnostic: String?
        public var remoteMTA: String?

        public init(address: String, action: String, status: String, diagnostic: String? = nil, remoteMTA: String? = nil) {
            self.address = address
            self.action = action
            self.status = status
            self.diagnostic = diagnostic
            self.remoteMTA = remoteMTA
        }
    }

    /// Our host name (Reporting-MTA, From: MAILER-DAEMON@…).
    public var hostname: String
    /// The original envelope sender (the DSN's recipient).
    public var originalSender: String
    /// The original queue ID.
    public var originalID: String
    /// When the original arrived (seconds since the epoch).
    public var arrival: Int
    public var recipients: [RecipientReport]
    /// The original message's header section (LF or CRLF).
    public var originalHeaders: [UInt8]

    public init(hostname: String, originalSender: String, originalID: String, arrival: Int,
                recipients: [RecipientReport], originalHeaders: [UInt8]) {
        self.hostname = hostname
        self.originalSender = originalSender
        self.originalID = originalID
        self.arrival = arrival
        self.recipients = recipients
        self.originalHeaders = originalHeaders
    }

    /// The complete message, CRLF line ends.
    public func render(now: Int, boundary: String) -> [UInt8] {
        let delayed = recipients.allSatisfy { $0.action == "delayed" }
        var s = ""
        s += "From: Mail Delivery System <MAILER-DAEMON@\(hostname)>\r\n"
        s += "To: <\(originalSender)>\r\n"
        s += "Subject: \(delayed ? "Delayed Mail (still being retried)" : "Undelivered Mail Returned to Sender")\r\n"
        s += "Date: \(MessageDate.format(secondsSinceEpoch: now))\r\n"
        s += "Message-ID: <\(originalID).\(now).dsn@\(hostname)>\r\n"
        s += "Auto-Submitted: auto-replied\r\n"
        s += "MIME-Version: 1.0\r\n"
        s += "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"\(boundary)\"\r\n\r\n"
        s += "This is a MIME-encapsulated message.\r\n\r\n--\(boundary)\r\n"
        s += "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        s += "This is the mail system at host \(hostname).\r\n\r\n"
        if delayed {
            s += "Your message could not be delivered yet. The mail system will keep trying; you do not\r\n"
            s += "need to send it again.\r\n\r\n"
        } else {
            s += "Your message could not be delivered to one or more recipients. It is attached below.\r\n\r\n"
        }
        for r in recipients {
            s += "<\(r.address)>: \(r.diagnostic ?? "status \(r.status)")\r\n"
        }
        s += "\r\n--\(boundary)\r\nContent-Type: message/delivery-status\r\n\r\n"
        s += "Reporting-MTA: dns; \(hostname)\r\nX-Swallow-Queue-ID: \(originalID)\r\n"
        s += "Arrival-Date: \(MessageDate.format(secondsSinceEpoch: arrival))\r\n"
        for r in recipients {
            s += "\r\nFinal-Recipient: rfc822; \(r.address)\r\nAction: \(r.action)\r\nStatus: \(r.status)\r\n"
            if let m = r.remoteMTA { s += "Remote-MTA: dns; \(m)\r\n" }
            if let d = r.diagnostic { s += "Diagnostic-Code: smtp; \(d)\r\n" }
            s += "Last-Attempt-Date: \(MessageDate.format(secondsSinceEpoch: now))\r\n"
        }
        s += "\r\n--\(boundary)\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        var out = Array(s.utf8)
        // The original headers, with CRLF line ends (no CR survives on its own).
        for b in originalHeaders where b != 0x0D {
            if b == 0x0A { out += [0x0D, 0x0A] } else { out.append(b) }
        }
        if out.last != 0x0A { out += [0x0D, 0x0A] }
        out += Array("\r\n--\(boundary)--\r\n".utf8)
        return out
    }
}
