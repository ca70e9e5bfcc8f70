import IMAPCore
import MailCore
import Testing

private let systemAndForwarded = "(\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)"
private let permanent = "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded \\*)] Flags permitted"

private func select(_ name: String = "INBOX", _ parameters: SelectParameters = SelectParameters()) -> IMAPCommand {
    .select(mailbox(name), parameters)
}

/// ENABLE, SELECT/EXAMINE, QRESYNC (RFC 9051 §6.3.1–§6.3.3, RFC 5161, RFC 7162 §3.2.5).
@Suite struct IMAPServerStateMachineSelectTests {
    struct EnableCase: Sendable, CustomTestStringConvertible {
        var names: [String]
        var enabled: String
        var condStore = false, qresync = false, rev2 = false, utf8 = false
        var testDescription: String { names.joined(separator: " ") }
    }

    @Test(arguments: [
        EnableCase(names: ["CONDSTORE"], enabled: "* ENABLED CONDSTORE", condStore: true),
        EnableCase(names: ["QRESYNC"], enabled: "* ENABLED QRESYNC", condStore: true, qresync: true),
        EnableCase(names: ["imap4rev2"], enabled: "* ENABLED IMAP4rev2", rev2: true),
        EnableCase(names: ["UTF8=ACCEPT"], enabled: "* ENABLED UTF8=ACCEPT", utf8: true),
        EnableCase(names: ["X-UNKNOWN", "condstore"], enabled: "* ENABLED CONDSTORE", condStore: true),
        EnableCase(names: ["X-UNKNOWN"], enabled: "* ENABLED"),
        EnableCase(names: ["CONDSTORE", "QRESYNC", "CONDSTORE"], enabled: "* ENABLED CONDSTORE QRESYNC", condStore: true, qresync: true),
    ])
    func enable(_ c: EnableCase) {
        var m = authenticated()
        #expect(m.run("a", .enable(c.names)) == [c.enabled, "a OK ENABLE completed", "→ read"])
        #expect(m.condStore == c.condStore)
        #expect(m.qresync == c.qresync)
        #expect(m.imap4rev2 == c.rev2)
        #expect(m.utf8 == c.utf8)
        #expect(m.encoderOptions.utf8 == c.utf8)
        // Enabling again announces nothing new.
        #expect(m.run("b", .enable(c.names)) == ["* ENABLED", "b OK ENABLE completed", "→ read"])
    }

    @Test func enableOnlyBeforeSelect() {
        var m = selected()
        #expect(m.run("a", .enable(["CONDSTORE"])) == ["a BAD ENABLE is only valid before SELECT", "→ read"])
        #expect(!m.condStore)
    }

