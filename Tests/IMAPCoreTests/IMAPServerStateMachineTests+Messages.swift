import IMAPCore
import MailCore
import Testing

/// INBOX with gaps between UIDs: sequence numbers 1…6 are UIDs 3 5 8 13 21 34; UIDNEXT 35.
private let gappy: [UInt32] = [3, 5, 8, 13, 21, 34]

private func fetch(_ s: String, _ attributes: [FetchAttribute] = [.flags], uid: Bool = false,
                   changedSince: UInt64? = nil, vanished: Bool = false) -> IMAPCommand {
    .fetch(set(s), attributes, FetchModifiers(changedSince: changedSince, vanished: vanished), uid: uid)
}

private func search(_ key: SearchKey = .all, returning: SearchReturnOptions? = nil, charset: String? = nil, uid: Bool = false) -> IMAPCommand {
    .search(SearchCommand(returnOptions: returning, charset: charset, key: key), uid: uid)
}

private func options(min: Bool = false, max: Bool = false, count: Bool = false, all: Bool = false, save: Bool = false) -> SearchReturnOptions {
    var o = SearchReturnOptions()
    o.min = min
    o.max = max
    o.count = count
    o.all = all
    o.save = save
    return o
}

private func store(_ s: String, _ op: StoreModification.Operation = .add, _ flagNames: [String] = ["\\Seen"], silent: Bool = false,
                   unchangedSince: UInt64? = nil, uid: Bool = false) -> IMAPCommand {
    .store(set(s), StoreModification(operation: op, silent: silent, flags: flagNames.map(IMAPFlag.init), unchangedSince: unchangedSince), uid: uid)
}

/// Applies EXPUNGE/VANISHED/EXISTS responses to a client's view, as a client would.
private func apply(_ lines: [String], to view: inout [UInt32], newUIDs: [UInt32] = []) {
    var fresh = newUIDs[...]
    for line in lines {
        let words = line.split(separator: " ")
        if words.count == 3, words[2] == "EXPUNGE", let n = Int(words[1]) {
            view.remove(at: n - 1)
        } else if words.count == 3, words[2] == "EXISTS", let n = Int(words[1]) {
            while view.count < n, let u = fresh.popFirst() { view.append(u) }
        } else if words.count == 3, words[1] == "VANISHED" {
            let gone = set(String(words[2])).resolve(largest: .max)
            view.removeAll { u in gone.contains { $0.contains(u) } }
        }
    }
}

/// FETCH and sequence sets (RFC 9051 §6.4.5, §6.4.9, RFC 7162 §3.1.4 and §3.2.6).
@Suite struct IMAPServerStateMachineFetchTests {
    @Test(arguments: [
        ("2:4", "fetch 2=5 3=8 4=13 [FLAGS]"),
        ("5:*", "fetch 5=21 6=34 [FLAGS]"),
        ("*:5", "fetch 5=21 6=34 [FLAGS]"),
        ("*", "fetch 6=34 [FLAGS]"),
        ("1:*", "fetch 1=3 2=5 3=8 4=13 5=21 6=34 [FLAGS]"),
        ("3,1,2", "fetch 1=3 2=5 3=8 [FLAGS]"),
        ("6", "fetch 6=34 [FLAGS]"),
        ("7", "a BAD Invalid message sequence number"),
        ("5:7", "a BAD Invalid message sequence number"),
        ("1,9", "a BAD Invalid message sequence number"),
    ])
    func sequenceNumbers(_ s: String, _ expected: String) {
        var m = selected(inboxInfo(gappy))
        #expect(m.run("a", fetch(s)).first == expected)
    }

    @Test(arguments: [
        ("4:13", "fetch 2=5 3=8 4=13 [UID FLAGS]"),
        ("22:*", "fetch 6=34 [UID FLAGS]"),
        ("100:*", "fetch 6=34 [UID FLAGS]"),
        ("*", "fetch 6=34 [UID FLAGS]"),
        ("1:4,30:40", "fetch 1=3 6=34 [UID FLAGS]"),
        ("13,3", "fetch 1=3 4=13 [UID FLAGS]"),
        ("35:99", "a OK FETCH completed"),
        ("9:12", "a OK FETCH completed"),
    ])
    func uids(_ s: String, _ expected: String) {
        var m = selected(inboxInfo(gappy))
        #expect(m.run("a", fetch(s, uid: true)).first == expected)
    }

    @Test func emptyMailbox() {
        var m = selected(inboxInfo([]))
        #expect(m.run("a", fetch("1:*")) == ["a OK FETCH completed", "→ read"])
        #expect(m.run("b", fetch("1")) == ["b BAD Invalid message sequence number", "→ read"])
        #expect(m.run("c", fetch("*", uid: true)) == ["c OK FETCH completed", "→ read"])
    }

