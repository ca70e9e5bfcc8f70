import MailCore
import Testing

@Suite("EmailAddress.parse grammar")
struct EmailAddressTests {
    static let local64 = String(repeating: "a", count: 64)
    static let label63 = String(repeating: "d", count: 63)
    /// 4 × 63 + 3 dots = 255 octets.
    static let domain255 = [label63, label63, label63, label63].joined(separator: ".")

    struct Valid: Sendable, CustomTestStringConvertible {
        var text: String
        var localPart: String
        var domain: String
        var testDescription: String { text.count > 60 ? "\(text.prefix(40))… (\(text.utf8.count) octets)" : text }
    }

    static let validASCII: [Valid] = [
        .init(text: "alice@example.test", localPart: "alice", domain: "example.test"),
        .init(text: "Alice.Smith+tag@Example.TEST", localPart: "Alice.Smith+tag", domain: "Example.TEST"),
        .init(text: "a!#$%&'*+-/=?^_`{|}~@example.test", localPart: "a!#$%&'*+-/=?^_`{|}~", domain: "example.test"),
        .init(text: "x@a-b.example", localPart: "x", domain: "a-b.example"),
        .init(text: "x@localhost", localPart: "x", domain: "localhost"),
        .init(text: "x@123.example", localPart: "x", domain: "123.example"),
        .init(text: "\"john doe\"@example.test", localPart: "john doe", domain: "example.test"),
        .init(text: "\"a\\\"b\"@example.test", localPart: "a\"b", domain: "example.test"),
        .init(text: "\"a\\\\b\"@example.test", localPart: "a\\b", domain: "example.test"),
        .init(text: "\"a@b\"@example.test", localPart: "a@b", domain: "example.test"),
        .init(text: "\".dot..\"@example.test", localPart: ".dot..", domain: "example.test"),
        .init(text: "user@[192.0.2.1]", localPart: "user", domain: "[192.0.2.1]"),
        .init(text: "user@[IPv6:2001:db8::1]", localPart: "user", domain: "[IPv6:2001:db8::1]"),
        .init(text: "\(local64)@example.test", localPart: local64, domain: "example.test"),
        .init(text: "x@\(domain255)", localPart: "x", domain: domain255),
        .init(text: "x@\(label63).test", localPart: "x", domain: "\(label63).test"),
    ]

    @Test("a quote or backslash followed by a combining mark is still escaped when printed (found by FuzzAddress)")
    func quotedLocalPartWithCombiningMarks() throws {
        let text = "\"\\\"\u{05A3}x\\\\\u{0301}\"@example.test"
        guard case .success(let a) = EmailAddress.parse(text, allowUTF8: true) else {
            Issue.record("did not parse \(text)")
            return
        }
        #expect(a.localPart.unicodeScalars.map(\.value) == [0x22, 0x05A3, 0x78, 0x5C, 0x0301])
        #expect(a.description == text)
        #expect(EmailAddress.parse(a.description, allowUTF8: true) == .success(a))
    }

    @Test("valid ASCII mailboxes parse, with or without allowUTF8", arguments: validASCII, [false, true])
    func validASCIIMailbox(_ v: Valid, allowUTF8: Bool) throws {
        let a = try EmailAddress.parse(v.text, allowUTF8: allowUTF8).get()
        #expect(a.localPart == v.localPart)
        #expect(a.domain == v.domain)
        #expect(a.isASCII)
    }

    static let validUTF8: [Valid] = [
        .init(text: "用户@例子.测试", localPart: "用户", domain: "例子.测试"),
        .init(text: "josé@example.test", localPart: "josé", domain: "example.test"),
        .init(text: "user@bücher.example", localPart: "user", domain: "bücher.example"),
        .init(text: "\"jösé x\"@example.test", localPart: "jösé x", domain: "example.test"),
        .init(text: "Δοκιμή.χρήστης@παράδειγμα.δοκιμή", localPart: "Δοκιμή.χρήστης", domain: "παράδειγμα.δοκιμή"),
        // 21 × 3 octets = 63 octets: within the limit although it is only 21 characters.
        .init(text: "\(String(repeating: "字", count: 21))@example.test", localPart: String(repeating: "字", count: 21), domain: "example.test"),
    ]

    @Test("UTF-8 mailboxes parse with allowUTF8", arguments: validUTF8)
    func utf8Allowed(_ v: Valid) throws {
        let a = try EmailAddress.parse(v.text, allowUTF8: true).get()
        #expect(a.localPart == v.localPart)
        #expect(a.domain == v.domain)
        #expect(!a.isASCII)
    }

    @Test("UTF-8 mailboxes are refused without allowUTF8", arguments: validUTF8)
    func utf8Refused(_ v: Valid) {
        #expect(EmailAddress.parse(v.text, allowUTF8: false) == .failure(.nonASCIIWithoutSMTPUTF8))
    }

    struct Invalid: Sendable, CustomTestStringConvertible {
        var text: String
        var error: AddressError
        var testDescription: String {
            let shown = text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined()
            return shown.count > 60 ? "\(shown.prefix(40))… (\(text.utf8.count) octets) → \(error)" : "\(shown) → \(error)"
        }
    }

