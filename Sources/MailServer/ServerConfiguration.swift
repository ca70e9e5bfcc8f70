import MailCore
import TOMLKit
#if canImport(Glibc)
import Glibc
#endif

/// The whole server's configuration, read from one TOML file (or the embedded default).
///
/// Every key is documented in the README's configuration reference. Unknown keys and wrong types are errors that
/// name the key and its line.
public struct ServerConfiguration: Hashable, Sendable {
    /// Our host name: greeting, EHLO, `Received:`, self-signed certificate. Default: the system's.
    public var hostname: String
    /// Domains we accept mail for. Default `["localhost"]`.
    public var domains: [String]
    /// Where the database, mailboxes, spool and TLS material live. Default `./swallow-data`.
    public var dataDirectory: String
    /// Target of `postmaster@<domain>` when there is no such user or alias.
    public var postmaster: String?
    /// Address extension separators (`user+tag`). Default `"+"`.
    public var recipientDelimiter: String
    /// The MX listener.
    public var smtp: SMTP
    /// The submission listener with STARTTLS (RFC 6409), and what applies to authenticated senders.
    public var submission: Submission
    /// The submission listener with implicit TLS (RFC 8314).
    public var submissions: Submissions
    /// The POP3 listener with STLS.
    public var pop3: POP3
    /// The POP3 listener with implicit TLS.
    public var pop3s: POP3S
    /// Password checks and brute-force throttling.
    public var auth: Auth
    /// Outbound delivery: port, relays, retries.
    public var delivery: Delivery
    /// Per-domain next hops (`[[routes]]`).
    public var routes: [Route]
    /// DNS servers.
    public var dns: DNS
    /// Certificate and key; both `nil` → self-signed in `<data_dir>/tls`.
    public var tls: TLS
    /// Size and count limits.
    public var limits: Limits
    /// Logging.
    public var log: Log

    /// `[smtp]`
    public struct SMTP: Hashable, Sendable {
        /// `host:port` addresses to listen on. Default `["127.0.0.1:2525"]`.
        public var listen: [String] = ["127.0.0.1:2525"]
        /// Clients (CIDR) allowed to relay without AUTH. Default none.
        public var relayNetworks: [String] = []
        /// Most simultaneous SMTP connections. Default 2000.
        public var maxConnections = 2000
        /// Most simultaneous connections per client IP. Default 50.
        public var maxConnectionsPerIP = 50
        /// Seconds to wait for a command (RFC 5321 §4.5.3.2.7). Default 300.
        public var commandTimeout = 300
        /// Seconds to wait for more message content. Default 180.
        public var dataTimeout = 180
        /// Errors per session before disconnect. Default 20.
        public var maxErrors = 20
        /// Seconds transactions in flight may take to finish at shutdown. Default 10.
        public var shutdownGrace = 10
        /// Offer AUTH (after STARTTLS) on this listener so users can relay through it, like
        /// Postfix's `smtpd_sasl_auth_enable`. Default false (AUTH belongs on submission).
        public var auth = false
    }

    /// `[submission]`
    public struct Submission: Hashable, Sendable {
        /// Addresses for message submission with STARTTLS and AUTH (RFC 6409). Default
        /// `["127.0.0.1:2587"]`; `[]` disables.
        public var listen: [String] = ["127.0.0.1:2587"]
        /// SASL mechanisms offered. Default PLAIN, LOGIN, SCRAM-SHA-256.
        public var authMechanisms: [String] = ["PLAIN", "LOGIN", "SCRAM-SHA-256"]
        /// Messages each authenticated user may send per rolling hour; 0 = unlimited. Default 500.
        public var maxMessagesPerHour = 500
        /// Recipients per message for authenticated users. Default 100.
        public var maxRecipientsPerMessage = 100
        /// Name the authenticated user in `Received:`. Default false.
        public var receivedHeaderUser = false
    }

    /// `[submissions]`
    public struct Submissions: Hashable, Sendable {
        /// Addresses for submission over implicit TLS (RFC 8314). Default `["127.0.0.1:2465"]`;
        /// `[]` disables.
        public var listen: [String] = ["127.0.0.1:2465"]
    }

