extension ServerConfiguration {
    /// `[log]`
    public struct Log: Hashable, Sendable {
        /// trace, debug, info, notice, warning, error, critical. Default info.
        public var level = "info"
    }
}

extension ServerConfiguration.Log {
    static var table: ConfigSection<Self> {
        ConfigSection(name: "log", doc: nil, path: \.log, keys: [
            .string("level", \.level, "trace, debug, info, notice, warning, error, critical"),
        ])
    }
}
