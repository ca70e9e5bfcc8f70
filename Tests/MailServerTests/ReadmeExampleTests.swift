import Foundation
import MIME
import SMTPClient
import Testing

/// The README's library example, compiled and run against a live Swallow server, so it stays true.
@Suite struct ReadmeExampleTests {
    @Test func readmeLibraryExampleWorks() async throws {
        let s = try await LiveServer.start()
        let pdfBytes: [UInt8] = Array("%PDF-1.4 fake".utf8)
        let secret = "unused"
        _ = secret

        var message = MessageBuilder()
        message.from = MailboxAddress("发件人名称 <app@example.org>")
        message.to = [MailboxAddress("Alice <alice@example.test>")!]
        message.subject = "Your report — 报告"
        message.textBody = "Hello Alice, the report is attached."
        message.htmlBody = "<p>Hello Alice, the report is <b>attached</b>.</p>"
        message.attachments = [.init(filename: "report.pdf", data: pdfBytes)]
        let built = message.build()

        var config = SMTPClientConfiguration(host: "127.0.0.1", port: s.port, security: .startTLS)
        config.certificateVerification = .insecureNoVerification  // the test server's self-signed certificate
        let client = try await SMTPClient.connect(config)
        let result = try await client.send(built.byteBuffer, from: built.envelopeSender!, to: built.envelopeRecipients)
        #expect(result.reply.code == 250)
        await client.quit()

        let stored = s.messages("alice")
        #expect(stored.count == 1)
        let parsed = MIMEParser().parse(Array(stored[0].utf8))
        #expect(parsed.subject == "Your report — 报告")
        #expect(parsed.attachments.first?.filename == "report.pdf")
        #expect(parsed.attachments.first?.decodedBody == pdfBytes)
        await s.stop()
    }
}
