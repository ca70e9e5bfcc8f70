extension ServerConfiguration {
    /// `[smtp]`: the MX listener (port 25 in production).
    public struct SMTP: Hashable, Sendable {
        /// `host:port` addresses to listen on. Default `["127.0.0.1:2525"]`.
        public var listen: [String] = ["127.0.0.1:2525"]
        /// Clients (CIDR) allowed to relay without AUTH. Default none.
        public var relayNetworks: [String] = []
        /// Most simultaneous SMTP connections. Default 2000.
        public var maxConnections = 2000
        /// Most simultaneous connections per client IP. Default 50.
        public var maxConnectionsPerIP = 50
        /// Seconds to wait for a command (RFC 5321 §4.5.3.2.7). Default 300.
        public var commandTimeout = 300
        /// Seconds to wait for more message content. Default 180.
        public var dataTimeout = 180
        /// Errors per session before disconnect. Default 20.
        public var maxErrors = 20
        /// Seconds transactions in flight may take to finish at shutdown. Default 10.
        public var shutdownGrace = 10
        /// Offer AUTH (after STARTTLS) on this listener so users can relay through it, like
        /// Postfix's `smtpd_sasl_auth_enable`. Default false (AUTH belongs on submission).
        public var auth = false
        /// Check SPF, DKIM and DMARC of mail from other servers and record the results in an
        /// `Authentication-Results:` field (the `[spf]` and `[dmarc]` policies act on them). Mail from
        /// authenticated sessions and `relay_networks` is not checked. Default true.
        public var checkAuthentication = true
    }
}

extension ServerConfiguration.SMTP {
    static var table: ConfigSection<Self> {
        ConfigSection(name: "smtp", doc: nil, path: \.smtp, keys: [
            .strings("listen", \.listen, "host:port list; IPv6 as \"[::1]:25\"; [] disables"),
            .strings("relay_networks", \.relayNetworks, "CIDR list of clients that may relay to other domains"),
            .int("max_connections", \.maxConnections, min: 1, "over all clients → 421 4.7.0"),
            .int("max_connections_per_ip", \.maxConnectionsPerIP, min: 1, "per client IP → 421 4.7.0"),
            .int("command_timeout", \.commandTimeout, min: 1, "seconds waiting for a command (RFC 5321 §4.5.3.2.7) → 421 4.4.2"),
            .int("data_timeout", \.dataTimeout, min: 1, "seconds waiting for more message content → 421 4.4.2"),
            .int("max_errors", \.maxErrors, min: 1, "protocol errors per session before 421 4.7.0"),
            .int("shutdown_grace", \.shutdownGrace, min: 0, "seconds transactions may take to finish at SIGTERM"),
            .bool("auth", \.auth, "offer AUTH here too (after STARTTLS) so users can relay via 25"),
            .bool("check_authentication", \.checkAuthentication, "SPF, DKIM, DMARC of incoming mail → Authentication-Results"),
        ])
    }
}