    static let invalid: [Invalid] = [
        .init(text: "", error: .syntax),
        .init(text: "alice", error: .syntax),
        .init(text: "@example.test", error: .syntax),
        .init(text: ".alice@example.test", error: .syntax),
        .init(text: "alice.@example.test", error: .syntax),
        .init(text: "a..b@example.test", error: .syntax),
        .init(text: "a b@example.test", error: .syntax),
        .init(text: "a@b@example.test", error: .syntax),
        .init(text: "a(comment)@example.test", error: .syntax),
        .init(text: "a,b@example.test", error: .syntax),
        .init(text: "a\"b@example.test", error: .syntax),
        .init(text: "\"unterminated@example.test", error: .syntax),
        .init(text: "\"a\"b@example.test", error: .syntax),
        .init(text: "\"a\"", error: .syntax),
        .init(text: "\"a\\", error: .syntax),
        .init(text: "\"\"@example.test", error: .syntax),  // an empty quoted local part is refused
        .init(text: "a\u{0}b@example.test", error: .syntax),
        .init(text: "a\tb@example.test", error: .syntax),
        .init(text: "a\u{7F}@example.test", error: .syntax),
        .init(text: "a\r\n@example.test", error: .syntax),
        .init(text: "\"a\u{1}\"@example.test", error: .syntax),
        .init(text: "alice@", error: .badDomain),
        .init(text: "alice@-example.test", error: .badDomain),
        .init(text: "alice@example-.test", error: .badDomain),
        .init(text: "alice@example..test", error: .badDomain),
        .init(text: "alice@.example.test", error: .badDomain),
        .init(text: "alice@example.test.", error: .badDomain),
        .init(text: "alice@exa_mple.test", error: .badDomain),
        .init(text: "alice@exa mple.test", error: .badDomain),
        .init(text: "alice@[]", error: .badDomain),
        .init(text: "alice@[192.0.2.1", error: .badDomain),
        .init(text: "alice@192.0.2.1]", error: .badDomain),
        .init(text: "alice@[a]b]", error: .badDomain),
        .init(text: "alice@[a\\b]", error: .badDomain),
        .init(text: "alice@[a b]", error: .badDomain),
        .init(text: "x@\(String(repeating: "d", count: 64)).test", error: .badDomain),
        .init(text: "\(String(repeating: "a", count: 65))@example.test", error: .localPartTooLong),
        .init(text: "\"\(String(repeating: "a", count: 65))\"@example.test", error: .localPartTooLong),
        .init(text: "x@\(domain255)d", error: .domainTooLong),
        .init(text: "x@[\(String(repeating: "1", count: 254))]", error: .domainTooLong),
    ]

    @Test("invalid mailboxes are refused with the right reason", arguments: invalid, [false, true])
    func invalidMailbox(_ v: Invalid, allowUTF8: Bool) {
        #expect(EmailAddress.parse(v.text, allowUTF8: allowUTF8) == .failure(v.error))
    }

    @Test("length limits count octets, not characters")
    func limitsCountOctets() {
        let local22 = String(repeating: "字", count: 22)  // 66 octets
        #expect(EmailAddress.parse("\(local22)@example.test", allowUTF8: true) == .failure(.localPartTooLong))
        // 85 × 3 = 255 octets of U-labels split into labels of at most 63 octets (21 characters).
        let label = String(repeating: "ü", count: 31)  // 62 octets
        let domain = [label, label, label, label].joined(separator: ".") + ".abcd"  // 4×62 + 4 + 4 = 256
        #expect(domain.utf8.count == 256)
        #expect(EmailAddress.parse("x@\(domain)", allowUTF8: true) == .failure(.domainTooLong))
        #expect((try? EmailAddress.parse("x@\(domain.dropLast())", allowUTF8: true).get()) != nil)
    }

    @Test("SMTPUTF8 gating happens before any other check")
    func utf8GateFirst() {
        #expect(EmailAddress.parse("ü", allowUTF8: false) == .failure(.nonASCIIWithoutSMTPUTF8))
        #expect(EmailAddress.parse("ü", allowUTF8: true) == .failure(.syntax))
    }

    @Test("description quotes local parts that are not dot-strings", arguments: [
        (EmailAddress(localPart: "alice", domain: "example.test"), "alice@example.test"),
        (EmailAddress(localPart: "john doe", domain: "example.test"), "\"john doe\"@example.test"),
        (EmailAddress(localPart: "a\"b", domain: "example.test"), "\"a\\\"b\"@example.test"),
        (EmailAddress(localPart: "a\\b", domain: "example.test"), "\"a\\\\b\"@example.test"),
        (EmailAddress(localPart: ".a", domain: "example.test"), "\".a\"@example.test"),
        (EmailAddress(localPart: "用户", domain: "例子.测试"), "用户@例子.测试"),
        (EmailAddress(localPart: "u", domain: "[192.0.2.1]"), "u@[192.0.2.1]"),
    ])
    func descriptionQuoting(_ address: EmailAddress, _ expected: String) {
        #expect(address.description == expected)
    }

    @Test("parse(description) round-trips", arguments: validASCII + validUTF8)
    func roundTrip(_ v: Valid) throws {
        let a = try EmailAddress.parse(v.text, allowUTF8: true).get()
        #expect(try EmailAddress.parse(a.description, allowUTF8: true).get() == a)
    }

    @Test("canonicalKey, normalizedDomain and equality")
    func comparisons() throws {
        let a = try EmailAddress.parse("Alice@Example.TEST", allowUTF8: false).get()
        let b = try EmailAddress.parse("alice@example.test", allowUTF8: false).get()
        #expect(a != b)  // the local part keeps its case (RFC 5321 §2.4)
        #expect(a.canonicalKey == b.canonicalKey)
        #expect(a.canonicalKey == "alice@example.test")
        #expect(a.normalizedDomain == "example.test")
        #expect(a.localPart == "Alice")
    }
}
