import Directory
import Foundation
import Logging
import MailServer
import SASL
import MailTesting
import Testing

/// A Swallow server in this process on 127.0.0.1 with an ephemeral port and a temporary data dir.
struct LiveServer {
    let server: SwallowServer
    let port: Int
    let pop3Port: Int
    let pop3sPort: Int
    let submissionPort: Int
    let submissionsPort: Int
    let dataDirectory: String
    let domain: String

    /// One DNS server (empty zone: NXDOMAIN for every name) for every live server of the test process.
    static let sharedDNS = Task { try await TestDNSServer.start(zone: []) }

    static func start(domain: String = "example.test", users: [String] = ["alice", "bob"],
                      _ edit: (inout ServerConfiguration) -> Void = { _ in }) async throws -> LiveServer {
        let dir = NSTemporaryDirectory() + "swallow-live-\(UUID().uuidString)"
        var c = ServerConfiguration.embeddedDefault
        c.hostname = "mx.example.test"
        c.domains = [domain]
        c.dataDirectory = dir
        c.smtp.listen = ["127.0.0.1:0"]
        c.pop3.listen = ["127.0.0.1:0"]
        c.pop3s.listen = ["127.0.0.1:0"]
        c.imap.listen = ["127.0.0.1:0"]
        c.imaps.listen = ["127.0.0.1:0"]
        c.submission.listen = ["127.0.0.1:0"]
        c.submissions.listen = ["127.0.0.1:0"]
        c.auth.failureDelayMilliseconds = 10
        // Incoming mail is checked (SPF, DMARC): every lookup goes to a loopback server with an empty zone.
        c.dns.nameservers = [try await sharedDNS.value.address]
        edit(&c)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let server = try await SwallowServer.start(configuration: c, logger: logger)
        // Users are added through a second connection to the database, like `swallow user add`
        // while the server runs.
        let d = try await SQLiteDirectory.open(path: dir + "/swallow.sqlite", policy: DirectoryPolicy(domains: [domain]))
        for u in users {
            try await d.addUser("\(u)@\(domain)", passwordHash: u == "alice" ? try PasswordHasher.hash("alice-password") : nil,
                                scram: u == "alice" ? SCRAMCredentials(password: "alice-password").encoded : nil)
        }
        try await d.close()
        func port(_ name: String) -> Int { Int(server.endpoints(name)[0].split(separator: ":").last!)! }
        return LiveServer(server: server, port: port("smtp"), pop3Port: port("pop3"), pop3sPort: port("pop3s"),
                          submissionPort: port("submission"), submissionsPort: port("submissions"), dataDirectory: dir,
                          domain: domain)
    }

    func connect() async throws -> RawSMTPClient {
        try await RawSMTPClient.connect(host: "127.0.0.1", port: port)
    }

    func messages(_ local: String) -> [String] {
        let dir = "\(dataDirectory)/mail/\(domain)/\(local)/new"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
        return names.map { (try? String(contentsOfFile: dir + "/" + $0, encoding: .utf8)) ?? "" }
    }

    func stop() async {
        await server.shutdown()
        try? FileManager.default.removeItem(atPath: dataDirectory)
    }
}

@Suite(.serialized) struct LiveServerTests {
    @Test func deliversWithTraceHeaders() async throws {
        let s = try await LiveServer.start()
        let c = try await s.connect()
        #expect(try await c.readReply() == ["220 mx.example.test ESMTP Swallow"])
        try await c.send("EHLO client.test\r\n")
        #expect(try await c.readReply().contains("250-CHUNKING"))
        // Pipelined transaction (RFC 2920).
        try await c.send("MAIL FROM:<sender@remote.test>\r\nRCPT TO:<Alice@Example.test>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<bob+tag@example.test>\r\nDATA\r\n")
        #expect(try await c.readReply() == ["250 2.1.0 Ok"])
        #expect(try await c.readReply() == ["250 2.1.5 Ok"])
        #expect(try await c.readReply() == ["550 5.1.1 Recipient address rejected: User unknown"])
        #expect(try await c.readReply() == ["250 2.1.5 Ok"])
        #expect(try await c.readReply() == ["354 End data with <CR><LF>.<CR><LF>"])
        try await c.send("Subject: live\r\n\r\n..leading dot\r\nbody\r\n.\r\n")
        let ok = try await c.readReply()[0]
        #expect(ok.hasPrefix("250 2.0.0 Ok: queued as "))
        #expect(try await c.command("QUIT") == "221 2.0.0 mx.example.test closing connection")
        let alice = s.messages("alice")
        #expect(alice.count == 1)
        #expect(s.messages("bob") == alice)
        #expect(alice[0].hasPrefix("Return-Path: <sender@remote.test>\nReceived: from client.test ([127.0.0.1])\n\tby mx.example.test (Swallow) with ESMTP id "))
        #expect(alice[0].hasSuffix("Subject: live\n\n.leading dot\nbody\n"))
        await s.stop()
    }

