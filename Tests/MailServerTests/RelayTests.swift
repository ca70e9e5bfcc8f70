import Foundation
import MailCore
import MailQueue
import MailServer
import MailTesting
import Synchronization
import Testing

/// Swallow A relays for 127.0.0.1 to Swallow B, found through a test DNS server (MX → A record →
/// 127.0.0.1, B's port as `delivery.smtp_port`); failures come back as RFC 3464 DSNs.
@Suite(.serialized) struct RelayTests {
    func send(_ s: LiveServer, from: String, to: [String], body: String) async throws -> [String] {
        let c = try await s.connect()
        _ = try await c.readReply()
        _ = try await c.command("EHLO client.test")
        var replies = [try await c.command("MAIL FROM:<\(from)>")]
        for r in to { replies.append(try await c.command("RCPT TO:<\(r)>")) }
        replies.append(try await c.command("DATA"))
        try await c.send(body + ".\r\n")
        replies.append(try await c.readReply()[0])
        _ = try await c.command("QUIT")
        return replies
    }

    @Test func relaysThroughMXAndBouncesFailures() async throws {
        let b = try await LiveServer.start(domain: "remote.test", users: ["bob"])
        let dns = try await TestDNSServer.start(zone: [
            .mx("remote.test", 10, "mx.remote.test"),
            .a("mx.remote.test", "127.0.0.1"),
            .mx("nullmx.test", 0, "."),
        ])
        let a = try await LiveServer.start { c in
            c.smtp.relayNetworks = ["127.0.0.1/32"]
            c.delivery.smtpPort = b.port
            c.dns.nameservers = [dns.address]
        }
        // Local and remote recipients in one message: alice gets it now, bob through the queue.
        let replies = try await send(a, from: "alice@example.test",
                                     to: ["alice@example.test", "bob@remote.test", "nobody@remote.test", "x@nullmx.test"],
                                     body: "Subject: relayed\r\n\r\nhello bob\r\n")
        #expect(replies.last?.hasPrefix("250 2.0.0") == true, "\(replies)")
        #expect(a.messages("alice").count == 1)
        let done = await a.server.queueRunner.runOnce()
        #expect(done.count == 1)
        #expect(b.messages("bob").count == 1)
        #expect(b.messages("bob").first?.contains("hello bob") == true)
        #expect(b.messages("bob").first?.contains("by mx.example.test (Swallow)") == true)
        // nobody@remote.test (550 at B) and x@nullmx.test (null MX) bounce: one DSN to alice, queued
        // with the null sender and delivered locally on the next pass.
        _ = await a.server.queueRunner.runOnce()
        let alice = a.messages("alice")
        #expect(alice.count == 2)
        let dsn = alice.first { $0.contains("multipart/report") } ?? ""
        #expect(dsn.hasPrefix("Return-Path: <>\n"))
        #expect(dsn.contains("Final-Recipient: rfc822; nobody@remote.test"))
        #expect(dsn.contains("Status: 5.1.1"))
        #expect(dsn.contains("Final-Recipient: rfc822; x@nullmx.test"))
        #expect(dsn.contains("Status: 5.1.10"))
        #expect(dsn.contains("Subject: relayed"))
        // Nothing left in the queue.
        for state in ["incoming", "active", "deferred", "hold", "corrupt"] {
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: a.dataDirectory + "/queue/" + state)) ?? []).isEmpty, "\(state)")
        }
        await a.stop()
        await b.stop()
        await dns.stop()
    }

    @Test func noOpenRelayAndDeferralWhenThePeerIsDown() async throws {
        let dns = try await TestDNSServer.start(zone: [.mx("down.test", 10, "mx.down.test"), .a("mx.down.test", "127.0.0.1")])
        // Port 1 on loopback: nothing listens there.
        let a = try await LiveServer.start { c in
            c.delivery.smtpPort = 1
            c.dns.nameservers = [dns.address]
        }
        // Not in relay_networks: refused.
        let c = try await a.connect()
        _ = try await c.readReply()
        _ = try await c.command("EHLO client.test")
        _ = try await c.command("MAIL FROM:<alice@example.test>")
        #expect(try await c.command("RCPT TO:<someone@down.test>") == "554 5.7.1 Relay access denied")
        await c.close()
        await a.stop()
        let relay = try await LiveServer.start { c in
            c.smtp.relayNetworks = ["127.0.0.0/8"]
            c.delivery.smtpPort = 1
            c.dns.nameservers = [dns.address]
        }
        let replies = try await send(relay, from: "alice@example.test", to: ["someone@down.test"], body: "Subject: x\r\n\r\nx\r\n")
        #expect(replies.last?.hasPrefix("250 2.0.0") == true)
        _ = await relay.server.queueRunner.runOnce()
        let deferred = (try? FileManager.default.contentsOfDirectory(atPath: relay.dataDirectory + "/queue/deferred")) ?? []
        #expect(deferred.count == 1)
        #expect(relay.messages("alice").isEmpty)  // no bounce for a temporary failure
        await relay.stop()
        await dns.stop()
    }
}

@Suite(.serialized) struct ConnectionReuseTests {
    @Test func laterMessagesReuseTheConnection() async throws {
        let opened = Mutex(0)
        let peer = try await ScriptedSMTPServer.start { line, _ in
            guard let line else {
                opened.withLock { $0 += 1 }
                return "220 peer ESMTP\r\n"
            }
            if line.hasPrefix("EHLO") { return "250-peer\r\n250 PIPELINING\r\n" }
            if line == "DATA" { return "354 go\r\n" }
            if line == "QUIT" { return "221 bye\r\n" }
            return line.hasPrefix("MAIL") || line.hasPrefix("RCPT") || line == "RSET" || line == "NOOP" ? "250 ok\r\n" : ""
        }
        let dns = try await TestDNSServer.start(zone: [.mx("reuse.test", 10, "mx.reuse.test"), .a("mx.reuse.test", "127.0.0.1")])
        let a = try await LiveServer.start { c in
            c.smtp.relayNetworks = ["127.0.0.1/32"]
            c.delivery.smtpPort = peer.port
            c.dns.nameservers = [dns.address]
            c.delivery.concurrency = 1
        }
        let relay = RelayTests()
        for i in 0..<3 {
            _ = try await relay.send(a, from: "alice@example.test", to: ["r\(i)@reuse.test"], body: "Subject: \(i)\r\n\r\nx\r\n")
        }
        #expect(await a.server.queueRunner.runOnce().count == 3)
        for i in 3..<5 {
            _ = try await relay.send(a, from: "alice@example.test", to: ["r\(i)@reuse.test"], body: "Subject: \(i)\r\n\r\nx\r\n")
        }
        #expect(await a.server.queueRunner.runOnce().count == 2)
        #expect(opened.withLock { $0 } == 1)  // five messages, one connection
        await a.stop()
        await dns.stop()
        await peer.stop()
    }
}
