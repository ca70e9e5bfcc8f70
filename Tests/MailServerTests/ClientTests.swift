import Foundation
import MailCore
import MailServer
import POP3Core
import MailTesting
import NIOCore
import NIOPosix
import NIOSSL
import POP3Client
import SMTPClient
import SMTPCore
import Testing

/// Our SMTP and POP3 clients against Swallow's own servers over loopback, and the SMTP client against
/// scripted misbehaving servers.
@Suite(.serialized) struct ClientTests {
    func smtpConfig(_ s: LiveServer, security: SMTPClientConfiguration.Security = .startTLS) -> SMTPClientConfiguration {
        var c = SMTPClientConfiguration(host: "127.0.0.1", port: s.port, security: security)
        c.certificateVerification = .insecureNoVerification
        c.heloName = "client.test"
        return c
    }

    @Test func sendsWithStartTLSAndReportsPartialRefusal() async throws {
        let s = try await LiveServer.start()
        let client = try await SMTPClient.connect(smtpConfig(s))
        #expect(client.isEncrypted)
        #expect(client.capabilities.pipelining && client.capabilities.chunking && client.capabilities.smtpUTF8)
        let message = ByteBuffer(string: "Subject: from our client\nX-Bare: lf line ends become CRLF\n\n.starts with a dot\nend\n")
        let result = try await client.send(message, from: "sender@remote.test", to: ["alice@example.test", "nobody@example.test"])
        #expect(result.reply.code == 250)
        #expect(result.acceptedRecipients == [.mailbox(EmailAddress(localPart: "alice", domain: "example.test"))])
        #expect(result.refusedRecipients.map(\.reply.code) == [550])
        // A second message on the same connection.
        _ = try await client.send(ByteBuffer(string: "Subject: two\r\n\r\nsecond\r\n"), from: "", to: ["alice@example.test"])
        await client.quit()
        let stored = s.messages("alice")
        #expect(stored.count == 2)
        #expect(stored.contains { $0.hasSuffix("Subject: from our client\nX-Bare: lf line ends become CRLF\n\n.starts with a dot\nend\n") })
        #expect(stored.contains { $0.hasPrefix("Return-Path: <>") })
        #expect(stored.allSatisfy { $0.contains("with ESMTPS id") })
        await s.stop()
    }

    /// Our client logs in on both submission listeners with each mechanism; alice sends to a local
    /// user and to a remote address (queued), and the submitted copy gets the RFC 6409 fixes.
    @Test func submitsWithEveryMechanismOn587And465() async throws {
        let s = try await LiveServer.start()
        for (port, security) in [(s.submissionPort, SMTPClientConfiguration.Security.startTLS), (s.submissionsPort, .implicitTLS)] {
            for mechanism in ["SCRAM-SHA-256", "PLAIN", "LOGIN"] {
                var c = smtpConfig(s, security: security)
                c.port = port
                c.authentication = .password(user: "Alice@Example.TEST", password: "alice-password", mechanisms: [mechanism])
                let client = try await SMTPClient.connect(c)
                let r = try await client.send(ByteBuffer(string: "From: Alice <alice@example.test>\r\nBcc: hidden@remote.test\r\nSubject: \(mechanism) \(port)\r\n\r\nhi\r\n"),
                                              from: "alice@example.test", to: ["bob@example.test"])
                #expect(r.reply.code == 250)
                await client.quit()
            }
        }
        let stored = s.messages("bob")
        #expect(stored.count == 6)
        #expect(stored.allSatisfy { $0.contains("with ESMTPSA id") && !$0.contains("Bcc") && $0.contains("\nMessage-ID: <") && $0.contains("\nDate: ") })
        // A wrong password and a foreign sender are refused precisely.
        var c = smtpConfig(s)
        c.port = s.submissionPort
        c.authentication = .password(user: "alice@example.test", password: "wrong")
        var refusal = ""
        do { _ = try await SMTPClient.connect(c) } catch { refusal = "\(error)" }
        #expect(refusal.contains("535"))
        c.authentication = .password(user: "alice@example.test", password: "alice-password")
        let client = try await SMTPClient.connect(c)
        refusal = ""
        do {
            _ = try await client.send(ByteBuffer(string: "Subject: x\r\n\r\nx\r\n"), from: "bob@example.test", to: ["alice@example.test"])
        } catch {
            refusal = "\(error)"
        }
        #expect(refusal.contains("553"))
        await client.quit()
        await s.stop()
    }

