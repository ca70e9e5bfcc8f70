import MailCore
import SMTPCore
import Testing

private func mailbox(_ local: String, _ domain: String) -> EmailAddress { EmailAddress(localPart: local, domain: domain) }
private let alice = mailbox("alice", "example.test")
private let bob = mailbox("bob", "example.test")

@Suite("SMTPCommandLineParser grammar")
struct SMTPCommandLineParserTests {
    struct Valid: Sendable, CustomTestStringConvertible {
        var line: String
        var command: SMTPCommand
        init(_ line: String, _ command: SMTPCommand) { self.line = line; self.command = command }
        var testDescription: String { line.count > 70 ? "\(line.prefix(60))…" : line }
    }

    static let valid: [Valid] = [
        // EHLO / HELO
        .init("EHLO client.example.test", .ehlo("client.example.test")),
        .init("ehlo client", .ehlo("client")),
        .init("EhLo [192.0.2.1]", .ehlo("[192.0.2.1]")),
        .init("EHLO [IPv6:2001:db8::1]", .ehlo("[IPv6:2001:db8::1]")),
        .init("EHLO   client  ", .ehlo("client")),
        .init("EHLO\tclient", .ehlo("client")),
        .init("EHLO \(String(repeating: "h", count: 255))", .ehlo(String(repeating: "h", count: 255))),
        .init("HELO client.example.test", .helo("client.example.test")),
        .init("helo x", .helo("x")),
        // MAIL
        .init("MAIL FROM:<alice@example.test>", .mail(.mailbox(alice), [])),
        .init("mail from:<alice@example.test>", .mail(.mailbox(alice), [])),
        .init("MAIL FROM: <alice@example.test>", .mail(.mailbox(alice), [])),
        .init("MAIL FROM:alice@example.test", .mail(.mailbox(alice), [])),
        .init("MAIL FROM:alice@example.test SIZE=5", .mail(.mailbox(alice), [.init("SIZE", "5")])),
        .init("MAIL FROM:<>", .mail(.null, [])),
        .init("MAIL FROM:<> SIZE=1000 BODY=8BITMIME", .mail(.null, [.init("SIZE", "1000"), .init("BODY", "8BITMIME")])),
        .init("MAIL FROM:<alice@example.test> smtputf8", .mail(.mailbox(alice), [.init("SMTPUTF8")])),
        .init("MAIL FROM:<alice@example.test>  SIZE=10   body=7bit ", .mail(.mailbox(alice), [.init("SIZE", "10"), .init("BODY", "7bit")])),
        .init("MAIL FROM:<alice@example.test> X-FOO=bar-baz", .mail(.mailbox(alice), [.init("X-FOO", "bar-baz")])),
        .init("MAIL FROM:<alice@example.test> SIZE=abc", .mail(.mailbox(alice), [.init("SIZE", "abc")])),  // value checked by the machine
        .init("MAIL FROM:<alice@example.test> ENVID=ü", .mail(.mailbox(alice), [.init("ENVID", "ü")])),
        .init("MAIL FROM:<@relay1.test,@relay2.test:alice@example.test>", .mail(.mailbox(alice), [])),
        .init("MAIL FROM:<@relay1.test:alice@example.test>", .mail(.mailbox(alice), [])),
        .init("MAIL FROM:<\"john doe\"@example.test>", .mail(.mailbox(mailbox("john doe", "example.test")), [])),
        .init("MAIL FROM:<\"a>b\"@example.test> SIZE=1", .mail(.mailbox(mailbox("a>b", "example.test")), [.init("SIZE", "1")])),
        .init("MAIL FROM:<\"a\\\"> \"@example.test>", .mail(.mailbox(mailbox("a\"> ", "example.test")), [])),
        .init("MAIL FROM:<alice@[192.0.2.1]>", .mail(.mailbox(mailbox("alice", "[192.0.2.1]")), [])),
        .init("MAIL FROM:<用户@例子.测试> SMTPUTF8", .mail(.mailbox(mailbox("用户", "例子.测试")), [.init("SMTPUTF8")])),
        .init("MAIL FROM:<用户@例子.测试>", .mail(.mailbox(mailbox("用户", "例子.测试")), [])),  // 553 is the machine's call
        // RCPT
        .init("RCPT TO:<bob@example.test>", .rcpt(.mailbox(bob), [])),
        .init("rcpt to: <bob@example.test>", .rcpt(.mailbox(bob), [])),
        .init("RCPT TO:bob@example.test", .rcpt(.mailbox(bob), [])),
        .init("RCPT TO:<Postmaster>", .rcpt(.postmaster, [])),
        .init("RCPT TO:<postmaster>", .rcpt(.postmaster, [])),
        .init("RCPT TO:<POSTMASTER>", .rcpt(.postmaster, [])),
        .init("RCPT TO:<postmaster@example.test>", .rcpt(.mailbox(mailbox("postmaster", "example.test")), [])),
        .init("RCPT TO:<bob@[IPv6:2001:db8::1]>", .rcpt(.mailbox(mailbox("bob", "[IPv6:2001:db8::1]")), [])),
        .init("RCPT TO:<bob@example.test> NOTIFY=NEVER", .rcpt(.mailbox(bob), [.init("NOTIFY", "NEVER")])),
        .init("RCPT TO:<@relay.test:bob@example.test>", .rcpt(.mailbox(bob), [])),
        // Commands without arguments
        .init("DATA", .data), .init("data", .data), .init("DATA ", .data),
        .init("RSET", .rset), .init("QUIT", .quit), .init("quit", .quit),
        .init("STARTTLS", .startTLS), .init("StartTLS", .startTLS),
        .init("NOOP", .noop), .init("NOOP anything at all", .noop),
        .init("HELP", .help(nil)), .init("HELP MAIL", .help("MAIL")),
        .init("VRFY bob", .vrfy("bob")), .init("EXPN staff", .expn("staff")),
        .init("AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=", .auth("PLAIN dGVzdAB0ZXN0AHRlc3Q=")),
        // BDAT
        .init("BDAT 0", .bdat(size: 0, last: false)),
        .init("BDAT 1000", .bdat(size: 1000, last: false)),
        .init("BDAT 1000 LAST", .bdat(size: 1000, last: true)),
        .init("bdat 5 last", .bdat(size: 5, last: true)),
        .init("BDAT 0 LAST", .bdat(size: 0, last: true)),
        .init("BDAT 10  LAST", .bdat(size: 10, last: true)),
        .init("BDAT 007", .bdat(size: 7, last: false)),
        .init("BDAT 999999999999999999", .bdat(size: 999_999_999_999_999_999, last: false)),
    ]

