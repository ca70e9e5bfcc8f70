import MailCore

/// The small, mutable record kept next to each queued message: sender, recipients with their state,
/// attempts and the next attempt time. Stored as UTF-8 text, one field per line, so an operator can
/// read it with `cat` and a torn write is detected (the last line must be `end`).
public struct QueueEnvelope: Hashable, Sendable {
    /// A recipient and where its delivery stands.
    public struct Recipient: Hashable, Sendable {
        /// Delivery state.
        public enum State: String, Hashable, Sendable {
            /// Not yet delivered; will be tried.
            case pending
            /// Accepted by the next hop (2xx).
            case delivered
            /// Refused permanently (5xx) or expired: to be reported in a DSN.
            case failed
        }
        /// The address (`local@domain`).
        public var address: String
        /// Where it stands.
        public var state: State
        /// The last reply or error text (for `queue list`, DSNs).
        public var lastResponse: String?
        /// The RFC 3463 status for DSNs (e.g. `5.1.1`, `4.4.1`).
        public var status: String?

        /// Creates a pending recipient.
        public init(address: String, state: State = .pending, lastResponse: String? = nil, status: String? = nil) {
            self.address = address
            self.state = state
            self.lastResponse = lastResponse
            self.status = status
        }
    }

    /// The queue ID.
    public var id: String
    /// The envelope sender, empty for the null sender (bounces).
    public var sender: String
    /// Recipients.
    public var recipients: [Recipient]
    /// When the message entered the queue (seconds since the epoch).
    public var created: Int
    /// Delivery attempts so far.
    public var attempts: Int
    /// When to try next (seconds since the epoch).
    public var nextAttempt: Int
    /// The last error, for `queue list`.
    public var lastError: String?
    /// A delay notice was already sent to the sender.
    public var delayNotified: Bool

    /// Creates an envelope for a new message.
    public init(id: String, sender: String, recipients: [String], created: Int) {
        self.id = id
        self.sender = sender
        self.recipients = recipients.map { Recipient(address: $0) }
        self.created = created
        self.attempts = 0
        self.nextAttempt = created
        self.lastError = nil
        self.delayNotified = false
    }

    /// Recipients still to be tried.
    public var pending: [Recipient] { recipients.filter { $0.state == .pending } }

    /// The text form.
    public func encoded() -> String {
        // Per scalar: "\r\n" is one Character and would slip through a Character comparison.
        func clean(_ s: String) -> String {
            var out = String.UnicodeScalarView()
            for u in s.unicodeScalars { out.append(u == "\n" || u == "\r" ? " " : u) }
            return String(out)
        }
        // Version 2: recipient addresses are escaped (a quoted local part may hold spaces).
        var out = "swallow-envelope 2\nid \(id)\nsender \(clean(sender))\ncreated \(created)\nattempts \(attempts)\n"
        out += "next \(nextAttempt)\ndelay-notified \(delayNotified ? 1 : 0)\n"
        if let e = lastError { out += "last-error \(clean(e))\n" }
        for r in recipients {
            out += "rcpt \(r.state.rawValue) \(r.status ?? "-") \(Self.escape(r.address))"
            if let l = r.lastResponse { out += " \(clean(l))" }
            out += "\n"
        }
        out += "end\n"
        return out
    }

    /// Parses the text form; `nil` when it is not a complete, valid envelope.
    public static func decode(_ text: String) -> QueueEnvelope? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.first == "swallow-envelope 1" || lines.first == "swallow-envelope 2", lines.contains("end") else { return nil }
        let escapedAddresses = lines.first == "swallow-envelope 2"
        var env = QueueEnvelope(id: "", sender: "", recipients: [], created: 0)
        var sawID = false, sawSender = false
        for line in lines.dropFirst() {
            if line == "end" { break }
            guard let space = line.firstIndex(of: " ") else {
                if line == "sender" { sawSender = true; continue }
                if line.isEmpty { continue }
                return nil
            }
            let key = line[..<space]
            let value = String(line[line.index(after: space)...])
            switch key {
            case "id": env.id = value; sawID = true
            case "sender": env.sender = value; sawSender = true
            case "created": guard let v = Int(value) else { return nil }; env.created = v
            case "attempts": guard let v = Int(value) else { return nil }; env.attempts = v
            case "next": guard let v = Int(value) else { return nil }; env.nextAttempt = v
            case "delay-notified": env.delayNotified = value == "1"
            case "last-error": env.lastError = value
            case "rcpt":
                let parts = value.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
                guard parts.count >= 3, let state = Recipient.State(rawValue: String(parts[0])) else { return nil }
                guard let address = escapedAddresses ? unescape(parts[2]) : String(parts[2]) else { return nil }
                env.recipients.append(Recipient(address: address, state: state,
                                                lastResponse: parts.count == 4 ? String(parts[3]) : nil,
                                                status: parts[1] == "-" ? nil : String(parts[1])))
            default: continue  // a newer field: ignore
            }
        }
        guard sawID, sawSender, !env.id.isEmpty, !env.recipients.isEmpty,
              QueueEnvelope.isValidID(env.id) else { return nil }
        return env
    }

    /// `%`, space, CR and LF as `%XX`: the address is one space-separated field.
    static func escape(_ address: String) -> String {
        var out = ""
        for u in address.unicodeScalars {
            switch u {
            case "%": out += "%25"
            case " ": out += "%20"
            case "\r": out += "%0D"
            case "\n": out += "%0A"
            default: out.unicodeScalars.append(u)
            }
        }
        return out
    }

    static func unescape(_ field: Substring) -> String? {
        guard field.contains("%") else { return String(field) }
        var bytes: [UInt8] = []
        var u = Array(field.utf8)[...]
        while let b = u.popFirst() {
            guard b == UInt8(ascii: "%") else { bytes.append(b); continue }
            guard u.count >= 2, let v = UInt8(String(decoding: u.prefix(2), as: UTF8.self), radix: 16) else { return nil }
            bytes.append(v)
            u = u.dropFirst(2)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Queue IDs are file names: letters and digits only.
    public static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 64 && id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
    }
}
