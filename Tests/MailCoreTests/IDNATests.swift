import MailCore
import Testing

@Suite struct IDNATests {
    @Test(arguments: [
        ("bücher", "bcher-kva"),
        ("münchen", "mnchen-3ya"),
        ("例え", "r8jz45g"),
        ("ليهمابتكلموشعربي؟", "egbpdaj6bu4bxfgehfvwxn"),  // RFC 3492 §7.1 (A)
        ("他们为什么不说中文", "ihqwcrb4cv8a8dqg056pqjye"),  // RFC 3492 §7.1 (B)
    ])
    func punycode(input: String, expected: String) {
        #expect(Punycode.encode(input) == expected)
    }

    @Test func domainsCompareInASCIIForm() {
        #expect(IDNA.toASCII("Bücher.Example") == "xn--bcher-kva.example")
        #expect(IDNA.toASCII("xn--bcher-kva.example") == "xn--bcher-kva.example")
        #expect(IDNA.toASCII("EXAMPLE.test") == "example.test")
        #expect(IDNA.toASCII("例え.テスト") == "xn--r8jz45g.xn--zckzah")
    }
}
