extension ServerConfiguration {
    /// `[auth]`: password checks and brute-force throttling (POP3 and SMTP AUTH).
    public struct Auth: Hashable, Sendable {
        /// Delay before answering a failed login, milliseconds. Default 2000.
        public var failureDelayMilliseconds = 2000
        /// Failed logins per client IP within `failure_window` before all its logins are refused. Default 10.
        public var maxFailuresPerIP = 10
        /// Failed logins per account within `failure_window` before its logins are refused. Default 10.
        public var maxFailuresPerAccount = 10
        /// Seconds a failure counts. Default 900.
        public var failureWindow = 900
        /// Most client addresses and account names whose failures are remembered at once (memory
        /// stays bounded under a spray of names; who is throttled is kept longest). Default 100000.
        public var maxTrackedKeys = 100_000
    }
}

extension ServerConfiguration.Auth {
    static var table: ConfigSection<Self> {
        ConfigSection(name: "auth", doc: nil, path: \.auth, keys: [
            .int("failure_delay_ms", \.failureDelayMilliseconds, min: 0, "every failed login (POP3, SMTP AUTH) waits this long"),
            .int("max_failures_per_ip", \.maxFailuresPerIP, min: 1, "failures within failure_window before an IP is refused (SMTP 421)"),
            .int("max_failures_per_account", \.maxFailuresPerAccount, min: 1, "… before an account is refused (SMTP 454 4.7.0)"),
            .int("failure_window", \.failureWindow, min: 1, "seconds"),
            .int("max_tracked_keys", \.maxTrackedKeys, min: 100,
                 "addresses and account names remembered at once (≥ 100); throttled ones are kept longest"),
        ])
    }
}
