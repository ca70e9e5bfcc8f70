import Foundation
@testable import MailStore
import NIOCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The shared folder index: sync, UIDs, flags, MODSEQs, append/copy/move/expunge, POP3 and Dovecot
/// changing the same Maildir.
@Suite struct MaildirFolderTests {
    let base: String
    let root: String
    let account: MaildirAccount
    let store: MaildirStore
    let mailbox = MaildirStore.Mailbox(domain: "example.test", localPart: "u")

    init() throws {
        base = NSTemporaryDirectory() + "folder-test-\(UUID().uuidString)"
        store = MaildirStore(root: base, hostname: "mx.test")
        root = try store.ensureMaildir(mailbox)
        account = MaildirAccount(root: root)
    }

    func files(_ sub: String, in dir: String? = nil) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(dir ?? root)/\(sub)")) ?? []).sorted()
    }

    @discardableResult
    func deliver(_ text: String) throws -> String {
        try store.deliver(headers: [], spool: nil, tail: ByteBuffer(string: text), to: [mailbox]).fileName
    }

    func text(_ folder: MaildirFolder, _ uid: UInt32) throws -> String {
        String(decoding: try folder.readMessage(uid: uid), as: UTF8.self)
    }

    @Test func unchangedVersionsShareOneCopy() throws {
        try deliver("Subject: 1\r\n\r\none\r\n")
        try deliver("Subject: 2\r\n\r\ntwo\r\n")
        let folder = try account.openFolder("INBOX")
        func address(_ a: [UInt32]) -> UnsafeRawPointer? { a.withUnsafeBytes { $0.baseAddress } }
        func address(_ a: [UInt64]) -> UnsafeRawPointer? { a.withUnsafeBytes { $0.baseAddress } }
        let (snapshot, first) = folder.snapshotAndVersions()
        #expect(first.uids == snapshot.messages.map(\.uid) && first.modSeqs == snapshot.messages.map(\.modSeq))
        let second = folder.versions()
        #expect(second == first)
        #expect(address(second.uids) == address(first.uids) && address(second.modSeqs) == address(first.modSeqs))
        // A flag change makes new versions (and those are shared in turn).
        _ = try folder.store(["\\Seen"], .add, uids: [1])
        let third = folder.versions()
        #expect(third.modSeqs != first.modSeqs && third.uids == first.uids)
        #expect(address(folder.versions().modSeqs) == address(third.modSeqs))
    }

    @Test func fileNamesSurviveRenamesByOtherPrograms() throws {
        try deliver("Subject: 1\r\n\r\none\r\n")
        let folder = try account.openFolder("INBOX")
        let before = files("cur")
        #expect(before.count == 1 && before[0].hasSuffix(":2,"))
        // Another program sets \Flagged and \Seen by renaming, then an info part that is not "2,".
        let base = String(before[0].dropLast(3))
        #expect(rename("\(root)/cur/\(before[0])", "\(root)/cur/\(base):2,FS") == 0)
        let changed = try folder.sync()
        #expect(changed.flagsChanged.map(\.flags) == [["\\Flagged", "\\Seen"]])
        #expect(try text(folder, 1) == "Subject: 1\n\none\n")
        #expect(rename("\(root)/cur/\(base):2,FS", "\(root)/cur/\(base):1,odd") == 0)
        #expect(try folder.sync().flagsChanged.map(\.flags) == [[]])
        #expect(try text(folder, 1) == "Subject: 1\n\none\n")
        // A STORE on it renames from the name on disk.
        _ = try folder.store(["\\Deleted"], .add, uids: [1])
        #expect(files("cur").count == 1)
        #expect(try text(folder, 1) == "Subject: 1\n\none\n")
    }

    @Test func batchReadsFollowRenamesAndReportGoneFiles() throws {
        try deliver("Subject: 1\r\n\r\none\r\n")
        try deliver("Subject: 2\r\n\r\ntwo\r\n")
        let folder = try account.openFolder("INBOX")
        let names = files("cur")
        // Renamed by another program and deleted by another, both unknown to the index until a read.
        #expect(rename("\(root)/cur/\(names[0])", "\(root)/cur/\(names[0])S") == 0)
        #expect(unlink("\(root)/cur/\(names[1])") == 0)
        var directories = MaildirFolder.Directories()
        #expect(String(decoding: try folder.readMessage(uid: 1, directories: &directories), as: UTF8.self) == "Subject: 1\n\none\n")
        #expect(throws: MailboxError.messageGone(uid: 2)) { try folder.readMessage(uid: 2, directories: &directories) }
        #expect(throws: MailboxError.messageGone(uid: 9)) { try folder.readMessage(uid: 9, directories: &directories) }
        // The read's fstat gave the internal date: the file's mtime.
        var st = stat()
        #expect(stat("\(root)/cur/\(names[0])S", &st) == 0)
        #expect(try folder.internalDate(uid: 1) == Int64(st.st_mtim.tv_sec))
    }

    @Test func syncAssignsUIDsInDeliveryOrderAndMovesToCur() throws {
        try deliver("Subject: 1\r\n\r\none\r\n")
        try deliver("Subject: 2\r\n\r\ntwo\r\n")
        let folder = try account.openFolder("INBOX")
        let snap = folder.snapshot()
        #expect(snap.messages.map(\.uid) == [1, 2])
        #expect(snap.nextUID == 3)
        #expect(try text(folder, 1) == "Subject: 1\n\none\n")
        #expect(snap.messages[0].size == 16 && snap.messages[0].virtualSize == 19)
        #expect(files("new").isEmpty)
        #expect(files("cur").allSatisfy { $0.hasSuffix(":2,") })
        let uidlist = try String(contentsOfFile: root + "/dovecot-uidlist", encoding: .utf8)
        #expect(uidlist.hasPrefix("3 V\(snap.uidValidity) N3 G"))
        #expect(uidlist.contains("\n1 :") && uidlist.contains("\n2 :"))
        #expect(!FileManager.default.fileExists(atPath: root + "/dovecot-uidlist.lock"))
    }

    @Test func uidsAndUIDValidityAreStableAcrossReopen() throws {
        try deliver("Subject: a\r\n\r\na\r\n")
        let first = try account.openFolder("INBOX").snapshot()
        MaildirFolder.evict(path: root)
        try deliver("Subject: b\r\n\r\nb\r\n")
        let again = try account.openFolder("INBOX")
        let snap = again.snapshot()
        #expect(snap.uidValidity == first.uidValidity)
        #expect(snap.messages.map(\.uid) == [1, 2])
        #expect(snap.messages[0].modSeq == first.messages[0].modSeq)  // from the journal
        #expect(snap.highestModSeq > first.highestModSeq)
    }

    @Test func syncNoticesExternalChanges() throws {
        try deliver("Subject: a\r\n\r\na\r\n")
        try deliver("Subject: b\r\n\r\nb\r\n")
        let folder = try account.openFolder("INBOX")
        let before = folder.snapshot()
        let names = files("cur")
        // mutt marks the first seen and flagged; POP3 deletes the second; a new message is delivered.
        #expect(rename("\(root)/cur/\(names[0])", "\(root)/cur/\(names[0].dropLast(0))FS") == 0)
        #expect(unlink("\(root)/cur/\(names[1])") == 0)
        try deliver("Subject: c\r\n\r\nc\r\n")
        let changes = try folder.sync()
        #expect(changes.expunged == [2])
        #expect(changes.added.map(\.uid) == [3])
        #expect(changes.flagsChanged.map(\.uid) == [1])
        #expect(changes.flagsChanged.first?.flags == ["\\Flagged", "\\Seen"])
        #expect(changes.flagsChanged[0].modSeq > before.highestModSeq)
        let after = folder.snapshot()
        #expect(after.changes(since: before) == FolderChanges.with(added: changes.added, expunged: [2], flagsChanged: changes.flagsChanged))
        #expect(try folder.sync().isEmpty)
    }

    @Test func readingAMessagePOP3DeletedIsATypedError() throws {
        try deliver("Subject: a\r\n\r\na\r\n")
        let folder = try account.openFolder("INBOX")
        let drop = try MaildirMaildrop(path: root)
        try drop.update(deleted: [0], retrieved: [])
        #expect(throws: MailboxError.messageGone(uid: 1)) { try folder.readMessage(uid: 1) }
        #expect(try folder.sync().expunged == [1])
    }

    @Test func openFollowsARenameByAnotherProgram() throws {
        try deliver("Subject: a\r\n\r\na\r\n")
        let folder = try account.openFolder("INBOX")
        // UID 1's file (file names do not sort in delivery order: the microseconds have no fixed width).
        let name = String(folder.snapshot().messages[0].path.split(separator: "/").last!)
        #expect(rename("\(root)/cur/\(name)", "\(root)/cur/\(name)S") == 0)
        #expect(try text(folder, 1) == "Subject: a\n\na\n")
    }

    @Test func storeRenamesKeepsUnknownLettersAndBumpsModSeq() throws {
        try deliver("Subject: a\r\n\r\na\r\n")
        try deliver("Subject: b\r\n\r\nb\r\n")
        let folder = try account.openFolder("INBOX")
        // UID 1's file (file names do not sort in delivery order: the microseconds have no fixed width).
        let name = String(folder.snapshot().messages[0].path.split(separator: "/").last!)
        #expect(rename("\(root)/cur/\(name)", "\(root)/cur/\(name)P") == 0)  // "passed", from another MUA
        _ = try folder.sync()
        let m0 = folder.snapshot().highestModSeq
        let r = try folder.store(["\\Seen", "$Forwarded", "Junk"], .add, uids: [1, 2, 99])
        #expect(r.changed.map(\.uid) == [1, 2])
        #expect(r.gone == [99])
        #expect(r.changed.allSatisfy { $0.modSeq > m0 })
        #expect(r.changed[0].modSeq != r.changed[1].modSeq)
        #expect(files("cur").contains(name + "PSab"))
        #expect(try String(contentsOfFile: root + "/dovecot-keywords", encoding: .utf8) == "0 $Forwarded\n1 Junk\n")
        #expect(folder.snapshot().messages[0].flags == ["\\Seen", "$Forwarded", "Junk"])
        // Removing leaves P; replacing too.
        _ = try folder.store(["$Forwarded"], .remove, uids: [1])
        #expect(files("cur").contains(name + "PSb"))
        _ = try folder.store(["\\Deleted"], .replace, uids: [1])
        #expect(files("cur").contains(name + "PT"))
        // UNCHANGEDSINCE.
        let snap = folder.snapshot()
        let stale = try folder.store(["\\Flagged"], .add, uids: [1, 2], unchangedSince: snap.messages[1].modSeq)
        #expect(stale.failedUnchangedSince == [1])
        #expect(stale.changed.map(\.uid) == [2])
        // No change, no new MODSEQ.
        let same = try folder.store(["\\Flagged"], .add, uids: [2])
        #expect(same.changed.isEmpty)
    }

    @Test func lostModSeqJournalResyncsWithHigherModSeqsAndKeepsFlags() throws {
        try deliver("Subject: a\r\n\r\na\r\n")
        try deliver("Subject: b\r\n\r\nb\r\n")
        var folder = try account.openFolder("INBOX")
        _ = try folder.store(["\\Seen"], .add, uids: [1])
        let announced = folder.snapshot().highestModSeq
        MaildirFolder.evict(path: root)
        folder = try account.openFolder("INBOX")
        #expect(folder.snapshot().highestModSeq == announced)
        for damage in ["remove", "corrupt", "torn"] {
            let before = folder.snapshot().highestModSeq
            MaildirFolder.evict(path: root)
            switch damage {
            case "remove": unlink(root + "/swallow-modseq")
            case "corrupt": try Data("nonsense\n".utf8).write(to: URL(fileURLWithPath: root + "/swallow-modseq"))
            default:
                let h = try FileHandle(forWritingTo: URL(fileURLWithPath: root + "/swallow-modseq"))
                h.seekToEndOfFile()
                h.write(Data("1 99".utf8))
                try h.close()
            }
            folder = try account.openFolder("INBOX")
            let snap = folder.snapshot()
            #expect(snap.messages.allSatisfy { $0.modSeq > before }, "\(damage)")
            #expect(snap.highestModSeq > before)
            #expect(snap.messages[0].flags == ["\\Seen"])
            #expect(snap.messages.map(\.uid) == [1, 2])
        }
    }

    @Test func appendStoresLFWithFlagsAndInternalDate() throws {
        let folder = try account.openFolder("INBOX")
        let uid = try folder.append(Array("Subject: x\r\n\r\nbody\r\nno final newline".utf8), flags: ["\\Seen", "\\Draft", "$Label1"],
                                    internalDate: 1_000_000_000)
        #expect(uid == 1)
        #expect(try text(folder, uid) == "Subject: x\n\nbody\nno final newline")
        let m = try #require(folder.snapshot().messages.first)
        #expect(m.flags == ["\\Draft", "\\Seen", "$Label1"])
        #expect(m.size == 33 && m.virtualSize == 36)
        #expect(try folder.internalDate(uid: uid) == 1_000_000_000)
        #expect(files("cur")[0].hasSuffix(",S=33,W=36:2,DSa"))
        #expect(files("tmp").isEmpty)
        // From a file, LF already.
        let src = base + "/src.eml"
        try Data("Subject: f\n\nfile\n".utf8).write(to: URL(fileURLWithPath: src))
        let uid2 = try folder.append(contentsOf: src)
        #expect(try text(folder, uid2) == "Subject: f\n\nfile\n")
        // Reopened: the same.
        MaildirFolder.evict(path: root)
        let again = try account.openFolder("INBOX").snapshot()
        #expect(again.messages.map(\.uid) == [1, 2])
        #expect(again.messages[0].flags == ["\\Draft", "\\Seen", "$Label1"])
    }

    @Test func copyAndMoveKeepFlagsWithTheDestinationsKeywords() throws {
        try account.create("Dest")
        let dest = try account.openFolder("Dest")
        _ = try dest.append(Array("Subject: d\n\nd\n".utf8), flags: ["OnlyInDest"])  // takes keyword letter a in Dest
        let inbox = try account.openFolder("INBOX")
        let u1 = try inbox.append(Array("Subject: 1\n\n1\n".utf8), flags: ["\\Seen", "$Forwarded"])
        let u2 = try inbox.append(Array("Subject: 2\n\n2\n".utf8))
        let pairs = try inbox.copy(uids: [u2, u1], to: dest)
        #expect(pairs == [UIDPair(source: u1, destination: 2), UIDPair(source: u2, destination: 3)])
        let d = dest.snapshot()
        #expect(d.messages.map(\.uid) == [1, 2, 3])
        #expect(d.messages[1].flags == ["\\Seen", "$Forwarded"])
        #expect(try String(contentsOfFile: dest.path + "/dovecot-keywords", encoding: .utf8) == "0 OnlyInDest\n1 $Forwarded\n")
        #expect(try text(dest, 2) == "Subject: 1\n\n1\n")
        // Hard links: same inode.
        var a = stat(), b = stat()
        stat(inbox.snapshot().messages[0].path, &a)
        stat(d.messages[1].path, &b)
        #expect(a.st_ino == b.st_ino)
        let moved = try inbox.move(uids: [u1], to: dest)
        #expect(moved.map(\.destination) == [4])
        #expect(inbox.snapshot().messages.map(\.uid) == [u2])
        #expect(try inbox.sync().isEmpty)
        // A vanished source: nothing copied, a typed error.
        unlink(inbox.snapshot().messages[0].path)
        #expect(throws: MailboxError.messageGone(uid: u2)) { try inbox.copy(uids: [u2], to: dest) }
        #expect(dest.snapshot().messages.count == 4)
        #expect(files("cur", in: dest.path).count == 4)
    }

    @Test func expungeIsDurableAndRewritesTheUIDList() throws {
        try deliver("Subject: a\r\n\r\na\r\n")
        try deliver("Subject: b\r\n\r\nb\r\n")
        let folder = try account.openFolder("INBOX")
        let m = folder.snapshot().highestModSeq
        #expect(try folder.expunge(uids: [1, 7]) == [1])
        #expect(files("cur").count == 1)
        let list = try #require(UIDList.parse(Array(try Data(contentsOf: URL(fileURLWithPath: root + "/dovecot-uidlist")))))
        #expect(list.records.map(\.uid) == [2])
        #expect(list.nextUID == 3)
        #expect(folder.snapshot().highestModSeq > m)
        MaildirFolder.evict(path: root)
        #expect(try account.openFolder("INBOX").snapshot().messages.map(\.uid) == [2])
    }

    @Test func sessionsShareOneIndexAndDiffIt() throws {
        try deliver("Subject: a\r\n\r\na\r\n")
        let a = try account.openFolder("INBOX")
        let b = try MaildirFolder.open(path: root)
        #expect(a === b)
        let viewB = b.snapshot()
        _ = try a.store(["\\Seen"], .add, uids: [1])
        _ = try a.append(Array("x\n".utf8))
        let diff = b.snapshot().changes(since: viewB)
        #expect(diff.flagsChanged.map(\.uid) == [1])
        #expect(diff.added.map(\.uid) == [2])
    }

    @Test func concurrentStoresFromManyThreads() async throws {
        for i in 0..<50 { _ = try account.openFolder("INBOX").append(Array("Subject: \(i)\n\n\(i)\n".utf8)) }
        let folder = try account.openFolder("INBOX")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<8 {
                group.addTask {
                    for round in 0..<20 {
                        let uid = UInt32(1 + (t * 7 + round) % 50)
                        _ = try folder.store([round % 2 == 0 ? "\\Seen" : "\\Flagged", "k\(t % 3)"], .add, uids: [uid])
                        _ = try folder.sync()
                    }
                }
            }
            try await group.waitForAll()
        }
        let snap = folder.snapshot()
        #expect(snap.messages.count == 50)
        #expect(Set(snap.messages.map(\.modSeq)).count == 50 || snap.messages.allSatisfy { $0.modSeq <= snap.highestModSeq })
        // Every file name matches the index, and a fresh index reads the same flags.
        MaildirFolder.evict(path: root)
        let fresh = try account.openFolder("INBOX").snapshot()
        #expect(fresh.messages.map(\.flags) == snap.messages.map(\.flags))
        #expect(fresh.messages.map(\.modSeq) == snap.messages.map(\.modSeq))
    }

    @Test func readsAFolderDovecotWrote() throws {
        // As Dovecot 2.3.19 leaves a Maildir: a file still in new/ with flags, keywords, a uidlist record
        // with W/S extension fields for a name without them.
        let dir = root + "/.Dove"
        for sub in ["cur", "new", "tmp"] { try FileManager.default.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true) }
        try Data().write(to: URL(fileURLWithPath: dir + "/maildirfolder"))
        try Data("Subject: hi\n\nbody\n".utf8).write(to: URL(fileURLWithPath: dir + "/new/1796305384.M991750P20473.vm,S=18,W=21:2,Sab"))
        try Data("Subject: 2\n\nbody2\n".utf8).write(to: URL(fileURLWithPath: dir + "/cur/1796305385.M99405P20476.vm:2,"))
        try Data("""
            3 V1796305386 N5 G06a2e32be871116bd44f000083ecc375
            1 :1796305384.M991750P20473.vm,S=18,W=21
            4 W21 S18 :1796305385.M99405P20476.vm

            """.utf8).write(to: URL(fileURLWithPath: dir + "/dovecot-uidlist"))
        try Data("0 $Forwarded\n1 Junk\n".utf8).write(to: URL(fileURLWithPath: dir + "/dovecot-keywords"))
        let folder = try account.openFolder("Dove")
        let snap = folder.snapshot()
        #expect(snap.uidValidity == 1_796_305_386)
        #expect(snap.nextUID == 5)
        #expect(snap.messages.map(\.uid) == [1, 4])
        #expect(snap.messages[0].flags == ["\\Seen", "$Forwarded", "Junk"])
        #expect(snap.messages[1].virtualSize == 21)
        #expect(files("cur", in: dir).contains("1796305384.M991750P20473.vm,S=18,W=21:2,Sab"))
    }

    @Test func tenThousandMessageSync() throws {
        let dir = root + "/cur"
        for i in 0..<10_000 {
            let name = "\(1_700_000_000 + i).M\(i)P1Q\(i).host,S=10,W=11:2,\(i % 3 == 0 ? "S" : "")"
            let fd = open(dir + "/" + name, O_WRONLY | O_CREAT, 0o600)
            _ = write(fd, "123456789\n", 10)
            close(fd)
        }
        let clock = ContinuousClock()
        var folder: MaildirFolder?
        let first = try clock.measure { folder = try account.openFolder("INBOX") }
        let second = try clock.measure { _ = try folder!.sync() }
        MaildirFolder.evict(path: root)
        let reopen = try clock.measure { folder = try account.openFolder("INBOX") }
        let store = try clock.measure { _ = try folder!.store(["\\Flagged"], .add, uids: [5000]) }
        print("10,000 messages: first sync \(first), idle sync \(second), reopen \(reopen), one STORE \(store)")
        #expect(folder!.snapshot().messages.count == 10_000)
        #expect(folder!.snapshot().messages.last?.uid == 10_000)
    }
}

extension FolderChanges {
    static func with(added: [MaildirMessage], expunged: [UInt32], flagsChanged: [MaildirMessage]) -> FolderChanges {
        var c = FolderChanges()
        c.added = added
        c.expunged = expunged
        c.flagsChanged = flagsChanged
        return c
    }
}
