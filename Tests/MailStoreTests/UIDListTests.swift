@testable import MailStore
import Testing

/// Dovecot's file formats: dovecot-uidlist, dovecot-keywords, info flags, subscriptions.
@Suite struct UIDListTests {
    /// Written by Dovecot 2.3.19 (`doveadm save` into a fresh Maildir), byte for byte.
    static let dovecotFixture = """
        3 V1796305386 N3 G06a2e32be871116bd44f000083ecc375
        1 :1796305384.M991750P20473.vm,S=18,W=21
        2 :1796305385.M99405P20476.vm,S=18,W=21

        """

    @Test func parsesWhatDovecotWrites() throws {
        let list = try #require(UIDList.parse(Array(Self.dovecotFixture.utf8)))
        #expect(list.uidValidity == 1_796_305_386)
        #expect(list.nextUID == 3)
        #expect(list.guid == "06a2e32be871116bd44f000083ecc375")
        #expect(list.records.map(\.uid) == [1, 2])
        #expect(list.records[0].baseName == "1796305384.M991750P20473.vm,S=18,W=21")
        #expect(list.encoded() == Array(Self.dovecotFixture.utf8))
    }

    @Test func keepsExtensionFieldsAndUnknownHeaderFields() throws {
        let text = """
            3 V1700000000 N10 G0123456789abcdef0123456789abcdef Zfuture
            3 W1234 S1200 :1700000001.M1P1.host
            7 GAbCdEf P0001 O2 :1700000002.M2P2.host,S=5,W=6
            8 :1700000003.M3P3.host:2,S

            """
        let list = try #require(UIDList.parse(Array(text.utf8)))
        #expect(list.headerExtensions == ["Zfuture"])
        #expect(list.records[0].extensions == ["W1234", "S1200"])
        #expect(list.records[0].extensionValue("W") == "1234")
        #expect(list.records[1].extensions == ["GAbCdEf", "P0001", "O2"])
        #expect(list.records[2].baseName == "1700000003.M3P3.host")  // an info part is not kept
        let again = try #require(UIDList.parse(list.encoded()))
        #expect(again == list)
        #expect(String(decoding: list.encoded(), as: UTF8.self).hasPrefix("3 V1700000000 N10 G0123456789abcdef0123456789abcdef Zfuture\n"))
    }

    @Test func readsVersion1() throws {
        let list = try #require(UIDList.parse(Array("1 1234 5\n1 a.host\n4 b.host:2,S\n".utf8)))
        #expect(list.uidValidity == 1234)
        #expect(list.nextUID == 5)
        #expect(list.records.map(\.baseName) == ["a.host", "b.host"])
        #expect(String(decoding: list.encoded(), as: UTF8.self).hasPrefix("3 V1234 N5 G"))
    }

    @Test(arguments: ["", "garbage\n", "3 N5 G0123456789abcdef0123456789abcdef\n", "3 V0 N1\n", "2 V1 N1\n", "3 V1 N1 Gxyz\n"])
    func brokenHeaderIsNil(_ text: String) {
        #expect(UIDList.parse(Array(text.utf8)) == nil)
    }

    @Test func skipsBrokenRecordsAndRaisesNextUID() throws {
        let text = "3 V9 N2 G0123456789abcdef0123456789abcdef\n5 :a\nx :b\n4 :c\n6 :d/e\n9 lower :f\n10 :a\n"
        let list = try #require(UIDList.parse(Array(text.utf8)))
        // 4 is out of order, "d/e" names a path, "lower" is no extension key (dropped), "a" repeats (moved back).
        #expect(list.records.map(\.uid) == [9, 10])
        #expect(list.records.map(\.baseName) == ["f", "a"])
        #expect(list.nextUID == 11)
    }

    @Test func keywordsFile() {
        let k = KeywordsFile.parse(Array("0 $Forwarded\n1 Junk\n3 $Label1\nbroken\n30 far\n".utf8))
        #expect(k == ["$Forwarded", "Junk", nil, "$Label1"])
        #expect(String(decoding: KeywordsFile.encode(k), as: UTF8.self) == "0 $Forwarded\n1 Junk\n3 $Label1\n")
    }

    @Test func infoFlags() throws {
        let keywords: [String?] = ["$Forwarded", "Junk"]
        let info = MaildirInfo(info: "2,PSabz")
        #expect(info.flags(keywords: keywords) == ["\\Seen", "$Forwarded", "Junk"])
        // P (passed) and z (no keyword) are kept; letters sorted.
        let changed = info.replacingFlags(with: ["\\Flagged", "\\Deleted", "\\Draft", "\\Answered", "Junk"], keywords: keywords) { _ in
            Issue.record("no new keyword expected")
            return 0
        }
        #expect(changed.suffix == ":2,DFPRTbz")
        #expect(MaildirInfo(info: nil).suffix == ":2,")
        #expect(MaildirInfo(info: "1,experimental").suffix == ":1,experimental")
        let name = MaildirFileName("1700000000.M1P2.host,S=10,W=12:2,S")
        #expect(name.base == "1700000000.M1P2.host,S=10,W=12")
        #expect(name.size == 10 && name.virtualSize == 12)
        // Field order, other fields, malformed values, and fields after the colon are not sizes.
        let cases: [(String, String, String?, Int?, Int?)] = [
            ("a,W=7,S=5", "a,W=7,S=5", nil, 5, 7),
            ("a,X=1,S=5:2,", "a,X=1,S=5", "2,", 5, nil),
            ("a,S=5x,W=", "a,S=5x,W=", nil, nil, nil),
            ("a,S=,W=-3", "a,S=,W=-3", nil, nil, nil),
            ("a:2,S=5", "a", "2,S=5", nil, nil),
            ("a,S=12,S=13", "a,S=12,S=13", nil, 13, nil),
            ("a,", "a,", nil, nil, nil),
            ("", "", nil, nil, nil),
            ("1700000000.M1P2.höst,S=10:2,S", "1700000000.M1P2.höst,S=10", "2,S", 10, nil),
        ]
        for (input, base, info, size, vsize) in cases {
            let n = MaildirFileName(input)
            #expect(n.base == base[...], "\(input)")
            #expect(n.info == info?[...], "\(input)")
            #expect(n.size == size && n.virtualSize == vsize, "\(input)")
        }
    }

    @Test func subscriptionsAsDovecotWritesThem() {
        // Written by Dovecot 2.3.19 after `doveadm mailbox subscribe "Archive/2026" "Entwürfe" INBOX`.
        let dovecot = "V\t2\n\nArchive\t2026\nEntw&APw-rfe\nINBOX\n"
        #expect(SubscriptionsFile.parse(Array(dovecot.utf8)) == ["Archive/2026", "Entwürfe", "INBOX"])
        #expect(SubscriptionsFile.encode(["Archive/2026", "Entwürfe", "INBOX"]) == Array(dovecot.utf8))
        // Version 1 (older Dovecot, Courier).
        #expect(SubscriptionsFile.parse(Array("INBOX\nINBOX.Sent\nArchive.2026\nTrash.\n".utf8)) == ["INBOX", "Sent", "Archive/2026", "Trash"])
        #expect(SubscriptionsFile.parse(Array("V\t2\n\nTab\u{1}there\n".utf8)) == ["Tab\there"])
    }
}
