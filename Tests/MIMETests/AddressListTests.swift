import Testing
import MailCore
@testable import MIME

@Suite struct AddressListTests {
    @Test(arguments: [
        ("alice@example.test", [MailboxAddress(address: "alice@example.test")]),
        ("Alice <alice@example.test>", [MailboxAddress(displayName: "Alice", address: "alice@example.test")]),
        ("发件人名称 <alice@example.test>", [MailboxAddress(displayName: "发件人名称", address: "alice@example.test")]),
        ("\"Doe, John\" <john@example.test>, jane@example.test",
         [MailboxAddress(displayName: "Doe, John", address: "john@example.test"), MailboxAddress(address: "jane@example.test")]),
        ("\"Joe Q. Public\" <john.q.public@example.com>", [MailboxAddress(displayName: "Joe Q. Public", address: "john.q.public@example.com")]),
        ("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>", [MailboxAddress(displayName: "Pete", address: "pete@silly.test")]),
        ("alice@example.test (Alice)", [MailboxAddress(address: "alice@example.test")]),
        ("=?UTF-8?B?5Lit5paH?= <zh@example.test>", [MailboxAddress(displayName: "中文", address: "zh@example.test")]),
        ("=?ISO-8859-1?Q?Keld_J=F8rn?= =?ISO-8859-1?Q?_Simonsen?= <keld@example.test>",
         [MailboxAddress(displayName: "Keld Jørn Simonsen", address: "keld@example.test")]),
        ("\"=?utf-8?q?Z=C3=BC?=\" <z@example.test>", [MailboxAddress(displayName: "Zü", address: "z@example.test")]),
        ("<@route.test,@other.test:user@example.test>", [MailboxAddress(address: "user@example.test")]),
        ("\"john doe\"@example.test", [MailboxAddress(address: "\"john doe\"@example.test")]),
        ("user@[192.0.2.1]", [MailboxAddress(address: "user@[192.0.2.1]")]),
        ("a@b.test,,, c@d.test", [MailboxAddress(address: "a@b.test"), MailboxAddress(address: "c@d.test")]),
        ("", []),
        ("Name Only <>", [MailboxAddress(displayName: "Name Only", address: "")]),
    ])
    func mailboxes(input: String, expected: [MailboxAddress]) {
        #expect(AddressListParser.mailboxes(input) == expected)
    }

    @Test func groups() {
        let entries = AddressListParser.parse("A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;, Mary <mary@x.test>, undisclosed-recipients:;")
        #expect(entries.count == 3)
        #expect(entries[0] == .group(name: "A Group", members: [
            MailboxAddress(displayName: "Ed Jones", address: "c@a.test"),
            MailboxAddress(address: "joe@where.test"),
            MailboxAddress(displayName: "John", address: "jdoe@one.test"),
        ]))
        #expect(entries[1] == .mailbox(MailboxAddress(displayName: "Mary", address: "mary@x.test")))
        #expect(entries[2] == .group(name: "undisclosed-recipients", members: []))
    }

    /// Unterminated quotes, comments, angles and literals end at the end of the input (no hang, no
    /// read past it): a comment swallows the rest, an unclosed angle still yields its address.
    @Test func unterminatedInputsEndAtTheEndOfInput() {
        #expect(AddressListParser.parse("(comment <a@b>") == [])
        #expect(AddressListParser.mailboxes("<a@b") == [MailboxAddress(address: "a@b")])
        #expect(AddressListParser.mailboxes("\"unterminated <a@b>").map(\.address) == ["\"unterminated <a@b>\""])
        #expect(AddressListParser.parse("a:b:c;;;").first == .group(name: "a", members: [MailboxAddress(address: "b:c")]))
        // Debris without an "@" never turns into a deliverable address.
        for s in ["[literal", "\\", "<<<>>>", "a:b:c;;;"] {
            let addresses = AddressListParser.mailboxes(s).map(\.address)
            #expect(addresses.allSatisfy { !$0.contains("@") }, "\(s) => \(addresses)")
        }
    }

    @Test func singleMailboxInit() {
        #expect(MailboxAddress("Bob <bob@example.test>")?.displayName == "Bob")
        #expect(MailboxAddress("not an address") == nil)
        #expect(MailboxAddress("bob@example.test")?.emailAddress?.domain == "example.test")
    }
}