    /// `[pop3]`
    public struct POP3: Hashable, Sendable {
        /// Addresses for POP3 with STLS (RFC 1939, 2595). Default `["127.0.0.1:2110"]`; `[]` disables.
        public var listen: [String] = ["127.0.0.1:2110"]
        /// Accept USER/PASS and AUTH without TLS. Default false.
        public var allowPlaintextAuth = false
        /// RFC 1939 autologout timer, seconds (at least 600 recommended). Default 600.
        public var autologout = 600
    }

    /// `[pop3s]`
    public struct POP3S: Hashable, Sendable {
        /// Addresses for POP3 over implicit TLS (RFC 8314). Default `["127.0.0.1:2995"]`; `[]` disables.
        public var listen: [String] = ["127.0.0.1:2995"]
    }

    /// `[auth]`
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

    /// `[delivery]`
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
    }

    /// `[dns]`
    public struct DNS: Hashable, Sendable {
        /// `host:port` of recursive resolvers; empty = those in /etc/resolv.conf.
        public var nameservers: [String] = []
    }

    /// `[tls]`
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

    /// `[limits]`
    public struct Limits: Hashable, Sendable {
        /// Largest message, octets. Default 26214400 (25 MiB).
        public var maxMessageSize = 26_214_400
        /// Most recipients per message. Default 100.
        public var maxRecipients = 100
        /// A message already carrying this many `Received:` fields is refused (`554 5.4.6`, a mail
        /// loop). Default 50 (Postfix `hopcount_limit`).
        public var maxHops = 50
    }

    /// `[log]`
    public struct Log: Hashable, Sendable {
        /// trace, debug, info, notice, warning, error, critical. Default info.
        public var level = "info"
    }

    /// The embedded default: no file needed.
    public static var embeddedDefault: ServerConfiguration {
        ServerConfiguration(hostname: systemHostname(), domains: ["localhost"], dataDirectory: "./swallow-data",
                            postmaster: nil, recipientDelimiter: "+", smtp: SMTP(), submission: Submission(),
                            submissions: Submissions(), pop3: POP3(), pop3s: POP3S(), auth: Auth(),
                            delivery: Delivery(), routes: [], dns: DNS(), tls: TLS(), limits: Limits(), log: Log())
    }

    /// The machine's host name, or `localhost`.
    public static func systemHostname() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count) == 0 else { return "localhost" }
        let name = String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }
}

/// A configuration problem: the key, its line, what is wrong.
public struct ConfigurationError: Error, CustomStringConvertible, Hashable, Sendable {
    /// Dotted key path, e.g. `smtp.listen`; empty for syntax errors.
    public var key: String
    /// 1-based line in the file, when known.
    public var line: Int?
    /// What is wrong.
    public var message: String

    public var description: String {
        var s = ""
        if let line { s += "line \(line): " }
        if !key.isEmpty { s += "\(key): " }
        return s + message
    }
}