    @Test func fetchCompletion() {
        var m = selected(inboxInfo(gappy))
        #expect(m.run("a", fetch("3:5", [.uid, .flags], uid: true)) == ["fetch 1=3 2=5 [UID FLAGS]"])
        #expect(render(m.fetchCompleted(missing: [])) == ["a OK FETCH completed", "→ read"])
        _ = m.run("b", fetch("1:2"))
        #expect(render(m.fetchCompleted(missing: [5])) == ["b NO [EXPUNGEISSUED] Some messages were expunged meanwhile", "→ read"])
        #expect(m.isIdleBetweenCommands)
    }

    @Test func examineDoesNotSetSeen() {
        var m = selected(inboxInfo(gappy), examine: true)
        #expect(m.run("a", fetch("1", [.bodySection(.complete, partial: nil, peek: false)])) == ["fetch 1=3 [BODY[…]] peek"])
    }

    @Test func changedSinceAddsModSeqAndEnablesCondStore() {
        var m = selected(inboxInfo(gappy))
        #expect(!m.condStore)
        #expect(m.run("a", fetch("1:*", uid: true, changedSince: 50)) == ["fetch 1=3 2=5 3=8 4=13 5=21 6=34 [UID FLAGS MODSEQ] changedSince 50"])
        #expect(m.condStore)
        _ = m.fetchCompleted(missing: [])
        #expect(m.run("b", fetch("2", [.flags, .modSeq], changedSince: 7)) == ["fetch 2=5 [FLAGS MODSEQ] changedSince 7"])
        var n = selected(inboxInfo(gappy))
        _ = n.run("c", fetch("1", [.modSeq]))
        #expect(n.condStore)
    }

    @Test func vanishedNeedsQResyncUIDAndChangedSince() {
        let refusal = "a BAD VANISHED needs UID FETCH with CHANGEDSINCE and QRESYNC enabled"
        var m = selected(inboxInfo(gappy))
        #expect(m.run("a", fetch("1:*", uid: true, changedSince: 1, vanished: true)).first == refusal)
        var n = selected(inboxInfo(gappy), enable: ["QRESYNC"])
        #expect(n.run("a", fetch("1:*", uid: true, vanished: true)).first == refusal)
        #expect(n.run("a", fetch("1:*", changedSince: 1, vanished: true)).first == refusal)
    }

