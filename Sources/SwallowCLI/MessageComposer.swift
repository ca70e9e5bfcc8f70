import MIME
import MailServer
import NIOCore

/// Turns `swallow send` options into a message and its envelope, with the MIME builder.
struct MessageComposer {
    let builder: MessageBuilder

    init(from: String, to: [String], cc: [String], bcc: [String], subject: String?, body: String?,
         bodyFile: String?, htmlFile: String?, attachments: [String]) throws {
        func parse(_ s: String, _ what: String) throws -> MailboxAddress {
            guard let a = MailboxAddress(s) else { throw ComposeError("invalid \(what) address: \(s)") }
            return a
        }
        var m = MessageBuilder()
        m.from = try parse(from, "--from")
        m.to = try to.map { try parse($0, "--to") }
        m.cc = try cc.map { try parse($0, "--cc") }
        m.bcc = try bcc.map { try parse($0, "--bcc") }
        m.subject = subject
        m.hostname = ServerConfiguration.systemHostname()
        do {
            if let body { m.textBody = body }
            if let bodyFile { m.textBody = String(decoding: try mimeReadFile(bodyFile), as: UTF8.self) }
            if let htmlFile { m.htmlBody = String(decoding: try mimeReadFile(htmlFile), as: UTF8.self) }
            for path in attachments {
                m.attachments.append(.init(filename: mimeBaseName(path), data: try mimeReadFile(path)))
            }
        } catch let e as MIMEFileError {
            throw ComposeError(e.message)
        }
        if m.textBody == nil && m.htmlBody == nil && m.attachments.isEmpty { m.textBody = "" }
        builder = m
    }

    /// The envelope sender: the bare address of `--from`.
    var envelopeFrom: String { builder.envelopeSender ?? "" }
    /// To, Cc and Bcc addresses, without duplicates.
    var envelopeRecipients: [String] { builder.envelopeRecipients }

    /// The rendered message (Bcc not in the header).
    func render() throws -> ByteBuffer { builder.build().byteBuffer }
}
