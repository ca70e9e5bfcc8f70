import IMAPCore
import MailTesting
import NIOCore
import Testing

private func mb(_ name: String) -> MailboxName { MailboxName(name) }
private func section(_ part: [Int] = [], _ kind: SectionSpecifier.Kind = .complete) -> SectionSpecifier {
    SectionSpecifier(part: part, kind: kind)
}
private func list(_ reference: String, _ patterns: [String], select: (inout ListCommand.SelectOptions) -> Void = { _ in },
                  returning: (inout ListCommand.ReturnOptions) -> Void = { _ in }, extended: Bool = false) -> IMAPCommand {
    var s = ListCommand.SelectOptions()
    select(&s)
    var r = ListCommand.ReturnOptions()
    returning(&r)
    return .list(ListCommand(reference: reference, patterns: patterns, selectOptions: s, returnOptions: r, isExtended: extended))
}
private func returning(_ edit: (inout SearchReturnOptions) -> Void) -> SearchReturnOptions {
    var o = SearchReturnOptions()
    edit(&o)
    return o
}
private func select(condStore: Bool = false, qresync: SelectParameters.QResync? = nil) -> SelectParameters {
    var p = SelectParameters()
    p.condStore = condStore
    p.qresync = qresync
    return p
}

@Suite("IMAPCommandParser grammar")
struct IMAPCommandParserGrammarTests {
    struct Valid: Sendable, CustomTestStringConvertible {
        var text: String
        var command: IMAPCommand
        init(_ text: String, _ command: IMAPCommand) {
            self.text = text
            self.command = command
        }
        var testDescription: String { text.count > 70 ? "\(text.prefix(60))…" : text }
    }