    @Test func vanishedEarlier() {
        var m = selected(inboxInfo(gappy), enable: ["QRESYNC"])
        // RFC 7162 §3.2.6: VANISHED (EARLIER) goes before the FETCH responses.
        #expect(m.run("a", fetch("5:13", uid: true, changedSince: 50, vanished: true))
            == ["* VANISHED (EARLIER) 6:7,9:12 | fetch 2=5 3=8 4=13 [UID FLAGS MODSEQ] changedSince 50"])
        #expect(render(m.fetchCompleted(missing: [])) == ["a OK FETCH completed", "→ read"])
        // Only vanished UIDs in the range: no fetch at all.
        #expect(m.run("b", fetch("9:12", uid: true, changedSince: 50, vanished: true)) == ["* VANISHED (EARLIER) 9:12", "b OK FETCH completed", "→ read"])
        // UIDs never assigned (above UIDNEXT) are not reported.
        #expect(m.run("c", fetch("30:4000000000", uid: true, changedSince: 50, vanished: true))
            == ["* VANISHED (EARLIER) 30:33 | fetch 6=34 [UID FLAGS MODSEQ] changedSince 50"])
        #expect(render(m.fetchCompleted(missing: [])) == ["c OK FETCH completed", "→ read"])
    }

    /// RFC 9051 §7.5.1: no EXPUNGE while responding to FETCH, STORE or SEARCH; other completions
    /// (UID commands, NOOP, CHECK, …) announce it.
    enum Completion: Sendable { case fetch, store, search, none }

    @Test(arguments: [
        (fetch("1"), Completion.fetch, false),
        (fetch("3", uid: true), .fetch, true),
        (store("1"), .store, false),
        (store("3", uid: true), .store, true),
        (search(), .search, false),
        (search(uid: true), .search, true),
        (IMAPCommand.noop, .none, true),
        (.check, .none, true),
        (.status(mailbox("Archive"), [.messages]), .none, true),
    ])
    func expungeAnnouncedOnlyWhereAllowed(_ command: IMAPCommand, _ completion: Completion, _ announced: Bool) {
        var m = selected(inboxInfo(gappy))
        #expect(render(m.mailboxUpdated(MailboxUpdate(expunged: [5], appended: [40]))) == ["none"])
        var out = m.run("a", command)
        switch completion {
        case .fetch: out = render(m.fetchCompleted(missing: []))
        case .store: out = render(m.storeCompleted(.success(StoreOutcome(updated: []))))
        case .search: out = render(m.searchCompleted(.success((uids: [], highestModSeq: nil))))
        case .none:
            if out == ["status Archive"] {
                out = render(m.statusesFetched(.success(["Archive": MailboxStatus(messages: 0, uidNext: 1, uidValidity: 1, unseen: 0, deleted: 0, size: 0, highestModSeq: 1)])))
            }
        }
        // New mail is announced either way (counting the expunged message while it is not announced).
        #expect(out.contains(announced ? "* 6 EXISTS" : "* 7 EXISTS"))
        #expect(out.contains("* 2 EXPUNGE") == announced)
        if !announced {
            #expect(m.run("n", .noop) == ["* 2 EXPUNGE", "n OK NOOP completed", "→ read"])
        }
    }

    @Test func pendingExpungeKeepsTheNumbering() {
        var m = selected(inboxInfo(gappy))
        _ = m.mailboxUpdated(MailboxUpdate(expunged: [5]))
        // Sequence number 2 still names UID 5 until the EXPUNGE is sent.
        #expect(m.run("a", fetch("2:3")) == ["fetch 2=5 3=8 [FLAGS]"])
        #expect(render(m.fetchCompleted(missing: [5])) == ["a NO [EXPUNGEISSUED] Some messages were expunged meanwhile", "→ read"])
        #expect(m.run("b", fetch("5:8", uid: true)) == ["fetch 2=5 3=8 [UID FLAGS]"])
        // A UID FETCH announces the expunge and ignores the UID that is gone (RFC 9051 §6.4.9, §7.5.1).
        #expect(render(m.fetchCompleted(missing: [5])) == ["* 2 EXPUNGE", "b OK FETCH completed", "→ read"])
        #expect(m.run("c", fetch("2")) == ["fetch 2=8 [FLAGS]"])
        _ = m.fetchCompleted(missing: [])
        // A UID missing for another reason (the store failed) still fails the UID FETCH.
        #expect(m.run("d", fetch("8", uid: true)) == ["fetch 2=8 [UID FLAGS]"])
        #expect(render(m.fetchCompleted(missing: [8])) == ["d NO [EXPUNGEISSUED] Some messages were expunged meanwhile", "→ read"])
    }

    @Test func unsolicitedFlagsCarryModSeqUnderCondStore() {
        var m = selected(inboxInfo(gappy), enable: ["CONDSTORE"])
        _ = m.mailboxUpdated(MailboxUpdate(flags: [flags(8, ["\\Seen"], 120)], highestModSeq: 120))
        // RFC 7162 §3.1.2.1: the client also learns the new HIGHESTMODSEQ once the change is announced.
        #expect(m.run("a", .noop) == ["* 3 FETCH (UID 8 FLAGS (\\Seen) MODSEQ (120))", "* OK [HIGHESTMODSEQ 120] Highest", "a OK NOOP completed", "→ read"])
        var n = selected(inboxInfo(gappy))
        _ = n.mailboxUpdated(MailboxUpdate(flags: [flags(8, ["\\Seen"], 120)]))
        #expect(n.run("a", .noop) == ["* 3 FETCH (UID 8 FLAGS (\\Seen))", "a OK NOOP completed", "→ read"])
    }

    @Test func newKeywordsSendFlags() {
        var m = selected(inboxInfo(gappy))
        _ = m.mailboxUpdated(MailboxUpdate(keywords: [IMAPFlag("$Forwarded"), IMAPFlag("$Junk")]))
        #expect(m.run("a", .noop)
            == ["* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $Junk)", "a OK NOOP completed", "→ read"])
    }

    @Test func othersExpungeUnderQResyncIsVanished() {
        var m = selected(inboxInfo(gappy), enable: ["QRESYNC"])
        _ = m.mailboxUpdated(MailboxUpdate(expunged: [21, 5]))
        #expect(m.run("a", .noop) == ["* VANISHED 5,21", "a OK NOOP completed", "→ read"])
        #expect(m.run("b", fetch("4")) == ["fetch 4=34 [FLAGS]"])
    }

    @Test func appendedThenExpungedElsewhereIsNeverAnnounced() {
        var m = selected(inboxInfo(gappy))
        _ = m.mailboxUpdated(MailboxUpdate(appended: [35, 36]))
        _ = m.mailboxUpdated(MailboxUpdate(expunged: [35]))
        #expect(m.run("a", .noop) == ["* 7 EXISTS", "* 0 RECENT", "a OK NOOP completed", "→ read"])
        #expect(m.run("b", fetch("7")) == ["fetch 7=36 [FLAGS]"])
    }

    @Test func existsInIMAP4rev2HasNoRecent() {
        var m = selected(inboxInfo(gappy), enable: ["IMAP4rev2"])
        _ = m.mailboxUpdated(MailboxUpdate(appended: [35]))
        #expect(m.run("a", .noop) == ["* 7 EXISTS", "a OK NOOP completed", "→ read"])
    }

    @Test func updatesWithoutSelectionAreIgnored() {
        var m = authenticated()
        #expect(render(m.mailboxUpdated(MailboxUpdate(appended: [1]))) == ["none"])
    }
}

