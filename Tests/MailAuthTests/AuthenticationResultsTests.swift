@testable import MailAuth
import Testing

@Suite struct AuthenticationResultsTests {
    typealias AR = AuthenticationResults

    /// `ptype.property` = `value`.
    private func property(_ name: String, _ value: String) -> AR.Property {
        let parts = name.split(separator: ".", maxSplits: 1)
        return AR.Property(ptype: String(parts[0]), property: parts.count > 1 ? String(parts[1]) : "", value: value)
    }

    /// The field value: what follows `Authentication-Results:`.
    private func value(of field: String) -> String {
        #expect(field.hasPrefix("Authentication-Results:"))
        return String(field.dropFirst("Authentication-Results:".count))
    }

    /// The three statements of the usual inbound field.
    private var typical: AR {
        AR(authservID: "mx.example.test", results: [
            .init(method: "dkim", result: "pass", properties: [
                property("header.d", "example.org"), property("header.s", "ed2026"),
                property("header.a", "ed25519-sha256"), property("header.b", "AbCdEfGh"),
            ]),
            .init(method: "spf", result: "pass", properties: [property("smtp.mailfrom", "example.org")],
                  comment: "sender IP is 192.0.2.1"),
            .init(method: "dmarc", result: "pass", properties: [property("header.from", "example.org")], comment: "p=reject"),
        ])
    }

    // MARK: Building