    @Test("valid command lines", arguments: valid)
    func validLine(_ v: Valid) {
        #expect(SMTPCommandLineParser.parse(Array(v.line.utf8)) == .success(v.command))
    }

    /// The shape of an expected failure (the `reason` text of `.syntax` is not compared).
    enum Expected: Sendable, CustomStringConvertible {
        case unknown(String)
        case syntax(String)
        case badAddress(String, AddressError)
        case invalidCharacters
        func matches(_ e: SMTPCommandError) -> Bool {
            switch (self, e) {
            case (.unknown(let a), .unknownCommand(let b)): a == b
            case (.syntax(let a), .syntax(let b, _)): a == b
            case (.badAddress(let v, let r), .badAddress(let v2, let r2)): v == v2 && r == r2
            case (.invalidCharacters, .invalidCharacters): true
            default: false
            }
        }
        var description: String {
            switch self {
            case .unknown(let v): "unknown(\(v))"
            case .syntax(let v): "syntax(\(v))"
            case .badAddress(let v, let r): "badAddress(\(v), \(r))"
            case .invalidCharacters: "invalidCharacters"
            }
        }
    }

    struct Invalid: Sendable, CustomTestStringConvertible {
        var line: [UInt8]
        var expected: Expected
        init(_ line: String, _ expected: Expected) { self.line = Array(line.utf8); self.expected = expected }
        init(bytes: [UInt8], _ expected: Expected) { self.line = bytes; self.expected = expected }
        var testDescription: String {
            let s = line.map { $0 < 0x20 || $0 >= 0x7F ? "\\x\(String($0, radix: 16))" : String(UnicodeScalar($0)) }.joined()
            return "\(s.count > 60 ? "\(s.prefix(50))…" : s) → \(expected)"
        }
    }

