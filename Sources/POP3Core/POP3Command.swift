/// A POP3 command.
///
/// - SeeAlso: RFC 1939 §5–7, RFC 2449 (CAPA), RFC 2595 §4 (STLS), RFC 5034 (AUTH)
public enum POP3Command: Hashable, Sendable {
    case user(String)
    case pass(String)
    /// `AUTH mechanism [initial-response]`; `AUTH` alone lists mechanisms.
    case auth(mechanism: String?, initialResponse: String?)
    case capa
    case stls
    case quit
    case stat
    case list(Int?)
    case retr(Int)
    case dele(Int)
    case noop
    case rset
    case top(Int, lines: Int)
    case uidl(Int?)
    /// `APOP name digest` — recognised so it can be refused precisely.
    case apop

    /// The keyword, for logs. PASS and AUTH arguments are never shown.
    public var keyword: String {
        switch self {
        case .user: "USER"
        case .pass: "PASS"
        case .auth: "AUTH"
        case .capa: "CAPA"
        case .stls: "STLS"
        case .quit: "QUIT"
        case .stat: "STAT"
        case .list: "LIST"
        case .retr: "RETR"
        case .dele: "DELE"
        case .noop: "NOOP"
        case .rset: "RSET"
        case .top: "TOP"
        case .uidl: "UIDL"
        case .apop: "APOP"
        }
    }

    /// Parses one command line without its CRLF.
    ///
    /// ```
    /// command  = keyword *(SP param)      ; keyword 3-4 letters, case-insensitive (RFC 2449 §3)
    /// msg      = 1*DIGIT                  ; 1-based, no leading sign
    /// ```
    public static func parse(_ line: some Collection<UInt8>) -> Result<POP3Command, POP3CommandError> {
        if line.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) { return .failure(.invalidCharacters) }
        guard let text = String(validating: line, as: UTF8.self) else { return .failure(.invalidCharacters) }
        let parts = text.split(separator: " ", omittingEmptySubsequences: false)
        let keyword = parts[0].uppercased()
        let args = Array(parts.dropFirst())
        func number(_ s: Substring) -> Int? {
            guard !s.isEmpty, s.count <= 9, s.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            return Int(s)
        }
        func noArgs(_ c: POP3Command) -> Result<POP3Command, POP3CommandError> {
            args.isEmpty ? .success(c) : .failure(.syntax(keyword))
        }
        switch keyword {
        case "USER":
            // One argument: the login name (a full address, which contains no spaces).
            guard args.count == 1, !args[0].isEmpty else { return .failure(.syntax(keyword)) }
            return .success(.user(String(args[0])))
        case "PASS":
            // RFC 1939 §7: the password may contain spaces; it is the rest of the line.
            guard text.count > 5 else { return .failure(.syntax(keyword)) }
            return .success(.pass(String(text.dropFirst(5))))
        case "AUTH":
            if args.isEmpty { return .success(.auth(mechanism: nil, initialResponse: nil)) }
            guard args.count <= 2, !args[0].isEmpty else { return .failure(.syntax(keyword)) }
            return .success(.auth(mechanism: args[0].uppercased(), initialResponse: args.count == 2 ? String(args[1]) : nil))
        case "CAPA": return noArgs(.capa)
        case "STLS": return noArgs(.stls)
        case "QUIT": return noArgs(.quit)
        case "STAT": return noArgs(.stat)
        case "NOOP": return noArgs(.noop)
        case "RSET": return noArgs(.rset)
        case "LIST", "UIDL":
            if args.isEmpty { return .success(keyword == "LIST" ? .list(nil) : .uidl(nil)) }
            guard args.count == 1, let n = number(args[0]) else { return .failure(.syntax(keyword)) }
            return .success(keyword == "LIST" ? .list(n) : .uidl(n))
        case "RETR", "DELE":
            guard args.count == 1, let n = number(args[0]) else { return .failure(.syntax(keyword)) }
            return .success(keyword == "RETR" ? .retr(n) : .dele(n))
        case "TOP":
            guard args.count == 2, let n = number(args[0]), let m = number(args[1]) else { return .failure(.syntax(keyword)) }
            return .success(.top(n, lines: m))
        case "APOP":
            return .success(.apop)
        default:
            return .failure(.unknownCommand)
        }
    }
}

/// Why a command line was refused.
public enum POP3CommandError: Error, Hashable, Sendable {
    case unknownCommand
    case syntax(String)
    case invalidCharacters
    case lineTooLong
}
