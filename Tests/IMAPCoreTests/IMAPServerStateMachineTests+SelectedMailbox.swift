@testable import IMAPCore
import MailTesting
import Testing

/// LIST pattern matching (RFC 9051 §6.3.9).
@Suite struct MailboxPatternTests {
    @Test(arguments: [
        ("", "*", "INBOX", true),
        ("", "*", "A/B/C", true),
        ("", "%", "A", true),
        ("", "%", "A/B", false),
        ("", "%/%", "A/B", true),
        ("", "%/%", "A/B/C", false),
        ("", "A/*", "A/B/C", true),
        ("", "A/*", "A", false),
        ("", "A*", "A", true),
        ("", "A%", "AB/C", false),
        ("", "*C", "A/B/C", true),
        ("", "A%C", "ABC", true),
        ("", "A%C", "AB/C", false),
        ("", "A*C", "AB/C", true),
        ("", "a*", "A", false),
        ("", "inbox", "INBOX", true),
        ("", "Inbox/%", "INBOX/Sub", true),
        ("", "INB*", "INBOX", true),
        ("", "in%", "INBOX", true),
        ("", "in%", "inbound", true),
        ("", "IN%", "inbound", false),
        ("", "inboxes", "INBOXES", false),
        ("A", "%", "A/B", true),
        ("A/", "%", "A/B", true),
        ("A", "/B", "A/B", true),
        ("A", "", "A", true),
        ("inbox", "%", "INBOX/Sub", true),
        ("", "**%%", "X", true),
        ("", "Entwürfe", "Entwürfe", true),
        ("", "%ü%", "Entwürfe", true),
        ("", "", "", true),
        ("", "", "A", false),
    ])
    func matching(_ reference: String, _ pattern: String, _ name: String, _ matches: Bool) {
        #expect(MailboxPattern(reference: reference, pattern: pattern).matches(name) == matches)
    }

    @Test func backtrackingStaysLinearEnough() {
        let name = String(repeating: "a", count: 2_000)
        let pattern = String(repeating: "*a", count: 50) + "b"
        #expect(!MailboxPattern(reference: "", pattern: pattern).matches(name))
    }

    @Test func childMatching() {
        #expect(MailboxPattern(reference: "", pattern: "A/%").matchesSomeChild(of: "A"))
        #expect(!MailboxPattern(reference: "", pattern: "%").matchesSomeChild(of: "A"))
        #expect(MailboxPattern(reference: "", pattern: "*").matchesSomeChild(of: "A"))
        #expect(!MailboxPattern(reference: "", pattern: "B/*").matchesSomeChild(of: "A"))
    }
}

/// One session's view of the selected mailbox (RFC 9051 §2.3.1.2, §7.5.1).
@Suite struct SelectedMailboxTests {
    private func view(_ uids: [UInt32] = [3, 5, 8, 13, 21, 34]) -> SelectedMailbox {
        SelectedMailbox(SelectedMailboxInfo(name: "INBOX", uidValidity: 1, uidNext: (uids.last ?? 0) + 1, highestModSeq: 1, uids: uids), readOnly: false)
    }

    private func resolved(_ v: SelectedMailbox, _ s: String, uid: Bool, saved: [UInt32] = []) -> String {
        guard let messages = v.resolve(set(s), uid: uid, saved: saved) else { return "invalid" }
        return messages.map { "\($0.sequenceNumber)=\($0.uid)" }.joined(separator: " ")
    }

    @Test func resolveSequenceNumbers() {
        let v = view()
        #expect(resolved(v, "*", uid: false) == "6=34")
        #expect(resolved(v, "2,4:*", uid: false) == "2=5 4=13 5=21 6=34")
        #expect(resolved(v, "3:1", uid: false) == "1=3 2=5 3=8")
        #expect(resolved(v, "1:3,2:4", uid: false) == "1=3 2=5 3=8 4=13")
        #expect(resolved(v, "7", uid: false) == "invalid")
        #expect(resolved(v, "4294967295", uid: false) == "invalid")
        #expect(resolved(v, "$", uid: false, saved: [3, 13, 99]) == "1=3 4=13")
        #expect(resolved(view([]), "1:*", uid: false) == "")
        #expect(resolved(view([]), "*", uid: false) == "")
        #expect(resolved(view([]), "1", uid: false) == "invalid")
    }

    @Test func resolveUIDsOverGaps() {
        let v = view()
        #expect(resolved(v, "1:4", uid: true) == "1=3")
        #expect(resolved(v, "4:12", uid: true) == "2=5 3=8")
        #expect(resolved(v, "14:20", uid: true) == "")
        #expect(resolved(v, "*", uid: true) == "6=34")
        #expect(resolved(v, "100:*", uid: true) == "6=34")
        #expect(resolved(v, "1:4294967295", uid: true) == "1=3 2=5 3=8 4=13 5=21 6=34")
        #expect(resolved(v, "34,3,21", uid: true) == "1=3 5=21 6=34")
        #expect(resolved(view([]), "1:*", uid: true) == "")
        #expect(v.sequenceNumber(of: 13) == 4)
        #expect(v.sequenceNumber(of: 14) == nil)
        #expect(v.sequenceNumber(of: 35) == nil)
    }