    @Test func selectIMAP4rev1() {
        var m = authenticated()
        #expect(m.run("s", select()) == ["select INBOX"])
        #expect(!m.isIdleBetweenCommands)
        #expect(render(m.mailboxSelected(.success(inboxInfo()))) == [
            "* FLAGS \(systemAndForwarded)",
            "* 6 EXISTS",
            "* 0 RECENT",
            "* OK [UNSEEN 1] First unseen",
            "* OK [UIDVALIDITY 7] UIDs valid",
            "* OK [UIDNEXT 7] Predicted next UID",
            permanent,
            "* OK [HIGHESTMODSEQ 100] Highest",
            "s OK [READ-WRITE] SELECT completed",
            "→ read",
        ])
        #expect(m.selectedMailbox == "INBOX")
    }

    /// RFC 9051 §6.3.2: no RECENT or UNSEEN, and a LIST response for the mailbox.
    @Test func selectIMAP4rev2() {
        var m = authenticated(enable: ["IMAP4rev2"])
        _ = m.run("s", select("inbox"))
        #expect(render(m.mailboxSelected(.success(inboxInfo()))) == [
            "* FLAGS \(systemAndForwarded)",
            "* 6 EXISTS",
            "* OK [UIDVALIDITY 7] UIDs valid",
            "* OK [UIDNEXT 7] Predicted next UID",
            permanent,
            "* LIST () \"/\" \"INBOX\"",
            "* OK [HIGHESTMODSEQ 100] Highest",
            "s OK [READ-WRITE] SELECT completed",
            "→ read",
        ])
    }

    @Test func examine() {
        var m = authenticated()
        #expect(m.run("s", .examine(mailbox("INBOX"), SelectParameters())) == ["select INBOX read-only"])
        #expect(render(m.mailboxSelected(.success(inboxInfo([])))) == [
            "* FLAGS \(systemAndForwarded)",
            "* 0 EXISTS",
            "* 0 RECENT",
            "* OK [UIDVALIDITY 7] UIDs valid",
            "* OK [UIDNEXT 1] Predicted next UID",
            "* OK [PERMANENTFLAGS ()] Read-only mailbox",
            "* OK [HIGHESTMODSEQ 100] Highest",
            "s OK [READ-ONLY] EXAMINE completed",
            "→ read",
        ])
    }

    @Test func selectOfAReadOnlyMailboxIsReadOnly() {
        var m = authenticated()
        _ = m.run("s", select())
        let out = render(m.mailboxSelected(.success(inboxInfo(readOnly: true))))
        #expect(out.suffix(2) == ["s OK [READ-ONLY] SELECT completed", "→ read"])
        #expect(out.contains("* OK [PERMANENTFLAGS ()] Read-only mailbox"))
    }

    @Test func selectFailureUnselects() {
        var m = selected()
        #expect(m.run("s", select("Nope")) == ["select Nope"])
        #expect(render(m.mailboxSelected(.failure(.nonexistent))) == ["unselect", "s NO [NONEXISTENT] Mailbox does not exist"])
        #expect(m.selectedMailbox == nil)
        #expect(m.run("f", .fetch(set("1"), [.flags], FetchModifiers(), uid: false)) == ["f BAD FETCH needs a selected mailbox", "→ read"])
    }

    @Test(arguments: [["QRESYNC"], ["IMAP4rev2"]])
    func reselectAnnouncesClosed(_ enable: [String]) {
        var m = selected(enable: enable)
        _ = m.run("s", select("Archive"))
        let out = render(m.mailboxSelected(.success(inboxInfo(name: "Archive"))))
        #expect(out.first == "* OK [CLOSED] Previous mailbox closed")
        #expect(m.selectedMailbox == "Archive")
        // Also when the new selection fails.
        _ = m.run("t", select("Nope"))
        #expect(render(m.mailboxSelected(.failure(.nonexistent)))
            == ["unselect", "* OK [CLOSED] Previous mailbox closed", "t NO [NONEXISTENT] Mailbox does not exist"])
    }

    @Test func reselectWithoutQResyncHasNoClosed() {
        var m = selected()
        _ = m.run("s", select("Archive"))
        #expect(render(m.mailboxSelected(.success(inboxInfo(name: "Archive")))).first == "* FLAGS \(systemAndForwarded)")
        // The first SELECT under QRESYNC closes nothing.
        var n = authenticated(enable: ["QRESYNC"])
        _ = n.run("s", select())
        #expect(render(n.mailboxSelected(.success(inboxInfo()))).first == "* FLAGS \(systemAndForwarded)")
    }

    @Test func selectCondStoreParameterEnablesCondStore() {
        var m = authenticated()
        var p = SelectParameters()
        p.condStore = true
        _ = m.run("s", select("INBOX", p))
        #expect(m.condStore)
    }

    @Test func qresyncNeedsEnable() {
        var m = authenticated()
        var p = SelectParameters()
        p.qresync = .init(uidValidity: 7, modSeq: 90)
        #expect(m.run("s", select("INBOX", p)) == ["s BAD QRESYNC must be enabled first", "→ read"])
    }

    /// RFC 7162 §3.2.5.2: VANISHED (EARLIER) for known UIDs that are gone, then FETCH for changes.
    @Test func qresyncSelect() {
        var m = authenticated(enable: ["QRESYNC"])
        var p = SelectParameters()
        p.qresync = .init(uidValidity: 7, modSeq: 90, knownUIDs: set("1:10"))
        #expect(m.run("s", select("INBOX", p)) == ["select INBOX qresync 7 90 1:10"])
        let info = inboxInfo([1, 2, 4, 6], uidNext: 9, vanished: [7], changed: [flags(6, [], 80), flags(4, ["\\Seen"], 95), flags(1, ["\\Flagged"], 91)])
        let out = render(m.mailboxSelected(.success(info)))
        #expect(Array(out.suffix(5)) == [
            "* VANISHED (EARLIER) 3,5,7:8",
            "* 1 FETCH (UID 1 FLAGS (\\Flagged) MODSEQ (91))",
            "* 3 FETCH (UID 4 FLAGS (\\Seen) MODSEQ (95))",
            "s OK [READ-WRITE] SELECT completed",
            "→ read",
        ])
    }

    @Test func qresyncSelectKnownUIDsLimitTheVanished() {
        var m = authenticated(enable: ["QRESYNC"])
        var p = SelectParameters()
        p.qresync = .init(uidValidity: 7, modSeq: 90, knownUIDs: set("4:6"))
        _ = m.run("s", select("INBOX", p))
        let out = render(m.mailboxSelected(.success(inboxInfo([1, 2, 4, 6], uidNext: 9))))
        #expect(Array(out.suffix(3)) == ["* VANISHED (EARLIER) 5", "s OK [READ-WRITE] SELECT completed", "→ read"])
    }

    @Test func qresyncSelectWithOtherUIDValidityResyncsNothing() {
        var m = authenticated(enable: ["QRESYNC"])
        var p = SelectParameters()
        p.qresync = .init(uidValidity: 6, modSeq: 90)
        _ = m.run("s", select("INBOX", p))
        let out = render(m.mailboxSelected(.success(inboxInfo([1, 2, 4], changed: [flags(4, ["\\Seen"], 95)]))))
        #expect(!out.contains { $0.contains("VANISHED") || $0.contains("FETCH") })
    }

    /// A client's `1:*` over a mailbox whose UIDs reached the billions stays cheap: VANISHED is a
    /// set of ranges, not a list of every UID.
    @Test func qresyncSelectHugeUIDRange() {
        var m = authenticated(enable: ["QRESYNC"])
        var p = SelectParameters()
        p.qresync = .init(uidValidity: 7, modSeq: 1)
        _ = m.run("s", select("INBOX", p))
        let out = render(m.mailboxSelected(.success(inboxInfo([5, 4_000_000_000], uidNext: 4_000_000_001))))
        #expect(out.contains("* VANISHED (EARLIER) 1:4,6:3999999999"))
    }
}

