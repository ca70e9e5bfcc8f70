import ArgumentParser
import MailServer
import MailStore
import NIOCore
import POP3Client
#if canImport(Glibc)
import Glibc
#endif

/// `HOST[:PORT]` or `[IPv6]:PORT`.
func splitServer(_ s: String, defaultPort: Int) throws -> (String, Int) {
    if s.hasPrefix("["), let close = s.firstIndex(of: "]") {
        let host = String(s[s.index(after: s.startIndex)..<close])
        let rest = s[s.index(after: close)...]
        if rest.isEmpty { return (host, defaultPort) }
        guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()), (1...65535).contains(p) else {
            throw fail("'\(s)' is not HOST[:PORT]")
        }
        return (host, p)
    }
    let parts = s.split(separator: ":", omittingEmptySubsequences: false)
    if parts.count == 1 { return (s, defaultPort) }
    guard parts.count == 2, !parts[0].isEmpty, let p = Int(parts[1]), (1...65535).contains(p) else {
        throw fail("'\(s)' is not HOST[:PORT]")
    }
    return (String(parts[0]), p)
}

/// The password from `--password-stdin` or `SWALLOW_PASSWORD`.
func clientPassword(fromStdin: Bool) throws -> String? {
    if fromStdin { return try readPassword(fromStdin: true, required: true, new: false) }
    if let env = getenv("SWALLOW_PASSWORD") { return String(cString: env) }
    return nil
}

struct Fetch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download mail over POP3 into a Maildir.",
        discussion: "The password is read from standard input with --password-stdin, or from SWALLOW_PASSWORD.")

    @Option(help: "POP3 server, HOST[:PORT] (default port 110, or 995 with --tls).") var server: String
    @Flag(help: "Upgrade with STLS (required).") var stls = false
    @Flag(help: "Implicit TLS (port 995).") var tls = false
    @Flag(help: "Do not verify the server's certificate.") var insecure = false
    @Option(help: "Login name, usually the full address.") var user: String
    @Flag(name: .long, help: "Read the password as one line from standard input.") var passwordStdin = false
    @Option(help: "Maildir to store messages in (created if missing).") var maildir: String
    @Flag(help: "Leave the messages on the server.") var keep = false
    @Flag(help: "Only fetch messages not fetched before (remembers UIDLs per server and user).") var newOnly = false
    @Flag(help: "Allow logging in without TLS.") var allowPlaintext = false

    func validate() throws {
        if stls && tls { throw ValidationError("choose one of --stls and --tls") }
    }

    func run() async throws {
        guard let password = try clientPassword(fromStdin: passwordStdin) else {
            throw fail("no password: use --password-stdin or set SWALLOW_PASSWORD")
        }
        let (host, port) = try splitServer(server, defaultPort: tls ? 995 : 110)
        var config = POP3ClientConfiguration(host: host, port: port, security: tls ? .implicitTLS : stls ? .stls : .plain)
        config.certificateVerification = insecure ? .insecureNoVerification : .systemTrustStore
        config.allowPlaintextAuthentication = allowPlaintext
        do {
            try MaildirStore.ensureMaildir(at: maildir)
        } catch { throw fail("cannot use \(maildir) as a Maildir: \(error)") }
        let stateFile = "\(maildir)/.swallow-fetch-\(Self.sanitize("\(host)_\(port)_\(user)"))"
        var seen = newOnly ? Self.loadUIDs(stateFile) : []
        do {
            let pop = try await POP3Client.connect(config)
            try await pop.login(user: user, password: password)
            let uids = try await pop.uniqueIDs()
            let sizes = Dictionary(try await pop.list().map { ($0.number, $0.size) }, uniquingKeysWith: { a, _ in a })
            let wanted = uids.filter { !seen.contains($0.uid) }
            let total = wanted.reduce(0) { $0 + (sizes[$1.number] ?? 0) }
            let progress = Progress(total: wanted.count, bytes: total)
            let store = MaildirStore(root: maildir, hostname: ServerConfiguration.systemHostname())
            var fetched: [(Int, String)] = []
            var buffer = ByteBuffer()
            var storeError: (any Error)?
            try await pop.retrieve(wanted.map(\.number)) { number, chunk, done in
                var c = chunk
                buffer.writeBuffer(&c)
                guard done else { return }
                do {
                    _ = try store.deliver(headers: [], spool: nil, tail: buffer, toMaildirs: [maildir])
                } catch {
                    storeError = error
                    throw error
                }
                progress.advance(bytes: buffer.readableBytes)
                buffer.clear()
                fetched.append((number, wanted.first { $0.number == number }!.uid))
            }
            if let storeError { throw fail("cannot store a message in \(maildir): \(storeError)") }
            if !keep { for (n, _) in fetched { try await pop.delete(n) } }
            try await pop.quit()
            progress.finish()
            if newOnly {
                for (_, uid) in fetched { seen.insert(uid) }
                // Forget UIDs the server no longer has, so the file does not grow forever.
                let present = Set(uids.map(\.uid))
                Self.saveUIDs(seen.intersection(present), to: stateFile)
            }
            print("fetched \(fetched.count) message\(fetched.count == 1 ? "" : "s") into \(maildir)\(keep ? " (left on the server)" : "")")
        } catch let e as POP3ClientError {
            throw fail("\(host):\(port): \(e)")
        }
    }

    static func sanitize(_ s: String) -> String {
        String(s.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" || $0 == "@" ? $0 : "_" })
    }

    static func loadUIDs(_ path: String) -> Set<String> {
        guard let fp = fopen(path, "r") else { return [] }
        defer { fclose(fp) }
        var out = Set<String>()
        while let line = readLine(from: fp) { if !line.isEmpty { out.insert(line) } }
        return out
    }

    static func saveUIDs(_ uids: Set<String>, to path: String) {
        let text = uids.sorted().joined(separator: "\n") + "\n"
        let tmp = path + ".tmp"
        guard let fp = fopen(tmp, "w") else { return }
        fputs(text, fp)
        fflush(fp)
        fsync(fileno(fp))
        fclose(fp)
        rename(tmp, path)
    }

    static func readLine(from fp: UnsafeMutablePointer<FILE>) -> String? {
        var buf = [CChar](repeating: 0, count: 1024)
        guard fgets(&buf, Int32(buf.count), fp) != nil else { return nil }
        let s = String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return s.hasSuffix("\n") ? String(s.dropLast()) : s
    }
}

/// A progress bar on standard error when it is a terminal.
final class Progress {
    let total: Int
    let bytes: Int
    var done = 0
    var doneBytes = 0
    let enabled = isatty(STDERR_FILENO) == 1

    init(total: Int, bytes: Int) {
        self.total = total
        self.bytes = bytes
        draw()
    }

    func advance(bytes n: Int) {
        done += 1
        doneBytes += n
        draw()
    }

    func draw() {
        guard enabled, total > 0 else { return }
        let width = 30
        let filled = total == 0 ? width : width * done / total
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        writeStandardError("\r[\(bar)] \(done)/\(total) messages, \(doneBytes / 1024) KiB")
    }

    func finish() {
        if enabled && total > 0 { writeStandardError("\n") }
    }
}