    @Test func flushOrder() {
        var v = view()
        v.record(MailboxUpdate(expunged: [8], appended: [40, 41], flags: [flags(21, ["\\Seen"], 9), flags(41, ["\\Draft"], 9)],
                               keywords: [IMAPFlag("$Junk")], highestModSeq: 9))
        #expect(v.hasPendingChanges)
        #expect(v.flush(expungesAllowed: true, vanished: false, condStore: true, imap4rev2: false).map(render) == [
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Junk)",
            "* 3 EXPUNGE",
            "* 7 EXISTS",
            "* 0 RECENT",
            "* 4 FETCH (UID 21 FLAGS (\\Seen) MODSEQ (9))",
            "* 7 FETCH (UID 41 FLAGS (\\Draft) MODSEQ (9))",
            "* OK [HIGHESTMODSEQ 9] Highest",
        ])
        #expect(!v.hasPendingChanges)
        #expect(v.uids == [3, 5, 13, 21, 34, 40, 41])
        #expect(v.highestModSeq == 9)
        #expect(v.uidNext == 42)
    }

    @Test func flushWithoutExpungesKeepsThemCounted() {
        var v = view()
        v.record(MailboxUpdate(expunged: [8, 3], appended: [40]))
        #expect(v.flush(expungesAllowed: false, vanished: false, condStore: false, imap4rev2: true).map(render) == ["* 7 EXISTS"])
        #expect(v.count == 7)
        #expect(v.sequenceNumber(of: 8) == 3)
        // Flag changes of a message expunged meanwhile are dropped.
        v.record(MailboxUpdate(flags: [flags(8, ["\\Seen"], 2)]))
        #expect(v.flush(expungesAllowed: true, vanished: true, condStore: false, imap4rev2: true).map(render) == ["* VANISHED 3,8"])
        #expect(v.uids == [5, 13, 21, 34, 40])
    }

    @Test func unknownExpungesAndOldAppendsAreIgnored() {
        var v = view()
        v.record(MailboxUpdate(expunged: [4, 99], appended: [2, 34]))
        #expect(!v.hasPendingChanges)
        #expect(v.flush(expungesAllowed: true, vanished: false, condStore: false, imap4rev2: false).isEmpty)
    }

    @Test func removeOwnReturnsNumbersEachRelativeToTheLast() {
        var v = view()
        #expect(v.removeOwn([5, 8, 21, 77]) == [5, 3, 2])
        #expect(v.uids == [3, 13, 34])
    }

    /// Random interleavings of changes by others, this session's expunges and flushes with and
    /// without expunges allowed: a client applying the responses always ends with the server's view.
    @Test(arguments: 1...20 as ClosedRange<UInt64>)
    func clientStaysInSync(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var server: [UInt32] = Array(1...20)
        var v = view(server)
        var client = server
        var next: UInt32 = 21
        var announced: [UInt32] = []  // appended UIDs not yet in the client's view, in order
        for _ in 0..<200 {
            switch rng.next() % 5 {
            case 0 where !server.isEmpty:
                let gone = server.filter { _ in rng.next() % 4 == 0 }
                server.removeAll { gone.contains($0) }
                announced.removeAll { gone.contains($0) }
                v.record(MailboxUpdate(expunged: gone))
            case 1:
                let n = UInt32(rng.next() % 3) + 1
                let new = Array(next..<(next + n))
                next += n
                server += new
                announced += new
                v.record(MailboxUpdate(appended: new))
            case 2:
                // This session expunges some messages it knows that still exist.
                let mine = v.uids.filter { server.contains($0) && rng.next() % 5 == 0 }
                server.removeAll { mine.contains($0) }
                let numbers = v.removeOwn(mine)
                for n in numbers { client.remove(at: n - 1) }
            default:
                let out = v.flush(expungesAllowed: rng.next() % 2 == 0, vanished: false, condStore: false, imap4rev2: true)
                for r in out {
                    switch r {
                    case .expunge(let n): client.remove(at: n - 1)
                    case .exists(let n):
                        while client.count < n { client.append(announced.removeFirst()) }
                    default: break
                    }
                }
                // Between flushes the client's numbering is the session's.
                #expect(client == v.uids)
            }
        }
        let out = v.flush(expungesAllowed: true, vanished: false, condStore: false, imap4rev2: true)
        for r in out {
            switch r {
            case .expunge(let n): client.remove(at: n - 1)
            case .exists(let n): while client.count < n { client.append(announced.removeFirst()) }
            default: break
            }
        }
        #expect(client == server)
        #expect(v.uids == server)
    }
}