/// LIST, LSUB, STATUS, NAMESPACE (RFC 9051 §6.3.9–§6.3.11, RFC 5258, RFC 5819, RFC 6154, RFC 3501 §6.3.9).
@Suite struct IMAPServerStateMachineListTests {
    static let mailboxes = [
        MailboxInfo(name: "INBOX"),
        MailboxInfo(name: "Archive", specialUse: "\\Archive", subscribed: true),
        MailboxInfo(name: "Archive/2025", subscribed: true),
        MailboxInfo(name: "Work/Projects", subscribed: true),
        MailboxInfo(name: "Sent", specialUse: "\\Sent", subscribed: true),
        MailboxInfo(name: "Entwürfe"),
        MailboxInfo(name: "Gone", subscribed: true, exists: false),
        MailboxInfo(name: "Old/Gone", subscribed: true, exists: false),
    ]

    private func list(_ m: inout Machine, _ command: IMAPCommand, _ mailboxes: [MailboxInfo] = IMAPServerStateMachineListTests.mailboxes) -> [String] {
        let first = m.run("a", command)
        guard first == ["listMailboxes"] else { return first }
        return render(m.mailboxesListed(.success(mailboxes)))
    }

    struct ListCase: Sendable, CustomTestStringConvertible {
        var reference: String
        var pattern: String
        var lines: [String]
        var testDescription: String { "\"\(reference)\" \"\(pattern)\"" }
    }

    @Test(arguments: [
        ListCase(reference: "", pattern: "*", lines: [
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"",
            "* LIST (\\HasChildren \\Archive) \"/\" \"Archive\"",
            "* LIST (\\HasNoChildren) \"/\" \"Archive/2025\"",
            "* LIST (\\HasNoChildren) \"/\" \"Entw&APw-rfe\"",
            "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"",
            "* LIST (\\Noselect \\HasChildren) \"/\" \"Work\"",
            "* LIST (\\HasNoChildren) \"/\" \"Work/Projects\"",
        ]),
        ListCase(reference: "", pattern: "%", lines: [
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"",
            "* LIST (\\HasChildren \\Archive) \"/\" \"Archive\"",
            "* LIST (\\HasNoChildren) \"/\" \"Entw&APw-rfe\"",
            "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"",
            "* LIST (\\Noselect \\HasChildren) \"/\" \"Work\"",
        ]),
        ListCase(reference: "Archive", pattern: "%", lines: ["* LIST (\\HasNoChildren) \"/\" \"Archive/2025\""]),
        ListCase(reference: "Archive/", pattern: "*", lines: ["* LIST (\\HasNoChildren) \"/\" \"Archive/2025\""]),
        ListCase(reference: "", pattern: "inbox", lines: ["* LIST (\\HasNoChildren) \"/\" \"INBOX\""]),
        ListCase(reference: "", pattern: "InBox*", lines: ["* LIST (\\HasNoChildren) \"/\" \"INBOX\""]),
        ListCase(reference: "", pattern: "Work/%", lines: ["* LIST (\\HasNoChildren) \"/\" \"Work/Projects\""]),
        ListCase(reference: "", pattern: "*s", lines: [
            "* LIST (\\HasNoChildren) \"/\" \"Work/Projects\"",
        ]),
        ListCase(reference: "", pattern: "A*5", lines: ["* LIST (\\HasNoChildren) \"/\" \"Archive/2025\""]),
        ListCase(reference: "", pattern: "A%5", lines: []),
        ListCase(reference: "", pattern: "Entw&APw-*", lines: ["* LIST (\\HasNoChildren) \"/\" \"Entw&APw-rfe\""]),
        ListCase(reference: "", pattern: "Nothing", lines: []),
    ])
    func listPatterns(_ c: ListCase) {
        var m = authenticated()
        #expect(list(&m, .list(ListCommand(reference: c.reference, patterns: [c.pattern]))) == c.lines + ["a OK LIST completed", "→ read"])
    }

