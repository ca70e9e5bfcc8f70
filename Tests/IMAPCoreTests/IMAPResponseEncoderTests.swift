import IMAPCore
import MailTesting
import NIOCore
import Testing

private func encoded(_ r: IMAPResponse, utf8: Bool = false) -> String {
    var b = ByteBuffer()
    IMAPResponseEncoder(options: .init(utf8: utf8)).encode(r, into: &b)
    return String(buffer: b)
}

private let fredEnvelope = Envelope(
    date: "Wed, 17 Jul 1996 02:23:25 -0700 (PDT)", subject: "IMAP4rev2 WG mtg summary and minutes",
    from: [EnvelopeAddress(name: "Terry Gray", mailbox: "gray", host: "cac.washington.edu")],
    to: [EnvelopeAddress(mailbox: "imap", host: "cac.washington.edu")],
    cc: [EnvelopeAddress(mailbox: "minutes", host: "CNRI.Reston.VA.US"), EnvelopeAddress(name: "John Klensin", mailbox: "KLENSIN", host: "MIT.EDU")],
    messageID: "<B27397-0100000@cac.washington.edu>")

private let textPart = BodyStructure.singlepart(.init(type: "TEXT", subtype: "PLAIN", parameters: [.init(name: "CHARSET", value: "US-ASCII")],
                                                        size: 3028, lines: 92))

@Suite("IMAPResponseEncoder")
struct IMAPResponseEncoderTests {
    struct Fixture: Sendable, CustomTestStringConvertible {
        var response: IMAPResponse
        var wire: String
        var utf8 = false
        init(_ response: IMAPResponse, _ wire: String, utf8: Bool = false) {
            self.response = response
            self.wire = wire
            self.utf8 = utf8
        }
        var testDescription: String { wire.count > 70 ? "\(wire.prefix(60))…" : wire }
    }

