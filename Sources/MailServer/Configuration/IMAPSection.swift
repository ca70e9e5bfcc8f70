extension ServerConfiguration {
    /// `[imap]`: IMAP with STARTTLS (RFC 9051, RFC 3501), and what applies to both IMAP listeners.
    public struct IMAP: Hashable, Sendable {
        /// Addresses for IMAP with STARTTLS. Default `["127.0.0.1:2143"]`; `[]` disables.
        public var listen: [String] = ["127.0.0.1:2143"]
        /// Accept LOGIN and AUTHENTICATE without TLS. Default false (`LOGINDISABLED`).
        public var allowPlaintextAuth = false
        /// RFC 9051 §5.4 autologout timer once logged in, seconds (at least 1800 recommended). Default 1800.
        public var autologout = 1800
        /// Seconds a client may take to log in. Default 60.
        public var loginTimeout = 60
        /// IMAP sessions one user may have open at once (like Dovecot's `mail_max_userip_connections`). Default 20.
        public var maxConnectionsPerUser = 20
        /// Largest literal in a command, and so the largest APPEND (APPENDLIMIT, RFC 7889), bytes.
        /// Default 52428800 (50 MiB).
        public var maxLiteral = 50 * 1_048_576
        /// Longest command line with its literals (other than APPEND's message), bytes. Default 65536.
        public var maxCommandSize = 65_536
        /// Seconds between checks of selected folders for changes by other programs (Dovecot, mutt).
        /// Default 15.
        public var pollInterval = 15
    }
}

extension ServerConfiguration.IMAP {
    static var table: ConfigSection<Self> {
        ConfigSection(name: "imap", doc: nil, path: \.imap, keys: [
            .strings("listen", \.listen, "IMAP with STARTTLS (RFC 9051); [] disables"),
            .bool("allow_plaintext_auth", \.allowPlaintextAuth, "LOGIN and AUTHENTICATE before STARTTLS"),
            .int("autologout", \.autologout, min: 1, "seconds idle before a logged-in session closes (RFC 9051 §5.4)"),
            .int("login_timeout", \.loginTimeout, min: 1, "seconds a client may take to log in"),
            .int("max_connections_per_user", \.maxConnectionsPerUser, min: 1, "IMAP sessions per user"),
            .int("max_literal", \.maxLiteral, min: 1024, "largest literal and APPEND, bytes (APPENDLIMIT)"),
            .int("max_command_size", \.maxCommandSize, min: 1024, "longest command with its literals, bytes"),
            .int("poll_interval", \.pollInterval, min: 1, "seconds between checks of selected folders for changes by other programs"),
        ])
    }
}

extension ServerConfiguration {
    /// `[imaps]`: IMAP over implicit TLS (RFC 8314).
    public struct IMAPS: Hashable, Sendable {
        /// Addresses for IMAP over implicit TLS (RFC 8314). Default `["127.0.0.1:2993"]`; `[]` disables.
        public var listen: [String] = ["127.0.0.1:2993"]
    }
}

extension ServerConfiguration.IMAPS {
    static var table: ConfigSection<Self> {
        ConfigSection(name: "imaps", doc: nil, path: \.imaps, keys: [
            .strings("listen", \.listen, "IMAP over implicit TLS (RFC 8314); [] disables"),
        ])
    }
}