    @Test func listInIMAP4rev2UsesNonExistent() {
        var m = authenticated(enable: ["IMAP4rev2"])
        let out = list(&m, .list(ListCommand(reference: "", patterns: ["W*"])))
        #expect(out == [
            "* LIST (\\NonExistent \\HasChildren) \"/\" \"Work\"",
            "* LIST (\\HasNoChildren) \"/\" \"Work/Projects\"",
            "a OK LIST completed", "→ read",
        ])
    }

    @Test func listSeveralPatterns() {
        var m = authenticated()
        #expect(list(&m, .list(ListCommand(reference: "", patterns: ["Sent", "INBOX", "Sent"], isExtended: true))) == [
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"",
            "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"",
            "a OK LIST completed", "→ read",
        ])
    }

    @Test func listSubscribed() {
        var m = authenticated()
        var command = ListCommand(reference: "", patterns: ["*"], isExtended: true)
        command.selectOptions.subscribed = true
        #expect(list(&m, .list(command)) == [
            "* LIST (\\HasChildren \\Subscribed \\Archive) \"/\" \"Archive\"",
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"Archive/2025\"",
            "* LIST (\\NonExistent \\HasNoChildren \\Subscribed) \"/\" \"Gone\"",
            "* LIST (\\NonExistent \\HasNoChildren \\Subscribed) \"/\" \"Old/Gone\"",
            "* LIST (\\HasNoChildren \\Subscribed \\Sent) \"/\" \"Sent\"",
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"Work/Projects\"",
            "a OK LIST completed", "→ read",
        ])
    }

    /// RFC 5258 §3.5: a parent matching the pattern but not the selection gets CHILDINFO.
    @Test func listSubscribedRecursiveMatch() {
        var m = authenticated()
        var command = ListCommand(reference: "", patterns: ["%"], isExtended: true)
        command.selectOptions.subscribed = true
        command.selectOptions.recursiveMatch = true
        #expect(list(&m, .list(command)) == [
            "* LIST (\\HasChildren \\Subscribed \\Archive) \"/\" \"Archive\" (\"CHILDINFO\" (\"SUBSCRIBED\"))",
            "* LIST (\\NonExistent \\HasNoChildren \\Subscribed) \"/\" \"Gone\"",
            "* LIST (\\NonExistent \\HasNoChildren) \"/\" \"Old\" (\"CHILDINFO\" (\"SUBSCRIBED\"))",
            "* LIST (\\HasNoChildren \\Subscribed \\Sent) \"/\" \"Sent\"",
            "* LIST (\\NonExistent \\HasChildren) \"/\" \"Work\" (\"CHILDINFO\" (\"SUBSCRIBED\"))",
            "a OK LIST completed", "→ read",
        ])
    }

    @Test func listReturnSubscribedAndSpecialUseSelection() {
        var m = authenticated()
        var command = ListCommand(reference: "", patterns: ["%"], isExtended: true)
        command.returnOptions.subscribed = true
        #expect(list(&m, .list(command)) == [
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"",
            "* LIST (\\HasChildren \\Subscribed \\Archive) \"/\" \"Archive\"",
            "* LIST (\\HasNoChildren) \"/\" \"Entw&APw-rfe\"",
            "* LIST (\\HasNoChildren \\Subscribed \\Sent) \"/\" \"Sent\"",
            "* LIST (\\NonExistent \\HasChildren) \"/\" \"Work\"",
            "a OK LIST completed", "→ read",
        ])
        var special = ListCommand(reference: "", patterns: ["*"], isExtended: true)
        special.selectOptions.specialUse = true
        #expect(list(&m, .list(special)) == [
            "* LIST (\\HasChildren \\Archive) \"/\" \"Archive\"",
            "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"",
            "a OK LIST completed", "→ read",
        ])
    }

    /// RFC 5819: STATUS follows each selectable mailbox's LIST.
    @Test func listReturnStatus() {
        var m = authenticated()
        var command = ListCommand(reference: "", patterns: ["%"], isExtended: true)
        command.returnOptions.status = [.messages, .unseen]
        #expect(m.run("a", .list(command)) == ["listMailboxes"])
        #expect(render(m.mailboxesListed(.success(Self.mailboxes))) == ["status INBOX, Archive, Entwürfe, Sent"])
        let st = MailboxStatus(messages: 3, uidNext: 9, uidValidity: 7, unseen: 1, deleted: 0, size: 1000, highestModSeq: 5)
        #expect(render(m.statusesFetched(.success(["INBOX": st, "Entwürfe": st, "Sent": st]))) == [
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"",
            "* STATUS \"INBOX\" (MESSAGES 3 UNSEEN 1)",
            "* LIST (\\HasChildren \\Archive) \"/\" \"Archive\"",
            "* LIST (\\HasNoChildren) \"/\" \"Entw&APw-rfe\"",
            "* STATUS \"Entw&APw-rfe\" (MESSAGES 3 UNSEEN 1)",
            "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"",
            "* STATUS \"Sent\" (MESSAGES 3 UNSEEN 1)",
            "* LIST (\\NonExistent \\HasChildren) \"/\" \"Work\"",
            "a OK LIST completed", "→ read",
        ])
    }

    @Test func listReturnStatusWithNoSelectableMailbox() {
        var m = authenticated()
        var command = ListCommand(reference: "", patterns: ["Work"], isExtended: true)
        command.returnOptions.status = [.messages]
        _ = m.run("a", .list(command))
        #expect(render(m.mailboxesListed(.success(Self.mailboxes))) == [
            "* LIST (\\NonExistent \\HasChildren) \"/\" \"Work\"", "a OK LIST completed", "→ read",
        ])
    }

    @Test func emptyPatternAsksForTheDelimiter() {
        var m = authenticated()
        #expect(m.run("a", .list(ListCommand(reference: "", patterns: [""]))) == ["* LIST (\\Noselect) \"/\" \"\"", "a OK LIST completed", "→ read"])
        #expect(m.run("b", .list(ListCommand(reference: "Archive", patterns: [""]))) == ["* LIST (\\Noselect) \"/\" \"\"", "b OK LIST completed", "→ read"])
    }

    @Test func listStoreFailure() {
        var m = authenticated()
        _ = m.run("a", .list(ListCommand(reference: "", patterns: ["*"])))
        #expect(render(m.mailboxesListed(.failure(.unavailable))) == ["a NO [UNAVAILABLE] Temporary storage failure; try again later", "→ read"])
    }

    @Test func brokenModifiedUTF7Pattern() {
        var m = authenticated()
        #expect(m.run("a", .list(ListCommand(reference: "", patterns: ["&AMk"]))) == ["a BAD Invalid mailbox pattern", "→ read"])
        #expect(m.run("b", .list(ListCommand(reference: "&Jjo!", patterns: ["*"]))) == ["b BAD Invalid reference name", "→ read"])
    }

    @Test func listWithUTF8AcceptSendsUTF8() {
        var m = authenticated(enable: ["UTF8=ACCEPT"])
        #expect(list(&m, .list(ListCommand(reference: "", patterns: ["Entw*"]))) == [
            "* LIST (\\HasNoChildren) \"/\" \"Entwürfe\"", "a OK LIST completed", "→ read",
        ])
    }

    /// RFC 3501 §6.3.9: LSUB "%" returns a parent of a subscribed child, flagged \Noselect.
    @Test func lsub() {
        var m = authenticated()
        #expect(list(&m, .lsub(reference: "", pattern: "*")) == [
            "* LSUB () \"/\" \"Archive\"",
            "* LSUB () \"/\" \"Archive/2025\"",
            "* LSUB (\\Noselect) \"/\" \"Gone\"",
            "* LSUB (\\Noselect) \"/\" \"Old/Gone\"",
            "* LSUB () \"/\" \"Sent\"",
            "* LSUB () \"/\" \"Work/Projects\"",
            "a OK LSUB completed", "→ read",
        ])
        #expect(list(&m, .lsub(reference: "", pattern: "%")) == [
            "* LSUB () \"/\" \"Archive\"",
            "* LSUB (\\Noselect) \"/\" \"Gone\"",
            "* LSUB (\\Noselect) \"/\" \"Old\"",
            "* LSUB () \"/\" \"Sent\"",
            "* LSUB (\\Noselect) \"/\" \"Work\"",
            "a OK LSUB completed", "→ read",
        ])
    }

    @Test func status() {
        var m = authenticated()
        #expect(m.run("a", .status(mailbox("Entw&APw-rfe"), [.messages, .uidNext, .unseen, .size])) == ["status Entwürfe"])
        let st = MailboxStatus(messages: 3, uidNext: 9, uidValidity: 7, unseen: 1, deleted: 0, size: 1000, highestModSeq: 5)
        #expect(render(m.statusesFetched(.success(["Entwürfe": st])))
            == ["* STATUS \"Entw&APw-rfe\" (MESSAGES 3 UIDNEXT 9 UNSEEN 1 SIZE 1000)", "a OK STATUS completed", "→ read"])
        _ = m.run("b", .status(mailbox("Nope"), [.messages]))
        #expect(render(m.statusesFetched(.success([:]))) == ["b NO [NONEXISTENT] Mailbox does not exist", "→ read"])
        #expect(m.run("c", .status(mailbox("&AMk"), [.messages])) == ["c BAD Invalid mailbox name", "→ read"])
        // HIGHESTMODSEQ is a CONDSTORE-enabling item (RFC 7162 §3.1).
        #expect(!m.condStore)
        _ = m.run("d", .status(mailbox("inbox"), [.highestModSeq]))
        #expect(m.condStore)
        #expect(render(m.statusesFetched(.success(["INBOX": st]))) == ["* STATUS \"INBOX\" (HIGHESTMODSEQ 5)", "d OK STATUS completed", "→ read"])
    }

    @Test func namespace() {
        var m = authenticated()
        #expect(m.run("a", .namespace) == ["* NAMESPACE ((\"\" \"/\")) NIL NIL", "a OK NAMESPACE completed", "→ read"])
    }
}

