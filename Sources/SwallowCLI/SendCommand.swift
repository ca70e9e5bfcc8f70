import ArgumentParser
import MailCore
import MailServer
import NIOCore
import SMTPClient
import SMTPCore
#if canImport(Glibc)
import Glibc
#endif

struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build a message (or take one as is with --raw) and send it over SMTP.",
        discussion: """
            Addresses may carry a display name in any script: --from '发件人名称 <alice@example.test>'.
            The password is read from standard input with --password-stdin, or from SWALLOW_PASSWORD.
            Without --starttls or --tls, STARTTLS is used when the server offers it.
            """)

    @Option(help: "SMTP server, HOST[:PORT] (default port 25; 587 with --starttls, 465 with --tls).") var server: String
    @Flag(help: "Require STARTTLS.") var starttls = false
    @Flag(help: "Implicit TLS (port 465).") var tls = false
    @Flag(help: "Do not verify the server's certificate.") var insecure = false
    @Option(help: "Log in as this user.") var user: String?
    @Flag(name: .long, help: "Read the password as one line from standard input.") var passwordStdin = false
    @Flag(help: "Allow logging in without TLS.") var allowPlaintext = false
    @Option(help: "Our name in EHLO.") var helo: String = ServerConfiguration.systemHostname()
    @Option(help: "Sender, with an optional display name.") var from: String
    @Option(help: "Recipient (repeatable).") var to: [String] = []
    @Option(help: "Copy recipient (repeatable).") var cc: [String] = []
    @Option(help: "Blind copy recipient (repeatable; not shown in the message).") var bcc: [String] = []
    @Option(help: "Subject, in any script.") var subject: String?
    @Option(help: "Plain-text body.") var body: String?
    @Option(help: "Plain-text body from a file.") var bodyFile: String?
    @Option(help: "HTML alternative from a file.") var htmlFile: String?
    @Option(help: "Attach a file (repeatable).") var attach: [String] = []
    @Flag(help: "Send a complete RFC 5322 message from standard input as is.") var raw = false

    func validate() throws {
        if starttls && tls { throw ValidationError("choose one of --starttls and --tls") }
        if to.isEmpty && cc.isEmpty && bcc.isEmpty { throw ValidationError("give at least one --to, --cc or --bcc") }
        if body != nil && bodyFile != nil { throw ValidationError("choose one of --body and --body-file") }
        if raw && (subject != nil || body != nil || bodyFile != nil || htmlFile != nil || !attach.isEmpty) {
            throw ValidationError("--raw takes the whole message from standard input; drop --subject/--body/--attach")
        }
    }

    func run() async throws {
        let (host, port) = try splitServer(server, defaultPort: tls ? 465 : starttls ? 587 : 25)
        var config = SMTPClientConfiguration(host: host, port: port, security: tls ? .implicitTLS : starttls ? .startTLS : .startTLSIfAvailable)
        config.certificateVerification = insecure ? .insecureNoVerification : .systemTrustStore
        config.allowPlaintextAuthentication = allowPlaintext
        config.heloName = helo
        if let user {
            guard let password = try clientPassword(fromStdin: passwordStdin) else {
                throw fail("--user needs a password: use --password-stdin or set SWALLOW_PASSWORD")
            }
            config.authentication = .password(user: user, password: password)
        }
        let message: ByteBuffer
        let envelopeFrom: String
        let envelopeTo: [String]
        do {
            let composed = try MessageComposer(from: from, to: to, cc: cc, bcc: bcc, subject: subject, body: body,
                                               bodyFile: bodyFile, htmlFile: htmlFile, attachments: attach)
            envelopeFrom = composed.envelopeFrom
            envelopeTo = composed.envelopeRecipients
            message = raw ? try Self.readStandardInput() : try composed.render()
        } catch let e as ComposeError {
            throw fail(e.description)
        }
        do {
            let client = try await SMTPClient.connect(config)
            let result = try await client.send(message, from: envelopeFrom, to: envelopeTo)
            await client.quit()
            for r in result.refusedRecipients {
                writeStandardError("swallow: \(r.path) refused: \(r.reply.code) \(r.reply.enhancedCode.map { "\($0) " } ?? "")\(r.reply.lines.joined(separator: " "))\n")
            }
            let reply = result.reply
            print("sent to \(result.acceptedRecipients.count) recipient\(result.acceptedRecipients.count == 1 ? "" : "s"): \(reply.code) \(reply.enhancedCode.map { "\($0) " } ?? "")\(reply.lines.joined(separator: " "))")
            if !result.refusedRecipients.isEmpty { throw ExitCode(2) }
        } catch let e as SMTPClientError {
            throw fail("\(host):\(port): \(e)")
        }
    }

    static func readStandardInput() throws -> ByteBuffer {
        var out = ByteBuffer()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress!, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw ComposeError("cannot read standard input") }
            if n == 0 { break }
            out.writeBytes(chunk[0..<n])
        }
        guard out.readableBytes > 0 else { throw ComposeError("--raw: standard input is empty") }
        return out
    }
}

/// A problem with the message options, said in one sentence.
struct ComposeError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