    @Test func relayIsDeniedAndPostmasterAccepted() async throws {
        let s = try await LiveServer.start()
        let c = try await s.connect()
        _ = try await c.readReply()
        _ = try await c.command("EHLO c.test")
        _ = try await c.command("MAIL FROM:<a@remote.test>")
        #expect(try await c.command("RCPT TO:<victim@elsewhere.test>") == "554 5.7.1 Relay access denied")
        #expect(try await c.command("RCPT TO:<Postmaster>") == "250 2.1.5 Ok")
        #expect(try await c.command("RCPT TO:<postmaster@example.test>") == "250 2.1.5 Ok")
        #expect(try await c.command("DATA") == "354 End data with <CR><LF>.<CR><LF>")
        try await c.send("Subject: pm\r\n\r\nhi\r\n.\r\n")
        #expect(try await c.readReply()[0].hasPrefix("250 2.0.0"))
        #expect(s.messages("postmaster").count == 1)
        await c.close()
        await s.stop()
    }

    @Test func startTLSInjectionIsDiscarded() async throws {
        let s = try await LiveServer.start()
        let c = try await s.connect()
        _ = try await c.readReply()
        _ = try await c.command("EHLO c.test")
        try await c.send("STARTTLS\r\nMAIL FROM:<evil@remote.test>\r\n")
        #expect(try await c.readReply() == ["220 2.0.0 Ready to start TLS"])
        try await c.startTLS()
        // The injected MAIL was never executed: the session starts over and wants EHLO first.
        #expect(try await c.command("MAIL FROM:<a@remote.test>") == "503 5.5.1 send HELO/EHLO first")
        let ehlo = try await { () async throws -> [String] in
            try await c.send("EHLO c.test\r\n")
            return try await c.readReply()
        }()
        #expect(!ehlo.contains { $0.contains("STARTTLS") })
        _ = try await c.command("MAIL FROM:<a@remote.test>")
        _ = try await c.command("RCPT TO:<alice@example.test>")
        _ = try await c.command("DATA")
        try await c.send("Subject: tls\r\n\r\nx\r\n.\r\n")
        #expect(try await c.readReply()[0].hasPrefix("250 2.0.0"))
        #expect(s.messages("alice")[0].contains("(using TLSv1."))
        #expect(s.messages("alice")[0].contains("with ESMTPS id"))
        await c.close()
        await s.stop()
    }

    @Test(arguments: ["\n.\n", "\r.\r", "\r\n.\r", "\n.\r\n", "\r.\r\n", "\r\n\u{0}.\r\n", "\r\n.\n"])
    func smugglingVariantsNeverEndData(variant: String) async throws {
        let s = try await LiveServer.start()
        let c = try await s.connect()
        _ = try await c.readReply()
        _ = try await c.command("EHLO c.test")
        _ = try await c.command("MAIL FROM:<a@remote.test>")
        _ = try await c.command("RCPT TO:<alice@example.test>")
        _ = try await c.command("DATA")
        try await c.send("Subject: smuggle\r\n\r\nhello" + variant
                         + "MAIL FROM:<evil@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n")
        let reply = try await c.readReply()
        if variant == "\r\n\u{0}.\r\n" {
            // NUL is ordinary content: one message, nothing smuggled.
            #expect(reply[0].hasPrefix("250 2.0.0"))
        } else {
            #expect(reply == ["550 5.5.2 Message contains bare CR or LF; lines must end with CRLF"])
        }
        #expect(try await c.command("NOOP") == "250 2.0.0 Ok")
        #expect(s.messages("bob").isEmpty)
        await c.close()
        await s.stop()
    }

