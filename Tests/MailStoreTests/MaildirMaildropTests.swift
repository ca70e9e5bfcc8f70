import Foundation
import MailStore
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// The POP3 view of a Maildir: snapshot, order, sizes, UIDLs, UPDATE.
@Suite struct MaildirMaildropTests {
    let root: String

    init() throws {
        root = NSTemporaryDirectory() + "maildrop-test-\(UUID().uuidString)"
        for sub in ["tmp", "new", "cur"] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(sub)", withIntermediateDirectories: true)
        }
    }

    func write(_ sub: String, _ name: String, _ content: String) throws {
        try Data(content.utf8).write(to: URL(fileURLWithPath: "\(root)/\(sub)/\(name)"))
    }

    func files(_ sub: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(root)/\(sub)")) ?? []).sorted()
    }

    func read(_ drop: MaildirMaildrop, _ index: Int) throws -> String {
        let fd = try drop.open(index)
        defer { close(fd) }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test("links, FIFOs and directories in new/ and cur/ are not messages; a message swapped for a link is not read")
    func onlyRegularFilesAreMessages() throws {
        try write("cur", "1700000001.M1P1.host,S=6,W=7:2,S", "real\n")
        let secret = root + "/../maildrop-secret-\(UUID().uuidString)"
        try Data("not yours\n".utf8).write(to: URL(fileURLWithPath: secret))
        defer { unlink(secret) }
        #expect(symlink(secret, "\(root)/cur/1700000002.M2P1.host:2,S") == 0)
        #expect(symlink(secret, "\(root)/new/1700000003.M3P1.host,S=10,W=11") == 0)
        #expect(mkfifo("\(root)/new/1700000004.M4P1.host", 0o600) == 0)
        #expect(mkfifo("\(root)/new/1700000005.M5P1.host,S=10,W=11", 0o600) == 0)
        try FileManager.default.createDirectory(atPath: "\(root)/cur/1700000006.M6P1.host", withIntermediateDirectories: false)
        let drop = try MaildirMaildrop(path: root)
        #expect(drop.entries.map(\.name) == ["1700000001.M1P1.host,S=6,W=7:2,S"])
        #expect(try read(drop, 0) == "real\n")
        // Swapped for a link to another file after the snapshot: refused, not followed.
        unlink("\(root)/cur/1700000001.M1P1.host,S=6,W=7:2,S")
        #expect(symlink(secret, "\(root)/cur/1700000001.M1P1.host,S=6,W=7:2,S") == 0)
        #expect(throws: (any Error).self) { try drop.open(0) }
    }

    @Test func missingMaildirIsEmpty() throws {
        let drop = try MaildirMaildrop(path: root + "/does-not-exist")
        #expect(drop.entries.isEmpty)
    }

    @Test func snapshotOfNewAndCurInDeliveryOrder() throws {
        try write("new", "1700000300.M3P1Q3.mx,S=10,W=11", "Subject: c\n")
        try write("cur", "1700000100.M1P1Q1.mx,S=10,W=11:2,S", "Subject: a\n")
        try write("new", "1700000200.M2P1Q2.mx,S=10,W=11", "Subject: b\n")
        try write("cur", "1700000200.M1P1Q1.mx,S=10,W=11:2,", "Subject: B\n")
        try write("new", ".hidden", "x")
        try write("tmp", "1600000000.M0P0Q0.mx", "in delivery, not visible\n")
        let drop = try MaildirMaildrop(path: root)
        #expect(drop.entries.map(\.uid) == ["1700000100.M1P1Q1.mx", "1700000200.M1P1Q1.mx", "1700000200.M2P1Q2.mx", "1700000300.M3P1Q3.mx"])
        #expect(drop.entries.map(\.subdirectory) == ["cur", "cur", "new", "new"])
        #expect(try read(drop, 0) == "Subject: a\n")
        #expect(try read(drop, 3) == "Subject: c\n")
    }

    @Test func numericOrderNotLexical() throws {
        try write("new", "999999999.A.mx", "a\n")
        try write("new", "1000000000.B.mx", "b\n")
        let drop = try MaildirMaildrop(path: root)
        #expect(drop.entries.map(\.uid) == ["999999999.A.mx", "1000000000.B.mx"])
    }

    @Test func sizesFromWAreTrustedWithoutReading() throws {
        // W= is Dovecot's virtual (CRLF) size; the file content is not consulted.
        try write("new", "1700000000.M1P1.mx,S=5,W=1234", "x\n")
        let drop = try MaildirMaildrop(path: root)
        #expect(drop.entries.map(\.size) == [1234])
    }

    @Test func sizesComputedWithoutW() throws {
        // Dovecot-style names in cur/ with S= (physical size, not the CRLF size) and flags; plain names;
        // LF endings, CRLF endings, a missing final newline, bare CRs.
        try write("cur", "1700000000.M1P2.host,S=11:2,S", "A: 1\n\nbody\n")  // 11 octets on disk → 14 with CRLF
        try write("cur", "1700000001.M2P2.host:2,FS", "A: 1\r\n\r\nbody\r\n")  // already CRLF
        try write("cur", "1700000002.M3P2.host:2,", "A: 1\n\nno newline")
        try write("new", "1700000003.plain", "A: 1\n\na\rb\n")  // bare CR gains an LF on the wire
        try write("new", "1700000004.plain", "A: 1\n\nend\r")  // final bare CR
        try write("new", "1700000005.plain", "")
        let drop = try MaildirMaildrop(path: root)
        #expect(drop.entries.map(\.size) == [14, 14, 20, 14, 13, 0])
        #expect(drop.entries.map(\.uid) == ["1700000000.M1P2.host", "1700000001.M2P2.host", "1700000002.M3P2.host",
                                            "1700000003.plain", "1700000004.plain", "1700000005.plain"])
    }

    @Test func uidlIsValidForOddNames() throws {
        let long = "1700000000." + String(repeating: "x", count: 80)
        try write("new", long, "a\n")
        try write("new", "1700000001.with space", "b\n")
        try write("new", "1700000002.exactly-seventy-" + String(repeating: "y", count: 70 - 27), "c\n")
        try write("new", "1700000003.ünïcode", "d\n")
        let drop = try MaildirMaildrop(path: root)
        let uids = drop.entries.map(\.uid)
        for uid in uids {
            #expect((1...70).contains(uid.utf8.count), "\(uid)")
            #expect(uid.utf8.allSatisfy { $0 >= 0x21 && $0 <= 0x7E }, "\(uid)")
        }
        #expect(uids[0].hasPrefix("H") && uids[0].count == 17)
        #expect(uids[1].hasPrefix("H") && uids[1].count == 17)
        #expect(uids[2] == "1700000002.exactly-seventy-" + String(repeating: "y", count: 43))
        #expect(uids[3].hasPrefix("H"))
        #expect(Set(uids).count == 4)
        // The hash is stable across re-opening.
        #expect(try MaildirMaildrop(path: root).entries.map(\.uid) == uids)
    }

    @Test func uidlStableAcrossNewToCurMoveAndReopening() throws {
        try write("new", "1700000000.M1P1Q1.mx,S=7,W=8", "A: 1\n\nb\n")
        try write("new", "1700000001.M1P1Q2.mx,S=7,W=8", "A: 2\n\nb\n")
        let first = try MaildirMaildrop(path: root)
        let uids = first.entries.map(\.uid)
        #expect(uids == ["1700000000.M1P1Q1.mx", "1700000001.M1P1Q2.mx"])
        try first.update(deleted: [], retrieved: [0])
        #expect(files("new") == ["1700000001.M1P1Q2.mx,S=7,W=8"])
        #expect(files("cur") == ["1700000000.M1P1Q1.mx,S=7,W=8:2,S"])
        let second = try MaildirMaildrop(path: root)
        #expect(second.entries.map(\.uid) == uids)
        #expect(second.entries.map(\.size) == [8, 8])
        // A MUA adds flags: the UIDL still does not change.
        try FileManager.default.moveItem(atPath: "\(root)/cur/1700000000.M1P1Q1.mx,S=7,W=8:2,S",
                                         toPath: "\(root)/cur/1700000000.M1P1Q1.mx,S=7,W=8:2,FRS")
        #expect(try MaildirMaildrop(path: root).entries.map(\.uid) == uids)
    }

    @Test func updateDeletesAndMarksSeen() throws {
        try write("new", "1700000000.a,S=2,W=3", "1\n")
        try write("new", "1700000001.b,S=2,W=3", "2\n")
        try write("cur", "1700000002.c:2,F", "3\n")
        try write("cur", "1700000003.d:2,S", "4\n")
        try write("cur", "1700000004.e", "5\n")
        try write("new", "1700000005.f", "6\n")
        let drop = try MaildirMaildrop(path: root)
        #expect(drop.entries.count == 6)
        // Delete b; retrieved a (new → cur,S), c (flag F kept, S added), d (already seen), e (no info), and
        // b (deleted wins). f untouched.
        try drop.update(deleted: [1], retrieved: [0, 1, 2, 3, 4])
        #expect(files("new") == ["1700000005.f"])
        #expect(files("cur") == ["1700000000.a,S=2,W=3:2,S", "1700000002.c:2,FS", "1700000003.d:2,S", "1700000004.e:2,S"])
        let after = try MaildirMaildrop(path: root)
        #expect(after.entries.map(\.uid) == ["1700000000.a", "1700000002.c", "1700000003.d", "1700000004.e", "1700000005.f"])
    }

    @Test func retrievedFlagsStaySorted() throws {
        try write("cur", "1700000000.a:2,RT", "x\n")
        let drop = try MaildirMaildrop(path: root)
        try drop.update(deleted: [], retrieved: [0])
        #expect(files("cur") == ["1700000000.a:2,RST"])
    }

    @Test func vanishedFileCountsAsDeleted() throws {
        try write("new", "1700000000.a", "1\n")
        try write("new", "1700000001.b", "2\n")
        let drop = try MaildirMaildrop(path: root)
        try FileManager.default.removeItem(atPath: "\(root)/new/1700000000.a")
        try drop.update(deleted: [0, 1], retrieved: [])
        #expect(files("new").isEmpty)
        #expect(files("cur").isEmpty)
    }

    @Test func vanishedRetrievedFileIsIgnored() throws {
        try write("new", "1700000000.a", "1\n")
        let drop = try MaildirMaildrop(path: root)
        try FileManager.default.removeItem(atPath: "\(root)/new/1700000000.a")
        try drop.update(deleted: [], retrieved: [0])
        #expect(files("cur").isEmpty)
    }

    @Test func fileMovedByAnotherProgramIsStillReadAndDeleted() throws {
        try write("new", "1700000000.a,S=2,W=3", "1\n")
        let drop = try MaildirMaildrop(path: root)
        // A MUA moves it to cur/ with flags after the snapshot.
        try FileManager.default.moveItem(atPath: "\(root)/new/1700000000.a,S=2,W=3", toPath: "\(root)/cur/1700000000.a,S=2,W=3:2,S")
        #expect(try read(drop, 0) == "1\n")
        try drop.update(deleted: [0], retrieved: [])
        #expect(files("cur").isEmpty, "DELE must not leave the moved message behind")
        #expect(files("new").isEmpty)
    }

    @Test func openFailsForAGoneMessage() throws {
        try write("new", "1700000000.a", "1\n")
        let drop = try MaildirMaildrop(path: root)
        try FileManager.default.removeItem(atPath: "\(root)/new/1700000000.a")
        #expect(throws: (any Error).self) { try drop.open(0) }
    }

    @Test func snapshotIgnoresLaterArrivals() throws {
        try write("new", "1700000000.a", "1\n")
        let drop = try MaildirMaildrop(path: root)
        try write("new", "1700000001.b", "2\n")
        #expect(drop.entries.count == 1)
        try drop.update(deleted: [0], retrieved: [])
        #expect(files("new") == ["1700000001.b"])
        #expect(try MaildirMaildrop(path: root).entries.map(\.uid) == ["1700000001.b"])
    }
}