extension ServerConfiguration {
    /// Reads and validates a configuration file.
    public static func load(path: String) throws -> ServerConfiguration {
        guard let fp = fopen(path, "r") else {
            throw ConfigurationError(key: "", line: nil, message: "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(fp) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, fp)
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return try parse(String(decoding: bytes, as: UTF8.self))
    }

    /// Parses and validates configuration text.
    public static func parse(_ text: String) throws -> ServerConfiguration {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw ConfigurationError(key: "", line: e.source.begin.line, message: "TOML syntax error: \(e.description)")
        }
        let reader = Reader(text: text)
        var c = ServerConfiguration.embeddedDefault
        try reader.checkKeys(table, path: "", allowed: ["hostname", "domains", "data_dir", "postmaster", "recipient_delimiter",
                                                         "smtp", "submission", "submissions", "pop3", "pop3s", "auth", "delivery", "routes", "dns",
                                                         "tls", "limits", "log"])
        if let v = try reader.string(table, "hostname") { c.hostname = v }
        if let v = try reader.strings(table, "domains") { c.domains = v.map { $0.lowercased() } }
        if let v = try reader.string(table, "data_dir") { c.dataDirectory = v }
        c.postmaster = try reader.string(table, "postmaster")
        if let v = try reader.string(table, "recipient_delimiter") { c.recipientDelimiter = v }
        if let t = try reader.table(table, "smtp") {
            try reader.checkKeys(t, path: "smtp", allowed: ["listen", "relay_networks", "max_connections", "max_connections_per_ip",
                                                            "command_timeout", "data_timeout", "max_errors", "shutdown_grace", "auth"])
            if let v = try reader.strings(t, "listen", path: "smtp") { c.smtp.listen = v }
            if let v = try reader.strings(t, "relay_networks", path: "smtp") { c.smtp.relayNetworks = v }
            if let v = try reader.int(t, "max_connections", path: "smtp", min: 1) { c.smtp.maxConnections = v }
            if let v = try reader.int(t, "max_connections_per_ip", path: "smtp", min: 1) { c.smtp.maxConnectionsPerIP = v }
            if let v = try reader.int(t, "command_timeout", path: "smtp", min: 1) { c.smtp.commandTimeout = v }
            if let v = try reader.int(t, "data_timeout", path: "smtp", min: 1) { c.smtp.dataTimeout = v }
            if let v = try reader.int(t, "max_errors", path: "smtp", min: 1) { c.smtp.maxErrors = v }
            if let v = try reader.int(t, "shutdown_grace", path: "smtp", min: 0) { c.smtp.shutdownGrace = v }
            if let v = try reader.bool(t, "auth", path: "smtp") { c.smtp.auth = v }
        }
        if let t = try reader.table(table, "submission") {
            try reader.checkKeys(t, path: "submission", allowed: ["listen", "auth_mechanisms", "max_messages_per_hour",
                                                                  "max_recipients_per_message", "received_header_user"])
            if let v = try reader.strings(t, "listen", path: "submission") { c.submission.listen = v }
            if let v = try reader.strings(t, "auth_mechanisms", path: "submission") { c.submission.authMechanisms = v.map { $0.uppercased() } }
            if let v = try reader.int(t, "max_messages_per_hour", path: "submission", min: 0) { c.submission.maxMessagesPerHour = v }
            if let v = try reader.int(t, "max_recipients_per_message", path: "submission", min: 1) { c.submission.maxRecipientsPerMessage = v }
            if let v = try reader.bool(t, "received_header_user", path: "submission") { c.submission.receivedHeaderUser = v }
        }
        if let t = try reader.table(table, "submissions") {
            try reader.checkKeys(t, path: "submissions", allowed: ["listen"])
            if let v = try reader.strings(t, "listen", path: "submissions") { c.submissions.listen = v }
        }
        if let t = try reader.table(table, "pop3") {
            try reader.checkKeys(t, path: "pop3", allowed: ["listen", "allow_plaintext_auth", "autologout"])
            if let v = try reader.strings(t, "listen", path: "pop3") { c.pop3.listen = v }
            if let v = try reader.bool(t, "allow_plaintext_auth", path: "pop3") { c.pop3.allowPlaintextAuth = v }
            if let v = try reader.int(t, "autologout", path: "pop3", min: 1) { c.pop3.autologout = v }
        }
        if let t = try reader.table(table, "pop3s") {
            try reader.checkKeys(t, path: "pop3s", allowed: ["listen"])
            if let v = try reader.strings(t, "listen", path: "pop3s") { c.pop3s.listen = v }
        }
        if let t = try reader.table(table, "auth") {
            try reader.checkKeys(t, path: "auth", allowed: ["failure_delay_ms", "max_failures_per_ip", "max_failures_per_account", "failure_window", "max_tracked_keys"])
            if let v = try reader.int(t, "failure_delay_ms", path: "auth", min: 0) { c.auth.failureDelayMilliseconds = v }
            if let v = try reader.int(t, "max_failures_per_ip", path: "auth", min: 1) { c.auth.maxFailuresPerIP = v }
            if let v = try reader.int(t, "max_failures_per_account", path: "auth", min: 1) { c.auth.maxFailuresPerAccount = v }
            if let v = try reader.int(t, "failure_window", path: "auth", min: 1) { c.auth.failureWindow = v }
            if let v = try reader.int(t, "max_tracked_keys", path: "auth", min: 100) { c.auth.maxTrackedKeys = v }
        }
        if let t = try reader.table(table, "delivery") {
            try reader.checkKeys(t, path: "delivery", allowed: ["smtp_port", "concurrency", "destination_concurrency", "smarthost", "smarthost_require_tls",
                                                                "smarthost_user", "smarthost_password_file", "retry_initial",
                                                                "retry_maximum", "lifetime", "delay_warning", "connect_timeout",
                                                                "command_timeout", "data_init_timeout", "data_block_timeout",
                                                                "data_done_timeout"])
            if let v = try reader.int(t, "connect_timeout", path: "delivery", min: 1) { c.delivery.connectTimeout = v }
            if let v = try reader.int(t, "command_timeout", path: "delivery", min: 1) { c.delivery.commandTimeout = v }
            if let v = try reader.int(t, "data_init_timeout", path: "delivery", min: 1) { c.delivery.dataInitTimeout = v }
            if let v = try reader.int(t, "data_block_timeout", path: "delivery", min: 1) { c.delivery.dataBlockTimeout = v }
            if let v = try reader.int(t, "data_done_timeout", path: "delivery", min: 1) { c.delivery.dataDoneTimeout = v }
            if let v = try reader.int(t, "smtp_port", path: "delivery", min: 1) { c.delivery.smtpPort = v }
            if let v = try reader.int(t, "concurrency", path: "delivery", min: 1) { c.delivery.concurrency = v }
            if let v = try reader.int(t, "destination_concurrency", path: "delivery", min: 1) { c.delivery.destinationConcurrency = v }
            c.delivery.smarthost = try reader.string(t, "smarthost", path: "delivery")
            if let v = try reader.bool(t, "smarthost_require_tls", path: "delivery") { c.delivery.smarthostRequireTLS = v }
            c.delivery.smarthostUser = try reader.string(t, "smarthost_user", path: "delivery")
            c.delivery.smarthostPasswordFile = try reader.string(t, "smarthost_password_file", path: "delivery")
            if let v = try reader.int(t, "retry_initial", path: "delivery", min: 1) { c.delivery.retryInitial = v }
            if let v = try reader.int(t, "retry_maximum", path: "delivery", min: 1) { c.delivery.retryMaximum = v }
            if let v = try reader.int(t, "lifetime", path: "delivery", min: 1) { c.delivery.lifetime = v }
            if let v = try reader.int(t, "delay_warning", path: "delivery", min: 0) { c.delivery.delayWarning = v }
        }
        if let v = table["routes"] {
            guard v.type == .array, let list = v.array else { throw reader.error("routes", "expected [[routes]] tables") }
            for element in list {
                guard element.type == .table, let t = element.table else { throw reader.error("routes", "expected [[routes]] tables") }
                try reader.checkKeys(t, path: "routes", allowed: ["domain", "via"])
                guard let domain = try reader.string(t, "domain", path: "routes"), let via = try reader.string(t, "via", path: "routes") else {
                    throw reader.error("routes", "every [[routes]] needs domain and via")
                }
                c.routes.append(Route(domain: domain.lowercased(), via: via))
            }
        }
        if let t = try reader.table(table, "dns") {
            try reader.checkKeys(t, path: "dns", allowed: ["nameservers"])
            if let v = try reader.strings(t, "nameservers", path: "dns") { c.dns.nameservers = v }
        }
        if let t = try reader.table(table, "tls") {
            try reader.checkKeys(t, path: "tls", allowed: ["certificate", "private_key", "min_version", "ciphers"])
            c.tls.certificate = try reader.string(t, "certificate", path: "tls")
            c.tls.privateKey = try reader.string(t, "private_key", path: "tls")
            if let v = try reader.string(t, "min_version", path: "tls") {
                guard ["1.2", "1.3"].contains(v) else {
                    throw ConfigurationError(key: "tls.min_version", line: reader.line(of: "tls.min_version"), message: "'\(v)' is not \"1.2\" or \"1.3\"")
                }
                c.tls.minimumVersion = v
            }
            if let v = try reader.string(t, "ciphers", path: "tls") {
                let names = v.split(separator: ":").map { String($0.filter { $0 != " " }) }
                if let bad = names.first(where: { !ServerConfiguration.TLS.knownCiphers.contains($0) }) ?? (names.isEmpty ? "" : nil) {
                    throw ConfigurationError(key: "tls.ciphers", line: reader.line(of: "tls.ciphers"),
                                             message: "'\(bad)' is not a TLS 1.2 cipher suite name (choose from \(ServerConfiguration.TLS.knownCiphers.sorted().joined(separator: ", ")))")
                }
                c.tls.ciphers = names.joined(separator: ":")
            }
        }
        if let t = try reader.table(table, "limits") {
            try reader.checkKeys(t, path: "limits", allowed: ["max_message_size", "max_recipients", "max_hops"])
            if let v = try reader.int(t, "max_hops", path: "limits", min: 1) { c.limits.maxHops = v }
            if let v = try reader.int(t, "max_message_size", path: "limits", min: 1024) { c.limits.maxMessageSize = v }
            if let v = try reader.int(t, "max_recipients", path: "limits", min: 1) { c.limits.maxRecipients = v }
        }
        if let t = try reader.table(table, "log") {
            try reader.checkKeys(t, path: "log", allowed: ["level"])
            if let v = try reader.string(t, "level", path: "log") { c.log.level = v }
        }
        try c.validate(reader: reader)
        return c
    }

    /// Semantic checks shared by files and the embedded default.
    public func validate() throws { try validate(reader: Reader(text: "")) }

    fileprivate func validate(reader: Reader) throws {
        func fail(_ key: String, _ message: String) -> ConfigurationError {
            ConfigurationError(key: key, line: reader.line(of: key), message: message)
        }
        guard !hostname.isEmpty, !hostname.contains(where: { $0 == " " || $0 == "/" }) else {
            throw fail("hostname", "must be a host name")
        }
        guard !domains.isEmpty else { throw fail("domains", "at least one domain is required") }
        for d in domains where d.isEmpty || d.contains(where: { $0 == " " || $0 == "/" || $0 == "@" }) || d.hasPrefix(".") {
            throw fail("domains", "'\(d)' is not a domain name")
        }
        guard !dataDirectory.isEmpty else { throw fail("data_dir", "must not be empty") }
        var hostPorts = [("smtp.listen", smtp.listen), ("submission.listen", submission.listen),
                         ("submissions.listen", submissions.listen), ("pop3.listen", pop3.listen), ("pop3s.listen", pop3s.listen),
                         ("dns.nameservers", dns.nameservers), ("routes.via", routes.map(\.via))]
        if let s = delivery.smarthost { hostPorts.append(("delivery.smarthost", [s])) }
        for (key, list) in hostPorts {
            for l in list where ListenAddress.parse(l) == nil {
                throw fail(key, "'\(l)' is not host:port (IPv6 as [::1]:25)")
            }
        }
        for n in smtp.relayNetworks where CIDR.parse(n) == nil {
            throw fail("smtp.relay_networks", "'\(n)' is not an address or CIDR network")
        }
        if (tls.certificate == nil) != (tls.privateKey == nil) {
            let (missing, present) = tls.certificate == nil ? ("tls.certificate", "tls.private_key") : ("tls.private_key", "tls.certificate")
            throw ConfigurationError(key: missing, line: reader.line(of: present), message: "required when \(present) is set")
        }
        if let p = postmaster, !p.contains("@") { throw fail("postmaster", "'\(p)' is not an address") }
        let mechanisms = ["PLAIN", "LOGIN", "SCRAM-SHA-256"]
        for m in submission.authMechanisms where !mechanisms.contains(m) {
            throw fail("submission.auth_mechanisms", "'\(m)' is not supported (choose from \(mechanisms.joined(separator: ", ")))")
        }
        if submission.authMechanisms.isEmpty && !(submission.listen.isEmpty && submissions.listen.isEmpty && !smtp.auth) {
            throw fail("submission.auth_mechanisms", "at least one mechanism is needed while a submission listener or smtp.auth is on")
        }
        let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
        guard levels.contains(log.level) else { throw fail("log.level", "must be one of \(levels.joined(separator: ", "))") }
    }
}

/// A `host:port` listen address.
public struct ListenAddress: Hashable, Sendable {
    /// Host or IP.
    public var host: String
    /// Port.
    public var port: Int