    @Test func dataPathWithoutChunkingAndPlainConnection() async throws {
        let s = try await LiveServer.start()
        var c = smtpConfig(s, security: .plain)
        c.useChunking = false
        let client = try await SMTPClient.connect(c)
        #expect(!client.isEncrypted)
        let body = "Subject: data\r\n\r\n" + (0..<200).map { ".line \($0)\r\n" }.joined()
        _ = try await client.send(ByteBuffer(string: body), from: "a@remote.test", to: ["bob@example.test"])
        await client.quit()
        #expect(s.messages("bob").first?.hasSuffix(body.replacingOccurrences(of: "\r\n", with: "\n")) == true)
        await s.stop()
    }

    @Test func verifiesCertificatesByDefault() async throws {
        let s = try await LiveServer.start()
        var c = smtpConfig(s)
        c.certificateVerification = .systemTrustStore
        c.serverName = "localhost"
        await #expect {
            _ = try await SMTPClient.connect(c)
        } throws: { e in
            guard let e = e as? SMTPClientError, case .tls = e.kind else { return false }
            return true
        }
        // The self-signed certificate as a custom CA: verification succeeds for its name.
        c.certificateVerification = .customCA(pemFile: s.dataDirectory + "/tls/cert.pem")
        let ok = try await SMTPClient.connect(c)
        #expect(ok.isEncrypted)
        await ok.quit()
        await s.stop()
    }

    @Test func refusesLocallyWhatCannotBeSent() async throws {
        let s = try await LiveServer.start { $0.limits.maxMessageSize = 4096 }
        let client = try await SMTPClient.connect(smtpConfig(s))
        let long = ByteBuffer(string: "Subject: x\r\n\r\n" + String(repeating: "y", count: 999) + "\r\n")
        await #expect(throws: SMTPClientError.self) { _ = try await client.send(long, from: "a@remote.test", to: ["alice@example.test"]) }
        let big = ByteBuffer(string: "Subject: x\r\n\r\n" + String(repeating: "z\r\n", count: 3000))
        do {
            _ = try await client.send(big, from: "a@remote.test", to: ["alice@example.test"])
            Issue.record("sent a message over SIZE")
        } catch {
            guard case .messageNotSendable = error.kind else { Issue.record("wrong error \(error)"); return }
            #expect(error.isPermanent)
        }
        do {
            _ = try await client.send(ByteBuffer(string: "Subject: x\r\n\r\nx\r\n"), from: "a@remote.test", to: ["nobody@example.test"])
            Issue.record("all recipients refused but no error")
        } catch {
            #expect(error.reply?.code == 550 && error.isPermanent)
        }
        // The session is still usable after the failures (RSET sent as needed).
        _ = try await client.send(ByteBuffer(string: "Subject: ok\r\n\r\nok\r\n"), from: "a@remote.test", to: ["alice@example.test"])
        await client.quit()
        #expect(s.messages("alice").count == 1)
        await s.stop()
    }

    @Test func pop3ClientRoundTrip() async throws {
        let s = try await LiveServer.start()
        let smtp = try await SMTPClient.connect(smtpConfig(s))
        for i in 1...20 {
            _ = try await smtp.send(ByteBuffer(string: "Subject: m\(i)\r\n\r\n.dot \(i)\r\nbody\r\n"), from: "a@remote.test", to: ["alice@example.test"])
        }
        await smtp.quit()
        var c = POP3ClientConfiguration(host: "127.0.0.1", port: s.pop3Port, security: .stls)
        c.certificateVerification = .insecureNoVerification
        let pop = try await POP3Client.connect(c)
        #expect(pop.isEncrypted && pop.supportsPipelining)
        do {
            try await pop.login(user: "alice@example.test", password: "wrong")
            Issue.record("logged in with a wrong password")
        } catch {
            #expect(error.response?.code == "AUTH")
        }
        try await pop.login(user: "alice@example.test", password: "alice-password")
        let (count, size) = try await pop.stat()
        #expect(count == 20)
        let list = try await pop.list()
        #expect(list.reduce(0) { $0 + $1.size } == size)
        let uids = try await pop.uniqueIDs()
        #expect(Set(uids.map(\.uid)).count == 20)
        var bodies: [Int: ByteBuffer] = [:]
        try await pop.retrieve(Array(1...20)) { n, chunk, done in
            var c = chunk
            bodies[n, default: ByteBuffer()].writeBuffer(&c)
        }
        for (n, b) in bodies {
            #expect(b.readableBytes == list.first { $0.number == n }!.size)
            #expect(String(buffer: b).contains("\r\n.dot "))
        }
        let top = try await pop.top(1, lines: 0)
        #expect(String(buffer: top).hasSuffix("\r\n\r\n"))
        try await pop.delete(1)
        try await pop.quit()
        var t = POP3ClientConfiguration(host: "127.0.0.1", port: s.pop3sPort, security: .implicitTLS)
        t.certificateVerification = .insecureNoVerification
        let again = try await POP3Client.connect(t)
        try await again.login(user: "alice@example.test", password: "alice-password", method: .userPass)
        #expect(try await again.stat().count == 19)
        #expect(try await again.uniqueIDs().map(\.uid) == Array(uids.map(\.uid).dropFirst()))
        try await again.quit()
        await s.stop()
    }

    @Test func misbehavingServers() async throws {
        // A 421 greeting.
        let busy = try await ScriptedSMTPServer.start { _, _ in "421 4.3.2 busy\r\n" }
        do {
            _ = try await SMTPClient.connect(SMTPClientConfiguration(host: "127.0.0.1", port: busy.port, security: .plain))
            Issue.record("connected despite 421")
        } catch {
            #expect(error.reply?.code == 421 && !error.isPermanent)
        }
        await busy.stop()
        // 4xx to MAIL is transient; the connection drops in the middle of DATA.
        let flaky = try await ScriptedSMTPServer.start { line, _ in
            if line == nil { return "220 flaky ESMTP\r\n" }
            if line!.hasPrefix("EHLO") { return "250-flaky\r\n250 8BITMIME\r\n" }
            if line!.hasPrefix("MAIL FROM:<first") { return "451 4.3.0 try later\r\n" }
            if line!.hasPrefix("MAIL") || line!.hasPrefix("RCPT") { return "250 ok\r\n" }
            if line! == "DATA" { return "354 go\r\n" }
            if line! == "RSET" { return "250 ok\r\n" }
            return line!.hasPrefix("Subject") ? "CLOSE" : ""
        }
        var flakyConfig = SMTPClientConfiguration(host: "127.0.0.1", port: flaky.port, security: .plain)
        flakyConfig.timeouts.dataInitiation = .seconds(5)
        flakyConfig.timeouts.dataTermination = .seconds(5)
        let client = try await SMTPClient.connect(flakyConfig)
        do {
            _ = try await client.send(ByteBuffer(string: "Subject: a\r\n\r\nx\r\n"), from: "first@a.test", to: ["b@b.test"])
            Issue.record("MAIL 451 not reported")
        } catch {
            #expect(error.reply?.code == 451 && !error.isPermanent && error.command?.hasPrefix("MAIL FROM") == true)
        }
        do {
            _ = try await client.send(ByteBuffer(string: "Subject: a\r\n\r\nx\r\n"), from: "second@a.test", to: ["b@b.test"])
            Issue.record("dropped connection not reported")
        } catch {
            #expect(error.kind == .connectionClosed && !error.isPermanent, "\(error)")
        }
        await flaky.stop()
    }

    @Test func startTLSResponseInjectionIsDiscarded() async throws {
        let s = try await LiveServer.start()
        let tls = try NIOSSLContext(configuration: .makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(s.dataDirectory + "/tls/cert.pem").map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: s.dataDirectory + "/tls/key.pem", format: .pem))))
        let evil = try await ScriptedSMTPServer.start(tls: tls) { line, encrypted in
            guard let line else { return "220 evil ESMTP\r\n" }
            if line.hasPrefix("EHLO") {
                return encrypted ? "250-evil\r\n250 PIPELINING\r\n" : "250-evil\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
            }
            // The injected replies after 220 would make a naive client believe MAIL/RCPT succeeded.
            if line == "STARTTLS" { return "220 go ahead\r\n250-evil\r\n250 INJECTED\r\nSTARTTLS" }
            if line.hasPrefix("MAIL") { return "250 mail ok\r\n" }
            if line.hasPrefix("RCPT") { return "550 5.1.1 no such user\r\n" }
            if line == "DATA" { return "554 5.5.1 no valid recipients\r\n" }
            return "250 ok\r\n"
        }
        var c = SMTPClientConfiguration(host: "127.0.0.1", port: evil.port, security: .startTLS)
        c.certificateVerification = .insecureNoVerification
        let client = try await SMTPClient.connect(c)
        #expect(client.isEncrypted)
        #expect(!client.capabilities.startTLS && !client.capabilities.supports("INJECTED"))
        do {
            _ = try await client.send(ByteBuffer(string: "Subject: a\r\n\r\nx\r\n"), from: "a@a.test", to: ["b@b.test"])
            Issue.record("refused recipient accepted")
        } catch {
            #expect(error.reply?.code == 550)
        }
        await client.close()
        await evil.stop()
        await s.stop()
    }
}

