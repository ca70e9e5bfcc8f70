extension ServerConfiguration {
    /// `[log]`
    public struct Log: Hashable, Sendable {
        /// trace, debug, info, notice, warning, error, critical. Default info.
        public var level = "info"
        /// `text` (swift-log's lines), `logfmt` or `json` (one object per line). Default text.
        public var format = "text"
        /// `stderr`, or `syslog` (datagrams to ``syslogSocket``, facility mail). Default stderr.
        public var output = "stderr"
        /// The syslog socket. Default /dev/log.
        public var syslogSocket = "/dev/log"
    }
}

extension ServerConfiguration.Log {
    static let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
    static let formats = ["text", "logfmt", "json"]
    static let outputs = ["stderr", "syslog"]

    static var table: ConfigSection<Self> {
        ConfigSection(name: "log", doc: nil, path: \.log, keys: [
            .string("level", \.level, "trace, debug, info, notice, warning, error, critical"),
            .string("format", \.format, "text (swift-log's lines), logfmt (key=value), json (one object per line)"),
            .string("output", \.output, "stderr, or syslog (facility mail, to syslog_socket)"),
            .string("syslog_socket", \.syslogSocket, "the local syslog socket (journald and rsyslog listen here)"),
        ])
    }
}
