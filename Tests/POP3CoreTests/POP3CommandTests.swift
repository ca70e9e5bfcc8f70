import POP3Core
import Testing

/// Grammar table for ``POP3Command/parse(_:)`` (RFC 1939 §5–7, RFC 2449, RFC 2595, RFC 5034).
@Suite struct POP3CommandTests {
    struct Case: CustomStringConvertible, Sendable {
        var line: [UInt8]
        var expected: Result<POP3Command, POP3CommandError>
        init(_ line: String, _ expected: Result<POP3Command, POP3CommandError>) {
            self.line = Array(line.utf8)
            self.expected = expected
        }
        init(bytes: [UInt8], _ expected: Result<POP3Command, POP3CommandError>) {
            self.line = bytes
            self.expected = expected
        }
        var description: String { String(decoding: line, as: UTF8.self).debugDescription }
    }

    static let valid: [Case] = [
        Case("USER alice@example.test", .success(.user("alice@example.test"))),
        Case("user alice", .success(.user("alice"))),
        Case("UsEr Alice", .success(.user("Alice"))),
        Case("PASS secret", .success(.pass("secret"))),
        Case("pass secret", .success(.pass("secret"))),
        Case("PASS correct horse battery staple", .success(.pass("correct horse battery staple"))),
        Case("PASS  leading space", .success(.pass(" leading space"))),
        Case("PASS trailing space ", .success(.pass("trailing space "))),
        Case("PASS pässwörd", .success(.pass("pässwörd"))),
        Case("AUTH", .success(.auth(mechanism: nil, initialResponse: nil))),
        Case("AUTH plain", .success(.auth(mechanism: "PLAIN", initialResponse: nil))),
        Case("AUTH PLAIN AGFsaWNlAHNlY3JldA==", .success(.auth(mechanism: "PLAIN", initialResponse: "AGFsaWNlAHNlY3JldA=="))),
        Case("AUTH PLAIN =", .success(.auth(mechanism: "PLAIN", initialResponse: "="))),
        Case("AUTH CRAM-MD5", .success(.auth(mechanism: "CRAM-MD5", initialResponse: nil))),
        Case("CAPA", .success(.capa)),
        Case("capa", .success(.capa)),
        Case("STLS", .success(.stls)),
        Case("stls", .success(.stls)),
        Case("QUIT", .success(.quit)),
        Case("Quit", .success(.quit)),
        Case("STAT", .success(.stat)),
        Case("NOOP", .success(.noop)),
        Case("RSET", .success(.rset)),
        Case("LIST", .success(.list(nil))),
        Case("list", .success(.list(nil))),
        Case("LIST 1", .success(.list(1))),
        Case("LIST 0", .success(.list(0))),  // syntactically fine; the state machine says "no such message"
        Case("LIST 007", .success(.list(7))),
        Case("LIST 123456789", .success(.list(123_456_789))),
        Case("UIDL", .success(.uidl(nil))),
        Case("uidl 3", .success(.uidl(3))),
        Case("RETR 1", .success(.retr(1))),
        Case("retr 42", .success(.retr(42))),
        Case("DELE 2", .success(.dele(2))),
        Case("TOP 1 0", .success(.top(1, lines: 0))),
        Case("TOP 1 10", .success(.top(1, lines: 10))),
        Case("top 3 999999999", .success(.top(3, lines: 999_999_999))),
        Case("APOP alice c4c9334bac560ecc979e58001b3e22fb", .success(.apop)),
    ]