/// CREATE, DELETE, RENAME, SUBSCRIBE and mailbox name decoding (RFC 9051 §5.1, §6.3.4–§6.3.8, RFC 6154 §5).
@Suite struct IMAPServerStateMachineMailboxOperationTests {
    struct NameCase: Sendable, CustomTestStringConvertible {
        var wire: String
        var expected: String
        var utf8 = false
        var testDescription: String { wire }
    }

    @Test(arguments: [
        NameCase(wire: "&AMk-t&AOk-", expected: "create Été"),
        NameCase(wire: "Entw&APw-rfe", expected: "create Entwürfe"),
        NameCase(wire: "A &- B", expected: "create A & B"),
        NameCase(wire: "Archive/", expected: "create Archive"),
        NameCase(wire: "inbox/Sub", expected: "create INBOX/Sub"),
        NameCase(wire: "INBOXES", expected: "create INBOXES"),
        NameCase(wire: "Été", expected: "create Été", utf8: true),
        NameCase(wire: "&AMk-", expected: "create &AMk-", utf8: true),
        NameCase(wire: "&AMk", expected: "a BAD Invalid mailbox name"),
        NameCase(wire: "&", expected: "a BAD Invalid mailbox name"),
        NameCase(wire: "Été", expected: "a BAD Invalid mailbox name"),
        NameCase(wire: "", expected: "a BAD Invalid mailbox name"),
        NameCase(wire: "/", expected: "a BAD Invalid mailbox name"),
        NameCase(wire: "/Root", expected: "a BAD Invalid mailbox name"),
        NameCase(wire: "a//b", expected: "a BAD Invalid mailbox name"),
    ])
    func createNames(_ c: NameCase) {
        var m = authenticated(enable: c.utf8 ? ["UTF8=ACCEPT"] : [])
        #expect(m.run("a", .create(mailbox(c.wire), specialUse: [])).first == c.expected)
    }

