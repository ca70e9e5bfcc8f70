import MailCore

/// Parses one SMTP command line (without its CRLF) into an ``SMTPCommand``.
///
/// Lenient where real clients differ from the letter of RFC 5321 without a security cost (verbs in any
/// case, a space after `FROM:`/`TO:`, several spaces between parameters); strict where it matters
/// (control characters, address syntax, parameter syntax).
///
/// - SeeAlso: RFC 5321 §4.1.1, §4.1.2
public enum SMTPCommandLineParser {
    /// Parses `line`.
    public static func parse(_ line: some Collection<UInt8>) -> Result<SMTPCommand, SMTPCommandError> { parseLine(line) }

    /// Parses `line` (concrete overloads: a generic call from another module is not specialized and
    /// pays for every byte through witness tables).
    public static func parse(_ line: [UInt8]) -> Result<SMTPCommand, SMTPCommandError> { parseLine(line) }

    /// Parses `line`.
    public static func parse(_ line: ArraySlice<UInt8>) -> Result<SMTPCommand, SMTPCommandError> { parseLine(line) }

    static func parseLine<Line: Collection<UInt8>>(_ line: Line) -> Result<SMTPCommand, SMTPCommandError> {
        // NUL and other control characters other than HT are never acceptable on a command line.
        if line.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) { return .failure(.invalidCharacters) }
        // ASCII (nearly every line) needs no UTF-8 validation, which would build a second string.
        let text: String
        if line.allSatisfy({ $0 < 0x80 }) {
            text = String(decoding: line, as: UTF8.self)
        } else {
            guard let valid = String(validating: line, as: UTF8.self) else { return .failure(.invalidCharacters) }
            text = valid
        }
        // Byte-wise (no grapheme breaking): verb up to the first SP/HT, the argument without the
        // surrounding blanks.
        let u = text.utf8
        let isBlank: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 }
        let verbEnd = u.firstIndex(where: isBlank) ?? u.endIndex
        let verbBytes = u[..<verbEnd]
        // Upper-cased in place (a verb of up to 15 octets is a small string: no allocation).
        let verb = String(unsafeUninitializedCapacity: verbBytes.count) { buffer in
            for (i, b) in verbBytes.enumerated() { buffer[i] = b >= 0x61 && b <= 0x7A ? b - 0x20 : b }
            return verbBytes.count
        }
        var argStart = verbEnd
        while argStart < u.endIndex && isBlank(u[argStart]) { argStart = u.index(after: argStart) }
        var argEnd = u.endIndex
        while argEnd > argStart && isBlank(u[u.index(before: argEnd)]) { argEnd = u.index(before: argEnd) }
        let argument = String(text[argStart..<argEnd])

        func noArguments(_ command: SMTPCommand) -> Result<SMTPCommand, SMTPCommandError> {
            argument.isEmpty ? .success(command) : .failure(.syntax(verb: verb, reason: "\(verb) takes no arguments"))
        }

        switch verb {
        case "EHLO", "HELO":
            // `EHLO SP ( Domain / address-literal )`; we accept any single printable token.
            guard !argument.isEmpty, !argument.contains(" "), argument.utf8.count <= 255 else {
                return .failure(.syntax(verb: verb, reason: "\(verb) requires a domain name"))
            }
            return .success(verb == "EHLO" ? .ehlo(argument) : .helo(argument))
        case "MAIL":
            return parsePathCommand(verb: verb, prefix: "FROM:", argument: argument).flatMap { path, params in
                if path == "" { return .success(.mail(.null, params)) }
                switch EmailAddress.parse(path, allowUTF8: true) {
                case .success(let a): return .success(.mail(.mailbox(a), params))
                case .failure(let e): return .failure(.badAddress(verb: verb, e))
                }
            }
        case "RCPT":
            return parsePathCommand(verb: verb, prefix: "TO:", argument: argument).flatMap { path, params in
                if path.utf8.count == 10 && path.lowercased() == "postmaster" { return .success(.rcpt(.postmaster, params)) }
                if path == "" { return .failure(.badAddress(verb: verb, .syntax)) }
                switch EmailAddress.parse(path, allowUTF8: true) {
                case .success(let a): return .success(.rcpt(.mailbox(a), params))
                case .failure(let e): return .failure(.badAddress(verb: verb, e))
                }
            }
        case "DATA": return noArguments(.data)
        case "RSET": return noArguments(.rset)
        case "QUIT": return noArguments(.quit)
        case "STARTTLS": return noArguments(.startTLS)
        case "NOOP": return .success(.noop)
        case "HELP": return .success(.help(argument.isEmpty ? nil : argument))
        case "VRFY", "EXPN":
            guard !argument.isEmpty else { return .failure(.syntax(verb: verb, reason: "\(verb) requires an argument")) }
            return .success(verb == "VRFY" ? .vrfy(argument) : .expn(argument))
        case "AUTH":
            guard !argument.isEmpty else { return .failure(.syntax(verb: verb, reason: "AUTH requires a mechanism")) }
            return .success(.auth(argument))
        case "BDAT":
            // `bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ]`, chunk-size = 1*DIGIT, end-marker = "LAST"
            let parts = argument.split(separator: " ", omittingEmptySubsequences: true)
            guard (1...2).contains(parts.count), parts[0].count <= 18, parts[0].allSatisfy(\.isASCIIDigitChar),
                  let size = Int(parts[0]) else {
                return .failure(.syntax(verb: verb, reason: "BDAT requires a chunk size"))
            }
            if parts.count == 2 {
                guard parts[1].uppercased() == "LAST" else { return .failure(.syntax(verb: verb, reason: "expected LAST")) }
                return .success(.bdat(size: size, last: true))
            }
            return .success(.bdat(size: size, last: false))
        default:
            return .failure(.unknownCommand(String(verb.prefix(32))))
        }
    }

    /// Splits `FROM:<path> params` into the path text (without brackets) and its parameters.
    ///
    /// ```
    /// Path           = "<" [ A-d-l ":" ] Mailbox ">"   ; a source route is accepted and ignored
    /// Mail-parameters = esmtp-param *(SP esmtp-param)
    /// esmtp-param    = esmtp-keyword ["=" esmtp-value]
    /// esmtp-keyword  = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
    /// esmtp-value    = 1*(%d33-60 / %d62-126 / UTF8-non-ascii)
    /// ```
    static func parsePathCommand(verb: String, prefix: String, argument: String)
        -> Result<(Substring, [ESMTPParameter]), SMTPCommandError>
    {
        // All scanning is byte-wise on the UTF-8 view; its indices slice the Substrings directly.
        let prefixBytes = prefix.utf8
        let au = argument.utf8
        guard au.count >= prefixBytes.count,
              zip(au.prefix(prefixBytes.count), prefixBytes).allSatisfy({ a, p in (a >= 0x61 && a <= 0x7A ? a - 0x20 : a) == p }) else {
            return .failure(.syntax(verb: verb, reason: "expected \(verb) \(prefix)<address>"))
        }
        var start = au.index(au.startIndex, offsetBy: prefixBytes.count)
        while start < au.endIndex && au[start] == 0x20 { start = au.index(after: start) }
        var rest = argument[start...]
        var path: Substring
        let ru = rest.utf8
        if ru.first == UInt8(ascii: "<") {
            // Find the closing bracket, skipping quoted strings.
            var inQuote = false
            var escaped = false
            var close: Substring.Index?
            var i = ru.index(after: ru.startIndex)
            while i < ru.endIndex {
                let c = ru[i]
                if escaped { escaped = false } else if c == UInt8(ascii: "\\") && inQuote { escaped = true } else if c == UInt8(ascii: "\"") {
                    inQuote.toggle()
                } else if c == UInt8(ascii: ">") && !inQuote { close = i; break }
                i = ru.index(after: i)
            }
            guard let close else { return .failure(.syntax(verb: verb, reason: "missing closing '>'")) }
            path = rest[ru.index(after: ru.startIndex)..<close]
            rest = rest[ru.index(after: close)...]
            guard rest.utf8.isEmpty || rest.utf8.first == 0x20 else {
                return .failure(.syntax(verb: verb, reason: "unexpected characters after address"))
            }
        } else {
            // Bare address without brackets (tolerated, as Postfix does by default).
            let end = ru.firstIndex(of: 0x20) ?? ru.endIndex
            path = rest[..<end]
            rest = rest[end...]
            if path.utf8.isEmpty { return .failure(.syntax(verb: verb, reason: "missing address")) }
        }
        // Source route `@a,@b:user@host`: ignore the route (RFC 5321 §4.1.1.3, Appendix C).
        if path.first == "@", let colon = path.firstIndex(of: ":") {
            path = path[path.index(after: colon)...]
            // `<@relay:>` is not `<>`: a source route must be followed by a mailbox.
            if path.isEmpty { return .failure(.syntax(verb: verb, reason: "missing mailbox after source route")) }
        }
        var params: [ESMTPParameter] = []
        let isAlnum: (UInt8) -> Bool = { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) }
        var tokens = rest.utf8[...]
        while true {
            // The next space-separated token, without collecting them all first.
            while tokens.first == 0x20 { tokens = tokens.dropFirst() }
            guard !tokens.isEmpty else { break }
            let tokenEnd = tokens.firstIndex(of: 0x20) ?? tokens.endIndex
            let token = tokens[..<tokenEnd]
            tokens = tokens[tokenEnd...]
            let equals = token.firstIndex(of: UInt8(ascii: "="))
            let keyword = token[..<(equals ?? token.endIndex)]
            guard let first = keyword.first, isAlnum(first),
                  keyword.allSatisfy({ isAlnum($0) || $0 == UInt8(ascii: "-") }), keyword.count <= 64 else {
                return .failure(.syntax(verb: verb, reason: "malformed parameter"))
            }
            var value: String?
            if let equals {
                let v = token[token.index(after: equals)...]
                // esmtp-value: %d33-60 / %d62-126 / UTF8-non-ascii (the line is valid UTF-8)
                guard !v.isEmpty, v.allSatisfy({ $0 >= 33 && $0 != 61 && $0 != 127 }) else {
                    return .failure(.syntax(verb: verb, reason: "malformed parameter value"))
                }
                value = String(Substring(v))
            }
            let upper = String(unsafeUninitializedCapacity: keyword.count) { buffer in
                for (i, b) in keyword.enumerated() { buffer[i] = b >= 0x61 && b <= 0x7A ? b - 0x20 : b }
                return keyword.count
            }
            let p = ESMTPParameter(uppercasedKeyword: upper, value)
            if params.contains(where: { $0.keyword == p.keyword }) {
                return .failure(.syntax(verb: verb, reason: "duplicate parameter \(p.keyword)"))
            }
            if params.isEmpty { params.reserveCapacity(4) }
            params.append(p)
        }
        return .success((path, params))
    }
}

extension Character {
    var isASCIIDigitChar: Bool { asciiValue.map { $0 >= 0x30 && $0 <= 0x39 } ?? false }
    var isASCIIAlnum: Bool {
        guard let v = asciiValue else { return false }
        return (v >= 0x30 && v <= 0x39) || (v >= 0x41 && v <= 0x5A) || (v >= 0x61 && v <= 0x7A)
    }
}
