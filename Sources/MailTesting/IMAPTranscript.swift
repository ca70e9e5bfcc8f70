import struct Foundation.Data
import struct Foundation.URL

/// A golden IMAP transcript: one or more client connections to one server, what each client sends,
/// what the server must answer on each connection, the accounts and messages that exist beforehand,
/// and deliveries that arrive while sessions are open. Only the *description* lives here; the
/// IMAPCoreTests runner plays it against parser + ``IMAPServerStateMachine`` + encoder over an
/// in-memory store, and MailServerTests plays the same file against a live `SwallowServer`.
///
/// File format, one item per line (ARCHITECTURE §7.4):
///
/// ```
/// # comment                         ignored, as are blank lines
/// ! users: alice@example.test secret
///                                   an account and its password (repeatable; the first is the owner of
///                                   `! mailbox:` messages and `! deliver:` unless `user=` says otherwise)
/// ! plaintext-auth                  LOGIN/AUTHENTICATE allowed without TLS (live: imap.allow_plaintext_auth)
/// ! config: maxCommandSize=1024 maxLiteral=4096
///                                   parser and APPENDLIMIT settings (live: imap.max_command_size, max_literal)
/// ! mailbox: Archive [user=bob@example.test]
///                                   the following `! message:` lines go into this mailbox (created unless it
///                                   is one of the default folders INBOX Sent Drafts Trash Junk Archive)
/// ! message: Subject: hi\r\n\r\nbody\r\n flags=\Seen,$Work date="05-Jan-2026 10:00:00 +0000"
///                                   a message that exists before the first connection (escapes as for B:;
///                                   `@name.eml` instead of the text reads that file next to the transcript).
///                                   Options at the end, after a space: flags (comma-separated), date
///                                   (INTERNALDATE; default now). Messages get UIDs 1, 2, … in file order.
/// ! deliver: INBOX Subject: new\r\n\r\nhi\r\n
///                                   at this point, a message arrives for the first user (live: over SMTP,
///                                   so trace headers are added: check its UID and flags, not its size or text;
///                                   the live run can only wait for an announcement, so observe it in IDLE)
/// ! whole-writes-only               the file is not replayed byte by byte or with random splits
/// ! memory-only: why                the live run skips the file (the reason is printed)
///
/// C1: a LOGIN alice@example.test secret
///                                   connection 1 sends this line; CRLF is appended. `C:` means `C1:`.
///                                   A connection opens at the first line that names it.
///                                   `{name}` in a C or B line is replaced by the value a server line bound
///                                   to it (`SELECT INBOX (QRESYNC ({uidvalidity} {highest}))`).
/// B1: a APPEND INBOX {5+}\r\nhello\r\n
///                                   connection 1 sends these bytes verbatim; escapes \r \n \t \0 \\ \xHH;
///                                   nothing is appended. Consecutive C/B lines of one connection are one write.
/// S1: * OK [UIDVALIDITY {uidvalidity}] UIDs valid
///                                   the next line connection 1 reads (without CRLF). `{name}` (a lower-case
///                                   letter, then letters, digits, `-`) matches an atom (no space, parentheses,
///                                   brackets, quotes or braces) or a quoted string; the first match binds the
///                                   name for the whole file and later uses must be equal. `{*}` matches the
///                                   same without binding. `{5}`, `{5+}` are plain text (literals).
///                                   Literal data is read as lines too: a FETCH with `BODY[] {20}` is followed
///                                   by one S line per CRLF-terminated line of the literal.
/// S1~ \* OK \[CAPABILITY .*\] .*    the whole line matches this regular expression
/// @1 tls                            the TLS handshake after `OK Begin TLS negotiation now` (STARTTLS)
/// @1 closed                         the server has closed connection 1 with nothing unread
/// @1 close                          the client drops connection 1
/// ```
///
/// Determinism across connections: a line of connection N is written only after every line of the
/// other connections' output that the file expects before it was read, so the server always processes
/// the commands in file order. When switching the writing connection the file must first read at
/// least one server line of the previous connection's write (``orderingProblems``).
public struct IMAPTranscript: Sendable {
    /// One client write, expectation or event, with the line number it came from (1-based).
    public enum Step: Hashable, Sendable {
        case write(connection: Int, bytes: [UInt8], line: Int)
        case expect(connection: Int, pattern: LinePattern, line: Int)
        case tls(connection: Int, line: Int)
        case expectClosed(connection: Int, line: Int)
        case clientCloses(connection: Int, line: Int)
        case deliver(mailbox: String, content: [UInt8], line: Int)