    @Test func createAndItsOutcome() {
        var m = authenticated()
        #expect(m.run("a", .create(mailbox("Projects"), specialUse: [])) == ["create Projects"])
        #expect(render(m.mailboxOperationCompleted(.success(()))) == ["a OK CREATE completed", "→ read"])
        _ = m.run("b", .create(mailbox("Projects"), specialUse: []))
        #expect(render(m.mailboxOperationCompleted(.failure(.alreadyExists))) == ["b NO [ALREADYEXISTS] Mailbox already exists", "→ read"])
    }

    @Test(arguments: ["INBOX", "inbox", "InBoX/"])
    func createInbox(_ name: String) {
        var m = authenticated()
        #expect(m.run("a", .create(mailbox(name), specialUse: [])) == ["a NO [ALREADYEXISTS] INBOX always exists", "→ read"])
    }

    @Test func createWithSpecialUse() {
        var m = authenticated()
        #expect(m.run("a", .create(mailbox("Sent Items"), specialUse: ["\\Sent"])) == ["create Sent Items \\Sent"])
        _ = m.mailboxOperationCompleted(.success(()))
        // Attribute names are case-insensitive.
        #expect(m.run("b", .create(mailbox("Rubbish"), specialUse: ["\\trash"])) == ["create Rubbish \\Trash"])
        _ = m.mailboxOperationCompleted(.success(()))
        #expect(m.run("c", .create(mailbox("X"), specialUse: ["\\Important"])) == ["c NO [USEATTR] Unsupported special use \\Important", "→ read"])
        #expect(m.run("d", .create(mailbox("X"), specialUse: ["\\Sent", "\\Drafts"])) == ["d NO [USEATTR] One special use per mailbox", "→ read"])
    }

    @Test func delete() {
        var m = authenticated()
        #expect(m.run("a", .delete(mailbox("inbox"))) == ["a NO [CANNOT] INBOX cannot be deleted", "→ read"])
        #expect(m.run("b", .delete(mailbox("Work"))) == ["delete Work"])
        #expect(render(m.mailboxOperationCompleted(.failure(.hasChildren))) == ["b NO [HASCHILDREN] Mailbox has children; delete them first", "→ read"])
        #expect(m.run("c", .delete(mailbox("&AMk-t&AOk-"))) == ["delete Été"])
        #expect(render(m.mailboxOperationCompleted(.success(()))) == ["c OK DELETE completed", "→ read"])
        #expect(m.run("d", .delete(mailbox("&AMk"))) == ["d BAD Invalid mailbox name", "→ read"])
    }

    @Test func rename() {
        var m = authenticated()
        #expect(m.run("a", .rename(from: mailbox("Old"), to: mailbox("iNbOx"))) == ["a NO [ALREADYEXISTS] INBOX always exists", "→ read"])
        #expect(m.run("b", .rename(from: mailbox("inbox"), to: mailbox("Old Mail"))) == ["rename INBOX → Old Mail"])
        #expect(render(m.mailboxOperationCompleted(.failure(.nonexistent))) == ["b NO [NONEXISTENT] Mailbox does not exist", "→ read"])
        #expect(m.run("c", .rename(from: mailbox("A"), to: mailbox("&AMk"))) == ["c BAD Invalid mailbox name", "→ read"])
        #expect(m.run("d", .rename(from: mailbox("A"), to: mailbox("B/&AMk-"))) == ["rename A → B/É"])
        #expect(render(m.mailboxOperationCompleted(.success(()))) == ["d OK RENAME completed", "→ read"])
    }

