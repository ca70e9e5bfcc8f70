import Testing
@testable import MIME

@Suite struct EncodedWordTests {
    @Test(arguments: [
        ("=?UTF-8?B?5Lit5paH?=", "中文"),
        ("=?utf-8?q?caf=C3=A9?=", "café"),
        ("=?ISO-8859-1?Q?Andr=E9?= Pirard", "André Pirard"),
        ("=?iso-8859-1?q?this=20is=20some=20text?=", "this is some text"),
        ("=?US-ASCII?Q?Keith_Moore?=", "Keith Moore"),
        ("(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)"),
        ("=?ISO-8859-1?Q?a?=  \t =?ISO-8859-1?Q?b?=", "ab"),
        ("=?ISO-8859-1?Q?a?= b", "a b"),
        ("a =?ISO-8859-1?Q?b?=", "a b"),
        ("=?ISO-8859-1?Q?a_b?=", "a b"),
        ("=?ISO-8859-2?Q?a?= =?ISO-8859-1?Q?b?=", "ab"),
        // A character split across two words is joined before conversion.
        ("=?UTF-8?B?5Lit?= =?UTF-8?B?5paH?=", "中文"),
        ("=?UTF-8?Q?=E4=B8?= =?UTF-8?Q?=AD?=", "中"),
        ("=?GB2312?B?xOO6ww==?=", "你好"),
        ("=?gbk?B?1tDOxA==?=", "中文"),
        ("=?big5?B?pKSk5Q==?=", "中文"),
        ("=?Shift_JIS?B?k/qWe4zq?=", "日本語"),
        ("=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=", "日本語"),
        ("=?EUC-KR?B?x9Gx2w==?=", "한글"),
        ("=?windows-1252?Q?=93quoted=94?=", "\u{201C}quoted\u{201D}"),
        ("=?iso-8859-7?B?4eLj?=", "αβγ"),
        ("=?utf-8*en?q?hello?=", "hello"),
        ("=?utf-8?q?=41?=", "A"),
        // Malformed words stay as they are.
        ("=?utf-8?x?abc?=", "=?utf-8?x?abc?="),
        ("=?utf-8?q?unterminated", "=?utf-8?q?unterminated"),
        ("=??q?abc?=", "=??q?abc?="),
        ("=?utf-8?q?with space?=", "=?utf-8?q?with space?="),
        ("plain text", "plain text"),
        ("abc=?utf-8?q?d?=", "abcd"),
    ])
    func decode(input: String, expected: String) {
        #expect(EncodedWord.decode(input) == expected)
    }

    @Test func unknownCharsetIsBestEffort() {
        let r = EncodedWord.decodeReportingProblems("=?x-nonexistent-charset?q?abc?=")
        #expect(r.text == "abc")
    }

    @Test(arguments: ["hello", "中文字符", "émoji 🎉 mixed with ASCII text", String(repeating: "長", count: 200), "👨‍👩‍👧‍👦👨‍👩‍👧‍👦👨‍👩‍👧‍👦"])
    func encodeRoundTrip(text: String) {
        for useQ in [true, false] {
            let words = EncodedWord.encodeSplitting(text, useQ: useQ, firstLimit: 60, limit: 75)
            for w in words { #expect(w.utf8.count <= 75) }
            #expect(EncodedWord.decode(words.joined(separator: "\r\n ")) == text)
            // Every word decodes on its own to whole characters (no split UTF-8 sequence).
            for w in words { #expect(!EncodedWord.decode(w).contains("\u{FFFD}")) }
        }
    }
}