    static let fixtures: [Fixture] = [
        // Status responses and codes
        .init(.tagged(tag: "a1", status: .ok, code: nil, text: "LOGIN completed"), "a1 OK LOGIN completed\r\n"),
        .init(.tagged(tag: "a1", status: .no, code: .authenticationFailed, text: "Invalid credentials"), "a1 NO [AUTHENTICATIONFAILED] Invalid credentials\r\n"),
        .init(.tagged(tag: "a2", status: .bad, code: .tooBig, text: "line\r\ninjected"), "a2 BAD [TOOBIG] line  injected\r\n"),
        .init(.untagged(status: .ok, code: .permanentFlags([.deleted, .seen], allowsNew: true), text: "Limited"),
              "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n"),
        .init(.untagged(status: .ok, code: .permanentFlags([], allowsNew: true), text: "x"), "* OK [PERMANENTFLAGS (\\*)] x\r\n"),
        .init(.untagged(status: .ok, code: .permanentFlags([], allowsNew: false), text: "x"), "* OK [PERMANENTFLAGS ()] x\r\n"),
        .init(.tagged(tag: "A003", status: .ok, code: .appendUID(uidValidity: 38505, uid: 3955), text: "APPEND completed"),
              "A003 OK [APPENDUID 38505 3955] APPEND completed\r\n"),
        .init(.tagged(tag: "A004", status: .ok, code: .copyUID(uidValidity: 38505, source: S("304,319:320"), destination: S("3956:3958")), text: "Done"),
              "A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n"),
        .init(.tagged(tag: "d105", status: .ok, code: .modified(S("7,9")), text: "Conditional STORE failed"),
              "d105 OK [MODIFIED 7,9] Conditional STORE failed\r\n"),
        .init(.tagged(tag: "a", status: .no, code: .badCharset(["UTF-8", "US ASCII"]), text: "x"), "a NO [BADCHARSET (UTF-8 \"US ASCII\")] x\r\n"),
        .init(.tagged(tag: "a", status: .no, code: .badCharset([]), text: "x"), "a NO [BADCHARSET] x\r\n"),
        .init(.untagged(status: .ok, code: .capability(["IMAP4rev2", "STARTTLS", "AUTH=PLAIN"]), text: "ready"),
              "* OK [CAPABILITY IMAP4rev2 STARTTLS AUTH=PLAIN] ready\r\n"),
        .init(.untagged(status: .ok, code: .uidValidity(3_857_529_045), text: "UIDs valid"), "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"),
        .init(.untagged(status: .ok, code: .uidNext(4392), text: "Predicted next UID"), "* OK [UIDNEXT 4392] Predicted next UID\r\n"),
        .init(.untagged(status: .ok, code: .unseen(12), text: "x"), "* OK [UNSEEN 12] x\r\n"),
        .init(.untagged(status: .ok, code: .highestModSeq(715_194_045_007), text: "Highest"), "* OK [HIGHESTMODSEQ 715194045007] Highest\r\n"),
        .init(.tagged(tag: "A142", status: .ok, code: .readWrite, text: "SELECT completed"), "A142 OK [READ-WRITE] SELECT completed\r\n"),
        .init(.tagged(tag: "A", status: .ok, code: .readOnly, text: "x"), "A OK [READ-ONLY] x\r\n"),
        .init(.untagged(status: .ok, code: .closed, text: ""), "* OK [CLOSED] \r\n"),
        .init(.untagged(status: .bye, code: nil, text: "Autologout; idle for too long"), "* BYE Autologout; idle for too long\r\n"),
        .init(.untagged(status: .preauth, code: nil, text: "welcome"), "* PREAUTH welcome\r\n"),
        .init(.tagged(tag: "t", status: .no, code: .unknownCTE, text: "x"), "t NO [UNKNOWN-CTE] x\r\n"),
        .init(.tagged(tag: "t", status: .no, code: .tryCreate, text: "x"), "t NO [TRYCREATE] x\r\n"),
        .init(.tagged(tag: "t", status: .no, code: .overQuota, text: "x"), "t NO [OVERQUOTA] x\r\n"),
        .init(.tagged(tag: "t", status: .no, code: .alreadyExists, text: "x"), "t NO [ALREADYEXISTS] x\r\n"),
        .init(.tagged(tag: "t", status: .no, code: .nonexistent, text: "x"), "t NO [NONEXISTENT] x\r\n"),
        .init(.tagged(tag: "t", status: .no, code: .useAttr, text: "x"), "t NO [USEATTR] x\r\n"),
        .init(.tagged(tag: "t", status: .no, code: .compressionActive, text: "x"), "t NO [COMPRESSIONACTIVE] x\r\n"),
        .init(.tagged(tag: "t", status: .ok, code: .noModSeq, text: "x"), "t OK [NOMODSEQ] x\r\n"),
        .init(.continuation("Ready for literal data"), "+ Ready for literal data\r\n"),
        .init(.continuation(""), "+ \r\n"),
        // Server data
        .init(.capability(["IMAP4rev2", "IMAP4rev1", "LITERAL+", "IDLE"]), "* CAPABILITY IMAP4rev2 IMAP4rev1 LITERAL+ IDLE\r\n"),
        .init(.enabled(["CONDSTORE", "UTF8=ACCEPT"]), "* ENABLED CONDSTORE UTF8=ACCEPT\r\n"),
        .init(.enabled([]), "* ENABLED\r\n"),
        .init(.list(ListItem(attributes: ["\\Noselect"], delimiter: "/", name: "~/Mail/foo")), "* LIST (\\Noselect) \"/\" ~/Mail/foo\r\n"),
        .init(.list(ListItem(attributes: [], delimiter: nil, name: "")), "* LIST () NIL \"\"\r\n"),
        .init(.list(ListItem(attributes: ["\\HasNoChildren"], delimiter: "\\", name: "Sent Items")), "* LIST (\\HasNoChildren) \"\\\\\" \"Sent Items\"\r\n"),
        .init(.list(ListItem(attributes: [], delimiter: ".", name: "INBOX")), "* LIST () \".\" INBOX\r\n"),
        .init(.list(ListItem(attributes: [], delimiter: "/", name: "a%b\"c")), "* LIST () \"/\" \"a%b\\\"c\"\r\n"),
        .init(.list(ListItem(attributes: [], delimiter: "/", name: "Entwürfe")), "* LIST () \"/\" {9}\r\nEntwürfe\r\n"),
        .init(.list(ListItem(attributes: [], delimiter: "/", name: "Entwürfe")), "* LIST () \"/\" \"Entwürfe\"\r\n", utf8: true),
        .init(.list(ListItem(attributes: [], delimiter: "/", name: "nil")), "* LIST () \"/\" \"nil\"\r\n"),
        .init(.list(ListItem(attributes: ["\\Subscribed"], delimiter: "/", name: "Foo", childInfoSubscribed: true)),
              "* LIST (\\Subscribed) \"/\" Foo (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"),
        .init(.list(ListItem(attributes: [], delimiter: "/", name: "Föö", oldName: "F&APYA9g-")), "* LIST () \"/\" \"Föö\" (\"OLDNAME\" (F&APYA9g-))\r\n", utf8: true),
        .init(.lsub(ListItem(attributes: [], delimiter: ".", name: "#news.comp.mail.mime")), "* LSUB () \".\" #news.comp.mail.mime\r\n"),
        .init(.status(name: "blurdybloop", [(.messages, 231), (.uidNext, 44292)]), "* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n"),
        .init(.status(name: "a b", []), "* STATUS \"a b\" ()\r\n"),
        .init(.flags([.answered, .flagged, .deleted, .seen, .draft]), "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"),
        .init(.flags([IMAPFlag("$Forwarded")]), "* FLAGS ($Forwarded)\r\n"),
        .init(.exists(23), "* 23 EXISTS\r\n"),
        .init(.recent(5), "* 5 RECENT\r\n"),
        .init(.expunge(44), "* 44 EXPUNGE\r\n"),
        .init(.vanished(earlier: true, S("41,43:116,118")), "* VANISHED (EARLIER) 41,43:116,118\r\n"),
        .init(.vanished(earlier: false, S("405,407")), "* VANISHED 405,407\r\n"),
        .init(.search([2, 84, 882], modSeq: nil), "* SEARCH 2 84 882\r\n"),
        .init(.search([], modSeq: nil), "* SEARCH\r\n"),
        .init(.search([2, 5, 6], modSeq: 917_162_500), "* SEARCH 2 5 6 (MODSEQ 917162500)\r\n"),
        .init(.extendedSearch(ExtendedSearchResult(tag: "x", uid: true, min: 1, max: 5, count: 3, all: S("1:3,5"), modSeq: 9)),
              "* ESEARCH (TAG \"x\") UID MIN 1 MAX 5 COUNT 3 ALL 1:3,5 MODSEQ 9\r\n"),
        .init(.extendedSearch(ExtendedSearchResult(tag: "A285", uid: false, count: 0)), "* ESEARCH (TAG \"A285\") COUNT 0\r\n"),
        .init(.sort([2, 3, 6]), "* SORT 2 3 6\r\n"),
        .init(.sort([]), "* SORT\r\n"),
        .init(.thread([ThreadNode(message: 2), ThreadNode(message: 3, children: [ThreadNode(message: 6, children: [
            ThreadNode(message: 4, children: [ThreadNode(message: 23)]),
            ThreadNode(message: 44, children: [ThreadNode(message: 7, children: [ThreadNode(message: 96)])]),
        ])])]), "* THREAD (2)(3 6 (4 23)(44 7 96))\r\n"),
        .init(.thread([ThreadNode(message: nil, children: [ThreadNode(message: 3), ThreadNode(message: 5)])]), "* THREAD ((3)(5))\r\n"),
        .init(.thread([]), "* THREAD\r\n"),
        .init(.namespace(personalPrefix: "", delimiter: "/"), "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n"),
        .init(.id([.init(name: "name", value: "Swallow"), .init(name: "support-url", value: nil)]), "* ID (\"name\" \"Swallow\" \"support-url\" NIL)\r\n"),
        .init(.id(nil), "* ID NIL\r\n"),
        .init(.quota(root: "", [(resource: "STORAGE", usage: 10, limit: 512)]), "* QUOTA \"\" (STORAGE 10 512)\r\n"),
        .init(.quotaRoot(mailbox: "INBOX", roots: [""]), "* QUOTAROOT INBOX \"\"\r\n"),
        .init(.quotaRoot(mailbox: "comp.mail.mime", roots: []), "* QUOTAROOT comp.mail.mime\r\n"),
        // FETCH
        .init(.fetch(sequenceNumber: 12, [.flags([.seen]), .uid(4_827_313)]), "* 12 FETCH (FLAGS (\\Seen) UID 4827313)\r\n"),
        .init(.fetch(sequenceNumber: 1, [.internalDate(IMAPDateTime(date: IMAPDate(year: 1996, month: 7, day: 7), hour: 2, minute: 44, second: 25, zoneMinutes: -420))]),
              "* 1 FETCH (INTERNALDATE \" 7-Jul-1996 02:44:25 -0700\")\r\n"),
        .init(.fetch(sequenceNumber: 1, [.internalDate(IMAPDateTime(date: IMAPDate(year: 2024, month: 12, day: 31), hour: 23, minute: 0, second: 5, zoneMinutes: 330))]),
              "* 1 FETCH (INTERNALDATE \"31-Dec-2024 23:00:05 +0530\")\r\n"),
        .init(.fetch(sequenceNumber: 3, [.rfc822Size(4286), .modSeq(12_121_231_000)]), "* 3 FETCH (RFC822.SIZE 4286 MODSEQ (12121231000))\r\n"),
        .init(.fetch(sequenceNumber: 12, [.envelope(fredEnvelope)]),
              "* 12 FETCH (ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.edu>\"))\r\n"),
        .init(.fetch(sequenceNumber: 1, [.envelope(Envelope(subject: "Grüße\r\n"))]),
              "* 1 FETCH (ENVELOPE (NIL {9}\r\nGrüße\r\n NIL NIL NIL NIL NIL NIL NIL NIL))\r\n"),
        .init(.fetch(sequenceNumber: 1, [.bodyStructure(textPart, extensible: false)]),
              "* 1 FETCH (BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7bit\" 3028 92))\r\n"),
        .init(.fetch(sequenceNumber: 1, [.bodyStructure(textPart, extensible: true)]),
              "* 1 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7bit\" 3028 92 NIL NIL NIL NIL))\r\n"),
        .init(.fetch(sequenceNumber: 1, [.bodyStructure(.multipart(.init(parts: [textPart, .singlepart(.init(
            type: "APPLICATION", subtype: "PDF", parameters: [.init(name: "NAME", value: "a.pdf")], encoding: "BASE64", size: 4554,
            md5: nil, disposition: .init(kind: "attachment", parameters: [.init(name: "filename", value: "a.pdf")]), language: ["en", "de"], location: "x"))],
            subtype: "MIXED", parameters: [.init(name: "BOUNDARY", value: "b1")], language: ["en"])), extensible: true)]),
              "* 1 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7bit\" 3028 92 NIL NIL NIL NIL)(\"APPLICATION\" \"PDF\" (\"NAME\" \"a.pdf\") NIL NIL \"BASE64\" 4554 NIL (\"attachment\" (\"filename\" \"a.pdf\")) (\"en\" \"de\") \"x\") \"MIXED\" (\"BOUNDARY\" \"b1\") NIL \"en\" NIL))\r\n"),
        .init(.fetch(sequenceNumber: 1, [.bodyStructure(.multipart(.init(parts: [textPart, textPart], subtype: "ALTERNATIVE", parameters: [.init(name: "BOUNDARY", value: "b")])), extensible: false)]),
              "* 1 FETCH (BODY ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7bit\" 3028 92)(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7bit\" 3028 92) \"ALTERNATIVE\"))\r\n"),
        .init(.fetch(sequenceNumber: 1, [.bodyStructure(.singlepart(.init(type: "MESSAGE", subtype: "RFC822", size: 500, lines: 10,
            message: .init(envelope: Envelope(subject: "inner"), body: textPart))), extensible: false)]),
              "* 1 FETCH (BODY (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7bit\" 500 (NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7bit\" 3028 92) 10))\r\n"),
        .init(.fetch(sequenceNumber: 1, [.bodyStructure(.singlepart(.init(type: "IMAGE", subtype: "PNG", id: "<c@x>", description: "a \"pic\"", encoding: "BASE64", size: 12)), extensible: false)]),
              "* 1 FETCH (BODY (\"IMAGE\" \"PNG\" NIL \"<c@x>\" \"a \\\"pic\\\"\" \"BASE64\" 12))\r\n"),
        .init(.fetch(sequenceNumber: 5, [.section(name: "BODY[HEADER.FIELDS (FROM)]", data: ByteBuffer(string: "From: a\r\n\r\n"))]),
              "* 5 FETCH (BODY[HEADER.FIELDS (FROM)] {11}\r\nFrom: a\r\n\r\n)\r\n"),
        .init(.fetch(sequenceNumber: 5, [.section(name: "BODY[1]<0>", data: nil), .uid(9)]), "* 5 FETCH (BODY[1]<0> NIL UID 9)\r\n"),
        .init(.fetch(sequenceNumber: 5, [.section(name: "BINARY[1]", data: ByteBuffer(bytes: [0x61, 0x00]))]), "* 5 FETCH (BINARY[1] ~{2}\r\na\u{0})\r\n"),
        .init(.fetch(sequenceNumber: 5, [.binarySize(part: [1, 2], size: 342)]), "* 5 FETCH (BINARY.SIZE[1.2] 342)\r\n"),
        .init(.fetch(sequenceNumber: 5, [.binarySize(part: [], size: 3)]), "* 5 FETCH (BINARY.SIZE[] 3)\r\n"),
    ]

