import IMAPCore
import MIME
import Testing

@Suite struct SearchEvaluatorTests {
    static let date = IMAPDateTime(date: IMAPDate(year: 2025, month: 2, day: 3), hour: 23, minute: 30, second: 0, zoneMinutes: 60)
    let facts = SearchFacts(sequenceNumber: 3, uid: 30, flags: [.seen, IMAPFlag("$Forwarded")], size: 988, internalDate: date, modSeq: 7)
    let mixed = MessageStructure(parsing: MessageFixtures.crlf(MessageFixtures.mixed))
    let encoded = MessageStructure(parsing: MessageFixtures.crlf(MessageFixtures.encodedWords))

    func matches(_ key: SearchKey, _ message: MessageStructure? = nil, saved: SequenceSet = SequenceSet([])) -> Bool {
        SearchEvaluator(key, largestSequenceNumber: 10, largestUID: 100, savedUIDs: saved).matches(facts, message: message ?? mixed)
    }

    @Test func flagsAndKeywords() {
        #expect(matches(.seen) && !matches(.unseen) && matches(.unanswered) && !matches(.deleted))
        #expect(matches(.keyword(IMAPFlag("$forwarded"))) && !matches(.keyword(IMAPFlag("NonJunk"))))
        #expect(matches(.unkeyword(IMAPFlag("NonJunk"))))
        #expect(matches(.old) && !matches(.new) && !matches(.recent))
    }

    @Test func numbersSizesAndModSeq() {
        #expect(matches(.sequenceNumbers(SequenceSet([.init(.number(2), .number(4))]))))
        #expect(!matches(.sequenceNumbers(SequenceSet([.init(.number(4), .star)]))))
        #expect(matches(.uid(SequenceSet([.init(1), .init(.number(30), .star)]))))
        #expect(!matches(.uid(SequenceSet([.init(.star, .star)]))))  // * is 100
        #expect(matches(.uid(.lastSearchResult), saved: SequenceSet([.init(30)])))
        #expect(matches(.sequenceNumbers(.lastSearchResult), saved: SequenceSet([.init(.number(1), .number(40))])))
        #expect(!matches(.uid(.lastSearchResult)))
        #expect(matches(.larger(987)) && !matches(.larger(988)) && matches(.smaller(989)) && !matches(.smaller(988)))
        #expect(matches(.modSeq(7)) && !matches(.modSeq(8)))
    }

    @Test func booleanCombinations() {
        #expect(matches(.and([.seen, .not(.deleted), .or(.flagged, .larger(1))])))
        #expect(!matches(.and([.seen, .deleted])))
        // Depth 32 of nested lists and NOTs.
        var key = SearchKey.seen
        for i in 0..<64 { key = i % 2 == 0 ? .not(key) : .and([key]) }
        #expect(matches(key))
    }

    @Test func headerKeysDecodeAndFold() {
        #expect(matches(.from("ALICE@example")) && matches(.from("alice <")) && !matches(.from("bob")))
        #expect(matches(.to("bob@")) && matches(.subject("repo")) && !matches(.cc("x")))
        #expect(matches(.header(field: "message-id", value: "MIXED@")))
        #expect(matches(.header(field: "Content-Language", value: "")))
        #expect(!matches(.header(field: "X-Missing", value: "")))
        #expect(matches(.from("jürgen müller"), encoded))
        #expect(matches(.to("andré"), encoded))
        #expect(matches(.subject("if you can read this you understand"), encoded))
    }

    @Test func bodyAndTextDecodeTransferEncodingAndCharset() {
        #expect(matches(.body("CAFÉ AU LAIT")))
        #expect(matches(.body("report attached")))  // across a soft line break
        #expect(matches(.body("<b>lait</b>")))  // HTML as text
        #expect(!matches(.body("PDF-1.4")))  // not a text part
        #expect(!matches(.body("Subject: Report")))
        #expect(matches(.text("subject: report")) && matches(.text("café")))
        #expect(matches(.body("grüße aus köln"), encoded))
    }

    @Test func datesUseTheirOwnZone() {
        // INTERNALDATE 3 Feb 2025 23:30 +0100; Date: Mon, 3 Feb 2025 10:00:00 +0100.
        let feb3 = IMAPDate(year: 2025, month: 2, day: 3), feb4 = IMAPDate(year: 2025, month: 2, day: 4)
        #expect(matches(.on(feb3)) && matches(.since(feb3)) && matches(.before(feb4)) && !matches(.before(feb3)))
        #expect(matches(.sentOn(feb3)) && matches(.sentSince(feb3)) && !matches(.sentSince(feb4)) && matches(.sentBefore(feb4)))
        // 23:59:59 -0500 on the 7th is the 8th in UTC, still the 7th in its own zone.
        #expect(matches(.sentOn(IMAPDate(year: 2025, month: 2, day: 7)), encoded))
        // No Date: INTERNALDATE.
        let noDate = MessageStructure(parsing: MessageFixtures.crlf(MessageFixtures.rfc2231))
        #expect(matches(.sentOn(feb3), noDate))
    }

    @Test func needsMessageAndBody() {
        #expect(!SearchEvaluator.needsMessage(.and([.seen, .uid(.all), .not(.larger(4)), .since(IMAPDate(year: 2000, month: 1, day: 1))])))
        #expect(SearchEvaluator.needsMessage(.or(.seen, .subject("x"))))
        #expect(!SearchEvaluator.needsBody(.or(.seen, .subject("x"))))
        #expect(SearchEvaluator.needsMessage(.sentOn(IMAPDate(year: 2000, month: 1, day: 1))))
        #expect(SearchEvaluator.needsBody(.not(.and([.text("x")]))))
        let e = SearchEvaluator(.body("x"), largestSequenceNumber: 1, largestUID: 1)
        #expect(e.needsMessage && e.needsBody)
        // Without the message, keys that read it do not match.
        #expect(!e.matches(facts))
    }

    @Test func sentDateParsing() {
        let d = SentDate.parse("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)")
        #expect(d == IMAPDateTime(date: IMAPDate(year: 1996, month: 7, day: 17), hour: 2, minute: 23, second: 25, zoneMinutes: -420))
        #expect(SentDate.parse("17 Jul 96 02:23 EST")?.date == IMAPDate(year: 1996, month: 7, day: 17))
        #expect(SentDate.parse("17 Jul 96 02:23 EST")?.zoneMinutes == -300)
        #expect(SentDate.parse("1 jan 2001")?.hour == 0)
        #expect(SentDate.parse("garbage") == nil)
        #expect(SentDate.parse("") == nil)
        #expect(IMAPDateTime(date: IMAPDate(year: 1970, month: 1, day: 2), hour: 1, minute: 0, second: 0, zoneMinutes: 60).secondsSinceEpoch == 86_400)
    }
}