    @Test func subscribeAndUnsubscribe() {
        var m = authenticated()
        #expect(m.run("a", .subscribe(mailbox("Entw&APw-rfe"))) == ["subscribe Entwürfe"])
        #expect(render(m.mailboxOperationCompleted(.success(()))) == ["a OK SUBSCRIBE completed", "→ read"])
        #expect(m.run("b", .unsubscribe(mailbox("Gone"))) == ["unsubscribe Gone"])
        #expect(render(m.mailboxOperationCompleted(.success(()))) == ["b OK UNSUBSCRIBE completed", "→ read"])
        #expect(m.run("c", .subscribe(mailbox("&"))) == ["c BAD Invalid mailbox name", "→ read"])
    }
}

/// QUOTA (RFC 9208), COMPRESS (RFC 4978), IDLE (RFC 2177), APPEND (RFC 9051 §6.3.12, RFC 4315, RFC 7888, RFC 7889).
@Suite struct IMAPServerStateMachineSessionTests {
    @Test func getQuotaRoot() {
        var m = authenticated()
        #expect(m.run("a", .getQuotaRoot(mailbox("Entw&APw-rfe"))) == ["quota"])
        #expect(render(m.quotaFetched(.success(QuotaUsage(usedBytes: 2049, limitBytes: 1_048_576))))
            == ["* QUOTAROOT \"Entw&APw-rfe\" \"\"", "* QUOTA \"\" (STORAGE 3 1024)", "a OK GETQUOTAROOT completed", "→ read"])
        _ = m.run("b", .getQuotaRoot(mailbox("INBOX")))
        #expect(render(m.quotaFetched(.success(QuotaUsage(usedBytes: 2049, limitBytes: nil))))
            == ["* QUOTAROOT \"INBOX\"", "b OK GETQUOTAROOT completed", "→ read"])
    }

    @Test func getQuota() {
        var m = authenticated()
        #expect(m.run("a", .getQuota(root: "")) == ["quota"])
        #expect(render(m.quotaFetched(.success(QuotaUsage(usedBytes: 0, limitBytes: 10240))))
            == ["* QUOTA \"\" (STORAGE 0 10)", "a OK GETQUOTA completed", "→ read"])
        _ = m.run("b", .getQuota(root: ""))
        #expect(render(m.quotaFetched(.success(QuotaUsage(usedBytes: 0, limitBytes: nil)))) == ["b NO [NONEXISTENT] No quota is set", "→ read"])
        #expect(m.run("c", .getQuota(root: "user.bob")) == ["c NO [NONEXISTENT] No such quota root", "→ read"])
        #expect(m.run("d", .setQuota(root: "", limits: [.init(resource: "STORAGE", limit: 10)]))
            == ["d NO [NOPERM] Quotas are set by the administrator (swallow user quota)", "→ read"])
    }

    @Test func compress() {
        var m = authenticated(configuration(compression: true))
        #expect(m.capabilities.contains("COMPRESS=DEFLATE"))
        #expect(m.run("a", .compress(mechanism: "LZW")) == ["a BAD Unknown compression mechanism", "→ read"])
        #expect(m.run("b", .compress(mechanism: "deflate")) == ["b OK DEFLATE active", "→ compress"])
        #expect(!m.capabilities.contains("COMPRESS=DEFLATE"))
        #expect(m.run("c", .compress(mechanism: "DEFLATE")) == ["c NO [COMPRESSIONACTIVE] Compression is already active", "→ read"])
        var n = authenticated()
        #expect(!n.capabilities.contains("COMPRESS=DEFLATE"))
        #expect(n.run("d", .compress(mechanism: "DEFLATE")) == ["d BAD COMPRESS is not available", "→ read"])
    }

    @Test func idleInAuthenticatedState() {
        var m = authenticated()
        #expect(m.run("i", .idle) == ["+ idling", "→ idle"])
        #expect(m.isIdling)
        #expect(!m.isIdleBetweenCommands)
        #expect(render(m.mailboxUpdated(MailboxUpdate(appended: [9]))) == ["none"])
        #expect(render(m.idleDone()) == ["i OK IDLE terminated", "→ read"])
        #expect(!m.isIdling)
        #expect(render(m.idleDone()) == ["none"])
    }

    @Test func idleInSelectedState() {
        var m = selected()
        // Held changes go out before the continuation.
        _ = m.mailboxUpdated(MailboxUpdate(expunged: [2]))
        #expect(m.run("i", .idle) == ["* 2 EXPUNGE", "+ idling", "→ idle"])
        #expect(render(m.mailboxUpdated(MailboxUpdate(appended: [7, 8]))) == ["* 7 EXISTS", "* 0 RECENT", "→ idle"])
        #expect(render(m.mailboxUpdated(MailboxUpdate(expunged: [1, 4]))) == ["* 3 EXPUNGE", "* 1 EXPUNGE", "→ idle"])
        #expect(render(m.mailboxUpdated(MailboxUpdate(flags: [flags(3, ["\\Seen"], 120)]))) == ["* 1 FETCH (UID 3 FLAGS (\\Seen))", "→ idle"])
        #expect(render(m.mailboxUpdated(MailboxUpdate(highestModSeq: 130))) == ["none"])
        #expect(render(m.idleDone()) == ["i OK IDLE terminated", "→ read"])
    }

    // MARK: APPEND

    private let message = AppendMessage(flags: [.seen], size: 100)

    @Test func appendSynchronising() {
        var m = authenticated()
        #expect(render(m.appendStarted(tag: "a", mailbox: mailbox("Entw&APw-rfe"), message: message, synchronizing: true))
            == ["beginAppend Entwürfe 100 (\\Seen)", "+ Ready for literal data", "→ accept literal"])
        #expect(render(m.appendDataFinished()) == ["commitAppend"])
        #expect(render(m.appendCompleted(.success((uidValidity: 7, uid: 12)))) == ["a OK [APPENDUID 7 12] APPEND completed", "→ read"])
        #expect(m.isIdleBetweenCommands)
    }

    @Test func appendNonSynchronising() {
        var m = selected()
        #expect(render(m.appendStarted(tag: "a", mailbox: mailbox("inbox"), message: message, synchronizing: false))
            == ["beginAppend INBOX 100 (\\Seen)", "→ read"])
        #expect(render(m.appendDataFinished()) == ["commitAppend"])
        // The new message arrives as an update of the selected mailbox.
        _ = m.mailboxUpdated(MailboxUpdate(appended: [7]))
        #expect(render(m.appendCompleted(.success((uidValidity: 7, uid: 7))))
            == ["* 7 EXISTS", "* 0 RECENT", "a OK [APPENDUID 7 7] APPEND completed", "→ read"])
    }

    @Test func appendFailures() {
        var m = authenticated()
        _ = m.appendStarted(tag: "a", mailbox: mailbox("Nope"), message: message, synchronizing: true)
        _ = m.appendDataFinished()
        #expect(render(m.appendCompleted(.failure(.nonexistent))) == ["a NO [TRYCREATE] Mailbox does not exist", "→ read"])
        _ = m.appendStarted(tag: "b", mailbox: mailbox("INBOX"), message: message, synchronizing: true)
        _ = m.appendDataFinished()
        #expect(render(m.appendCompleted(.failure(.overQuota))) == ["b NO [OVERQUOTA] Quota exceeded", "→ read"])
        #expect(render(m.appendStarted(tag: "c", mailbox: mailbox("&AMk"), message: message, synchronizing: true))
            == ["c BAD Invalid mailbox name", "→ reject literal"])
    }

    @Test func appendOverTheLimit() {
        var m = authenticated(configuration(appendLimit: 99))
        #expect(render(m.appendStarted(tag: "a", mailbox: mailbox("INBOX"), message: message, synchronizing: true))
            == ["a NO [TOOBIG] Message is larger than APPENDLIMIT 99", "→ reject literal"])
        #expect(m.isIdleBetweenCommands)
        #expect(render(m.appendStarted(tag: "b", mailbox: mailbox("INBOX"), message: message, synchronizing: false))
            == ["b NO [TOOBIG] Message is larger than APPENDLIMIT 99", "→ read"])
        // The literal is discarded, then commands go on.
        #expect(render(m.appendDataFinished()) == ["none"])
        #expect(m.run("c", .noop) == ["c OK NOOP completed", "→ read"])
    }

    @Test func appendWithAnUndefinedSystemFlag() {
        var m = authenticated(configuration())
        let bogus = AppendMessage(flags: [.seen, IMAPFlag("\\Bogus")], size: 10)
        #expect(render(m.appendStarted(tag: "a", mailbox: mailbox("INBOX"), message: bogus, synchronizing: true))
            == ["a BAD Invalid system flag \\Bogus", "→ reject literal"])
        #expect(render(m.appendStarted(tag: "b", mailbox: mailbox("INBOX"), message: AppendMessage(flags: [.recent], size: 10),
                                       synchronizing: false)) == ["b BAD Invalid system flag \\Recent", "→ read"])
        #expect(render(m.appendDataFinished()) == ["none"])
        #expect(m.run("c", .noop) == ["c OK NOOP completed", "→ read"])
    }

    @Test func appendBeforeLogin() {
        var m = Machine(configuration: configuration(), implicitTLS: true)
        #expect(render(m.appendStarted(tag: "a", mailbox: mailbox("INBOX"), message: message, synchronizing: true))
            == ["a BAD APPEND needs a login first", "→ reject literal"])
        #expect(m.isIdleBetweenCommands)
        #expect(render(m.appendStarted(tag: "b", mailbox: mailbox("INBOX"), message: message, synchronizing: false))
            == ["b BAD APPEND needs a login first", "→ read"])
        #expect(render(m.appendDataFinished()) == ["none"])
        #expect(m.run("c", .noop) == ["c OK NOOP completed", "→ read"])
    }
}
