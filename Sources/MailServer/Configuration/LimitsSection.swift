extension ServerConfiguration {
    /// `[limits]`: size and count limits of SMTP intake.
    public struct Limits: Hashable, Sendable {
        /// Largest message, octets. Default 26214400 (25 MiB).
        public var maxMessageSize = 26_214_400
        /// Most recipients per message. Default 100.
        public var maxRecipients = 100
        /// A message already carrying this many `Received:` fields is refused (`554 5.4.6`, a mail
        /// loop). Default 50 (Postfix `hopcount_limit`).
        public var maxHops = 50
        /// Mail for a user at or over the storage limit (`swallow user quota`) is refused for good
        /// (`552 5.2.2`) instead of deferred (`452 4.2.2`). Default false (Dovecot's
        /// `quota_full_tempfail = no` is the opposite choice).
        public var overQuotaPermanent = false
    }
}

extension ServerConfiguration.Limits {
    static var table: ConfigSection<Self> {
        ConfigSection(name: "limits", doc: nil, path: \.limits, keys: [
            .int("max_message_size", \.maxMessageSize, min: 1024, "octets, advertised as SIZE (RFC 1870) → 552 5.3.4"),
            .int("max_recipients", \.maxRecipients, min: 1, "per message → 452 4.5.3"),
            .int("max_hops", \.maxHops, min: 1, "a message already carrying this many Received: fields → 554 5.4.6 (mail loop)"),
            .bool("over_quota_permanent", \.overQuotaPermanent, "a user over the storage limit gets 552 5.2.2 instead of 452 4.2.2"),
        ])
    }
}
