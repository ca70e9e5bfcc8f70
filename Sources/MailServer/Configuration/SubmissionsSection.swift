extension ServerConfiguration {
    /// `[submissions]`: message submission over implicit TLS (RFC 8314).
    public struct Submissions: Hashable, Sendable {
        /// Addresses for submission over implicit TLS (RFC 8314). Default `["127.0.0.1:2465"]`;
        /// `[]` disables.
        public var listen: [String] = ["127.0.0.1:2465"]
    }
}

extension ServerConfiguration.Submissions {
    static var table: ConfigSection<Self> {
        ConfigSection(name: "submissions", doc: nil, path: \.submissions, keys: [
            .strings("listen", \.listen, "submission over implicit TLS (RFC 8314); [] disables"),
        ])
    }
}