/// SEARCH, ESEARCH, SEARCHRES, SORT, THREAD (RFC 9051 §6.4.4, RFC 4731, RFC 5182, RFC 7162 §3.1.5, RFC 5256).
@Suite struct IMAPServerStateMachineSearchTests {
    private func searched(_ m: inout Machine, _ command: IMAPCommand, found: [UInt32], modSeq: UInt64? = nil) -> [String] {
        let first = m.run("a", command)
        guard first.first?.hasPrefix("search") == true else { return first }
        return render(m.searchCompleted(.success((uids: found, highestModSeq: modSeq))))
    }

    @Test func classicSearch() {
        var m = selected(inboxInfo(gappy))
        #expect(m.run("a", search()) == ["search all over [3, 5, 8, 13, 21, 34]"])
        #expect(render(m.searchCompleted(.success((uids: [5, 13], highestModSeq: 9)))) == ["* SEARCH 2 4", "a OK SEARCH completed", "→ read"])
        #expect(searched(&m, search(uid: true), found: [5, 13]) == ["* SEARCH 5 13", "a OK SEARCH completed", "→ read"])
        #expect(searched(&m, search(), found: []) == ["* SEARCH", "a OK SEARCH completed", "→ read"])
    }

    @Test func searchInIMAP4rev2IsESEARCH() {
        var m = selected(inboxInfo(gappy), enable: ["IMAP4rev2"])
        #expect(searched(&m, search(), found: [3, 5, 8, 21]) == ["* ESEARCH (TAG \"a\") ALL 1:3,5", "a OK SEARCH completed", "→ read"])
        #expect(searched(&m, search(uid: true), found: [3, 5, 8, 21]) == ["* ESEARCH (TAG \"a\") UID ALL 3,5,8,21", "a OK SEARCH completed", "→ read"])
        #expect(searched(&m, search(), found: []) == ["* ESEARCH (TAG \"a\")", "a OK SEARCH completed", "→ read"])
    }

    @Test(arguments: [
        (options(min: true), "* ESEARCH (TAG \"a\") MIN 2"),
        (options(max: true), "* ESEARCH (TAG \"a\") MAX 5"),
        (options(count: true), "* ESEARCH (TAG \"a\") COUNT 3"),
        (options(all: true), "* ESEARCH (TAG \"a\") ALL 2,4:5"),
        (options(), "* ESEARCH (TAG \"a\") ALL 2,4:5"),
        (options(min: true, max: true, count: true), "* ESEARCH (TAG \"a\") MIN 2 MAX 5 COUNT 3"),
        (options(min: true, max: true, count: true, all: true), "* ESEARCH (TAG \"a\") MIN 2 MAX 5 COUNT 3 ALL 2,4:5"),
    ])
    func esearchReturnOptions(_ o: SearchReturnOptions, _ expected: String) {
        var m = selected(inboxInfo(gappy))
        #expect(searched(&m, search(returning: o), found: [5, 13, 21]) == [expected, "a OK SEARCH completed", "→ read"])
    }

