extension ServerConfiguration {
    /// `[submission]`: message submission with STARTTLS (RFC 6409), and what applies to
    /// authenticated senders on every listener.
    public struct Submission: Hashable, Sendable {
        /// Addresses for message submission with STARTTLS and AUTH (RFC 6409). Default
        /// `["127.0.0.1:2587"]`; `[]` disables.
        public var listen: [String] = ["127.0.0.1:2587"]
        /// SASL mechanisms offered. Default PLAIN, LOGIN, SCRAM-SHA-256.
        public var authMechanisms: [String] = ["PLAIN", "LOGIN", "SCRAM-SHA-256"]
        /// Messages each authenticated user may send per rolling hour; 0 = unlimited. Default 500.
        public var maxMessagesPerHour = 500
        /// Recipients per message for authenticated users. Default 100.
        public var maxRecipientsPerMessage = 100
        /// Name the authenticated user in `Received:`. Default false.
        public var receivedHeaderUser = false
    }
}

extension ServerConfiguration.Submission {
    static var table: ConfigSection<Self> {
        ConfigSection(name: "submission", doc: nil, path: \.submission, keys: [
            .strings("listen", \.listen, "submission with STARTTLS, AUTH required (RFC 6409); [] disables"),
            .strings("auth_mechanisms", \.authMechanisms, transform: { $0.uppercased() },
                     "offered on 587, 465 (and 25 with smtp.auth)"),
            .int("max_messages_per_hour", \.maxMessagesPerHour, min: 0, "per authenticated user, rolling hour → 450 4.7.1; 0 = no limit"),
            .int("max_recipients_per_message", \.maxRecipientsPerMessage, min: 1, "per authenticated user → 452 4.5.3"),
            .bool("received_header_user", \.receivedHeaderUser, "name the user in Received: (\"Authenticated sender: …\")"),
        ])
    }
}