    static let invalid: [Invalid] = [
        .init("", .unknown("")),
        .init("FOO", .unknown("FOO")),
        .init("foo bar", .unknown("FOO")),
        .init("MAILFROM:<a@example.test>", .unknown("MAILFROM:<A@EXAMPLE.TEST>")),
        .init(String(repeating: "X", count: 100), .unknown(String(repeating: "X", count: 32))),
        // EHLO / HELO
        .init("EHLO", .syntax("EHLO")),
        .init("EHLO   ", .syntax("EHLO")),
        .init("HELO", .syntax("HELO")),
        .init("EHLO a b", .syntax("EHLO")),
        .init("HELO a b", .syntax("HELO")),
        .init("EHLO \(String(repeating: "h", count: 256))", .syntax("EHLO")),
        // MAIL
        .init("MAIL", .syntax("MAIL")),
        .init("MAIL TO:<alice@example.test>", .syntax("MAIL")),
        .init("MAIL FROM <alice@example.test>", .syntax("MAIL")),
        .init("MAIL FROM:", .syntax("MAIL")),
        .init("MAIL FROM:<alice@example.test", .syntax("MAIL")),
        .init("MAIL FROM:<\"alice>@example.test", .syntax("MAIL")),
        .init("MAIL FROM:<alice@example.test>junk", .syntax("MAIL")),
        .init("MAIL FROM:<alice@example.test>\tSIZE=1", .syntax("MAIL")),
        .init("MAIL FROM:<alice@example.test> =", .syntax("MAIL")),
        .init("MAIL FROM:<alice@example.test> =1", .syntax("MAIL")),
        .init("MAIL FROM:<alice@example.test> SIZE=", .syntax("MAIL")),
        .init("MAIL FROM:<alice@example.test> SIZE=1=2", .syntax("MAIL")),
        .init("MAIL FROM:<alice@example.test> SIZE=1 SIZE=2", .syntax("MAIL")),
        .init("MAIL FROM:<alice@example.test> size=1 SIZE=1", .syntax("MAIL")),
        .init("MAIL FROM:<alice@example.test> SMTPUTF8 smtputf8", .syntax("MAIL")),
        .init("MAIL FROM:<alice@example.test> -X=1", .syntax("MAIL")),
        .init("MAIL FROM:<alice@example.test> SI_ZE=1", .syntax("MAIL")),
        .init("MAIL FROM:<alice@example.test> ü=1", .syntax("MAIL")),
        .init("MAIL FROM:<alice@example.test> \(String(repeating: "K", count: 65))", .syntax("MAIL")),
        .init("MAIL FROM:<@relay.test:>", .syntax("MAIL")),  // a source route is not a null path
        .init("MAIL FROM:<alice>", .badAddress("MAIL", .syntax)),
        .init("MAIL FROM:<alice@>", .badAddress("MAIL", .badDomain)),
        .init("MAIL FROM:<alice@-x.test>", .badAddress("MAIL", .badDomain)),
        .init("MAIL FROM:<@relay.test,@relay2.test>", .badAddress("MAIL", .syntax)),
        .init("MAIL FROM:<\(String(repeating: "a", count: 65))@example.test>", .badAddress("MAIL", .localPartTooLong)),
        .init("MAIL FROM:<a@\(String(repeating: "d.", count: 128))test>", .badAddress("MAIL", .domainTooLong)),
        // RCPT
        .init("RCPT", .syntax("RCPT")),
        .init("RCPT FROM:<bob@example.test>", .syntax("RCPT")),
        .init("RCPT TO:", .syntax("RCPT")),
        .init("RCPT TO:<bob@example.test", .syntax("RCPT")),
        .init("RCPT TO:<bob@example.test> NOTIFY=", .syntax("RCPT")),
        .init("RCPT TO:<@relay.test:>", .syntax("RCPT")),
        .init("RCPT TO:<>", .badAddress("RCPT", .syntax)),
        .init("RCPT TO:<bob>", .badAddress("RCPT", .syntax)),
        .init("RCPT TO:<bob@example..test>", .badAddress("RCPT", .badDomain)),
        .init("RCPT TO:<\(String(repeating: "b", count: 65))@example.test>", .badAddress("RCPT", .localPartTooLong)),
        // No-argument commands with arguments
        .init("DATA x", .syntax("DATA")), .init("RSET now", .syntax("RSET")),
        .init("QUIT now", .syntax("QUIT")), .init("STARTTLS please", .syntax("STARTTLS")),
        .init("VRFY", .syntax("VRFY")), .init("EXPN", .syntax("EXPN")), .init("AUTH", .syntax("AUTH")),
        // BDAT
        .init("BDAT", .syntax("BDAT")), .init("BDAT x", .syntax("BDAT")), .init("BDAT -1", .syntax("BDAT")),
        .init("BDAT +5", .syntax("BDAT")), .init("BDAT 1x", .syntax("BDAT")), .init("BDAT 1 FIRST", .syntax("BDAT")),
        .init("BDAT 1 LAST x", .syntax("BDAT")), .init("BDAT LAST", .syntax("BDAT")),
        .init("BDAT 1000000000000000000", .syntax("BDAT")), .init("BDAT ١٢", .syntax("BDAT")),
        // Control characters and bad UTF-8
        .init(bytes: bytes("NOOP") + [0], .invalidCharacters),
        .init(bytes: bytes("NOOP \u{1}"), .invalidCharacters),
        .init(bytes: bytes("NOOP \u{7F}"), .invalidCharacters),
        .init(bytes: bytes("EHLO a\rb"), .invalidCharacters),
        .init(bytes: bytes("MAIL FROM:<a@example.test>") + [0x0A], .invalidCharacters),
        .init(bytes: bytes("EHLO ") + [0xFF, 0xFE], .invalidCharacters),
        .init(bytes: bytes("EHLO ") + [0xC3], .invalidCharacters),
        .init(bytes: bytes("RCPT TO:<a@example.test") + [0x00] + bytes(">"), .invalidCharacters),
    ]