    @Test func esearchUIDAndEmpty() {
        var m = selected(inboxInfo(gappy))
        #expect(searched(&m, search(returning: options(min: true, max: true, count: true), uid: true), found: [5, 13, 21])
            == ["* ESEARCH (TAG \"a\") UID MIN 5 MAX 21 COUNT 3", "a OK SEARCH completed", "→ read"])
        #expect(searched(&m, search(returning: options(min: true, max: true, count: true, all: true)), found: [])
            == ["* ESEARCH (TAG \"a\") COUNT 0", "a OK SEARCH completed", "→ read"])
    }

    /// RFC 5182: SAVE alone sends no ESEARCH; `$` then names the saved messages.
    @Test func saveThenUseInFetchAndSearch() throws {
        var m = selected(inboxInfo(gappy))
        #expect(searched(&m, search(returning: options(save: true)), found: [5, 21]) == ["a OK SEARCH completed", "→ read"])
        #expect(m.run("b", fetch("$")) == ["fetch 2=5 5=21 [FLAGS]"])
        _ = m.fetchCompleted(missing: [])
        #expect(m.run("c", fetch("$", uid: true)) == ["fetch 2=5 5=21 [UID FLAGS]"])
        _ = m.fetchCompleted(missing: [])
        // `$` inside a search program becomes the saved UIDs.
        let action = m.commandReceived(TaggedCommand(tag: "d", command: search(.and([.sequenceNumbers(.lastSearchResult), .seen]))))
        guard case .search(let request) = action, case .and(let keys) = request.key, case .uid(let saved)? = keys.first else {
            Issue.record("not a search: \(render(action))")
            return
        }
        #expect(render(saved) == "5,21")
        _ = m.searchCompleted(.success((uids: [], highestModSeq: nil)))
        // STORE and COPY take `$` too.
        #expect(m.run("e", store("$")) == ["store [5, 21] add (\\Seen)"])
        _ = m.storeCompleted(.success(StoreOutcome(updated: [])))
        #expect(m.run("f", .copy(.lastSearchResult, mailbox("Archive"), uid: false)) == ["copy [5, 21] → Archive"])
    }

    @Test func saveWithMinOrMaxSavesOnlyThose() {
        var m = selected(inboxInfo(gappy))
        #expect(searched(&m, search(returning: options(min: true, save: true)), found: [5, 13, 21])
            == ["* ESEARCH (TAG \"a\") MIN 2", "a OK SEARCH completed", "→ read"])
        #expect(m.run("b", fetch("$")) == ["fetch 2=5 [FLAGS]"])
        _ = m.fetchCompleted(missing: [])
        _ = searched(&m, search(returning: options(min: true, max: true, save: true)), found: [5, 13, 21])
        #expect(m.run("c", fetch("$")) == ["fetch 2=5 5=21 [FLAGS]"])
        _ = m.fetchCompleted(missing: [])
        _ = searched(&m, search(returning: options(max: true, count: true, save: true)), found: [5, 13, 21])
        #expect(m.run("d", fetch("$")) == ["fetch 2=5 4=13 5=21 [FLAGS]"])
    }

    @Test func savedResultIsResetBySelectAndFailedSearch() {
        var m = selected(inboxInfo(gappy))
        _ = searched(&m, search(returning: options(save: true)), found: [5])
        // RFC 5182 §2.1: a SEARCH with SAVE that fails empties the variable.
        #expect(m.run("b", search(returning: options(save: true), charset: "KOI8-R"))
            == ["b NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset", "→ read"])
        #expect(m.run("c", fetch("$")) == ["c OK FETCH completed", "→ read"])
        _ = searched(&m, search(returning: options(save: true)), found: [5])
        _ = m.run("d", search(returning: options(save: true)))
        #expect(render(m.searchCompleted(.failure(.unavailable))) == ["d NO [UNAVAILABLE] Temporary storage failure; try again later", "→ read"])
        #expect(m.run("e", fetch("$")) == ["e OK FETCH completed", "→ read"])
        // And by a new SELECT.
        _ = searched(&m, search(returning: options(save: true)), found: [5])
        _ = m.run("s", .select(mailbox("INBOX"), SelectParameters()))
        _ = m.mailboxSelected(.success(inboxInfo(gappy)))
        #expect(m.run("f", fetch("$")) == ["f OK FETCH completed", "→ read"])
    }

    @Test func savedMessagesThatWereExpungedDropOut() {
        var m = selected(inboxInfo(gappy))
        _ = searched(&m, search(returning: options(save: true)), found: [5, 13])
        _ = m.run("b", .expunge)
        _ = m.expungeCompleted(.success([5]))
        #expect(m.run("c", fetch("$")) == ["fetch 3=13 [FLAGS]"])
    }

    @Test(arguments: ["ISO-8859-1", "KOI8-R"])
    func badCharset(_ charset: String) {
        var m = selected(inboxInfo(gappy))
        #expect(m.run("a", search(charset: charset)) == ["a NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset", "→ read"])
        #expect(m.run("b", search(charset: "utf-8")) == ["search all over [3, 5, 8, 13, 21, 34] charset utf-8"])
    }

    @Test func modSeqCriterion() {
        var m = selected(inboxInfo(gappy))
        #expect(searched(&m, search(.modSeq(50)), found: [5, 13], modSeq: 77) == ["* SEARCH 2 4 (MODSEQ 77)", "a OK SEARCH completed", "→ read"])
        #expect(m.condStore)
        #expect(searched(&m, search(.not(.modSeq(50))), found: [], modSeq: 77) == ["* SEARCH", "a OK SEARCH completed", "→ read"])
        #expect(searched(&m, search(.or(.seen, .modSeq(50)), returning: options(count: true)), found: [5], modSeq: 60)
            == ["* ESEARCH (TAG \"a\") COUNT 1 MODSEQ 60", "a OK SEARCH completed", "→ read"])
        // Without a MODSEQ criterion there is no MODSEQ in the reply.
        #expect(searched(&m, search(.seen), found: [5], modSeq: 60) == ["* SEARCH 2", "a OK SEARCH completed", "→ read"])
    }

    @Test func sortAndThread() {
        var m = selected(inboxInfo(gappy))
        #expect(m.run("a", .sort([SortCriterion(.date, reverse: true)], charset: "UTF-8", key: .all, uid: false)) == ["sort all by [\"DATE\"]"])
        #expect(render(m.sortCompleted(.success([21, 5, 3]))) == ["* SORT 5 2 1", "a OK SORT completed", "→ read"])
        _ = m.run("b", .sort([SortCriterion(.arrival)], charset: "UTF-8", key: .all, uid: true))
        #expect(render(m.sortCompleted(.success([21, 5, 3]))) == ["* SORT 21 5 3", "b OK SORT completed", "→ read"])
        #expect(m.run("c", .sort([SortCriterion(.arrival)], charset: "BIG5", key: .all, uid: true))
            == ["c NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset", "→ read"])
        #expect(m.run("d", .thread(algorithm: "references", charset: "UTF-8", key: .all, uid: false)) == ["thread all REFERENCES"])
        let tree = [ThreadNode(message: 3, children: [ThreadNode(message: 8), ThreadNode(message: nil, children: [ThreadNode(message: 34)])])]
        #expect(render(m.threadCompleted(.success(tree))) == ["* THREAD (1 (3)((6)))", "d OK THREAD completed", "→ read"])
        #expect(m.run("e", .thread(algorithm: "X-NONE", charset: "UTF-8", key: .all, uid: false)) == ["e BAD Unsupported threading algorithm", "→ read"])
    }
}

