import TOMLKit

extension ServerConfiguration {
    /// `[tls]`: certificate, key and protocol settings; certificate and key both absent → a
    /// self-signed pair in `<data_dir>/tls`.
    public struct TLS: Hashable, Sendable {
        /// PEM certificate chain.
        public var certificate: String?
        /// PEM private key.
        public var privateKey: String?
        /// Lowest protocol version offered: `"1.2"` (default) or `"1.3"`.
        public var minimumVersion = "1.2"
        /// TLS 1.2 cipher suites, colon-separated names from ``TLS/knownCiphers`` in order of
        /// preference. Default ``TLS/modernCiphers``: ECDHE key exchange with AES-GCM or
        /// ChaCha20-Poly1305 only (forward secrecy, AEAD). TLS 1.3 suites are fixed by BoringSSL.
        public var ciphers = TLS.modernCiphers

        /// Forward-secret AEAD suites only, ECDSA before RSA (Mozilla's "intermediate" TLS 1.2 list
        /// without the finite-field DHE suites, which BoringSSL does not implement).
        public static let modernCiphers = [
            "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
            "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
        ].joined(separator: ":")

        /// The TLS 1.2 suites BoringSSL implements (names as OpenSSL spells them). `tls.ciphers` may
        /// only name these: the TLS library stops the process on a cipher list it cannot use, so the
        /// list is checked when the configuration is read.
        public static let knownCiphers: Set<String> = [
            "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
            "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA",
            "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA", "AES256-SHA", "DES-CBC3-SHA",
        ]
    }
}

extension ServerConfiguration.TLS {
    static var table: ConfigSection<Self> {
        ConfigSection(name: "tls", doc: "both absent → self-signed pair in <data_dir>/tls/", path: \.tls, keys: [
            .optionalString("certificate", \.certificate, example: TOMLText.string("/etc/swallow/fullchain.pem"), "re-read on SIGHUP"),
            .optionalString("private_key", \.privateKey, example: TOMLText.string("/etc/swallow/privkey.pem"), ""),
            ConfigKey(name: "min_version", doc: "or \"1.3\"; SSLv3, TLS 1.0 and 1.1 are never offered",
                      read: { s, v, r in
                          let text = try r.string(v)
                          guard ["1.2", "1.3"].contains(text) else { throw r.fail("'\(text)' is not \"1.2\" or \"1.3\"") }
                          s.minimumVersion = text
                      },
                      value: { TOMLText.string($0.minimumVersion) }),
            ConfigKey(name: "ciphers", doc: "TLS 1.2 suites (default: forward secrecy + AEAD only); TLS 1.3 suites are fixed",
                      read: { s, v, r in
                          let names = try r.string(v).split(separator: ":").map { String($0.filter { $0 != " " }) }
                          let known = ServerConfiguration.TLS.knownCiphers
                          if let bad = names.first(where: { !known.contains($0) }) ?? (names.isEmpty ? "" : nil) {
                              throw r.fail("'\(bad)' is not a TLS 1.2 cipher suite name (choose from \(known.sorted().joined(separator: ", ")))")
                          }
                          s.ciphers = names.joined(separator: ":")
                      },
                      value: { TOMLText.string($0.ciphers) }),
        ])
    }
}