    @Test(arguments: fixtures)
    func encodes(_ fixture: Fixture) {
        #expect(encoded(fixture.response, utf8: fixture.utf8) == fixture.wire)
    }

    @Test func streamedFetch() {
        let e = IMAPResponseEncoder()
        var b = ByteBuffer()
        e.beginFetch(sequenceNumber: 7, into: &b)
        e.writeFetchItem(.uid(42), first: true, into: &b)
        e.beginStreamedSection(name: "BODY[]", size: 5, binary: false, first: false, into: &b)
        b.writeString("hello")
        e.beginStreamedSection(name: "BINARY[2]", size: 1, binary: true, first: false, into: &b)
        b.writeString("x")
        e.endFetch(into: &b)
        #expect(String(buffer: b) == "* 7 FETCH (UID 42 BODY[] {5}\r\nhello BINARY[2] ~{1}\r\nx)\r\n")
    }

    @Test func responsesCompareByTheirBytes() {
        #expect(IMAPResponse.exists(3) == IMAPResponse.exists(3))
        #expect(IMAPResponse.exists(3) != IMAPResponse.recent(3))
    }

    /// Strings written by the encoder read back through the parser as the same strings.
    @Test(arguments: ["plain", "", "NIL", "two words", "quote\"and\\backslash", "line\r\nbreak", "ümlaut", "日本語", "a]b", "{3}", "~{1}", "%*"])
    func stringsRoundTrip(_ text: String) {
        for utf8 in [false, true] {
            let e = IMAPResponseEncoder(options: .init(utf8: utf8))
            var b = ByteBuffer(string: "a1 LOGIN ")
            e.writeAstring(text, into: &b)
            b.writeString(" ")
            e.writeString(text, into: &b)
            b.writeString("\r\n")
            for splitting in [WriteSplitting.asWritten, .byteByByte] {
                let items = parseItems([Array(b.readableBytesView)], splitting: splitting)
                #expect(items.last == .command(TaggedCommand(tag: "a1", command: .login(user: text, password: text))), "\(splitting) utf8 \(utf8)")
            }
        }
    }