/// STORE, COPY, MOVE, EXPUNGE, CLOSE, UNSELECT (RFC 9051 §6.4, RFC 7162 §3.1.3, RFC 4315, RFC 6851).
@Suite struct IMAPServerStateMachineChangeTests {
    private let updated = [flags(5, ["\\Seen"], 101), flags(8, ["\\Seen", "\\Flagged"], 102)]

    @Test func storeReportsFlags() {
        var m = selected(inboxInfo(gappy))
        #expect(m.run("a", store("2:3")) == ["store [5, 8] add (\\Seen)"])
        #expect(render(m.storeCompleted(.success(StoreOutcome(updated: updated))))
            == ["* 2 FETCH (FLAGS (\\Seen))", "* 3 FETCH (FLAGS (\\Seen \\Flagged))", "a OK STORE completed", "→ read"])
        _ = m.run("b", store("5:8", .replace, ["\\Seen"], uid: true))
        #expect(render(m.storeCompleted(.success(StoreOutcome(updated: updated))))
            == ["* 2 FETCH (UID 5 FLAGS (\\Seen))", "* 3 FETCH (UID 8 FLAGS (\\Seen \\Flagged))", "b OK STORE completed", "→ read"])
        _ = m.run("c", store("2:3", .remove, silent: true))
        #expect(render(m.storeCompleted(.success(StoreOutcome(updated: updated)))) == ["c OK STORE completed", "→ read"])
    }

    @Test func storeUnderCondStore() {
        var m = selected(inboxInfo(gappy), enable: ["CONDSTORE"])
        _ = m.run("a", store("2:3"))
        #expect(render(m.storeCompleted(.success(StoreOutcome(updated: updated))))
            == ["* 2 FETCH (UID 5 FLAGS (\\Seen) MODSEQ (101))", "* 3 FETCH (UID 8 FLAGS (\\Seen \\Flagged) MODSEQ (102))", "a OK STORE completed", "→ read"])
        // RFC 7162 §3.1.3: even .SILENT reports the new MODSEQ.
        _ = m.run("b", store("2", silent: true))
        #expect(render(m.storeCompleted(.success(StoreOutcome(updated: [flags(5, ["\\Seen"], 103)]))))
            == ["* 2 FETCH (UID 5 MODSEQ (103))", "b OK STORE completed", "→ read"])
    }

    /// Another session's flag change that this STORE's result already includes is not sent after
    /// it (it would undo the client's view of the STORE).
    @Test func storeSupersedesOlderPendingFlags() {
        var m = selected(inboxInfo(gappy))
        _ = m.mailboxUpdated(MailboxUpdate(flags: [flags(5, ["\\Flagged"], 110), flags(8, ["\\Draft"], 130)]))
        _ = m.run("a", store("2", uid: false))
        #expect(render(m.storeCompleted(.success(StoreOutcome(updated: [flags(5, ["\\Flagged", "\\Seen"], 120)]))))
            == ["* 2 FETCH (FLAGS (\\Flagged \\Seen))", "* 3 FETCH (UID 8 FLAGS (\\Draft))", "a OK STORE completed", "→ read"])
    }

    @Test func unchangedSince() {
        var m = selected(inboxInfo(gappy))
        #expect(m.run("a", store("2:3", unchangedSince: 100)) == ["store [5, 8] add (\\Seen) unchangedSince 100"])
        #expect(m.condStore)
        #expect(render(m.storeCompleted(.success(StoreOutcome(updated: [flags(5, ["\\Seen"], 101)], modified: [8]))))
            == ["* 2 FETCH (UID 5 FLAGS (\\Seen) MODSEQ (101))", "a OK [MODIFIED 3] Conditional STORE failed for some messages", "→ read"])
        _ = m.run("b", store("5:8", unchangedSince: 100, uid: true))
        #expect(render(m.storeCompleted(.success(StoreOutcome(updated: [], modified: [8, 5]))))
            == ["b OK [MODIFIED 5,8] Conditional STORE failed for some messages", "→ read"])
    }

    @Test func storeRefusals() {
        var m = selected(inboxInfo(gappy), examine: true)
        #expect(m.run("a", store("1")) == ["a NO [CANNOT] Mailbox is read-only", "→ read"])
        var n = selected(inboxInfo(gappy))
        #expect(n.run("b", store("1", .add, ["\\Recent"])) == ["b BAD \\Recent cannot be stored", "→ read"])
        // A flag-extension no RFC defines is refused, as Dovecot does (not stored, not dropped).
        #expect(n.run("b2", store("1", .add, ["\\Seen", "\\Bogus"])) == ["b2 BAD Invalid system flag \\Bogus", "→ read"])
        #expect(n.run("b3", store("1", .replace, ["\\*"])) == ["b3 BAD Invalid system flag \\*", "→ read"])
        #expect(n.run("c", store("7")) == ["c BAD Invalid message sequence number", "→ read"])
        #expect(n.run("d", store("9:12", uid: true)) == ["d OK STORE completed", "→ read"])
        _ = n.run("e", store("1"))
        #expect(render(n.storeCompleted(.failure(.unavailable))) == ["e NO [UNAVAILABLE] Temporary storage failure; try again later", "→ read"])
    }

    @Test func copy() {
        var m = selected(inboxInfo(gappy), examine: true)
        #expect(m.run("a", .copy(set("2:3,5"), mailbox("Entw&APw-rfe"), uid: false)) == ["copy [5, 8, 21] → Entwürfe"])
        #expect(render(m.copyCompleted(.success(CopyOutcome(uidValidity: 9, source: [5, 8, 21], destination: [100, 101, 102]))))
            == ["a OK [COPYUID 9 5,8,21 100:102] COPY completed", "→ read"])
        _ = m.run("b", .copy(set("1"), mailbox("Nope"), uid: false))
        #expect(render(m.copyCompleted(.failure(.nonexistent))) == ["b NO [TRYCREATE] Mailbox does not exist", "→ read"])
        _ = m.run("c", .copy(set("1"), mailbox("Full"), uid: false))
        #expect(render(m.copyCompleted(.failure(.overQuota))) == ["c NO [OVERQUOTA] Quota exceeded", "→ read"])
        #expect(m.run("d", .copy(set("9"), mailbox("A"), uid: false)) == ["d BAD Invalid message sequence number", "→ read"])
        #expect(m.run("e", .copy(set("9:12"), mailbox("A"), uid: true)) == ["e OK COPY completed", "→ read"])
        #expect(m.run("f", .copy(set("1"), mailbox("&AMk"), uid: false)) == ["f BAD Invalid mailbox name", "→ read"])
    }

    @Test func move() {
        var m = selected(inboxInfo(gappy))
        #expect(m.run("a", .move(set("2,3,5"), mailbox("Trash"), uid: false)) == ["move [5, 8, 21] → Trash"])
        let out = render(m.copyCompleted(.success(CopyOutcome(uidValidity: 9, source: [5, 8, 21], destination: [200, 201, 202]))))
        #expect(out.first == "* OK [COPYUID 9 5,8,21 200:202] Moved")
        #expect(out.suffix(2) == ["a OK MOVE completed", "→ read"])
        var client = gappy
        apply(out, to: &client)
        #expect(client == [3, 13, 34])
        #expect(m.run("b", fetch("1:*")) == ["fetch 1=3 2=13 3=34 [FLAGS]"])
    }

    @Test func moveUnderQResync() {
        var m = selected(inboxInfo(gappy), enable: ["QRESYNC"])
        _ = m.run("a", .move(set("21,5,8"), mailbox("Trash"), uid: true))
        #expect(render(m.copyCompleted(.success(CopyOutcome(uidValidity: 9, source: [5, 8, 21], destination: [200, 201, 202]))))
            == ["* OK [COPYUID 9 5,8,21 200:202] Moved", "* VANISHED 5,8,21", "a OK MOVE completed", "→ read"])
    }

    @Test func moveWithOthersExpungePending() {
        var m = selected(inboxInfo(gappy))
        _ = m.mailboxUpdated(MailboxUpdate(expunged: [3, 34]))
        _ = m.run("a", .move(set("2"), mailbox("Trash"), uid: false))
        let out = render(m.copyCompleted(.success(CopyOutcome(uidValidity: 9, source: [5], destination: [200]))))
        var client = gappy
        apply(out, to: &client)
        #expect(client == [8, 13, 21])
        #expect(m.run("b", fetch("1:*")) == ["fetch 1=8 2=13 3=21 [FLAGS]"])
    }

    @Test func moveRefusedInReadOnly() {
        var m = selected(inboxInfo(gappy), examine: true)
        #expect(m.run("a", .move(set("1"), mailbox("Trash"), uid: false)) == ["a NO [CANNOT] Mailbox is read-only", "→ read"])
    }

    /// Expunging sequence numbers 2, 3 and 5 of 6: every EXPUNGE is relative to the numbering left by
    /// the ones before it.
    @Test func expungeNumbering() {
        var m = selected(inboxInfo(gappy))
        #expect(m.run("a", .expunge) == ["expunge"])
        let out = render(m.expungeCompleted(.success([8, 5, 21])))
        #expect(out == ["* 5 EXPUNGE", "* 3 EXPUNGE", "* 2 EXPUNGE", "a OK EXPUNGE completed", "→ read"])
        var client = gappy
        apply(out, to: &client)
        #expect(client == [3, 13, 34])
        #expect(m.run("b", fetch("1:*")) == ["fetch 1=3 2=13 3=34 [FLAGS]"])
    }

    @Test func expungeVariants() {
        var m = selected(inboxInfo(gappy), enable: ["QRESYNC"])
        #expect(m.run("a", .uidExpunge(set("5:8,30:*"))) == ["expunge [5, 8, 34]"])
        #expect(render(m.expungeCompleted(.success([5, 34]))) == ["* VANISHED 5,34", "a OK EXPUNGE completed", "→ read"])
        #expect(m.run("b", .uidExpunge(set("9:12"))) == ["b OK EXPUNGE completed", "→ read"])
        _ = m.run("c", .expunge)
        #expect(render(m.expungeCompleted(.success([])))  == ["c OK EXPUNGE completed", "→ read"])
        _ = m.run("d", .expunge)
        #expect(render(m.expungeCompleted(.failure(.unavailable))) == ["d NO [UNAVAILABLE] Temporary storage failure; try again later", "→ read"])
        var r = selected(inboxInfo(gappy), examine: true)
        #expect(r.run("e", .expunge) == ["e NO [CANNOT] Mailbox is read-only", "→ read"])
    }

    @Test func expungeWithOthersChangesPending() {
        var m = selected(inboxInfo(gappy))
        _ = m.mailboxUpdated(MailboxUpdate(expunged: [3, 13], appended: [40], flags: [flags(34, ["\\Flagged"], 130)]))
        _ = m.run("a", .expunge)
        let out = render(m.expungeCompleted(.success([21, 13])))
        var client = gappy
        apply(out, to: &client, newUIDs: [40])
        #expect(client == [5, 8, 34, 40])
        #expect(out.contains("* 3 FETCH (UID 34 FLAGS (\\Flagged))"))
        #expect(m.run("b", fetch("1:*")) == ["fetch 1=5 2=8 3=34 4=40 [FLAGS]"])
    }

    @Test func closeExpungesSilently() {
        var m = selected(inboxInfo(gappy))
        _ = m.mailboxUpdated(MailboxUpdate(expunged: [3], appended: [40]))
        #expect(m.run("a", .close) == ["expunge"])
        #expect(render(m.expungeCompleted(.success([5, 8]))) == ["unselect", "a OK Mailbox closed"])
        #expect(m.selectedMailbox == nil)
        #expect(m.isIdleBetweenCommands)
        #expect(m.run("b", .noop) == ["b OK NOOP completed", "→ read"])
    }

    /// RFC 9051 §6.4.1: CLOSE has no NO; the mailbox is closed even when its expunge failed.
    @Test func closeWhenTheExpungeFails() {
        var m = selected(inboxInfo(gappy))
        _ = m.run("a", .close)
        #expect(render(m.expungeCompleted(.failure(.unavailable))) == ["unselect", "a OK Mailbox closed"])
        #expect(m.selectedMailbox == nil)
    }

    @Test func closeReadOnlyDoesNotExpunge() {
        var m = selected(inboxInfo(gappy), examine: true)
        #expect(m.run("a", .close) == ["unselect", "a OK Mailbox closed"])
        #expect(m.selectedMailbox == nil)
    }

    @Test func unselect() {
        var m = selected(inboxInfo(gappy))
        _ = m.mailboxUpdated(MailboxUpdate(expunged: [3]))
        #expect(m.run("a", .unselect) == ["unselect", "a OK Mailbox closed"])
        #expect(m.run("b", .unselect) == ["b BAD UNSELECT needs a selected mailbox", "→ read"])
    }
}
