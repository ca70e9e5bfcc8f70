import Foundation
import MailCore
import MailTesting
import SMTPCore
import Testing

/// Every `Transcripts/*.txt` file, played against the parser + state machine (ARCHITECTURE §7.4).
@Suite("Golden transcripts")
struct TranscriptTests {
    static let directory: URL = Bundle.module.resourceURL!.appendingPathComponent("Transcripts")

    static let files: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".txt") }.sorted()
    }()

    @Test("there are transcripts to play")
    func present() {
        #expect(Self.files.count >= 12)
    }

    @Test("played with whole writes", arguments: files)
    func wholeWrites(_ name: String) throws {
        let transcript = try Transcript.load(contentsOf: Self.directory.appendingPathComponent(name))
        let outcome = TranscriptRunner.run(transcript)
        for failure in outcome.failures { Issue.record("\(name): \(failure)") }
        #expect(!outcome.serverLines.isEmpty)
    }

    @Test("played byte by byte and split at random points", arguments: files)
    func splitWrites(_ name: String) throws {
        let transcript = try Transcript.load(contentsOf: Self.directory.appendingPathComponent(name))
        guard !transcript.wholeWritesOnly else { return }
        for splitting in WriteSplitting.all(randomSeeds: 1...6) where splitting != .asWritten {
            let outcome = TranscriptRunner.run(transcript, splitting: splitting)
            for failure in outcome.failures { Issue.record("\(name), \(splitting): \(failure)") }
        }
    }
}

@Suite("Transcript format and runner")
struct TranscriptFormatTests {
    @Test("directives, steps and escapes")
    func parse() throws {
        let t = try Transcript.parse("""
            # a comment
            ! config: maximumRecipients=3 startTLSAvailable=true hostname=smtp.example.test
            ! reject-recipient: <Nobody@Example.test> 550 5.1.1 User unknown
            ! store: queued Q1
            ! store: held failed 452 4.3.1 Insufficient system storage
            ! whole-writes-only

            S: 220 smtp.example.test ESMTP Swallow
            C: EHLO x
            B: a\\r\\nb\\n\\0\\\\\\x7f
            S: 250 smtp.example.test
            M: x\\r\\n
            @ timeout
            @ closed
            """, name: "inline")
        #expect(t.configuration == SMTPServerStateMachine.Configuration(hostname: "smtp.example.test", maximumRecipients: 3, startTLSAvailable: true))
        #expect(t.rejection(for: .mailbox(.init(localPart: "nobody", domain: "example.TEST"))) == SMTPReply(code: 550, .init(5, 1, 1), "User unknown"))
        #expect(t.rejection(for: .postmaster) == nil)
        #expect(t.storeOutcomes == [
            .init(result: .success("Q1")),
            .init(result: .failure(.init(SMTPReply(code: 452, .init(4, 3, 1), "Insufficient system storage"))), held: true),
        ])
        #expect(t.wholeWritesOnly)
        #expect(t.usesInjectedEvents)
        #expect(t.steps == [
            .expectReply("220 smtp.example.test ESMTP Swallow", line: 8),
            .write(Array("EHLO x\r\na\r\nb\n\u{0}\\\u{7F}".utf8), line: 9),
            .expectReply("250 smtp.example.test", line: 11),
            .expectMessage(Array("x\r\n".utf8), line: 12),
            .event(.timeout, line: 13),
            .expectClosed(line: 14),
        ])
    }

    @Test("malformed files are refused with a line number", arguments: [
        ("X: nonsense", 1), ("! config: maximumRecipients=many", 1), ("! nonsense: 1", 1), ("\n@ explode", 2),
        ("B: \\q", 1), ("! reject-recipient: <a@b.test>", 1), ("! store: kept", 1), ("! config: colour=blue", 1),
    ])
    func malformed(_ text: String, _ line: Int) {
        let error = #expect(throws: Transcript.ParseError.self) { try Transcript.parse(text, name: "bad") }
        #expect(error?.line == line)
    }

    @Test("a wrong expectation is reported, not ignored")
    func mismatchReported() throws {
        let t = try Transcript.parse("""
            S: 220 mx.example.test ESMTP Swallow
            C: NOOP
            S: 250 2.0.0 Fine
            C: QUIT
            """, name: "mismatch")
        let outcome = TranscriptRunner.run(t)
        #expect(outcome.failures.map(\.line) == [3, 0])
        #expect(outcome.serverLines == ["220 mx.example.test ESMTP Swallow", "250 2.0.0 Ok", "221 2.0.0 mx.example.test closing connection"])
        #expect(outcome.closed)
    }

    @Test("writing after the server closed is a failure")
    func writeAfterClose() throws {
        let t = try Transcript.parse("S: 220 mx.example.test ESMTP Swallow\nC: QUIT\nS: 221 2.0.0 mx.example.test closing connection\nC: NOOP\n", name: "x")
        #expect(TranscriptRunner.run(t).failures.map(\.line) == [4])
    }

    @Test("the runner records stored messages and discarded plaintext")
    func outcomeDetails() throws {
        let t = try Transcript.parse("""
            ! config: startTLSAvailable=true
            ! store: queued Q7
            S: 220 mx.example.test ESMTP Swallow
            C: STARTTLS
            C: EHLO sneaky
            S: 220 2.0.0 Ready to start TLS
            @ tls
            C: EHLO x
            C: MAIL FROM:<a@example.test>
            C: RCPT TO:<b@example.test>
            C: BDAT 3 LAST
            B: hi!
            """, name: "x")
        let outcome = TranscriptRunner.run(t)
        #expect(outcome.discardedPlaintextBytes == 13)
        #expect(outcome.storedMessages.map(\.queueID) == ["Q7"])
        #expect(outcome.storedMessages.first?.content == Array("hi!".utf8))
        #expect(outcome.storedMessages.first?.envelope.recipients.count == 1)
        #expect(outcome.failures.count == 1)  // the unread EHLO/MAIL/RCPT/BDAT replies at the end
    }
}