        /// The connection the step is about (`nil` for a delivery).
        public var connection: Int? {
            switch self {
            case .write(let c, _, _), .expect(let c, _, _), .tls(let c, _), .expectClosed(let c, _), .clientCloses(let c, _): c
            case .deliver: nil
            }
        }

        /// The transcript line.
        public var line: Int {
            switch self {
            case .write(_, _, let l), .expect(_, _, let l), .tls(_, let l), .expectClosed(_, let l), .clientCloses(_, let l),
                 .deliver(_, _, let l): l
            }
        }
    }

    /// What a server line must look like.
    public enum LinePattern: Hashable, Sendable, CustomStringConvertible {
        /// Text with `{name}` / `{*}` placeholders.
        case text(String)
        /// A regular expression for the whole line.
        case regex(String)

        public var description: String {
            switch self {
            case .text(let t): t
            case .regex(let r): "~ " + r
            }
        }
    }

    /// A message that exists before the first connection.
    public struct Message: Hashable, Sendable {
        public var user: String
        public var mailbox: String
        public var content: [UInt8]
        public var flags: [String]
        /// INTERNALDATE as IMAP date-time text (`05-Jan-2026 10:00:00 +0000`), `nil` for now.
        public var internalDate: String?
    }

    public var name: String
    /// Accounts in file order (user lower-cased, password).
    public var users: [(user: String, password: String)] = []
    public var plaintextAuthentication = false
    public var maxCommandSize: Int?
    public var maxLiteral: Int?
    /// Mailboxes to create before the first connection (user, name), default folders excluded.
    public var mailboxes: [(user: String, name: String)] = []
    public var messages: [Message] = []
    public var wholeWritesOnly = false
    /// Why the live run skips the file.
    public var memoryOnly: String?
    public var steps: [Step] = []

    /// The folders every account has from its first login (MaildirAccount.defaultFolders and INBOX).
    public static let defaultFolders: Set<String> = ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"]

    /// The connections the file uses, ascending.
    public var connections: [Int] { Array(Set(steps.compactMap(\.connection))).sorted() }

    /// The password of `user` (case-insensitive).
    public func password(of user: String) -> String? {
        users.first { $0.user == user.lowercased() }?.password
    }