/// A scripted SMTP server for client tests: `respond(line, encrypted)` returns the bytes to send for
/// each command line (`nil` line = the connection just opened). The word `CLOSE` closes the connection;
/// a response ending in `STARTTLS` switches to TLS after writing the rest.
final class ScriptedSMTPServer: Sendable {
    let channel: any Channel
    var port: Int { channel.localAddress!.port! }

    private init(channel: any Channel) { self.channel = channel }

    static func start(tls: NIOSSLContext? = nil,
                      respond: @escaping @Sendable (String?, Bool) -> String) async throws -> ScriptedSMTPServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(Handler(respond: respond, tls: tls))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return ScriptedSMTPServer(channel: channel)
    }

    func stop() async { try? await channel.close() }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let respond: @Sendable (String?, Bool) -> String
        let tls: NIOSSLContext?
        var buffer = ByteBuffer()
        var encrypted = false
        var inData = false

        init(respond: @escaping @Sendable (String?, Bool) -> String, tls: NIOSSLContext?) {
            self.respond = respond
            self.tls = tls
        }

        func channelActive(context: ChannelHandlerContext) {
            send(respond(nil, false), context: context)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var b = unwrapInboundIn(data)
            buffer.writeBuffer(&b)
            while let lf = buffer.readableBytesView.firstIndex(of: 0x0A) {
                var line = buffer.readString(length: lf - buffer.readerIndex + 1)!
                line = String(line.dropLast())  // "\r\n" is one Character, like "\n"
                if inData {
                    if line == "." {
                        inData = false
                        send("250 2.0.0 queued\r\n", context: context)
                    } else {
                        let r = respond(line, encrypted)
                        if r == "CLOSE" { context.close(promise: nil); return }
                    }
                    continue
                }
                let r = respond(line, encrypted)
                if line == "DATA" && r.hasPrefix("354") { inData = true }
                send(r, context: context)
            }
        }

        func send(_ text: String, context: ChannelHandlerContext) {
            if text == "CLOSE" { context.close(promise: nil); return }
            if text.hasSuffix("STARTTLS"), let tls {
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: String(text.dropLast(8)))), promise: nil)
                try? context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: .first)
                encrypted = true
                return
            }
            if !text.isEmpty { context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text)), promise: nil) }
        }
    }
}