    static let valid: [Valid] = [
        // command-any
        .init("CAPABILITY", .capability),
        .init("capability", .capability),
        .init("NoOp", .noop),
        .init("LOGOUT", .logout),
        .init("ID NIL", .id(nil)),
        .init("ID ()", .id([])),
        .init(#"ID ("name" "sodr" "version" "19.34" "vendor" "Pink Floyd Music Limited")"#,
              .id([.init(name: "name", value: "sodr"), .init(name: "version", value: "19.34"),
                   .init(name: "vendor", value: "Pink Floyd Music Limited")])),
        .init(#"ID ("name" NIL "os" {5}"# + "\r\nLinux)", .id([.init(name: "name", value: nil), .init(name: "os", value: "Linux")])),
        // command-nonauth
        .init("STARTTLS", .startTLS),
        .init("LOGIN SMITH SESAME", .login(user: "SMITH", password: "SESAME")),
        .init(#"LOGIN "fred foobar" "pa\"ss\\word""#, .login(user: "fred foobar", password: #"pa"ss\word"#)),
        .init("LOGIN {4}\r\nuser {4}\r\npass", .login(user: "user", password: "pass")),
        .init("LOGIN {4+}\r\nuser {6+}\r\np\r\nass", .login(user: "user", password: "p\r\nass")),
        .init(#"LOGIN "jöe" "pässwörd""#, .login(user: "jöe", password: "pässwörd")),
        .init(#"LOGIN "" """#, .login(user: "", password: "")),
        .init("LOGIN user] pass]", .login(user: "user]", password: "pass]")),
        .init("AUTHENTICATE PLAIN", .authenticate(mechanism: "PLAIN", initialResponse: nil)),
        .init("authenticate plain dGVzdAB0ZXN0AHRlc3Q=", .authenticate(mechanism: "PLAIN", initialResponse: "dGVzdAB0ZXN0AHRlc3Q=")),
        .init("AUTHENTICATE PLAIN =", .authenticate(mechanism: "PLAIN", initialResponse: "=")),
        .init("AUTHENTICATE SCRAM-SHA-256", .authenticate(mechanism: "SCRAM-SHA-256", initialResponse: nil)),
        // command-auth
        .init("ENABLE CONDSTORE", .enable(["CONDSTORE"])),
        .init("ENABLE qresync UTF8=ACCEPT", .enable(["QRESYNC", "UTF8=ACCEPT"])),
        .init("SELECT INBOX", .select(mb("INBOX"), select())),
        .init("select inbox", .select(mb("inbox"), select())),
        .init(#"SELECT "Sent Items""#, .select(mb("Sent Items"), select())),
        .init("SELECT {5}\r\nDraft", .select(mb("Draft"), select())),
        .init("SELECT INBOX (CONDSTORE)", .select(mb("INBOX"), select(condStore: true))),
        .init("SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))",
              .select(mb("INBOX"), select(qresync: .init(uidValidity: 67_890_007, modSeq: 20_050_715_194_045_000,
                                                        knownUIDs: S("41,43:211,214:541"))))),
        .init("SELECT INBOX (QRESYNC (67890007 90060115194045000))",
              .select(mb("INBOX"), select(qresync: .init(uidValidity: 67_890_007, modSeq: 90_060_115_194_045_000)))),
        .init("EXAMINE INBOX (CONDSTORE QRESYNC (1 2 1:29997 (5000,7500 15000,22500)))", .examine(mb("INBOX"), {
            var q = SelectParameters.QResync(uidValidity: 1, modSeq: 2, knownUIDs: S("1:29997"))
            q.sequenceMatch = .init(sequences: S("5000,7500"), uids: S("15000,22500"))
            return select(condStore: true, qresync: q)
        }())),
        .init("EXAMINE blurdybloop", .examine(mb("blurdybloop"), select())),
        .init("CREATE owatagusiam/", .create(mb("owatagusiam/"), specialUse: [])),
        .init(#"CREATE MySpecial (USE (\Drafts \Sent))"#, .create(mb("MySpecial"), specialUse: ["\\Drafts", "\\Sent"])),
        .init("CREATE x (USE ())", .create(mb("x"), specialUse: [])),
        .init("DELETE blurdybloop", .delete(mb("blurdybloop"))),
        .init("RENAME blurdybloop sarasota", .rename(from: mb("blurdybloop"), to: mb("sarasota"))),
        .init("RENAME \"a b\" {3}\r\nc d", .rename(from: mb("a b"), to: mb("c d"))),
        .init("SUBSCRIBE #news.comp.mail.mime", .subscribe(mb("#news.comp.mail.mime"))),
        .init("UNSUBSCRIBE #news.comp.mail.mime", .unsubscribe(mb("#news.comp.mail.mime"))),
        .init(#"LIST "" """#, list("", [""])),
        .init("LIST /usr/staff/jones \"\"", list("/usr/staff/jones", [""])),
        .init("LIST ~/Mail/ %", list("~/Mail/", ["%"])),
        .init(#"LIST "" *"#, list("", ["*"])),
        .init(#"LIST "" INBOX/%]"#, list("", ["INBOX/%]"])),
        .init(#"LIST (SUBSCRIBED) "" "*""#, list("", ["*"], select: { $0.subscribed = true }, extended: true)),
        .init(#"LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)"#,
              list("", ["%"], select: { $0.subscribed = true; $0.recursiveMatch = true }, returning: { $0.children = true }, extended: true)),
        .init(#"LIST (REMOTE) "" *"#, list("", ["*"], select: { $0.remote = true }, extended: true)),
        .init(#"LIST "" ("INBOX" "Drafts" Sent/%)"#, list("", ["INBOX", "Drafts", "Sent/%"], extended: true)),
        .init(#"LIST "" % RETURN (STATUS (MESSAGES UNSEEN))"#,
              list("", ["%"], returning: { $0.status = [.messages, .unseen] }, extended: true)),
        .init(#"LIST (SPECIAL-USE) "" "*" RETURN (SPECIAL-USE SUBSCRIBED)"#,
              list("", ["*"], select: { $0.specialUse = true }, returning: { $0.specialUse = true; $0.subscribed = true }, extended: true)),
        .init(#"LIST () "" %"#, list("", ["%"], extended: true)),
        .init(#"LIST "" % RETURN ()"#, list("", ["%"], extended: true)),
        .init(##"LSUB "#news." "comp.mail.*""##, .lsub(reference: "#news.", pattern: "comp.mail.*")),
        .init("NAMESPACE", .namespace),
        .init("STATUS blurdybloop (UIDNEXT MESSAGES)", .status(mb("blurdybloop"), [.uidNext, .messages])),
        .init("status INBOX (messages recent uidnext uidvalidity unseen deleted size highestmodseq)",
              .status(mb("INBOX"), [.messages, .recent, .uidNext, .uidValidity, .unseen, .deleted, .size, .highestModSeq])),
        .init("IDLE", .idle),
        .init(#"GETQUOTA """#, .getQuota(root: "")),
        .init("GETQUOTAROOT INBOX", .getQuotaRoot(mb("INBOX"))),
        .init(#"SETQUOTA "" (STORAGE 512)"#, .setQuota(root: "", limits: [.init(resource: "STORAGE", limit: 512)])),
        .init(#"SETQUOTA "" (storage 512 MESSAGE 1000)"#,
              .setQuota(root: "", limits: [.init(resource: "STORAGE", limit: 512), .init(resource: "MESSAGE", limit: 1000)])),
        .init(#"SETQUOTA "" ()"#, .setQuota(root: "", limits: [])),
        .init("COMPRESS DEFLATE", .compress(mechanism: "DEFLATE")),
        // command-select
        .init("CHECK", .check),
        .init("CLOSE", .close),
        .init("UNSELECT", .unselect),
        .init("EXPUNGE", .expunge),
        .init("UID EXPUNGE 3000:3002", .uidExpunge(S("3000:3002"))),
        // SEARCH
        .init(#"SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith""#,
              .search(SearchCommand(key: .and([.flagged, .since(date(1, 2, 1994)), .not(.from("Smith"))])), uid: false)),
        .init(#"SEARCH TEXT "string not in mailbox""#, .search(SearchCommand(key: .text("string not in mailbox")), uid: false)),
        .init("SEARCH CHARSET UTF-8 TEXT {12}\r\nотпуск",
              .search(SearchCommand(charset: "UTF-8", key: .text("отпуск")), uid: false)),
        .init(#"SEARCH CHARSET "US-ASCII" ALL"#, .search(SearchCommand(charset: "US-ASCII", key: .all), uid: false)),
        .init("SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994",
              .search(SearchCommand(returnOptions: returning { $0.min = true; $0.count = true },
                                    key: .and([.flagged, .since(date(1, 2, 1994))])), uid: false)),
        .init("UID SEARCH RETURN (MIN MAX ALL COUNT SAVE) UNSEEN",
              .search(SearchCommand(returnOptions: returning { $0.min = true; $0.max = true; $0.all = true; $0.count = true; $0.save = true },
                                    key: .unseen), uid: true)),
        .init("SEARCH RETURN () ALL", .search(SearchCommand(returnOptions: SearchReturnOptions(), key: .all), uid: false)),
        .init("SEARCH $", .search(SearchCommand(key: .sequenceNumbers(.lastSearchResult)), uid: false)),
        .init("UID SEARCH UID $ SMALLER 4096", .search(SearchCommand(key: .and([.uid(.lastSearchResult), .smaller(4096)])), uid: true)),
        .init("SEARCH OR (FROM a TO b) NOT SEEN",
              .search(SearchCommand(key: .or(.and([.from("a"), .to("b")]), .not(.seen))), uid: false)),
        .init("SEARCH 1:5,7 UID 2:*", .search(SearchCommand(key: .and([.sequenceNumbers(S("1:5,7")), .uid(S("2:*"))])), uid: false)),
        .init("SEARCH *", .search(SearchCommand(key: .sequenceNumbers(S("*"))), uid: false)),
        .init("SEARCH MODSEQ 620162338", .search(SearchCommand(key: .modSeq(620_162_338)), uid: false)),
        .init(#"SEARCH MODSEQ "/flags/\\draft" all 620162338"#, .search(SearchCommand(key: .modSeq(620_162_338)), uid: false)),
        .init("SEARCH LARGER 1000 SMALLER 2000", .search(SearchCommand(key: .and([.larger(1000), .smaller(2000)])), uid: false)),
        .init(#"SEARCH HEADER Message-ID "<x@y.test>""#, .search(SearchCommand(key: .header(field: "Message-ID", value: "<x@y.test>")), uid: false)),
        .init("SEARCH KEYWORD $Forwarded UNKEYWORD NonJunk",
              .search(SearchCommand(key: .and([.keyword(IMAPFlag("$Forwarded")), .unkeyword(IMAPFlag("NonJunk"))])), uid: false)),
        .init("SEARCH NEW OLD RECENT", .search(SearchCommand(key: .and([.new, .old, .recent])), uid: false)),
        .init("SEARCH ANSWERED DELETED DRAFT FLAGGED SEEN UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN",
              .search(SearchCommand(key: .and([.answered, .deleted, .draft, .flagged, .seen, .unanswered, .undeleted, .undraft, .unflagged, .unseen])), uid: false)),
        .init(#"SEARCH BEFORE "1-Feb-1994" ON 01-jan-2000 SENTBEFORE 9-Dec-1999 SENTON 31-Dec-1999 SENTSINCE 2-Mar-2001"#,
              .search(SearchCommand(key: .and([.before(date(1, 2, 1994)), .on(date(1, 1, 2000)), .sentBefore(date(9, 12, 1999)),
                                               .sentOn(date(31, 12, 1999)), .sentSince(date(2, 3, 2001))])), uid: false)),
        .init("SEARCH BCC a CC b BODY c SUBJECT d", .search(SearchCommand(key: .and([.bcc("a"), .cc("b"), .body("c"), .subject("d")])), uid: false)),
        .init("SEARCH ((SEEN) (OR ALL (NOT DRAFT)))",
              .search(SearchCommand(key: .and([.and([.seen]), .and([.or(.all, .and([.not(.draft)]))])])), uid: false)),
        .init("search subject {3+}\r\nx y", .search(SearchCommand(key: .subject("x y")), uid: false)),
        // FETCH
        .init("FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])",
              .fetch(S("2:4"), [.flags, .bodySection(section([], .headerFields(["DATE", "FROM"])), partial: nil, peek: false)], FetchModifiers(), uid: false)),
        .init("FETCH 1 ALL", .fetch(S("1"), FetchAttribute.all, FetchModifiers(), uid: false)),
        .init("FETCH 1 fast", .fetch(S("1"), FetchAttribute.fast, FetchModifiers(), uid: false)),
        .init("FETCH 1:* FULL", .fetch(S("1:*"), FetchAttribute.full, FetchModifiers(), uid: false)),
        .init("FETCH 2 BODY.PEEK[1.2.HEADER.FIELDS (A B)]<0.100>",
              .fetch(S("2"), [.bodySection(section([1, 2], .headerFields(["A", "B"])), partial: Partial(offset: 0, length: 100), peek: true)],
                     FetchModifiers(), uid: false)),
        .init(#"FETCH 1 (BODY[1.2.HEADER.FIELDS.NOT (A "B C")])"#,
              .fetch(S("1"), [.bodySection(section([1, 2], .headerFieldsNot(["A", "B C"])), partial: nil, peek: false)], FetchModifiers(), uid: false)),
        .init("FETCH 1 BODY[]", .fetch(S("1"), [.bodySection(.complete, partial: nil, peek: false)], FetchModifiers(), uid: false)),
        .init("FETCH 1 body[text]<0.2048>",
              .fetch(S("1"), [.bodySection(section([], .text), partial: Partial(offset: 0, length: 2048), peek: false)], FetchModifiers(), uid: false)),
        .init("FETCH 1 (BODY[1.MIME] BODY[2.HEADER] BODY[3.1] BODY.PEEK[HEADER] BODY[4.TEXT])",
              .fetch(S("1"), [.bodySection(section([1], .mime), partial: nil, peek: false),
                              .bodySection(section([2], .header), partial: nil, peek: false),
                              .bodySection(section([3, 1]), partial: nil, peek: false),
                              .bodySection(section([], .header), partial: nil, peek: true),
                              .bodySection(section([4], .text), partial: nil, peek: false)], FetchModifiers(), uid: false)),
        .init("FETCH 1 (BINARY[1.2]<0.100> BINARY.PEEK[] BINARY.SIZE[3])",
              .fetch(S("1"), [.binary(part: [1, 2], partial: Partial(offset: 0, length: 100), peek: false),
                              .binary(part: [], partial: nil, peek: true), .binarySize(part: [3])], FetchModifiers(), uid: false)),
        .init("FETCH 1 (RFC822 RFC822.HEADER RFC822.TEXT RFC822.SIZE)",
              .fetch(S("1"), [.rfc822, .rfc822Header, .rfc822Text, .rfc822Size], FetchModifiers(), uid: false)),
        .init("FETCH 1 (ENVELOPE INTERNALDATE BODY BODYSTRUCTURE UID)",
              .fetch(S("1"), [.envelope, .internalDate, .bodyStructure(extensible: false), .bodyStructure(extensible: true), .uid], FetchModifiers(), uid: false)),
        .init("FETCH 1:* (UID MODSEQ) (CHANGEDSINCE 12345)",
              .fetch(S("1:*"), [.uid, .modSeq], FetchModifiers(changedSince: 12345), uid: false)),
        .init("UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)",
              .fetch(S("300:500"), [.flags], FetchModifiers(changedSince: 12345, vanished: true), uid: true)),
        .init("FETCH * BODYSTRUCTURE", .fetch(S("*"), [.bodyStructure(extensible: true)], FetchModifiers(), uid: false)),
        .init("FETCH $ (FLAGS)", .fetch(.lastSearchResult, [.flags], FetchModifiers(), uid: false)),
        .init("uid fetch 1,3:5,7:* flags", .fetch(S("1,3:5,7:*"), [.flags], FetchModifiers(), uid: true)),
        .init("FETCH 4294967295 UID", .fetch(S("4294967295"), [.uid], FetchModifiers(), uid: false)),
        // STORE
        .init(#"STORE 2:4 +FLAGS (\Deleted)"#, .store(S("2:4"), StoreModification(operation: .add, flags: [.deleted]), uid: false)),
        .init(#"STORE 1 FLAGS.SILENT \Seen \Flagged"#,
              .store(S("1"), StoreModification(operation: .replace, silent: true, flags: [.seen, .flagged]), uid: false)),
        .init("STORE 1 -flags.silent ($Junk)", .store(S("1"), StoreModification(operation: .remove, silent: true, flags: [IMAPFlag("$Junk")]), uid: false)),
        .init("STORE 1 FLAGS ()", .store(S("1"), StoreModification(operation: .replace, flags: []), uid: false)),
        .init(#"STORE 1:* (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\Deleted)"#,
              .store(S("1:*"), StoreModification(operation: .add, silent: true, flags: [.deleted], unchangedSince: 320_162_338), uid: false)),
        .init(#"UID STORE 5 (UNCHANGEDSINCE 0) FLAGS (\seen)"#,
              .store(S("5"), StoreModification(operation: .replace, flags: [.seen], unchangedSince: 0), uid: true)),
        // COPY / MOVE
        .init("COPY 2:4 MEETING", .copy(S("2:4"), mb("MEETING"), uid: false)),
        .init("UID COPY 1:* \"Saved Items\"", .copy(S("1:*"), mb("Saved Items"), uid: true)),
        .init("MOVE 1 Trash", .move(S("1"), mb("Trash"), uid: false)),
        .init("UID MOVE 42:69 foo", .move(S("42:69"), mb("foo"), uid: true)),
        // SORT / THREAD (RFC 5256)
        .init("SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994", .sort([.init(.subject)], charset: "UTF-8", key: .since(date(1, 2, 1994)), uid: false)),
        .init("SORT (SUBJECT REVERSE DATE) UTF-8 ALL",
              .sort([.init(.subject), .init(.date, reverse: true)], charset: "UTF-8", key: .all, uid: false)),
        .init(#"UID SORT (ARRIVAL CC FROM SIZE TO) US-ASCII TEXT "not in mailbox" UNSEEN"#,
              .sort([.init(.arrival), .init(.cc), .init(.from), .init(.size), .init(.to)], charset: "US-ASCII",
                    key: .and([.text("not in mailbox"), .unseen]), uid: true)),
        .init("THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000", .thread(algorithm: "ORDEREDSUBJECT", charset: "UTF-8", key: .since(date(5, 3, 2000)), uid: false)),
        .init(#"UID THREAD references US-ASCII TEXT "gewp""#, .thread(algorithm: "REFERENCES", charset: "US-ASCII", key: .text("gewp"), uid: true)),
    ]

    @Test(arguments: valid)
    func parses(_ fixture: Valid) {
        for splitting in WriteSplitting.all(randomSeeds: 1...4) {
            let items = parseItems("A1 \(fixture.text)\r\n", splitting: splitting)
            let expected = IMAPCommandParser.Item.command(TaggedCommand(tag: "A1", command: fixture.command))
            #expect(items.last == expected, "\(splitting)")
            #expect(items.allSatisfy { if case .continuationRequested(tag: "A1", _) = $0 { true } else { $0 == expected } }, "\(splitting)")
        }
    }

    @Test func bareLFEndsALine() {
        #expect(parseItems("a NOOP\nb LOGIN {1}\nx y\n") == [
            .command(TaggedCommand(tag: "a", command: .noop)),
            .continuationRequested(tag: "b", size: 1),
            .command(TaggedCommand(tag: "b", command: .login(user: "x", password: "y"))),
        ])
    }

    @Test func emptyLinesAreErrorsWithoutATag() {
        let empty = IMAPCommandParser.Item.error(IMAPParseError(tag: nil, kind: .syntax, message: "empty command line"))
        #expect(parseItems("\r\n\na NOOP\r\n") == [empty, empty, .command(TaggedCommand(tag: "a", command: .noop))])
    }

    @Test func commandNameReportsUID() {
        #expect(IMAPCommand.fetch(S("1"), [.uid], FetchModifiers(), uid: true).name == "UID FETCH")
    }

    struct Invalid: Sendable, CustomTestStringConvertible {
        var text: String
        var kind: IMAPParseError.Kind
        var tag: String?
        init(_ text: String, _ kind: IMAPParseError.Kind = .syntax, tag: String? = "a1") {
            self.text = text
            self.kind = kind
            self.tag = tag
        }
        var testDescription: String { text.count > 70 ? "\(text.prefix(60))…" : text }
    }

    static let invalid: [Invalid] = [
        .init("a1 FOO", .unknownCommand),
        .init("a1 XYZZY {3+}\r\nabc", .unknownCommand),
        .init("a1 XYZZY {3}", .unknownCommand),
        .init("a1 FETCH"),
        .init("a1 FETCH 0 FLAGS"),
        .init("a1 FETCH 01 FLAGS"),
        .init("a1 FETCH 4294967296 FLAGS"),
        .init("a1 FETCH 1 (FLAGS"),
        .init("a1 FETCH 1 ()"),
        .init("a1 FETCH 1 (ALL)"),
        .init("a1 FETCH 1 FOO"),
        .init("a1 FETCH 1 BODY[HEADER.FIELDS]"),
        .init("a1 FETCH 1 BODY[MIME]"),
        .init("a1 FETCH 1 BODY[1.FOO]"),
        .init("a1 FETCH 1 BODY[]<0.0>"),
        .init("a1 FETCH 1 BODY[]<5>"),
        .init("a1 FETCH 1 BODY.PEEK"),
        .init("a1 FETCH 1 (FLAGS) (VANISHED)"),
        .init("a1 UID FETCH 1 (FLAGS) (VANISHED)"),
        .init("a1 FETCH 1 (FLAGS) (CHANGEDSINCE 0)"),
        .init("a1 SELECT"),
        .init("a1 SELECT INBOX (FOO)"),
        .init("a1 SELECT INBOX ()"),
        .init("a1 NOOP extra"),
        .init("a1 NOOP "),
        .init("a1 LOGIN \"abc"),
        .init("a1 LOGIN \"a\\b\" x"),
        .init("a1 LOGIN a  b"),
        .init("a1 LOGIN a"),
        .init("a1 LOGIN {3+}\r\n\u{FF}\u{FE}\u{FD} x", .invalidUTF8),
        .init("a1 SELECT \"\u{C3}\"", .invalidUTF8),
        .init("a1 LOGIN \"\u{E9}\" x", .invalidUTF8),
        .init("a1 SEARCH SUBJECT {2+}\r\n\u{C3}( ALL", .invalidUTF8),
        .init("a1 LOGIN ~{3+}\r\nabc x"),
        .init("a1 LOGIN {3+}\r\na\u{0}b x"),
        .init("a1 SEARCH FOO"),
        .init("a1 SEARCH"),
        .init("a1 SEARCH NOT"),
        .init("a1 SEARCH (ALL"),
        .init("a1 SEARCH ()"),
        .init("a1 SEARCH SINCE 32-Jan-2000"),
        .init("a1 SEARCH SINCE 1-Foo-2000"),
        .init("a1 SEARCH SINCE 1-Jan-99"),
        .init("a1 SEARCH RETURN (FOO) ALL"),
        .init("a1 SEARCH LARGER x"),
        .init("a1 SEARCH LARGER 99999999999999999999"),
        .init("a1 SEARCH MODSEQ \"/flags/\\\\draft\" some 5"),
        .init("a1 STORE 1 FLAGS.LOUD (\\Seen)"),
        .init("a1 STORE 1 FLAGS"),
        .init("a1 STORE 1 (FOO 1) FLAGS (\\Seen)"),
        .init("a1 LIST (RECURSIVEMATCH) \"\" *"),
        .init("a1 LIST (FOO) \"\" *"),
        .init("a1 LIST \"\" * RETURN (FOO)"),
        .init("a1 LIST \"\" * EXTRA"),
        .init("a1 STATUS INBOX (FOO)"),
        .init("a1 STATUS INBOX ()"),
        .init("a1 APPEND INBOX"),
        .init("a1 APPEND INBOX \"message\""),
        .init("a1 APPEND INBOX (\\Seen) \"1-Foo-2000 00:00:00 +0000\" {3+}\r\nabc"),
        .init("a1 UID FOO 1"),
        .init("a1 UID NOOP"),
        .init("a1 ID (\"a\")"),
        .init("a1 ID (a b)"),
        .init("a1 ENABLE"),
        .init("a1 AUTHENTICATE"),
        .init("a1 AUTHENTICATE PLAIN abc"),
        .init("a1 AUTHENTICATE PLAIN a=bc"),
        .init("a1 CREATE x (USE (Sent))"),
        .init("a1 CREATE x (FOO)"),
        .init("a1 SORT () UTF-8 ALL"),
        .init("a1 SORT (FOO) UTF-8 ALL"),
        .init("a1 SORT (DATE) UTF-8"),
        .init("a1 THREAD REFERENCES"),
        .init("a1 SETQUOTA \"\" (STORAGE)"),
        .init("a1 COPY 1"),
        .init("a1 FETCH 1:2: FLAGS"),
        .init("a1 CAPABILITY\r\u{1}"),
        .init("+ NOOP", tag: nil),
        .init(" NOOP", tag: nil),
        .init("* NOOP", tag: nil),
        .init("a1", tag: nil),
        .init("{3+}\r\nabc NOOP", tag: nil),
    ]

    @Test(arguments: invalid)
    func fails(_ fixture: Invalid) {
        for splitting in WriteSplitting.all(randomSeeds: 1...4) {
            // Scalars up to U+00FF stand for one octet each, so fixtures can hold invalid UTF-8.
            let bytes = "\(fixture.text)\r\nz9 NOOP\r\n".unicodeScalars.map { UInt8($0.value) }
            let items = parseItems([bytes], splitting: splitting)
            guard items.count == 2, case .error(let error) = items[0] else {
                Issue.record("\(splitting): \(items)")
                continue
            }
            #expect(error.kind == fixture.kind, "\(splitting): \(error)")
            #expect(error.tag == fixture.tag, "\(splitting): \(error)")
            #expect(!error.message.isEmpty)
            #expect(items[1] == .command(TaggedCommand(tag: "z9", command: .noop)), "\(splitting)")
        }
    }

    @Test func errorMessagesArePrecise() {
        let cases: [(String, String)] = [
            ("a FETCH 1 (FLAGS", #"FETCH: expected ")", found end of line"#),
            ("a SEARCH FOO", "SEARCH: unknown search key FOO"),
            ("a FOO", "unknown command FOO"),
            ("a LOGIN a", "LOGIN: expected SP, found end of line"),
        ]
        for (line, message) in cases {
            guard case .error(let e) = parseItems(line + "\r\n").first else {
                Issue.record("\(line): no error")
                continue
            }
            #expect(e.message == message)
        }
    }
}