    /// Why a transcript file could not be read.
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var name: String
        public var line: Int
        public var message: String
        public var description: String { "\(name):\(line): \(message)" }
    }

    /// Reads a transcript file (`@file` messages relative to it).
    public static func load(contentsOf url: URL) throws -> IMAPTranscript {
        let data = try Data(contentsOf: url)
        let directory = url.deletingLastPathComponent()
        return try parse(String(decoding: data, as: UTF8.self), name: url.lastPathComponent) { file in
            (try? Data(contentsOf: directory.appendingPathComponent(file))).map { Array($0) }
        }
    }

    /// Parses transcript text; `file` reads `@name` message files.
    public static func parse(_ text: String, name: String,
                             file: (String) -> [UInt8]? = { _ in nil }) throws(ParseError) -> IMAPTranscript {
        var t = IMAPTranscript(name: name)
        var pending: (connection: Int, bytes: [UInt8], line: Int)?
        var mailbox = "INBOX"
        var mailboxUser: String?
        func flush() {
            if let p = pending { t.steps.append(.write(connection: p.connection, bytes: p.bytes, line: p.line)) }
            pending = nil
        }
        func fail(_ line: Int, _ message: String) -> ParseError { ParseError(name: name, line: line, message: message) }

        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let n = index + 1
            var line = Substring(rawLine)
            if line.hasSuffix("\r") { line = line.dropLast() }
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) || line.hasPrefix("#") { continue }

            if let (kind, connection, rest) = splitPrefix(line) {
                switch kind {
                case "C", "B":
                    var bytes: [UInt8]
                    if kind == "C" {
                        bytes = Array(rest.utf8) + [0x0D, 0x0A]
                    } else {
                        guard let b = unescape(rest) else { throw fail(n, "bad escape in B line") }
                        bytes = b
                    }
                    if let p = pending, p.connection != connection { flush() }
                    if pending == nil { pending = (connection, [], n) }
                    pending!.bytes += bytes
                case "S":
                    flush()
                    t.steps.append(.expect(connection: connection, pattern: .text(String(rest)), line: n))
                case "S~":
                    flush()
                    do { _ = try Regex(String(rest)) } catch { throw fail(n, "bad regular expression: \(error)") }
                    t.steps.append(.expect(connection: connection, pattern: .regex(String(rest)), line: n))
                default:
                    flush()
                    switch rest.trimmingSpaces() {
                    case "tls": t.steps.append(.tls(connection: connection, line: n))
                    case "closed": t.steps.append(.expectClosed(connection: connection, line: n))
                    case "close": t.steps.append(.clientCloses(connection: connection, line: n))
                    default: throw fail(n, "unknown event '\(rest)'")
                    }
                }
                continue
            }
            flush()
            guard line.hasPrefix("! ") else { throw fail(n, "expected '# ', '! ', 'Cn: ', 'Bn: ', 'Sn: ', 'Sn~ ' or '@n '") }
            let body = line.dropFirst(2)
            let colon = body.firstIndex(of: ":")
            let key = (colon.map { body[..<$0] } ?? body).trimmingSpaces()
            let value = colon.map { body[body.index(after: $0)...].trimmingSpaces() } ?? ""
            switch key {
            case "users":
                let parts = value.split(separator: " ")
                guard parts.count == 2 else { throw fail(n, "expected 'users: USER PASSWORD'") }
                t.users.append((String(parts[0]).lowercased(), String(parts[1])))
            case "plaintext-auth":
                t.plaintextAuthentication = true
            case "whole-writes-only":
                t.wholeWritesOnly = true
            case "memory-only":
                t.memoryOnly = value.isEmpty ? "not played live" : String(value)
            case "config":
                for setting in value.split(separator: " ") {
                    let kv = setting.split(separator: "=", maxSplits: 1)
                    guard kv.count == 2, let v = Int(kv[1]) else { throw fail(n, "config setting '\(setting)' is not key=number") }
                    switch kv[0] {
                    case "maxCommandSize": t.maxCommandSize = v
                    case "maxLiteral": t.maxLiteral = v
                    default: throw fail(n, "unknown config setting '\(kv[0])'")
                    }
                }
            case "mailbox":
                var words = value.split(separator: " ")
                mailboxUser = nil
                if let last = words.last, last.hasPrefix("user=") {
                    mailboxUser = String(last.dropFirst(5)).lowercased()
                    words.removeLast()
                }
                guard !words.isEmpty else { throw fail(n, "expected 'mailbox: NAME [user=USER]'") }
                mailbox = words.joined(separator: " ")
                let owner = mailboxUser ?? t.users.first?.user ?? ""
                if !defaultFolders.contains(mailbox), !t.mailboxes.contains(where: { $0 == (owner, mailbox) }) {
                    t.mailboxes.append((owner, mailbox))
                }
            case "message":
                guard let owner = mailboxUser ?? t.users.first?.user else { throw fail(n, "a message needs a '! users:' line first") }
                var text = value
                var flags: [String] = []
                var date: String?
                // Options at the end: ` date="…"` and ` flags=…`, in either order.
                while true {
                    if text.hasSuffix("\""), let r = lastRange(of: " date=\"", in: text) {
                        date = String(text[r.upperBound..<text.index(before: text.endIndex)])
                        text = text[..<r.lowerBound]
                    } else if let r = lastRange(of: " flags=", in: text), !text[r.upperBound...].contains(" ") {
                        flags = text[r.upperBound...].split(separator: ",").map(String.init)
                        text = text[..<r.lowerBound]
                    } else {
                        break
                    }
                }
                let content: [UInt8]
                if text.hasPrefix("@") {
                    guard let bytes = file(String(text.dropFirst())) else { throw fail(n, "cannot read message file \(text.dropFirst())") }
                    content = bytes
                } else {
                    guard let bytes = unescape(text) else { throw fail(n, "bad escape in message") }
                    content = bytes
                }
                t.messages.append(Message(user: owner, mailbox: mailbox, content: content, flags: flags, internalDate: date))
            case "deliver":
                guard let space = value.firstIndex(of: " "), let bytes = unescape(value[value.index(after: space)...]) else {
                    throw fail(n, "expected 'deliver: MAILBOX escaped-message'")
                }
                guard t.users.first != nil else { throw fail(n, "a delivery needs a '! users:' line first") }
                t.steps.append(.deliver(mailbox: String(value[..<space]), content: bytes, line: n))
            default:
                throw fail(n, "unknown directive '\(key)'")
            }
        }
        flush()
        return t
    }

    /// The last occurrence of `needle` in `text`.
    static func lastRange(of needle: String, in text: Substring) -> Range<Substring.Index>? {
        var i = text.endIndex
        while i > text.startIndex {
            i = text.index(before: i)
            if text[i...].hasPrefix(needle) { return i..<text.index(i, offsetBy: needle.count) }
        }
        return nil
    }

    /// `C1: rest` → ("C", 1, "rest"); `S2~ re` → ("S~", 2, "re"); `@1 tls` → ("@", 1, "tls").
    static func splitPrefix(_ line: Substring) -> (String, Int, Substring)? {
        guard let first = line.first, "CBS@".contains(first) else { return nil }
        var i = line.index(after: line.startIndex)
        var digits = ""
        while i < line.endIndex, line[i].isASCII, line[i].isNumber {
            digits.append(line[i])
            i = line.index(after: i)
        }
        let connection = digits.isEmpty ? 1 : Int(digits) ?? 1
        if first == "@" {
            guard i < line.endIndex, line[i] == " " else { return nil }
            return ("@", connection, line[line.index(after: i)...])
        }
        var kind = String(first)
        if first == "S", i < line.endIndex, line[i] == "~" {
            kind = "S~"
            i = line.index(after: i)
        } else {
            guard i < line.endIndex, line[i] == ":" else { return nil }
            i = line.index(after: i)
        }
        if i == line.endIndex { return (kind, connection, "") }
        guard line[i] == " " else { return nil }
        return (kind, connection, line[line.index(after: i)...])
    }

    /// Steps where the file writes on one connection before reading anything the previous write
    /// of another connection caused, so the live server could process them out of file order.
    public var orderingProblems: [Int] {
        var out: [Int] = []
        var lastWriter: Int?
        var readSinceWrite = true
        for step in steps {
            switch step {
            case .write(let c, _, let line):
                if let w = lastWriter, w != c, !readSinceWrite { out.append(line) }
                if lastWriter != c { readSinceWrite = false }
                lastWriter = c
            case .expect(let c, _, _), .expectClosed(let c, _):
                if c == lastWriter { readSinceWrite = true }
            case .tls, .clientCloses, .deliver:
                break
            }
        }
        return out
    }

    // MARK: Matching

    /// Compares a server line with a pattern, binding `{name}` placeholders in `bindings`.
    public static func matches(_ pattern: LinePattern, _ actual: String, bindings: inout [String: String]) -> Bool {
        switch pattern {
        case .regex(let r):
            guard let regex = try? Regex(r) else { return false }
            return (try? regex.wholeMatch(in: actual)) != nil
        case .text(let text):
            var local = bindings
            var a = Substring(actual)
            var p = Substring(text)
            while !p.isEmpty {
                if p.first == "{", let close = p.firstIndex(of: "}"), let name = placeholderName(p[p.index(after: p.startIndex)..<close]) {
                    p = p[p.index(after: close)...]
                    let value = takeValue(&a)
                    guard !value.isEmpty else { return false }
                    if name == "*" { continue }
                    if let bound = local[name] {
                        guard bound == value else { return false }
                    } else {
                        local[name] = String(value)
                    }
                    continue
                }
                guard a.first == p.first else { return false }
                a = a.dropFirst()
                p = p.dropFirst()
            }
            guard a.isEmpty else { return false }
            bindings = local
            return true
        }
    }

    static func placeholderName(_ s: Substring) -> String? {
        if s == "*" { return "*" }
        guard let f = s.first, f.isASCII, f.isLowercase,
              s.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else { return nil }
        return String(s)
    }

    /// A quoted string, or a run of atom characters, from the front of `a`.
    static func takeValue(_ a: inout Substring) -> Substring {
        if a.first == "\"" {
            var i = a.index(after: a.startIndex)
            while i < a.endIndex, a[i] != "\"" {
                if a[i] == "\\" { i = a.index(after: i); if i == a.endIndex { break } }
                i = a.index(after: i)
            }
            guard i < a.endIndex else { return "" }
            let end = a.index(after: i)
            defer { a = a[end...] }
            return a[..<end]
        }
        let end = a.firstIndex(where: { " ()[]\"{}".contains($0) }) ?? a.endIndex
        defer { a = a[end...] }
        return a[..<end]
    }

    /// `bytes` with every bound `{name}` replaced by its value.
    public static func substitute(_ bytes: [UInt8], _ bindings: [String: String]) -> [UInt8] {
        guard !bindings.isEmpty, bytes.contains(UInt8(ascii: "{")) else { return bytes }
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "{"), let close = bytes[i...].firstIndex(of: UInt8(ascii: "}")),
               let name = placeholderName(Substring(String(decoding: bytes[(i + 1)..<close], as: UTF8.self))),
               let value = bindings[name] {
                out += Array(value.utf8)
                i = close + 1
                continue
            }
            out.append(bytes[i])
            i += 1
        }
        return out
    }

    /// Splits server output into CRLF-terminated lines; the rest (no CRLF yet) stays in `buffer`.
    public static func takeLines(_ buffer: inout [UInt8]) -> [String] {
        var lines: [String] = []
        var start = 0
        var i = 0
        while i + 1 < buffer.count {
            if buffer[i] == 0x0D && buffer[i + 1] == 0x0A {
                lines.append(String(decoding: buffer[start..<i], as: UTF8.self))
                start = i + 2
                i += 2
            } else {
                i += 1
            }
        }
        if start > 0 { buffer.removeFirst(start) }
        return lines
    }

    /// `\r \n \t \0 \\ \xHH` decoded; `nil` for a bad escape.
    public static func unescape(_ s: Substring) -> [UInt8]? {
        var out: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let b = it.popFirst() {
            guard b == 0x5C else { out.append(b); continue }
            guard let e = it.popFirst() else { return nil }
            switch e {
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "0"): out.append(0)
            case 0x5C: out.append(0x5C)
            case UInt8(ascii: "x"):
                guard let h = it.popFirst(), let l = it.popFirst(),
                      let v = UInt8(String(decoding: [h, l], as: UTF8.self), radix: 16) else { return nil }
                out.append(v)
            default: return nil
            }
        }
        return out
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return s
    }
}
