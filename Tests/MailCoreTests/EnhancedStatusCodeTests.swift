import MailCore
import Testing

@Suite("EnhancedStatusCode")
struct EnhancedStatusCodeTests {
    @Test("valid codes parse and print back", arguments: [
        ("2.0.0", 2, 0, 0), ("2.1.5", 2, 1, 5), ("4.7.0", 4, 7, 0), ("5.5.1", 5, 5, 1),
        ("5.123.456", 5, 123, 456), ("4.04.002", 4, 4, 2),
    ])
    func valid(_ text: String, _ c: Int, _ s: Int, _ d: Int) throws {
        let code = try #require(EnhancedStatusCode(Substring(text)))
        #expect(code == EnhancedStatusCode(c, s, d))
        #expect(code.statusClass == c && code.subject == s && code.detail == d)
    }

    @Test("invalid codes are refused", arguments: [
        "", "2", "2.0", "2.0.0.0", "3.0.0", "1.0.0", "6.0.0", "0.0.0", "22.0.0", "02.0.0", "2.1000.0",
        "2.0.1000", "2..0", "2.0.", ".0.0", "a.b.c", "2.0.0 ", " 2.0.0", "+2.0.0", "2.-1.0", "2.٣.0", "2.0.0x",
    ])
    func invalid(_ text: String) {
        #expect(EnhancedStatusCode(Substring(text)) == nil)
    }

    @Test("description is class.subject.detail", arguments: [
        (EnhancedStatusCode(2, 0, 0), "2.0.0"), (EnhancedStatusCode(5, 7, 1), "5.7.1"),
        (EnhancedStatusCode(4, 123, 45), "4.123.45"),
    ])
    func description(_ code: EnhancedStatusCode, _ text: String) {
        #expect(code.description == text)
        #expect(EnhancedStatusCode(Substring(text)) == code)
    }
}