    @Test func noResultsIsNone() {
        let empty = AR(authservID: "mx.example.test", results: [])
        #expect(empty.field() == "Authentication-Results: mx.example.test; none\r\n")
        #expect(empty.field(lineEnding: "\n") == "Authentication-Results: mx.example.test; none\n")
        let long = AR(authservID: String(repeating: "a", count: 60) + ".example", results: [])
        #expect(long.field() == "Authentication-Results: \(String(repeating: "a", count: 60)).example;\r\n\tnone\r\n",
                "\"; none\" goes to a line of its own when it would pass 78 columns")
    }

    @Test func oneResult() {
        let ar = AR(authservID: "mx.example.test",
                    results: [.init(method: "dkim", result: "pass", properties: [property("header.d", "example.org")])])
        #expect(ar.field() == "Authentication-Results: mx.example.test;\r\n\tdkim=pass header.d=example.org\r\n")
    }

    @Test func severalResultsAreFoldedAt78Columns() {
        let field = typical.field()
        #expect(field == """
            Authentication-Results: mx.example.test;\r
            \tdkim=pass header.d=example.org header.s=ed2026 header.a=ed25519-sha256\r
            \t  header.b=AbCdEfGh;\r
            \tspf=pass (sender IP is 192.0.2.1) smtp.mailfrom=example.org;\r
            \tdmarc=pass (p=reject) header.from=example.org\r

            """)
        for line in field.split(separator: "\r\n" as Character) {
            let columns = line.reduce(0) { $0 + ($1 == "\t" ? 8 : 1) }
            #expect(columns <= 78, "\(line)")
        }
        #expect(typical.field(lineEnding: "\n") == field.replacing("\r\n", with: "\n"))
    }

    @Test func foldingHappensPastColumn78AndNotBefore() {
        let d51 = String(repeating: "a", count: 47) + ".org"  // "\tdkim=pass header.d=" + d51 is 78 columns
        let d52 = "a" + d51
        func dkim(_ d: String) -> AR.Result { .init(method: "dkim", result: "pass", properties: [property("header.d", d)]) }
        #expect(AR(authservID: "mx.example.test", results: [dkim(d51)]).field()
                == "Authentication-Results: mx.example.test;\r\n\tdkim=pass header.d=\(d51)\r\n")
        #expect(AR(authservID: "mx.example.test", results: [dkim(d52)]).field()
                == "Authentication-Results: mx.example.test;\r\n\tdkim=pass\r\n\t  header.d=\(d52)\r\n")
        #expect(AR(authservID: "mx.example.test", results: [dkim(d51), .init(method: "spf", result: "pass")]).field()
                == "Authentication-Results: mx.example.test;\r\n\tdkim=pass\r\n\t  header.d=\(d51);\r\n\tspf=pass\r\n",
                "the \";\" counts")
    }

    @Test func aLongCommentIsFoldedBetweenItsWords() {
        let ar = AR(authservID: "mx.example.test", results: [
            .init(method: "spf", result: "pass", properties: [property("smtp.mailfrom", "bounce@example.org")],
                  comment: "mx.example.test: domain of bounce@example.org designates 192.0.2.1 as permitted sender"),
        ])
        #expect(ar.field() == """
            Authentication-Results: mx.example.test;\r
            \tspf=pass (mx.example.test: domain of bounce@example.org designates\r
            \t  192.0.2.1 as permitted sender) smtp.mailfrom=bounce@example.org\r

            """)
        let parsed = AR.parse(fieldValue: value(of: ar.field()))
        #expect(parsed?.results.first?.comment == ar.results[0].comment, "folding inside a comment changes nothing")
    }

    @Test func valuesThatAreNotTokensAreQuoted() {
        let ar = AR(authservID: "mx.example.test", results: [
            .init(method: "spf", result: "pass", properties: [property("smtp.mailfrom", "\"a b\"@example.org")]),
            .init(method: "spf", result: "pass", properties: [property("smtp.mailfrom", "a b@example.org")]),
            .init(method: "arc", result: "pass",
                  properties: [property("smtp.remote-ip", "2001:db8::1"), property("header.oldest-pass", "0")]),
            .init(method: "dkim", result: "fail", reason: "body hash did not verify",
                  properties: [property("header.i", "@example.org"), property("header.b", "ab/cdefg")]),
            .init(method: "x-test", result: "pass", properties: [
                property("policy.text", "a\"b\\c"), property("smtp.mailfrom", "user@localhost"),
                property("smtp.helo", ""), property("smtp.mailfrom", "bounce+SRS=x/y@example.org"),
            ]),
        ])
        #expect(ar.field() == """
            Authentication-Results: mx.example.test;\r
            \tspf=pass smtp.mailfrom="a b"@example.org;\r
            \tspf=pass smtp.mailfrom="a b"@example.org;\r
            \tarc=pass smtp.remote-ip="2001:db8::1" header.oldest-pass=0;\r
            \tdkim=fail reason="body hash did not verify" header.i=@example.org\r
            \t  header.b="ab/cdefg";\r
            \tx-test=pass policy.text="a\\"b\\\\c" smtp.mailfrom="user@localhost"\r
            \t  smtp.helo="" smtp.mailfrom=bounce+SRS=x/y@example.org\r

            """)
    }

    @Test func aReasonIsAlwaysQuoted() {
        let ar = AR(authservID: "mx.example.test", results: [.init(method: "dkim", result: "neutral", reason: "ok")])
        #expect(ar.field() == "Authentication-Results: mx.example.test;\r\n\tdkim=neutral reason=\"ok\"\r\n")
    }

    @Test func nothingGivenCanEndTheFieldOrBreakItsGrammar() {
        let ar = AR(authservID: "mx.example.test\r\nX-Evil: 1", results: [
            .init(method: "DKIM", result: "Pass", reason: "bad\r\nX-Evil: 2",
                  properties: [property("header.from", "evil.example\r\nX-Evil: 3")], comment: "x\r\nX-Evil: 4"),
            .init(method: "spf", result: "pass", comment: "a (b"),
            .init(method: "spf", result: "pass", comment: "a) (b) c\\"),
            .init(method: "??", result: "pass"),
            .init(method: "dmarc", result: ""),
            .init(method: "dkim", result: "pass", properties: [.init(ptype: "", property: "d", value: "example.org")]),
        ])
        #expect(ar.field() == """
            Authentication-Results: "mx.example.test  X-Evil: 1";\r
            \tdkim=pass (x X-Evil: 4) reason="bad  X-Evil: 2"\r
            \t  header.from="evil.example  X-Evil: 3";\r
            \tspf=pass (a \\(b);\r
            \tspf=pass (a\\) (b) c\\\\);\r
            \tdkim=pass\r

            """)
        #expect(AR.parse(fieldValue: value(of: ar.field()))?.results.map(\.comment) == ["x X-Evil: 4", "a (b", "a) (b) c\\", nil])
    }

    @Test func methodsAndKeywordsAreNormalised() {
        let ar = AR(authservID: "mx.example.test", results: [
            .init(method: "DKIM/1", result: "PASS", properties: [.init(ptype: "Header", property: "D-", value: "example.org")]),
            .init(method: "dkim/02", result: "pass"),
            .init(method: "spf/x", result: "pass"),
        ])
        #expect(ar.field() == "Authentication-Results: mx.example.test;\r\n\tdkim=pass header.d=example.org;\r\n\tdkim/2=pass;\r\n\tspf=pass\r\n")
    }

    @Test func allStatementsUnusableIsNone() {
        let ar = AR(authservID: "mx.example.test", results: [.init(method: "", result: "pass")])
        #expect(ar.field() == "Authentication-Results: mx.example.test; none\r\n")
    }

    @Test func textIsCutToItsLimits() {
        let ar = AR(authservID: "mx.example.test", results: [
            .init(method: "dkim", result: "fail", reason: String(repeating: "r", count: 10_000),
                  properties: [property("header.d", String(repeating: "d", count: 10_000))],
                  comment: String(repeating: "c", count: 10_000)),
        ])
        let field = ar.field()
        let parsed = AR.parse(fieldValue: value(of: field))?.results.first
        #expect(parsed?.reason?.count == AR.maximumTextLength)
        #expect(parsed?.comment?.count == AR.maximumTextLength)
        #expect(parsed?["header.d"]?.count == AR.maximumValueLength)
        #expect(field.split(separator: "\r\n" as Character).allSatisfy { $0.utf8.count <= 998 })
        let multibyte = AR(authservID: "mx.example.test", results: [.init(method: "dkim", result: "pass", comment: String(repeating: "é", count: 200))])
        #expect(AR.parse(fieldValue: value(of: multibyte.field()))?.results.first?.comment == String(repeating: "é", count: 128),
                "cut at a character boundary")
        let many = AR(authservID: "mx.example.test", results: Array(repeating: .init(method: "dkim", result: "pass"), count: 100))
        #expect(many.field().ranges(of: "dkim=pass").count == AR.maximumResults)
    }

    @Test func signatureReferencesTellSignaturesApart() {
        #expect(AR.signatureReferences(["AbCdEfGh1234", "AbCdEfGhXYZ", "Zz99 88\r\n\t77aa", "abc"])
                == ["AbCdEfGh1", "AbCdEfGhX", "Zz998877", "abc"])
        #expect(AR.signatureReferences(["AbCdEfGh1234", "AbCdEfGh1234"]) == ["AbCdEfGh", "AbCdEfGh"],
                "the same signature twice cannot be told apart")
    }

    // MARK: The authserv-id

    @Test func authservIDOfOrdinaryValues() {
        #expect(AR.authservID(ofFieldValue: " mx.example.test; none") == "mx.example.test")
        #expect(AR.authservID(ofFieldValue: "mx.example.test;dkim=pass") == "mx.example.test")
        #expect(AR.authservID(ofFieldValue: "\r\n\tmx.example.test;\r\n\tdkim=pass header.d=example.org\r\n") == "mx.example.test")
        #expect(AR.authservID(ofFieldValue: " mx.example.test") == "mx.example.test", "no statements: the id is still claimed")
        let raw = Array("Authentication-Results: MX.Example.Test; none\r\n".utf8)
        #expect(AR.authservID(ofFieldValue: raw[24...]) == "MX.Example.Test")
    }

    @Test func authservIDAfterComments() {
        #expect(AR.authservID(ofFieldValue: " (foo (nested)) mx.example.test; dkim=pass") == "mx.example.test")
        #expect(AR.authservID(ofFieldValue: "(a \\) b)mx.example.test(c);none") == "mx.example.test")
        #expect(AR.authservID(ofFieldValue: " ietfa.amsl.com (amavisd-new); dkim=pass") == "ietfa.amsl.com")
        let deep = String(repeating: "(", count: 30_000) + String(repeating: ")", count: 30_000)
        #expect(AR.authservID(ofFieldValue: deep + " mx.example.test; none") == "mx.example.test", "no recursion")
    }

    @Test func quotedAuthservID() {
        #expect(AR.authservID(ofFieldValue: " \"mx.example.test\"; none") == "mx.example.test")
        #expect(AR.authservID(ofFieldValue: " \"mx \\\"odd\\\\\" 1; none") == "mx \"odd\\")
        #expect(AR.authservID(ofFieldValue: " \"\"; none") == nil, "an empty id names nobody")
    }

    @Test func authservIDWithAVersion() {
        #expect(AR.authservID(ofFieldValue: " mx.example.test 1; none") == "mx.example.test")
        #expect(AR.authservID(ofFieldValue: " mx.example.test (c) 1 (d) ; none") == "mx.example.test")
        #expect(AR.authservID(ofFieldValue: " mx.example.test 2; dkim=pass") == "mx.example.test",
                "an unknown version still claims the id (and is to be removed, §5)")
    }

    @Test func garbageHasNoAuthservID() {
        for bad in ["", "   ", "\r\n", "; dkim=pass", "(unterminated mx.example.test; none", "mx.example.test@evil; none",
                    "mx.example.test x; none", "\"unterminated; none", "mx.example.test 1x; none",
                    "mx.example.test 1 2; none", "spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=example.org",
                    "mx.exämple.test; none", "[mx]; none"] {
            #expect(AR.authservID(ofFieldValue: bad) == nil, "\(bad)")
        }
    }

    @Test func claimsComparesCaseInsensitively() {
        #expect(AR.claims(authservID: "MX.example.TEST", fieldValue: " mx.example.test; none"))
        #expect(AR.claims(authservID: "mx.example.test", fieldValue: Array(" (x) MX.EXAMPLE.TEST 1; dkim=pass".utf8)))
        #expect(!AR.claims(authservID: "mx.example.test", fieldValue: " mx.example.test.evil; none"))
        #expect(!AR.claims(authservID: "mx.example.test", fieldValue: " mx.example; none"))
        #expect(!AR.claims(authservID: "mx.example.test", fieldValue: "garbage here"))
        #expect(AR(authservID: "Mx.Example.Test", results: []).claims(authservID: "mx.example.test"))
        #expect(!AR(authservID: "mx.example.test", results: []).claims(authservID: "mx.example.tes"))
    }

    @Test func aHugeValueIsReadOnlyAsFarAsTheLimit() {
        let megabyte = String(repeating: "x", count: 1 << 20)
        #expect(AR.authservID(ofFieldValue: " mx.example.test; " + megabyte) == "mx.example.test")
        #expect(AR.parse(fieldValue: " mx.example.test; " + megabyte) == nil)
        #expect(AR.authservID(ofFieldValue: String(repeating: "(", count: 1 << 20)) == nil)
        #expect(AR.authservID(ofFieldValue: megabyte + "; none") == nil, "an id that does not end within the limit")
        #expect(AR.authservID(ofFieldValue: String(repeating: " ", count: 1 << 20) + "mx.example.test; none") == nil)
        let cut = String(repeating: " ", count: AR.maximumFieldLength - 5) + "mx.example.test; none"
        #expect(AR.authservID(ofFieldValue: cut) == nil, "the id is cut by the limit: not \"mx.ex\"")
        let fits = String(repeating: " ", count: AR.maximumFieldLength - 16) + "mx.example.test; none"
        #expect(AR.authservID(ofFieldValue: fits) == "mx.example.test")
    }

    // MARK: Parsing

    @Test func roundTrip() {
        let parsed = AR.parse(fieldValue: value(of: typical.field()))
        #expect(parsed == typical)
        let none = AR(authservID: "mx.example.test", results: [])
        #expect(AR.parse(fieldValue: value(of: none.field())) == none)

        let awkward = AR(authservID: "mx.example.test", results: [
            .init(method: "spf", result: "softfail", properties: [property("smtp.mailfrom", "\"a b\"@example.org"),
                                                                  property("smtp.helo", "client.example.org")]),
            .init(method: "arc", result: "pass", properties: [property("smtp.remote-ip", "2001:db8::1")]),
            .init(method: "dkim", result: "fail", reason: "said \"no\" \\ twice",
                  properties: [property("header.i", "@example.org"), property("header.b", "ab/cd+e=")],
                  comment: "2048-bit key; (nested) fine"),
            .init(method: "dmarc", result: "fail", properties: [
                property("header.from", "example.org"), property("policy.published-domain-policy", "reject"),
                property("policy.text", "two words"), property("policy.empty", ""),
            ]),
            .init(method: "dkim/2", result: "pass"),
        ])
        #expect(AR.parse(fieldValue: value(of: awkward.field())) == awkward)
        #expect(AR.parse(fieldValue: value(of: awkward.field(lineEnding: "\n"))) == awkward)
    }

    @Test func aBareLocalPartComesBackQuoted() {
        let bare = AR(authservID: "mx.example.test", results: [
            .init(method: "spf", result: "pass", properties: [property("smtp.mailfrom", "a b@example.org")]),
        ])
        #expect(AR.parse(fieldValue: value(of: bare.field()))?.results.first?["smtp.mailfrom"] == "\"a b\"@example.org")
    }

    @Test func parsesWhatGmailWrites() throws {
        let ar = try #require(AR.parse(fieldValue: """
             mx.google.com;\r
                   dkim=pass header.i=@example.org header.s=20230601 header.b=Ab/cD+e1;\r
                   arc=pass (i=1 spf=pass spfdomain=example.org dkim=pass dkdomain=example.org dmarc=pass fromdomain=example.org);\r
                   spf=pass (google.com: domain of bounce@example.org designates 192.0.2.1 as permitted sender) smtp.mailfrom=bounce@example.org;\r
                   dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.org\r

            """))
        #expect(ar.authservID == "mx.google.com")
        #expect(ar.results.map(\.method) == ["dkim", "arc", "spf", "dmarc"])
        #expect(ar.results.allSatisfy { $0.result == "pass" })
        #expect(ar.results[0]["header.b"] == "Ab/cD+e1")
        #expect(ar.results[0]["HEADER.I"] == "@example.org")
        #expect(ar.results[1].comment == "i=1 spf=pass spfdomain=example.org dkim=pass dkdomain=example.org dmarc=pass fromdomain=example.org")
        #expect(ar.results[2]["smtp.mailfrom"] == "bounce@example.org")
        #expect(ar.results[3].comment == "p=REJECT sp=REJECT dis=NONE")
        #expect(ar.results[3].properties == [property("header.from", "example.org")])
    }

    @Test func parsesWhatOpenDKIMAndAmavisWrite() throws {
        let opendkim = try #require(AR.parse(fieldValue: " mail.example.net; dkim=pass (2048-bit key; unprotected) header.d=example.com header.i=@example.com header.a=rsa-sha256 header.s=sel header.b=\"dMf8Zy3s\"\r\n"))
        #expect(opendkim.results.count == 1)
        #expect(opendkim.results[0].comment == "2048-bit key; unprotected")
        #expect(opendkim.results[0]["header.b"] == "dMf8Zy3s")
        #expect(opendkim.results[0].properties.count == 5)

        let amavis = try #require(AR.parse(fieldValue: " ietfa.amsl.com (amavisd-new); dkim=pass (2048-bit key) header.d=gmail.com"))
        #expect(amavis.authservID == "ietfa.amsl.com")
        #expect(amavis.results == [.init(method: "dkim", result: "pass", properties: [property("header.d", "gmail.com")],
                                          comment: "2048-bit key")])
    }

    @Test func toleratesWhatOthersGetWrong() throws {
        // No space after ";", bare key=value pairs, an unquoted reason, unquoted IPv6, a trailing ";".
        let ar = try #require(AR.parse(fieldValue: " mx.example.test; dkim=none (message not signed) header.d=none;dmarc=none action=none header.from=example.com;compauth=pass reason=100; iprev=pass smtp.remote-ip=2001:db8::25 x-bits=1024;;"))
        #expect(ar.results.map(\.method) == ["dkim", "dmarc", "compauth", "iprev"])
        #expect(ar.results[1].properties == [property("header.from", "example.com")])
        #expect(ar.results[2].reason == "100")
        #expect(ar.results[3].properties == [property("smtp.remote-ip", "2001:db8::25")])
        let folded = try #require(AR.parse(fieldValue: "\r\n  mx.example.test 1 ;\r\n dkim / 1 = pass\r\n   header . d = example.org reason = \"x\"\r\n"))
        #expect(folded.results == [.init(method: "dkim", result: "pass", reason: "x", properties: [property("header.d", "example.org")])])
        #expect(AR.parse(fieldValue: " mx.example.test; (a) dkim (b) = (c) pass (d) header.d=(e)example.org (f); spf=pass")?
                    .results.map(\.comment) == ["a b c d e f", nil], "every comment of a statement, in order")
        #expect(AR.parse(fieldValue: " mx.example.test; DKIM/3=PASS Header.D=Example.org")?.results
                == [.init(method: "dkim/3", result: "pass", properties: [property("header.d", "Example.org")])],
                "names are lower-cased, values kept")
    }

    @Test func parseRefusesWhatIsNotInTheGrammar() {
        for bad in ["", " mx.example.test", " mx.example.test 2; dkim=pass", " ; dkim=pass", " mx; dkim", " mx; dkim=",
                    " mx; =pass", " mx; dkim=pass header.d", " mx; dkim=pass header.d=", " mx; dkim=pass header.=x",
                    " mx; dkim=pass header.d=\"unterminated", " mx; dkim=pass (unterminated", " mx; dkim=pass junk",
                    " mx; dkim=pass header.d=a\"b\"", " spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=example.com"] {
            #expect(AR.parse(fieldValue: bad) == nil, "\(bad)")
        }
    }

    @Test func parseAcceptsNoneAndEmptyStatements() {
        #expect(AR.parse(fieldValue: " mx.example.test; none") == AR(authservID: "mx.example.test", results: []))
        #expect(AR.parse(fieldValue: " mx.example.test 1 ; (nothing done) NONE\r\n") == AR(authservID: "mx.example.test", results: []))
        #expect(AR.parse(fieldValue: " mx.example.test;") == AR(authservID: "mx.example.test", results: []))
    }

    @Test func parseCapsTheNumberOfStatements() {
        let statements = { (n: Int) in " mx.example.test" + String(repeating: "; dkim=pass", count: n) }
        #expect(AR.parse(fieldValue: statements(AR.maximumResults))?.results.count == AR.maximumResults)
        #expect(AR.parse(fieldValue: statements(AR.maximumResults + 1)) == nil)
        #expect(AR.parse(fieldValue: " mx.example.test; dkim=pass " + String(repeating: "(x)", count: 20_000))?.results.count == 1)
        #expect(AR.parse(fieldValue: Array((" mx.example.test; dkim=pass" + String(repeating: " ", count: AR.maximumFieldLength)).utf8)) == nil)
    }
}
