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
    /// The IMAP listener with STARTTLS, and IMAP settings.
    public var imap: IMAP
    /// The IMAP listener with implicit TLS.
    public var imaps: IMAPS
    /// Password checks and brute-force throttling.
    public var auth: Auth
    /// Outbound delivery: port, relays, retries.
    public var delivery: Delivery
    /// Per-domain next hops (`[[routes]]`).
    public var routes: [Route]
    /// DNS servers.
    public var dns: DNS
    /// What SPF results do.
    public var spf = SPF()
    /// The DMARC policy.
    public var dmarc = DMARC()
    /// Sender rewriting for forwarded mail.
    public var srs = SRS()
    /// ARC sealing of forwarded mail.
    public var arc = ARC()
    /// Certificate and key; both `nil` → self-signed in `<data_dir>/tls`.
    public var tls: TLS
    /// Size and count limits.
    public var limits: Limits
    /// Logging.
    public var log: Log

    /// The embedded default: no file needed.
    public static var embeddedDefault: ServerConfiguration {
        ServerConfiguration(hostname: systemHostname(), domains: ["localhost"], dataDirectory: "./swallow-data",
                            postmaster: nil, recipientDelimiter: "+", smtp: SMTP(), submission: Submission(),
                            submissions: Submissions(), pop3: POP3(), pop3s: POP3S(), imap: IMAP(), imaps: IMAPS(), auth: Auth(),
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

    /// Every section's table, in the order of the reference (`[[routes]]` comes after `[delivery]`).
    static var sections: [AnyConfigSection] {
        [general.erased, SMTP.table.erased, Submission.table.erased, Submissions.table.erased, POP3.table.erased,
         POP3S.table.erased, IMAP.table.erased, IMAPS.table.erased, Auth.table.erased, Delivery.table.erased, DNS.table.erased,
         SPF.table.erased, DMARC.table.erased, SRS.table.erased, ARC.table.erased, TLS.table.erased,
         Limits.table.erased, Log.table.erased]
    }

    /// The top-level keys.
    static var general: ConfigSection<ServerConfiguration> {
        ConfigSection(name: "", doc: nil, path: \.self, keys: [
            .string("hostname", \.hostname, example: TOMLText.string("mx.example.test"),
                    "greeting, EHLO, Received:, self-signed certificate (default: the system's name)"),
            .strings("domains", \.domains, transform: { $0.lowercased() }, "domains we accept mail for"),
            .string("data_dir", \.dataDirectory, "users, mailboxes, queue, TLS material"),
            .optionalString("postmaster", \.postmaster, example: TOMLText.string("alice@example.test"),
                            "where postmaster@<domain> goes (default: its own mailbox)"),
            .string("recipient_delimiter", \.recipientDelimiter, "user+tag@domain → user; \"\" disables"),
        ], tables: Set(["smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps", "auth", "delivery", "routes", "dns", "spf", "dmarc", "srs", "arc", "tls", "limits", "log"]))
    }

    /// Parses and validates configuration text.
    public static func parse(_ text: String) throws -> ServerConfiguration {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw ConfigurationError(key: "", line: e.source.begin.line, message: "TOML syntax error: \(e.description)")
        }
        let reader = ConfigReader(text: text)
        var c = ServerConfiguration.embeddedDefault
        for section in sections {
            if section.name.isEmpty {
                try section.apply(table, &c, reader)
            } else if let t = try reader.table(table, section.name) {
                try section.apply(t, &c, reader)
            }
        }
        if let v = table["routes"] { c.routes = try Route.read(v, reader: reader) }
        try c.validate(reader: reader)
        return c
    }

    /// The configuration reference: every key with its default (or an example) and its one-line
    /// documentation, as TOML. The README's "Configuration" block is this text
    /// (`swallow config reference` prints it; a test compares the two).
    public static var reference: String {
        render(embeddedDefault, .reference)
    }

    /// The configuration in force as TOML, defaults filled in (`swallow config show`); keys that
    /// hold secrets are masked, unset optional keys are shown commented out.
    public var effectiveText: String {
        Self.render(self, .effective)
    }

    static func render(_ c: ServerConfiguration, _ mode: ConfigRendering) -> String {
        var out: [String] = []
        for section in sections {
            if !section.name.isEmpty {
                out.append("")
                out.append(ConfigLine(text: "[\(section.name)]", doc: section.doc).rendered)
            }
            out += section.lines(c, mode).map(\.rendered)
            if section.name == "delivery" {
                out.append("")
                switch mode {
                case .reference:
                    out.append(ConfigLine(text: "# [[routes]]", doc: Route.doc).rendered)
                    out += Route.keys.map { "# \($0.name) = \($0.example)" }
                case .effective:
                    if c.routes.isEmpty { out.append(ConfigLine(text: "# [[routes]]", doc: "none").rendered) }
                    for r in c.routes {
                        out.append("[[routes]]")
                        out.append("domain = \(TOMLText.string(r.domain))")
                        out.append("via = \(TOMLText.string(r.via))")
                    }
                }
            }
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// Semantic checks shared by files and the embedded default.
    public func validate() throws { try validate(reader: ConfigReader(text: "")) }

    func validate(reader: ConfigReader) throws {
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
                         ("imap.listen", imap.listen), ("imaps.listen", imaps.listen),
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
        if !dmarc.reportSender.isEmpty, case .failure = EmailAddress.parse(dmarc.reportSender, allowUTF8: false) {
            throw fail("dmarc.report_sender", "'\(dmarc.reportSender)' is not an address")
        }
        let mechanisms = ["PLAIN", "LOGIN", "SCRAM-SHA-256"]
        for m in submission.authMechanisms where !mechanisms.contains(m) {
            throw fail("submission.auth_mechanisms", "'\(m)' is not supported (choose from \(mechanisms.joined(separator: ", ")))")
        }
        if submission.authMechanisms.isEmpty && !(submission.listen.isEmpty && submissions.listen.isEmpty && !smtp.auth) {
            throw fail("submission.auth_mechanisms", "at least one mechanism is needed while a submission listener or smtp.auth is on")
        }
        for (key, value, allowed) in [("log.level", log.level, Log.levels), ("log.format", log.format, Log.formats),
                                      ("log.output", log.output, Log.outputs)] where !allowed.contains(value) {
            throw fail(key, "must be one of \(allowed.joined(separator: ", "))")
        }
        if log.output == "syslog" && !log.syslogSocket.hasPrefix("/") {
            throw fail("log.syslog_socket", "must be an absolute path")
        }
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