    @Test func largeMessageIsSpooledAndOversizeRefused() async throws {
        let s = try await LiveServer.start { $0.limits.maxMessageSize = 3_000_000 }
        let c = try await s.connect()
        _ = try await c.readReply()
        _ = try await c.command("EHLO c.test")
        #expect(try await c.command("MAIL FROM:<a@remote.test> SIZE=3000001") == "552 5.3.4 Message size exceeds fixed limit")
        _ = try await c.command("MAIL FROM:<a@remote.test> SIZE=2500000")
        _ = try await c.command("RCPT TO:<alice@example.test>")
        _ = try await c.command("DATA")
        let line = String(repeating: "x", count: 98) + "\r\n"
        try await c.send("Subject: big\r\n\r\n" + String(repeating: line, count: 25_000) + ".\r\n")
        #expect(try await c.readReply(timeout: .seconds(30))[0].hasPrefix("250 2.0.0"))
        let stored = s.messages("alice")
        #expect(stored.count == 1 && stored[0].utf8.count > 2_450_000)
        _ = try await c.command("MAIL FROM:<a@remote.test>")
        _ = try await c.command("RCPT TO:<alice@example.test>")
        _ = try await c.command("DATA")
        try await c.send("Subject: too big\r\n\r\n" + String(repeating: line, count: 31_000) + ".\r\n")
        #expect(try await c.readReply(timeout: .seconds(30)) == ["552 5.3.4 Message size exceeds fixed limit"])
        #expect(s.messages("alice").count == 1)
        let spool = try FileManager.default.contentsOfDirectory(atPath: s.dataDirectory + "/spool")
        #expect(spool.isEmpty)
        await c.close()
        await s.stop()
    }

    @Test func bdatChunksAreStored() async throws {
        let s = try await LiveServer.start()
        let c = try await s.connect()
        _ = try await c.readReply()
        _ = try await c.command("EHLO c.test")
        try await c.send("MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nBDAT 14\r\nSubject: b\r\n\r\nBDAT 10 LAST\r\nQUIT\r\nxy\r\n")
        #expect(try await c.readReply() == ["250 2.1.0 Ok"])
        #expect(try await c.readReply() == ["250 2.1.5 Ok"])
        #expect(try await c.readReply() == ["250 2.0.0 14 octets received"])
        #expect(try await c.readReply()[0].hasPrefix("250 2.0.0 Ok: queued as"))
        #expect(s.messages("alice") == [s.messages("alice")[0]])
        #expect(s.messages("alice")[0].hasSuffix("Subject: b\n\nQUIT\nxy\n"))
        await c.close()
        await s.stop()
    }

    @Test func connectionLimitPerIP() async throws {
        let s = try await LiveServer.start { $0.smtp.maxConnectionsPerIP = 2 }
        let a = try await s.connect()
        let b = try await s.connect()
        _ = try await a.readReply()
        _ = try await b.readReply()
        let c = try await s.connect()
        #expect(try await c.readUntilClosed() == [["421 4.7.0 mx.example.test Error: too many connections, try again later"]])
        await a.close()
        await b.close()
        await s.stop()
    }

    @Test func commandTimeoutCloses() async throws {
        let s = try await LiveServer.start { $0.smtp.commandTimeout = 1 }
        let c = try await s.connect()
        _ = try await c.readReply()
        #expect(try await c.readUntilClosed(timeout: .seconds(5)) == [["421 4.4.2 mx.example.test Error: timeout exceeded"]])
        await s.stop()
    }

    @Test func gracefulShutdownSays421() async throws {
        let s = try await LiveServer.start()
        let c = try await s.connect()
        _ = try await c.readReply()
        _ = try await c.command("EHLO c.test")
        await s.server.shutdown()
        #expect(try await c.readUntilClosed() == [["421 4.3.2 mx.example.test Service shutting down, closing connection"]])
        try? FileManager.default.removeItem(atPath: s.dataDirectory)
    }

    @Test func userChangesApplyWithoutRestart() async throws {
        let s = try await LiveServer.start()
        let c = try await s.connect()
        _ = try await c.readReply()
        _ = try await c.command("EHLO c.test")
        _ = try await c.command("MAIL FROM:<a@remote.test>")
        #expect(try await c.command("RCPT TO:<carol@example.test>") == "550 5.1.1 Recipient address rejected: User unknown")
        let d = try await SQLiteDirectory.open(path: s.dataDirectory + "/swallow.sqlite", policy: DirectoryPolicy(domains: ["example.test"]))
        try await d.addUser("carol@example.test", passwordHash: nil)
        try await d.close()
        #expect(try await c.command("RCPT TO:<carol@example.test>") == "250 2.1.5 Ok")
        await c.close()
        await s.stop()
    }
}
