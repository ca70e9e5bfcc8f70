import ArgumentParser
import MailCore
import MIME
#if canImport(Glibc)
import Glibc
#endif

/// `swallow mime`: inspect and build MIME messages.
struct MIMECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mime", abstract: "Inspect and build MIME messages.",
        subcommands: [Show.self, Build.self])

    /// `swallow mime show FILE [--json] [--data]`
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a message's MIME tree, decoded headers and attachments.")

        @Argument(help: "The message file (RFC 5322, LF or CRLF line ends); '-' reads standard input.")
        var file: String

        @Flag(name: .long, help: "Print JSON instead of text.")
        var json = false

        @Flag(name: .long, help: "With --json: include each leaf part's decoded bytes (base64) and text.")
        var data = false

        func run() throws {
            let bytes: [UInt8]
            do { bytes = try mimeReadFile(file) } catch let e as MIMEFileError { throw fail(e.message) }
            let message = MIMEParser().parse(bytes)
            if json {
                mimeWriteStdout(Array(MIMEShowFormatter.json(message, includeData: data).utf8))
            } else {
                mimeWriteStdout(Array(MIMEShowFormatter.text(message).utf8))
            }
        }
    }

    /// `swallow mime build …`: writes a message to standard output (the options of `swallow send`).
    struct Build: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build a message and write it to standard output (CRLF line ends).")

        @Option(name: .long, help: "Sender, e.g. '发件人名称 <alice@example.test>'.") var from: String
        @Option(name: .long, help: "Recipient (repeatable).") var to: [String] = []
        @Option(name: .long, help: "Copy recipient (repeatable).") var cc: [String] = []
        @Option(name: .long, help: "Blind copy recipient (repeatable).") var bcc: [String] = []
        @Option(name: .customLong("reply-to"), help: "Reply-To address (repeatable).") var replyTo: [String] = []
        @Option(name: .long, help: "Subject, any script.") var subject: String?
        @Option(name: .long, help: "Plain-text body.") var body: String?
        @Option(name: .customLong("body-file"), help: "Read the plain-text body (UTF-8) from a file.") var bodyFile: String?
        @Option(name: .customLong("html-file"), help: "Read an HTML body (UTF-8) from a file.") var htmlFile: String?
        @Option(name: .long, help: "Attach a file (repeatable).") var attach: [String] = []
        @Option(name: .long, help: "An inline image for the HTML, referenced as cid:<file name> (repeatable).") var inline: [String] = []
        @Option(name: .long, help: "Date field text (default: now).") var date: String?
        @Option(name: .customLong("message-id"), help: "Message-ID (default: generated).") var messageID: String?
        @Option(name: .long, help: "Host name for a generated Message-ID.") var hostname: String?
        @Flag(name: .customLong("include-bcc"), help: "Write the Bcc field into the header.") var includeBcc = false
        @Flag(name: .customLong("print-envelope"), help: "Print the envelope (sender, recipients) to standard error.") var printEnvelope = false

        func run() throws {
            var m = MessageBuilder()
            func parse(_ s: String, _ what: String) throws -> MailboxAddress {
                guard let a = MailboxAddress(s) else { throw fail("invalid \(what) address: \(s)") }
                return a
            }
            m.from = try parse(from, "--from")
            m.to = try to.map { try parse($0, "--to") }
            m.cc = try cc.map { try parse($0, "--cc") }
            m.bcc = try bcc.map { try parse($0, "--bcc") }
            m.replyTo = try replyTo.map { try parse($0, "--reply-to") }
            m.subject = subject
            m.date = date
            m.messageID = messageID
            m.hostname = hostname
            m.includeBccHeader = includeBcc
            do {
                if let b = body { m.textBody = b }
                if let f = bodyFile { m.textBody = String(decoding: try mimeReadFile(f), as: UTF8.self) }
                if let f = htmlFile { m.htmlBody = String(decoding: try mimeReadFile(f), as: UTF8.self) }
                for path in attach {
                    m.attachments.append(.init(filename: mimeBaseName(path), data: try mimeReadFile(path)))
                }
                for path in inline {
                    let name = mimeBaseName(path)
                    m.inlineImages.append(.init(filename: name, data: try mimeReadFile(path), contentID: name))
                }
            } catch let e as MIMEFileError {
                throw fail(e.message)
            }
            let built = m.build()
            mimeWriteStdout(built.bytes)
            if printEnvelope {
                writeStandardError("MAIL FROM:<\(built.envelopeSender ?? "")>\n")
                for r in built.envelopeRecipients { writeStandardError("RCPT TO:<\(r)>\n") }
            }
        }
    }
}