    /// Creates a listen address.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `127.0.0.1:25`, `[::1]:25`, `localhost:2525`.
    public static func parse(_ s: String) -> ListenAddress? {
        if s.hasPrefix("["), let close = s.firstIndex(of: "]") {
            let host = String(s[s.index(after: s.startIndex)..<close])
            let rest = s[s.index(after: close)...]
            guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()), (0...65535).contains(p), !host.isEmpty else { return nil }
            return ListenAddress(host: host, port: p)
        }
        guard let colon = s.lastIndex(of: ":") else { return nil }
        let host = String(s[..<colon])
        guard !host.isEmpty, !host.contains(":"), let p = Int(s[s.index(after: colon)...]), (0...65535).contains(p) else { return nil }
        return ListenAddress(host: host, port: p)
    }
}

/// Reads typed values and finds the line a key is on.
private struct Reader {
    let lines: [Substring]

    init(text: String) { lines = text.split(separator: "\n", omittingEmptySubsequences: false) }

    /// The line of `section.key` (or `key` at top level), found by scanning table headers.
    func line(of dotted: String) -> Int? {
        let parts = dotted.split(separator: ".").map(String.init)
        let section = parts.count > 1 ? parts.dropLast().joined(separator: ".") : ""
        let key = parts.last ?? ""
        var current = ""
        for (i, raw) in lines.enumerated() {
            let l = raw.drop(while: { $0 == " " || $0 == "\t" })
            if l.hasPrefix("[") {
                current = l.trimmingCharacters(in: "[] \t\r").split(separator: "]").first.map(String.init) ?? ""
                if current == dotted { return i + 1 }
                continue
            }
            if current == section, l.hasPrefix(key) {
                let after = l.dropFirst(key.count).drop(while: { $0 == " " || $0 == "\t" })
                if after.hasPrefix("=") { return i + 1 }
            }
        }
        return nil
    }