    @Test(arguments: ["1", "1:3,5,7:*", "*", "4294967295", "$", "2:1"])
    func sequenceSetsRoundTrip(_ text: String) {
        var b = ByteBuffer()
        IMAPResponseEncoder().writeSequenceSet(S(text), into: &b)
        #expect(String(buffer: b) == text)
        #expect(parseItems("a1 UID FETCH \(text) UID\r\n") == [.command(TaggedCommand(tag: "a1", command: .fetch(S(text), [.uid], FetchModifiers(), uid: true)))])
    }

    @Test func flagsRoundTripThroughStore() {
        let flags: [IMAPFlag] = [.seen, .answered, IMAPFlag("$Forwarded"), IMAPFlag("\\Custom")]
        var b = ByteBuffer(string: "a1 STORE 1 FLAGS ")
        IMAPResponseEncoder().writeFlagList(flags, into: &b)
        b.writeString("\r\n")
        #expect(parseItems([Array(b.readableBytesView)]) == [.command(TaggedCommand(tag: "a1", command: .store(S("1"), StoreModification(operation: .replace, flags: flags), uid: false)))])
    }

    @Test func dateTimeRoundTripsThroughAppend() {
        let d = IMAPDateTime(date: IMAPDate(year: 1994, month: 2, day: 7), hour: 21, minute: 52, second: 25, zoneMinutes: -480)
        var b = ByteBuffer(string: "a1 APPEND INBOX ")
        IMAPResponseEncoder().writeDateTime(d, into: &b)
        b.writeString(" {1+}\r\nx\r\n")
        let items = parseItems([Array(b.readableBytesView)])
        #expect(items.first == .appendStarted(tag: "a1", mailbox: MailboxName("INBOX"), message: AppendMessage(internalDate: d, size: 1), synchronizing: false))
    }
}
