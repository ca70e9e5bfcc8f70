extension ServerConfiguration {
    /// `[dns]`: the recursive resolvers the DNS client asks.
    public struct DNS: Hashable, Sendable {
        /// `host:port` of recursive resolvers; empty = those in /etc/resolv.conf.
        public var nameservers: [String] = []
    }
}

extension ServerConfiguration.DNS {
    static var table: ConfigSection<Self> {
        ConfigSection(name: "dns", doc: nil, path: \.dns, keys: [
            .strings("nameservers", \.nameservers, "\"host:port\" list; empty = /etc/resolv.conf"),
        ])
    }
}