    @Test("invalid command lines", arguments: invalid)
    func invalidLine(_ v: Invalid) {
        let result = SMTPCommandLineParser.parse(v.line)
        switch result {
        case .success(let c): Issue.record("parsed as \(c), expected \(v.expected)")
        case .failure(let e): #expect(v.expected.matches(e), "got \(e)")
        }
    }

    @Test("the verb is reported upper-cased in syntax errors")
    func syntaxVerb() {
        #expect(SMTPCommandLineParser.parse(bytes("mail to:<a@b.test>")) == .failure(.syntax(verb: "MAIL", reason: "expected MAIL FROM:<address>")))
        #expect(SMTPCommandLineParser.parse(bytes("data now")) == .failure(.syntax(verb: "DATA", reason: "DATA takes no arguments")))
        #expect(SMTPCommandLineParser.parse(bytes("MAIL FROM:<a@b.test> SIZE=1 size=2")) == .failure(.syntax(verb: "MAIL", reason: "duplicate parameter SIZE")))
    }

    @Test("ESMTP keywords are upper-cased, values kept as written")
    func parameterCase() {
        #expect(ESMTPParameter("body", "8bitmime") == ESMTPParameter("BODY", "8bitmime"))
        #expect(ESMTPParameter("body", "8bitmime").keyword == "BODY")
        #expect(ESMTPParameter("body", "8bitmime").value == "8bitmime")
    }

    @Test("paths print with angle brackets", arguments: [
        (ReversePath.null.description, "<>"),
        (ReversePath.mailbox(alice).description, "<alice@example.test>"),
        (ForwardPath.postmaster.description, "<Postmaster>"),
        (ForwardPath.mailbox(EmailAddress(localPart: "john doe", domain: "example.test")).description, "<\"john doe\"@example.test>"),
    ])
    func pathDescription(_ actual: String, _ expected: String) {
        #expect(actual == expected)
    }

    @Test("verbs", arguments: [
        (SMTPCommand.ehlo("x"), "EHLO"), (.helo("x"), "HELO"), (.mail(.null, []), "MAIL"), (.rcpt(.postmaster, []), "RCPT"),
        (.data, "DATA"), (.bdat(size: 1, last: true), "BDAT"), (.rset, "RSET"), (.noop, "NOOP"), (.quit, "QUIT"),
        (.vrfy("x"), "VRFY"), (.expn("x"), "EXPN"), (.help(nil), "HELP"), (.startTLS, "STARTTLS"), (.auth("PLAIN"), "AUTH"),
    ])
    func verbs(_ command: SMTPCommand, _ verb: String) {
        #expect(command.verb == verb)
    }

    @Test("ReversePath.address")
    func reversePathAddress() {
        #expect(ReversePath.null.address == nil)
        #expect(ReversePath.mailbox(alice).address == alice)
    }
}
