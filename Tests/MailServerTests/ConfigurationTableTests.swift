import Foundation
import MailServer
import Testing

/// The configuration tables: the README's reference is what the tables render, the reference parses
/// back to the defaults, `config show` round-trips, and every key checks its type and range.
@Suite struct ConfigurationTableTests {
    static let readme: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return (try? String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)) ?? ""
    }()

    /// The ```toml block of the README's "Configuration" section.
    static var readmeReference: String? {
        guard let section = readme.range(of: "## Configuration\n") else { return nil }
        let rest = readme[section.upperBound...]
        guard let open = rest.range(of: "```toml\n") else { return nil }
        guard let close = rest[open.upperBound...].range(of: "```") else { return nil }
        return String(rest[open.upperBound..<close.lowerBound])
    }

    @Test func readmeReferenceIsWhatTheTablesRender() throws {
        let documented = try #require(Self.readmeReference, "no ```toml block under ## Configuration in README.md")
        let rendered = ServerConfiguration.reference
        let a = documented.split(separator: "\n", omittingEmptySubsequences: false)
        let b = rendered.split(separator: "\n", omittingEmptySubsequences: false)
        for (i, (x, y)) in zip(a, b).enumerated() where x != y {
            Issue.record("README.md reference line \(i + 1) differs from the table:\n  README: \(x)\n  table:  \(y)\n(paste `swallow config reference` into README.md)")
            return
        }
        #expect(a.count == b.count, "README.md has \(a.count) reference lines, the table renders \(b.count)")
    }

    /// Every line of the reference that is not commented out is valid TOML for its key, and the
    /// values are the defaults: parsed back, only the documented examples differ.
    @Test func referenceParsesBackToTheDefaults() throws {
        var parsed = try ServerConfiguration.parse(ServerConfiguration.reference)
        #expect(parsed.hostname == "mx.example.test")
        #expect(parsed.postmaster == "alice@example.test")
        #expect(parsed.tls.certificate == "/etc/swallow/fullchain.pem")
        #expect(parsed.tls.privateKey == "/etc/swallow/privkey.pem")
        let defaults = ServerConfiguration.embeddedDefault
        parsed.hostname = defaults.hostname
        parsed.postmaster = nil
        parsed.tls.certificate = nil
        parsed.tls.privateKey = nil
        #expect(parsed == defaults)
    }

    @Test func effectiveTextRoundTrips() throws {
        let text = """
            hostname = "mx.example.test"
            domains = ["example.test", "other.test"]
            data_dir = "/var/lib/swallow \\"x\\""
            [smtp]
            listen = ["127.0.0.1:25", "[::1]:25"]
            relay_networks = ["192.0.2.0/24"]
            auth = true
            [submission]
            auth_mechanisms = ["scram-sha-256"]
            [delivery]
            smarthost = "relay.example.net:587"
            smarthost_user = "me@example.net"
            delay_warning = 3600
            [[routes]]
            domain = "Partner.Example"
            via = "10.0.0.5:25"
            [tls]
            min_version = "1.3"
            ciphers = "ECDHE-RSA-AES128-GCM-SHA256"
            [log]
            level = "debug"
            """
        let c = try ServerConfiguration.parse(text)
        #expect(c.submission.authMechanisms == ["SCRAM-SHA-256"])
        #expect(c.routes == [.init(domain: "partner.example", via: "10.0.0.5:25")])
        let shown = c.effectiveText
        #expect(shown.contains("smarthost = \"relay.example.net:587\""))
        #expect(shown.contains("# smarthost_password_file = …"))  // unset: shown commented out
        #expect(try ServerConfiguration.parse(shown) == c)
        #expect(try ServerConfiguration.parse(ServerConfiguration.embeddedDefault.effectiveText) == ServerConfiguration.embeddedDefault)
    }

    @Test(arguments: [
        ("[delivery]\nsmtp_port = 70000\n", "delivery.smtp_port", "must be at most 65535"),
        ("[delivery]\nsmtp_port = 0\n", "delivery.smtp_port", "must be at least 1"),
        ("[auth]\nmax_tracked_keys = 99\n", "auth.max_tracked_keys", "must be at least 100"),
        ("[limits]\nmax_message_size = 1023\n", "limits.max_message_size", "must be at least 1024"),
        ("[smtp]\nauth = \"yes\"\n", "smtp.auth", "expected true or false, found string"),
        ("[smtp]\nlisten = [25]\n", "smtp.listen", "expected an array of strings, found an element of type integer"),
        ("[tls]\nmin_version = \"1.1\"\n", "tls.min_version", "'1.1' is not \"1.2\" or \"1.3\""),
        ("[[routes]]\ndomain = \"a.test\"\n", "routes", "every [[routes]] needs domain and via"),
        ("[[routes]]\ndomain = \"a.test\"\nvia = \"h:25\"\nport = 1\n", "routes.port", "unknown key (known: domain, via)"),
        ("[pop3]\nautologout = 0\n", "pop3.autologout", "must be at least 1"),
    ] as [(String, String, String)])
    func keysCheckTypeAndRange(text: String, key: String, message: String) {
        let e = #expect(throws: ConfigurationError.self) { try ServerConfiguration.parse(text) }
        #expect(e?.key == key)
        #expect(e?.message == message)
        #expect(e?.line != nil)
    }

    @Test func unknownTopLevelKeyListsKeysAndSections() {
        let e = #expect(throws: ConfigurationError.self) { try ServerConfiguration.parse("hostnme = \"x\"\n") }
        #expect(e?.key == "hostnme")
        #expect(e?.line == 1)
        #expect(e?.message.contains("data_dir, delivery, dmarc, dns, domains, hostname") == true)
    }
}
