extension ServerConfiguration {
    /// `[pop3s]`: POP3 over implicit TLS (RFC 8314).
    public struct POP3S: Hashable, Sendable {
        /// Addresses for POP3 over implicit TLS (RFC 8314). Default `["127.0.0.1:2995"]`; `[]` disables.
        public var listen: [String] = ["127.0.0.1:2995"]
    }
}

extension ServerConfiguration.POP3S {
    static var table: ConfigSection<Self> {
        ConfigSection(name: "pop3s", doc: nil, path: \.pop3s, keys: [
            .strings("listen", \.listen, "POP3 over implicit TLS (RFC 8314); [] disables"),
        ])
    }
}