/// Renders ``MIMEMessage``s for `swallow mime show`.
enum MIMEShowFormatter {
    static func text(_ message: MIMEMessage) -> String {
        var out = ""
        func addresses(_ list: [MailboxAddress]) -> String { list.map(\.description).joined(separator: ", ") }
        if let s = message.subject { out += "Subject:    \(s)\n" }
        if !message.from.isEmpty { out += "From:       \(addresses(message.from))\n" }
        if !message.to.isEmpty { out += "To:         \(addresses(message.to))\n" }
        if !message.cc.isEmpty { out += "Cc:         \(addresses(message.cc))\n" }
        if let d = message.date { out += "Date:       \(d)\n" }
        if let id = message.messageID { out += "Message-ID: \(id)\n" }
        out += "\nMIME tree:\n"
        func describe(_ part: MIMEPart, depth: Int) {
            var line = String(repeating: "  ", count: depth + 1) + part.contentType.mimeType
            if part.children.isEmpty && !part.contentType.isMultipart {
                if let cs = part.contentType.charset { line += "; charset=\(cs)" }
                line += "; \(part.transferEncoding); \(part.decodedBody.count) bytes"
                if let d = part.contentDisposition { line += "; \(d.kind)" }
                if let f = part.filename { line += "; \"\(f)\"" }
                if let cid = part.contentID { line += "; cid <\(cid)>" }
            } else if part.contentType.isMultipart {
                line += " (\(part.children.count) part\(part.children.count == 1 ? "" : "s"))"
            } else if part.contentType.type == "message" && part.contentType.subtype == "delivery-status" {
                // RFC 3464 §2.1: a per-message block, then one block per recipient; each child holds a
                // block's fields (as a header section), not a body.
                let recipients = max(0, part.children.count - 1)
                line += "; \(part.encodedSize) bytes (per-message fields, \(recipients) recipient\(recipients == 1 ? "" : "s"))"
                out += line + "\n"
                let indent = String(repeating: "  ", count: depth + 2)
                for (index, block) in part.children.enumerated() {
                    let fields = block.headers.map { "\($0.name): \($0.value)" }.joined(separator: " | ")
                    out += indent + (index == 0 ? "message: " : "recipient: ") + fields + "\n"
                }
                return
            }
            out += line + "\n"
            for c in part.children { describe(c, depth: depth + 1) }
        }
        describe(message.root, depth: 0)
        let attachments = message.attachments
        if !attachments.isEmpty {
            out += "\nAttachments:\n"
            for a in attachments {
                out += "  \(a.filename ?? "(no name)")  \(a.contentType.mimeType)  \(a.decodedBody.count) bytes\n"
            }
        }
        if !message.diagnostics.isEmpty {
            out += "\nDiagnostics:\n"
            for d in message.diagnostics { out += "  \(d)\n" }
        }
        return out
    }

    static func json(_ message: MIMEMessage, includeData: Bool) -> String {
        func str(_ s: String?) -> String { s.map(QuotedLiteral.quote) ?? "null" }
        func addresses(_ list: [MailboxAddress]) -> String {
            "[" + list.map { "{\"name\": \(str($0.displayName)), \"address\": \(str($0.address))}" }.joined(separator: ", ") + "]"
        }
        var parts: [String] = []
        func visit(_ p: MIMEPart, path: [Int]) {
            var fields: [String] = []
            fields.append("\"path\": \(str(path.map(String.init).joined(separator: ".")))")
            fields.append("\"content_type\": \(str(p.contentType.mimeType))")
            fields.append("\"charset\": \(str(p.contentType.charset))")
            fields.append("\"encoding\": \(str(p.transferEncoding.description))")
            fields.append("\"disposition\": \(str(p.contentDisposition?.kind))")
            fields.append("\"filename\": \(str(p.filename))")
            fields.append("\"content_id\": \(str(p.contentID))")
            fields.append("\"children\": \(p.children.count)")
            let leaf = p.children.isEmpty
            fields.append("\"size\": \(leaf ? p.decodedBody.count : 0)")
            fields.append("\"is_attachment\": \(p.isAttachment)")
            if includeData && leaf {
                fields.append("\"data_base64\": \(str(Base64.encode(p.decodedBody)))")
                fields.append("\"text\": \(str(p.text))")
            }
            parts.append("{" + fields.joined(separator: ", ") + "}")
            for (i, c) in p.children.enumerated() { visit(c, path: path + [i]) }
        }
        visit(message.root, path: [])
        var o = "{\n"
        o += "  \"subject\": \(str(message.subject)),\n"
        o += "  \"from\": \(addresses(message.from)),\n"
        o += "  \"to\": \(addresses(message.to)),\n"
        o += "  \"cc\": \(addresses(message.cc)),\n"
        o += "  \"date\": \(str(message.date)),\n"
        o += "  \"message_id\": \(str(message.messageID)),\n"
        o += "  \"text_body\": \(includeData ? str(message.textBody) : "null"),\n"
        o += "  \"parts\": [\n    " + parts.joined(separator: ",\n    ") + "\n  ],\n"
        o += "  \"attachments\": [" + message.attachments.map {
            "{\"filename\": \(str($0.filename)), \"content_type\": \(str($0.contentType.mimeType)), \"size\": \($0.decodedBody.count)}"
        }.joined(separator: ", ") + "],\n"
        o += "  \"diagnostics\": [" + message.diagnostics.map { str($0.description) }.joined(separator: ", ") + "]\n"
        return o + "}\n"
    }
}

struct MIMEFileError: Error {
    var message: String
}

/// Reads a whole file (or standard input for "-").
func mimeReadFile(_ path: String) throws -> [UInt8] {
    let fd: Int32 = path == "-" ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
        throw MIMEFileError(message: "cannot read \(path): \(String(cString: strerror(errno)))")
    }
    defer { if fd != STDIN_FILENO { close(fd) } }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw MIMEFileError(message: "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        if n == 0 { break }
        out.append(contentsOf: chunk[0..<n])
    }
    return out
}

func mimeBaseName(_ path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? path
}

func mimeWriteStdout(_ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress! + offset, $0.count - offset) }
        if n < 0, errno == EINTR { continue }
        if n <= 0 { break }
        offset += n
    }
}