    static let invalid: [Case] = [
        Case("", .failure(.unknownCommand)),
        Case("XTND XMIT", .failure(.unknownCommand)),
        Case("HELO", .failure(.unknownCommand)),
        Case(" STAT", .failure(.unknownCommand)),
        Case("STA", .failure(.unknownCommand)),
        Case("USER", .failure(.syntax("USER"))),
        Case("USER ", .failure(.syntax("USER"))),
        Case("USER a b", .failure(.syntax("USER"))),
        Case("PASS", .failure(.syntax("PASS"))),
        Case("PASS ", .failure(.syntax("PASS"))),
        Case("AUTH PLAIN a b", .failure(.syntax("AUTH"))),
        Case("AUTH  x", .failure(.syntax("AUTH"))),
        Case("CAPA x", .failure(.syntax("CAPA"))),
        Case("STLS now", .failure(.syntax("STLS"))),
        Case("QUIT ", .failure(.syntax("QUIT"))),
        Case("STAT 1", .failure(.syntax("STAT"))),
        Case("NOOP x", .failure(.syntax("NOOP"))),
        Case("RSET 1", .failure(.syntax("RSET"))),
        Case("LIST +1", .failure(.syntax("LIST"))),
        Case("LIST -1", .failure(.syntax("LIST"))),
        Case("LIST 1234567890", .failure(.syntax("LIST"))),
        Case("LIST 99999999999999999999999", .failure(.syntax("LIST"))),
        Case("LIST 1 2", .failure(.syntax("LIST"))),
        Case("LIST  1", .failure(.syntax("LIST"))),
        Case("LIST a", .failure(.syntax("LIST"))),
        Case("LIST 1a", .failure(.syntax("LIST"))),
        Case("LIST ١", .failure(.syntax("LIST"))),  // ARABIC-INDIC DIGIT ONE is a number, not a DIGIT
        Case("LIST ", .failure(.syntax("LIST"))),
        Case("UIDL -3", .failure(.syntax("UIDL"))),
        Case("RETR", .failure(.syntax("RETR"))),
        Case("RETR +1", .failure(.syntax("RETR"))),
        Case("RETR 1 2", .failure(.syntax("RETR"))),
        Case("DELE", .failure(.syntax("DELE"))),
        Case("DELE x", .failure(.syntax("DELE"))),
        Case("TOP", .failure(.syntax("TOP"))),
        Case("TOP 1", .failure(.syntax("TOP"))),
        Case("TOP 1 -1", .failure(.syntax("TOP"))),
        Case("TOP 1 +1", .failure(.syntax("TOP"))),
        Case("TOP -1 1", .failure(.syntax("TOP"))),
        Case("TOP 1 2 3", .failure(.syntax("TOP"))),
        Case("TOP 1 1234567890", .failure(.syntax("TOP"))),
        Case(bytes: Array("STAT".utf8) + [0x00], .failure(.invalidCharacters)),
        Case(bytes: Array("PASS a".utf8) + [0x0D, 0x62], .failure(.invalidCharacters)),
        Case(bytes: Array("USER ".utf8) + [0x7F], .failure(.invalidCharacters)),
        Case(bytes: Array("USER ".utf8) + [0xFF, 0xFE], .failure(.invalidCharacters)),
        Case(bytes: Array("PASS ".utf8) + [0xC3], .failure(.invalidCharacters)),
    ]

    @Test(arguments: valid) func parsesValidCommands(_ c: Case) {
        #expect(POP3Command.parse(c.line) == c.expected)
    }

    @Test(arguments: invalid) func rejectsInvalidCommands(_ c: Case) {
        #expect(POP3Command.parse(c.line) == c.expected)
    }

    @Test func keywordNeverShowsArguments() throws {
        let pass = try POP3Command.parse(Array("PASS hunter2".utf8)).get()
        #expect(pass.keyword == "PASS")
        #expect(!String(describing: pass.keyword).contains("hunter2"))
        let auth = try POP3Command.parse(Array("AUTH PLAIN AGEAYg==".utf8)).get()
        #expect(auth.keyword == "AUTH")
        let keywords = Self.valid.compactMap { try? POP3Command.parse($0.line).get().keyword }
        #expect(Set(keywords) == ["USER", "PASS", "AUTH", "CAPA", "STLS", "QUIT", "STAT", "NOOP", "RSET", "LIST", "UIDL",
                                  "RETR", "DELE", "TOP", "APOP"])
    }

    @Test func parsesFromAnyByteCollection() {
        let line: ArraySlice<UInt8> = Array("xxRETR 5".utf8)[2...]
        #expect(POP3Command.parse(line) == .success(.retr(5)))
    }
}

@Suite struct POP3ResponseTests {
    @Test func statusLines() {
        #expect(POP3Response.ok("hello").description == "+OK hello")
        #expect(POP3Response.ok("").description == "+OK")
        #expect(POP3Response.err("no").description == "-ERR no")
        #expect(POP3Response.err("Authentication failed", code: "AUTH").description == "-ERR [AUTH] Authentication failed")
        #expect(POP3Response.continuation().description == "+ ")
        #expect(POP3Response.continuation("dGVzdA==").description == "+ dGVzdA==")
    }
}
