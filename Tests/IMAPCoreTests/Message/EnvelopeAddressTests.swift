import IMAPCore
import Testing

/// ENVELOPE addresses from RFC 5322 address lists (the tokenizer works on UTF-8 octets).
@Suite struct EnvelopeAddressTests {
    private func parse(_ s: String) -> [EnvelopeAddress] { EnvelopeAddressParser.parse(s) }
    private func a(_ name: String?, _ mailbox: String?, _ host: String?, adl: String? = nil) -> EnvelopeAddress {
        EnvelopeAddress(name: name, adl: adl, mailbox: mailbox, host: host)
    }

    @Test func namesQuotesCommentsAndLiterals() {
        #expect(parse("Ann <ann@example.org>") == [a("Ann", "ann", "example.org")])
        #expect(parse("\"Doe, \\\"J\\\"\" <j@x.test>, b@y.test") == [a("Doe, \"J\"", "j", "x.test"), a(nil, "b", "y.test")])
        #expect(parse("c@z.test (Carl (the) Coder)") == [a(nil, "c", "z.test")])
        #expect(parse("d@[192.0.2.1]") == [a(nil, "d", "[192.0.2.1]")])
        #expect(parse("<@r1.test,@r2.test:e@x.test>") == [a(nil, "e", "x.test", adl: "@r1.test,@r2.test")])
        #expect(parse("Jörg Müller <jm@x.test>") == [a("Jörg Müller", "jm", "x.test")])
        #expect(parse("=?UTF-8?Q?J=C3=B6rg?= <jm@x.test>") == [a("=?UTF-8?Q?J=C3=B6rg?=", "jm", "x.test")])
        #expect(parse("\"two\r\n words\" <t@x.test>") == [a("two words", "t", "x.test")])
        #expect(parse("\"José\" <j@x.test>") == [a("José", "j", "x.test")])
    }

    @Test func missingPartsAndBrokenInput() {
        #expect(parse("foo") == [a(nil, "foo", EnvelopeAddressParser.missingDomain)])
        #expect(parse("<>") == [a(nil, EnvelopeAddressParser.missingMailbox, EnvelopeAddressParser.missingDomain)])
        #expect(parse("a@x.test,,b@y.test").count == 3)
        #expect(parse("\"unterminated <u@x.test>") == [a(nil, EnvelopeAddressParser.missingMailbox, EnvelopeAddressParser.missingDomain)])
        #expect(parse("") == [])
    }

    @Test func groups() {
        #expect(parse("Team: a@x.test, b@y.test;") == [a(nil, "Team", nil), a(nil, "a", "x.test"), a(nil, "b", "y.test"), a(nil, nil, nil)])
        #expect(parse("undisclosed-recipients:;") == [a(nil, "undisclosed-recipients", nil), a(nil, nil, nil)])
    }
}
