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
        /// Send aggregate reports (RFC 9990) to the domains whose records ask for them (`rua=`).
        /// Default false.
        public var reports = false
        /// `From:` and envelope sender of the reports; empty: `dmarc-reports@<first domain>`.
        public var reportSender = ""
        /// Reports queued per day at most (one per policy domain and period).
        public var maxReportsPerDay = 1_000
        /// Seconds per reporting period (86,400: daily, from UTC midnight).
        public var reportInterval = 86_400
    }

    /// `[srs]`: the Sender Rewriting Scheme for mail that aliases forward to other domains.
    public struct SRS: Hashable, Sendable {
        /// Days a rewritten address accepts bounces (21, as libsrs2 and postsrsd).
        public var maxAgeDays = 21
    }

    /// `[arc]`: what Swallow adds as a forwarder (RFC 8617).
    public struct ARC: Hashable, Sendable {
        /// Add an ARC set (with the RSA key of the forwarding alias's domain) to mail an alias
        /// forwards to another domain, after checking it on port 25. Default false.
        public var seal = false
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
            .bool("reports", \.reports, "mail aggregate reports (RFC 9990) to domains whose record has rua="),
            .string("report_sender", \.reportSender, "From: of the reports (default: dmarc-reports@<first domain>)"),
            .int("max_reports_per_day", \.maxReportsPerDay, min: 0, "reports queued per day at most"),
            .int("report_interval", \.reportInterval, min: 1, max: 86_400, "seconds per report period (86400: daily, from UTC midnight)"),
        ])
    }
}

extension ServerConfiguration.SRS {
    static var table: ConfigSection<Self> {
        ConfigSection(name: "srs", doc: nil, path: \.srs, keys: [
            .int("max_age_days", \.maxAgeDays, min: 1, max: 1000, "days a rewritten sender (SRS0) accepts bounces"),
        ])
    }
}

extension ServerConfiguration.ARC {
    static var table: ConfigSection<Self> {
        ConfigSection(name: "arc", doc: nil, path: \.arc, keys: [
            .bool("seal", \.seal, "add an ARC set to mail aliases forward to other domains"),
        ])
    }
}
