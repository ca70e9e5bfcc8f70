import MailServer
import Testing

@Suite struct ConfigurationTests {
    @Test func embeddedDefaultIsValid() throws {
        let c = ServerConfiguration.embeddedDefault
        try c.validate()
        #expect(c.domains == ["localhost"])
        #expect(c.dataDirectory == "./swallow-data")
        #expect(c.smtp.listen == ["127.0.0.1:2525"])
        #expect(c.limits.maxMessageSize == 26_214_400)
        #expect(c.limits.maxRecipients == 100)
    }

    @Test func fullFileParses() throws {
        let c = try ServerConfiguration.parse("""
            hostname = "mx.example.test"
            domains = ["Example.TEST", "other.test"]
            data_dir = "/var/lib/swallow"
            postmaster = "alice@example.test"
            [smtp]
            listen = ["127.0.0.1:2525", "[::1]:2525"]
            relay_networks = ["192.0.2.0/24", "2001:db8::/32"]
            max_connections_per_ip = 5
            [tls]
            certificate = "/c.pem"
            private_key = "/k.pem"
            [limits]
            max_message_size = 1048576
            max_recipients = 10
            """)
        #expect(c.hostname == "mx.example.test")
        #expect(c.domains == ["example.test", "other.test"])
        #expect(c.smtp.listen.count == 2)
        #expect(c.smtp.maxConnectionsPerIP == 5)
        #expect(c.limits.maxRecipients == 10)
        #expect(c.tls.certificate == "/c.pem")
    }

    @Test(arguments: [
        ("domains = [\"a.test\"]\n[smtp]\nlisten = [\"127.0.0.1:25\"]\nlisten_typo = 1\n", "smtp.listen_typo", 4),
        ("domains = [\"a.test\"]\nbogus = true\n", "bogus", 2),
        ("domains = [\"a.test\"]\n[limits]\nmax_message_size = \"big\"\n", "limits.max_message_size", 3),
        ("domains = \"a.test\"\n", "domains", 1),
        ("domains = [\"a.test\"]\n[smtp]\n\nlisten = [\"nonsense\"]\n", "smtp.listen", 4),
        ("domains = [\"a.test\"]\n[smtp]\nrelay_networks = [\"10.0.0.0/99\"]\n", "smtp.relay_networks", 3),
        ("domains = [\"a.test\"]\n[tls]\ncertificate = \"/x.pem\"\n", "tls.private_key", 3),
        ("domains = []\n", "domains", 1),
    ] as [(String, String, Int?)])
    func badFilesNameKeyAndLine(text: String, key: String, line: Int?) {
        do {
            _ = try ServerConfiguration.parse(text)
            Issue.record("accepted a bad configuration")
        } catch let e as ConfigurationError {
            #expect(e.key == key)
            #expect(e.line == line)
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func syntaxErrorsCarryTheLine() {
        do {
            _ = try ServerConfiguration.parse("domains = [\"a.test\"]\n[smtp\nlisten = 1\n")
            Issue.record("accepted bad TOML")
        } catch let e as ConfigurationError {
            #expect(e.line == 2)
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func listenAddresses() {
        #expect(ListenAddress.parse("127.0.0.1:25") == ListenAddress(host: "127.0.0.1", port: 25))
        #expect(ListenAddress.parse("[::1]:2525") == ListenAddress(host: "::1", port: 2525))
        #expect(ListenAddress.parse("::1:25") == nil)
        #expect(ListenAddress.parse("host:99999") == nil)
        #expect(ListenAddress.parse("host") == nil)
    }
}
