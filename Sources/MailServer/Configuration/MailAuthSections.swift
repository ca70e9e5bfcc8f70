extension ServerConfiguration {
    /// `[spf]`: what an SPF result (RFC 7208) does to mail arriving on port 25.
    public struct SPF: Hashable, Sendable {
        /// Refuse a message whose SPF result is `fail` (550 5.7.23). Default false: SPF alone breaks
        /// forwarding, so a `fail` only counts through DMARC.
        public var rejectFail = false
    }

    /// `[dmarc]`: the DMARC policy (RFC 9989) applied to mail arriving on port 25.
    public struct DMARC: Hashable, Sendable {
        /// Apply the From: domain's policy: `p=reject` → 550 5.7.1, `p=quarantine` → the recipient's
        /// Junk folder. Default true; false: the result is only recorded in Authentication-Results.
        public var enforce = true
        /// Forwarders (ARC-Seal `d=` domains) whose valid ARC chain overrides a DMARC failure, as for
        /// a mailing list that rewrites messages. Default none.
        public var trustedARCSealers: [String] = []
    }
}

extension ServerConfiguration.SPF {
    static var table: ConfigSection<Self> {
        ConfigSection(name: "spf", doc: nil, path: \.spf, keys: [
            .bool("reject_fail", \.rejectFail, "refuse SPF fail with 550 5.7.23 (default: only DMARC decides)"),
        ])
    }
}

extension ServerConfiguration.DMARC {
    static var table: ConfigSection<Self> {
        ConfigSection(name: "dmarc", doc: nil, path: \.dmarc, keys: [
            .bool("enforce", \.enforce, "p=reject → 550 5.7.1, p=quarantine → Junk; false: header only"),
            .strings("trusted_arc_sealers", \.trustedARCSealers, transform: { $0.lowercased() },
                     "ARC sealers (forwarders) whose valid chain overrides a DMARC failure"),
        ])
    }
}
