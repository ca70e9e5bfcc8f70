import Directory
import Foundation
import MailServer
import MailTesting
import SASL
import Testing

/// Plays the golden IMAP transcripts of `Tests/IMAPCoreTests/Transcripts` — the same files the
/// session machine is tested with over an in-memory store — against a live `SwallowServer`'s IMAP
/// listener on 127.0.0.1 (port 0), one TCP connection per transcript connection. Accounts are
/// added through the directory, messages are preloaded with APPEND over IMAPS (flags and
/// INTERNALDATE as the file says), `! deliver:` goes through SMTP (local delivery, then the folder
/// sync and the event hub tell the sessions). Every server line is compared, with the same
/// placeholders; a line that does not arrive within 5 seconds is a failure.
@Suite(.serialized) struct LiveIMAPTranscriptTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("IMAPCoreTests/Transcripts")

    static var files: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".txt") }.sorted()
    }

    static var liveFiles: [String] {
        files.filter { (try? IMAPTranscript.load(contentsOf: directory.appendingPathComponent($0)))?.memoryOnly == nil }
    }

    @Test func mostTranscriptsRunLive() {
        #expect(Self.liveFiles.count >= 18)
        #expect(Self.liveFiles.count >= Self.files.count - 2)
    }

    @Test(arguments: liveFiles)
    func transcript(_ name: String) async throws {
        let t = try IMAPTranscript.load(contentsOf: Self.directory.appendingPathComponent(name))
        let s = try await LiveServer.start(users: []) { c in
            c.imap.allowPlaintextAuth = t.plaintextAuthentication
            if let n = t.maxCommandSize { c.imap.maxCommandSize = n }
            if let n = t.maxLiteral { c.imap.maxLiteral = n }
        }
        do {
            try await play(t, on: s)
        } catch {
            Issue.record("\(name): \(error)")
        }
        await s.stop()
    }

    func play(_ t: IMAPTranscript, on s: LiveServer) async throws {
        let d = try await SQLiteDirectory.open(path: s.dataDirectory + "/swallow.sqlite", policy: DirectoryPolicy(domains: [s.domain]))
        for (user, password) in t.users {
            try await d.addUser(user, passwordHash: try PasswordHasher.hash(password), scram: SCRAMCredentials(password: password).encoded)
        }
        try await d.close()
        try await preload(t, s)

        var clients: [Int: RawSMTPClient] = [:]
        var bindings: [String: String] = [:]
        func client(_ n: Int) async throws -> RawSMTPClient {
            if let c = clients[n] { return c }
            let c = try await RawSMTPClient.connect(host: "127.0.0.1", port: s.imapPort)
            clients[n] = c
            return c
        }
        func where_(_ line: Int) -> SourceLocation {
            SourceLocation(fileID: "Transcripts/\(t.name)", filePath: Self.directory.appendingPathComponent(t.name).path,
                           line: line, column: 1)
        }
        for step in t.steps {
            switch step {
            case .write(let n, let bytes, _):
                try await client(n).send(IMAPTranscript.substitute(bytes, bindings))
            case .expect(let n, let pattern, let line):
                let c = try await client(n)
                guard let actual = try? await c.readLine(timeout: .seconds(5)) else {
                    Issue.record("\(t.name):\(line): connection \(n): expected '\(pattern)', but nothing came", sourceLocation: where_(line))
                    continue
                }
                if !IMAPTranscript.matches(pattern, actual, bindings: &bindings) {
                    Issue.record("\(t.name):\(line): connection \(n): expected '\(pattern)', got '\(actual)'", sourceLocation: where_(line))
                }
            case .tls(let n, _):
                try await client(n).startTLS()
            case .expectClosed(let n, let line):
                let rest = try await client(n).readLinesUntilClosed(timeout: .seconds(5))
                if !rest.isEmpty { Issue.record("\(t.name):\(line): connection \(n): unread before close: \(rest)", sourceLocation: where_(line)) }
            case .clientCloses(let n, _):
                await (try client(n)).close()
            case .deliver(let mailbox, let content, let line):
                guard mailbox == "INBOX", let user = t.users.first?.user else {
                    Issue.record("\(t.name):\(line): live deliveries go to the first user's INBOX", sourceLocation: where_(line))
                    continue
                }
                try await deliver(content, to: user, s)
            }
        }
        for (n, c) in clients.sorted(by: { $0.key < $1.key }) {
            let rest = c.unreadBytes()
            if !rest.isEmpty { Issue.record("\(t.name): connection \(n): unexpected output at the end: \(String(decoding: rest, as: UTF8.self).debugDescription)") }
            await c.close()
        }
    }

    /// Mailboxes and messages, per user, over IMAPS with APPEND (LITERAL+).
    func preload(_ t: IMAPTranscript, _ s: LiveServer) async throws {
        for (user, password) in t.users {
            let mailboxes = t.mailboxes.filter { $0.user == user }.map(\.name)
            let messages = t.messages.filter { $0.user == user }
            guard !mailboxes.isEmpty || !messages.isEmpty else { continue }
            let c = try await RawSMTPClient.connect(host: "127.0.0.1", port: s.imapsPort, implicitTLS: true)
            _ = try await c.readLine()
            var tag = 0
            func command(_ bytes: [UInt8]) async throws {
                tag += 1
                try await c.send(Array("p\(tag) ".utf8) + bytes + [13, 10])
                while true {
                    let line = try await c.readLine()
                    if line.hasPrefix("p\(tag) ") {
                        guard line.hasPrefix("p\(tag) OK") else { throw PreloadError(message: line) }
                        return
                    }
                }
            }
            try await command(Array("LOGIN \"\(user)\" \"\(password)\"".utf8))
            for m in mailboxes { try await command(Array("CREATE \"\(m)\"".utf8)) }
            for m in messages {
                var line = "APPEND \"\(m.mailbox)\" (\(m.flags.joined(separator: " ")))"
                if let date = m.internalDate { line += " \"\(date)\"" }
                line += " {\(m.content.count)+}\r\n"
                try await command(Array(line.utf8) + m.content)
            }
            try await command(Array("LOGOUT".utf8))
            await c.close()
        }
    }

    struct PreloadError: Error { var message: String }

    /// A local delivery over SMTP (the server adds its trace headers).
    func deliver(_ content: [UInt8], to user: String, _ s: LiveServer) async throws {
        let c = try await s.connect()
        _ = try await c.readReply()
        _ = try await c.command("EHLO transcript.test")
        _ = try await c.command("MAIL FROM:<sender@remote.test>")
        let rcpt = try await c.command("RCPT TO:<\(user)>")
        guard rcpt.hasPrefix("250") else { throw PreloadError(message: rcpt) }
        _ = try await c.command("DATA")
        var data: [UInt8] = []
        var atLineStart = true
        for b in content {
            if atLineStart, b == UInt8(ascii: ".") { data.append(b) }
            data.append(b)
            atLineStart = b == 0x0A
        }
        if !atLineStart { data += [13, 10] }
        try await c.send(data + Array(".\r\n".utf8))
        let done = try await c.readReply()
        guard done.first?.hasPrefix("250") == true else { throw PreloadError(message: "\(done)") }
        _ = try await c.command("QUIT")
        await c.close()
    }
}

extension LiveServer {
    /// The IMAP (STARTTLS) and IMAPS listeners' ports.
    var imapPort: Int { Int(server.endpoints("imap")[0].split(separator: ":").last!)! }
    var imapsPort: Int { Int(server.endpoints("imaps")[0].split(separator: ":").last!)! }
}
