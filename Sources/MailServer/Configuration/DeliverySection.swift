import TOMLKit

extension ServerConfiguration {
    /// `[delivery]`: the outbound queue — remote port, concurrency, smarthost, retries, timeouts.
    public struct Delivery: Hashable, Sendable {
        /// Port used to reach MX hosts. Default 25.
        public var smtpPort = 25
        /// Messages delivered at once. Default 20.
        public var concurrency = 20
        /// Simultaneous deliveries to one destination domain. Default 10 (half of `concurrency`, so
        /// that one slow or hostile domain cannot hold every delivery slot).
        public var destinationConcurrency = 10
        /// Every remote domain goes through this `host:port` (Postfix's relayhost). Default none.
        public var smarthost: String?
        /// Require verified STARTTLS at the smarthost. Default false.
        public var smarthostRequireTLS = false
        /// AUTH user at the smarthost.
        public var smarthostUser: String?
        /// File holding the smarthost password (one line), so the secret is not in this file.
        public var smarthostPasswordFile: String?
        /// First retry after this many seconds. Default 300.
        public var retryInitial = 300
        /// Longest retry interval, seconds. Default 14400 (4 h).
        public var retryMaximum = 14_400
        /// Seconds in the queue before remaining recipients bounce. Default 432000 (5 days).
        public var lifetime = 432_000
        /// Send a "delayed" notice after this many seconds; 0 = never. Default 0.
        public var delayWarning = 0
        /// TCP connect to a next hop, seconds. Default 30 (Postfix `smtp_connect_timeout`).
        public var connectTimeout = 30
        /// The 220 greeting, and each reply to EHLO, STARTTLS, AUTH, MAIL, RCPT, RSET, QUIT, seconds.
        /// Default 300 (RFC 5321 §4.5.3.2).
        public var commandTimeout = 300
        /// The 354 reply to DATA, seconds. Default 120.
        public var dataInitTimeout = 120
        /// Each 64 KiB block of content the peer must take, seconds. Default 180.
        public var dataBlockTimeout = 180
        /// The reply after the end of the content, seconds. Default 600.
        public var dataDoneTimeout = 600
    }

    /// `[[routes]]`: mail for `domain` goes to `via` instead of its MX hosts.
    public struct Route: Hashable, Sendable {
        /// The recipient domain.
        public var domain: String
        /// `host:port` of the next hop.
        public var via: String

        /// Creates a route.
        public init(domain: String, via: String) {
            self.domain = domain
            self.via = via
        }
    }
}

extension ServerConfiguration.Delivery {
    static var table: ConfigSection<Self> {
        ConfigSection(name: "delivery", doc: "the outbound queue (see \"Relaying and the queue\" below)", path: \.delivery, keys: [
            .int("smtp_port", \.smtpPort, min: 1, max: 65535, "port of remote MX hosts (tests point it at a local peer)"),
            .int("concurrency", \.concurrency, min: 1, "messages in delivery at once"),
            .int("destination_concurrency", \.destinationConcurrency, min: 1,
                 "deliveries to one domain at once (one slow domain cannot take every slot)"),
            .optionalString("smarthost", \.smarthost, example: TOMLText.string("relay.example.net:587"), commented: true,
                            "send everything through this host (Postfix's relayhost)"),
            .bool("smarthost_require_tls", \.smarthostRequireTLS, "verified STARTTLS at the smarthost"),
            .optionalString("smarthost_user", \.smarthostUser, example: TOMLText.string("me@example.net"), commented: true, ""),
            .optionalString("smarthost_password_file", \.smarthostPasswordFile, example: TOMLText.string("/etc/swallow/smarthost.pw"),
                            commented: true, "its first line is the password (kept out of this file)"),
            .int("retry_initial", \.retryInitial, min: 1, "first retry after 5 minutes, doubling …"),
            .int("retry_maximum", \.retryMaximum, min: 1, "… up to 4 hours"),
            .int("lifetime", \.lifetime, min: 1, "bounce after 5 days (RFC 3464 DSN to the sender)"),
            .int("delay_warning", \.delayWarning, min: 0, "seconds before a \"delayed\" notice; 0 = none"),
            .int("connect_timeout", \.connectTimeout, min: 1, "seconds (timeouts as RFC 5321 §4.5.3.2 and Postfix's smtp_*_timeout)"),
            .int("command_timeout", \.commandTimeout, min: 1, "greeting and each reply to EHLO, MAIL, RCPT, …"),
            .int("data_init_timeout", \.dataInitTimeout, min: 1, "the 354 to DATA"),
            .int("data_block_timeout", \.dataBlockTimeout, min: 1, "each 64 KiB block of content the MX must take"),
            .int("data_done_timeout", \.dataDoneTimeout, min: 1, "the reply after the end of the content"),
        ])
    }
}

extension ServerConfiguration.Route {
    /// `[[routes]]`, an array of tables: each entry needs both keys.
    static let keys: [(name: String, doc: String, example: String)] = [
        ("domain", "", TOMLText.string("partner.example")),
        ("via", "", TOMLText.string("10.0.0.5:25")),
    ]
    static let doc = "per-domain next hop instead of MX lookup (transport map)"

    static func read(_ value: any TOMLValueConvertible, reader: ConfigReader) throws -> [Self] {
        guard value.type == .array, let list = value.array else { throw reader.error("routes", "expected [[routes]] tables") }
        var routes: [Self] = []
        for element in list {
            guard element.type == .table, let t = element.table else { throw reader.error("routes", "expected [[routes]] tables") }
            try reader.checkKeys(t, path: "routes", allowed: Set(keys.map(\.name)), also: [])
            let domain = try t["domain"].map { try ConfigValueReader(reader: reader, key: "routes.domain").string($0) }
            let via = try t["via"].map { try ConfigValueReader(reader: reader, key: "routes.via").string($0) }
            guard let domain, let via else { throw reader.error("routes", "every [[routes]] needs domain and via") }
            routes.append(Self(domain: domain.lowercased(), via: via))
        }
        return routes
    }
}