    func error(_ key: String, _ message: String) -> ConfigurationError {
        ConfigurationError(key: key, line: line(of: key), message: message)
    }

    func checkKeys(_ t: TOMLTable, path: String, allowed: Set<String>) throws {
        for k in t.keys.sorted() where !allowed.contains(k) {
            let full = path.isEmpty ? k : "\(path).\(k)"
            throw error(full, "unknown key (known: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    private func full(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func string(_ t: TOMLTable, _ key: String, path: String = "") throws -> String? {
        guard let v = t[key] else { return nil }
        guard v.type == .string, let s = v.string else { throw error(full(path, key), "expected a string, found \(v.type)") }
        return s
    }

    func int(_ t: TOMLTable, _ key: String, path: String = "", min: Int) throws -> Int? {
        guard let v = t[key] else { return nil }
        guard v.type == .int, let n = v.int else { throw error(full(path, key), "expected an integer, found \(v.type)") }
        guard n >= min else { throw error(full(path, key), "must be at least \(min)") }
        return n
    }

    func strings(_ t: TOMLTable, _ key: String, path: String = "") throws -> [String]? {
        guard let v = t[key] else { return nil }
        guard v.type == .array, let a = v.array else { throw error(full(path, key), "expected an array of strings, found \(v.type)") }
        var out: [String] = []
        for e in a {
            guard e.type == .string, let s = e.string else { throw error(full(path, key), "expected an array of strings, found an element of type \(e.type)") }
            out.append(s)
        }
        return out
    }

    func bool(_ t: TOMLTable, _ key: String, path: String = "") throws -> Bool? {
        guard let v = t[key] else { return nil }
        guard v.type == .bool, let b = v.bool else { throw error(full(path, key), "expected true or false, found \(v.type)") }
        return b
    }

    func table(_ t: TOMLTable, _ key: String) throws -> TOMLTable? {
        guard let v = t[key] else { return nil }
        guard v.type == .table, let tt = v.table else { throw error(key, "expected a table [\(key)], found \(v.type)") }
        return tt
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var s = self[...]
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
