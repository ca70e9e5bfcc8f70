extension ServerConfiguration {
    /// `[pop3]`: POP3 with STLS (RFC 1939, RFC 2595).
    public struct POP3: Hashable, Sendable {
        /// Addresses for POP3 with STLS (RFC 1939, 2595). Default `["127.0.0.1:2110"]`; `[]` disables.
        public var listen: [String] = ["127.0.0.1:2110"]
        /// Accept USER/PASS and AUTH without TLS. Default false.
        public var allowPlaintextAuth = false
        /// RFC 1939 autologout timer, seconds (at least 600 recommended). Default 600.
        public var autologout = 600
    }
}

extension ServerConfiguration.POP3 {
    static var table: ConfigSection<Self> {
        ConfigSection(name: "pop3", doc: nil, path: \.pop3, keys: [
            .strings("listen", \.listen, "POP3 with STLS (RFC 1939, 2595); [] disables"),
            .bool("allow_plaintext_auth", \.allowPlaintextAuth, "USER/PASS and AUTH before STLS"),
            .int("autologout", \.autologout, min: 1, "seconds idle before the connection closes (RFC 1939 §3)"),
        ])
    }
}
