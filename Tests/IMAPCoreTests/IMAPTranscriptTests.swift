import Foundation
import IMAPCore
import MailTesting
import Testing

/// Every `Transcripts/*.txt` file, played against the parser + session machine + encoder over an
/// in-memory store (ARCHITECTURE §7.4): as written, byte by byte, and split at random points.
/// MailServerTests' LiveIMAPTranscriptTests plays the same files against a live server.
@Suite("IMAP golden transcripts")
struct IMAPTranscriptTests {
    static let directory: URL = Bundle.module.resourceURL!.appendingPathComponent("Transcripts")

    static let files: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".txt") }.sorted()
    }()

    static func load(_ name: String) throws -> IMAPTranscript {
        try IMAPTranscript.load(contentsOf: directory.appendingPathComponent(name))
    }

    @Test("there are transcripts to play")
    func present() {
        #expect(Self.files.count >= 20)
    }

    @Test("played with whole writes", arguments: files)
    func wholeWrites(_ name: String) throws {
        let t = try Self.load(name)
        #expect(t.orderingProblems.isEmpty, "\(name): writes on another connection before reading at lines \(t.orderingProblems)")
        let outcome = IMAPTranscriptRunner.run(t)
        for failure in outcome.failures { Issue.record("\(name): \(failure)") }
        #expect(!outcome.serverLines.isEmpty)
        if ProcessInfo.processInfo.environment["IMAP_TRANSCRIPT_DUMP"] != nil {
            print("=== \(name)\n" + outcome.log.joined(separator: "\n"))
        }
    }

    @Test("played byte by byte and split at random points", arguments: files)
    func splitWrites(_ name: String) throws {
        let t = try Self.load(name)
        guard !t.wholeWritesOnly else { return }
        for splitting in WriteSplitting.all(randomSeeds: 1...6) where splitting != .asWritten {
            let outcome = IMAPTranscriptRunner.run(t, splitting: splitting)
            for failure in outcome.failures { Issue.record("\(name), \(splitting): \(failure)") }
        }
    }
}

@Suite("IMAP transcript format")
struct IMAPTranscriptFormatTests {
    @Test("directives, connections, escapes and patterns")
    func parse() throws {
        let t = try IMAPTranscript.parse("""
            # comment
            ! users: Alice@example.test secret
            ! plaintext-auth
            ! config: maxCommandSize=1024
            ! mailbox: Work
            ! message: Subject: a\\r\\n\\r\\nx\\r\\n flags=\\Seen,$Junk date="05-Jan-2026 10:00:00 +0000"
            S: * OK ready
            C: a NOOP
            B: b NOOP\\r\\n
            C2: c NOOP
            S2~ c OK .*
            @1 tls
            ! deliver: INBOX Subject: b\\r\\n\\r\\ny\\r\\n
            @2 closed
            """, name: "inline")
        #expect(t.users.map(\.user) == ["alice@example.test"])
        #expect(t.plaintextAuthentication && t.maxCommandSize == 1024)
        #expect(t.mailboxes.map(\.name) == ["Work"])
        #expect(t.messages.first?.flags == ["\\Seen", "$Junk"])
        #expect(t.messages.first?.internalDate == "05-Jan-2026 10:00:00 +0000")
        #expect(t.messages.first?.content == Array("Subject: a\r\n\r\nx\r\n".utf8))
        #expect(t.steps == [
            .expect(connection: 1, pattern: .text("* OK ready"), line: 7),
            .write(connection: 1, bytes: Array("a NOOP\r\nb NOOP\r\n".utf8), line: 8),
            .write(connection: 2, bytes: Array("c NOOP\r\n".utf8), line: 10),
            .expect(connection: 2, pattern: .regex("c OK .*"), line: 11),
            .tls(connection: 1, line: 12),
            .deliver(mailbox: "INBOX", content: Array("Subject: b\r\n\r\ny\r\n".utf8), line: 13),
            .expectClosed(connection: 2, line: 14),
        ])
        #expect(t.connections == [1, 2])
        #expect(t.orderingProblems == [10])
    }

    @Test("placeholders bind once and must agree after")
    func placeholders() {
        var b: [String: String] = [:]
        #expect(IMAPTranscript.matches(.text("* OK [UIDVALIDITY {v}] UIDs valid"), "* OK [UIDVALIDITY 42] UIDs valid", bindings: &b))
        #expect(b == ["v": "42"])
        #expect(!IMAPTranscript.matches(.text("a OK [COPYUID {v} 1 1] Done"), "a OK [COPYUID 43 1 1] Done", bindings: &b))
        #expect(IMAPTranscript.matches(.text("* 1 FETCH (INTERNALDATE {*} UID 1)"), "* 1 FETCH (INTERNALDATE \"05-Jan-2026 10:00:00 +0000\" UID 1)", bindings: &b))
        #expect(IMAPTranscript.matches(.text("* 1 FETCH (BODY[] {12}"), "* 1 FETCH (BODY[] {12}", bindings: &b))
        #expect(!IMAPTranscript.matches(.text("* 1 FETCH (BODY[] {12}"), "* 1 FETCH (BODY[] {13}", bindings: &b))
        #expect(!IMAPTranscript.matches(.text("a OK"), "a OK done", bindings: &b))
        #expect(IMAPTranscript.matches(.regex("a OK .*"), "a OK done", bindings: &b))
    }

    @Test("malformed files are refused with a line number", arguments: [
        ("X: nonsense", 1), ("! config: maxCommandSize=many", 1), ("! nonsense: 1", 1), ("\n@1 explode", 2),
        ("B: \\q", 1), ("! message: x", 1), ("S~ (", 1),
    ])
    func malformed(_ text: String, _ line: Int) {
        let error = #expect(throws: IMAPTranscript.ParseError.self) { try IMAPTranscript.parse(text, name: "bad") }
        #expect(error?.line == line)
    }

    @Test("a wrong expectation is reported, not ignored")
    func mismatchReported() throws {
        let t = try IMAPTranscript.parse("""
            S~ \\* OK .*
            C: a NOOP
            S: a OK Fine
            C: b LOGOUT
            """, name: "mismatch")
        let outcome = IMAPTranscriptRunner.run(t)
        #expect(outcome.failures.map(\.line) == [3, 0])
    }
}
