import Foundation
import MailStore
import NIOCore
import Testing

@Suite struct MaildirStoreTests {
    let root: String

    init() throws {
        root = NSTemporaryDirectory() + "maildir-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    func files(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    @Test func deliversOnceToEachMailboxWithLFAndSizes() throws {
        let store = MaildirStore(root: root, hostname: "mx.example.test")
        let a = MaildirStore.Mailbox(domain: "example.test", localPart: "alice")
        let b = MaildirStore.Mailbox(domain: "example.test", localPart: "bob")
        let body = ByteBuffer(string: "Subject: t\r\n\r\nline one\r\nline two\r\n")
        let r = try store.deliver(headers: Array("Return-Path: <x@y>\n".utf8), spool: nil, tail: body, to: [a, b, a])
        for who in ["alice", "bob"] {
            let dir = "\(root)/example.test/\(who)"
            #expect(files(dir).sorted() == ["cur", "new", "tmp"])
            #expect(files(dir + "/tmp").isEmpty)
            let names = files(dir + "/new")
            #expect(names == [r.fileName])
            let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/new/" + names[0]))
            let text = String(decoding: data, as: UTF8.self)
            #expect(text == "Return-Path: <x@y>\nSubject: t\n\nline one\nline two\n")
            #expect(!data.contains(0x0D))
            // S= is the size on disk, W= the size with CRLF line ends.
            #expect(names[0].hasSuffix(",S=\(data.count),W=\(data.count + 5)"))
        }
    }

    @Test func appendsFinalNewlineWhenMissing() throws {
        let store = MaildirStore(root: root, hostname: "h")
        let m = MaildirStore.Mailbox(domain: "d.test", localPart: "u")
        let r = try store.deliver(headers: [], spool: nil, tail: ByteBuffer(string: "Subject: x\r\n\r\nno newline"), to: [m])
        let text = try String(contentsOfFile: "\(root)/d.test/u/new/\(r.fileName)", encoding: .utf8)
        #expect(text == "Subject: x\n\nno newline\n")
    }

    @Test func spooledContentIsCopiedBeforeTheTail() throws {
        let store = MaildirStore(root: root, hostname: "h")
        let m = MaildirStore.Mailbox(domain: "d.test", localPart: "u")
        try FileManager.default.createDirectory(atPath: root + "/spool", withIntermediateDirectories: true)
        let spool = try SpoolFile(directory: root + "/spool", name: "s1")
        let big = String(repeating: "0123456789abcdef\r\n", count: 10_000)
        try spool.write(ByteBuffer(string: "Subject: big\r\n\r\n"))
        try spool.write(ByteBuffer(string: big))
        let r = try store.deliver(headers: Array("X-H: 1\n".utf8), spool: spool, tail: ByteBuffer(string: "end\r\n"), to: [m])
        spool.remove()
        let text = try String(contentsOfFile: "\(root)/d.test/u/new/\(r.fileName)", encoding: .utf8)
        #expect(text == "X-H: 1\nSubject: big\n\n" + big.replacingOccurrences(of: "\r\n", with: "\n") + "end\n")
        #expect(files(root + "/spool").isEmpty)
    }

    /// A tail larger than the 64 KiB write buffer, with lines of every length around the buffer's edge:
    /// every CR goes, every LF is counted once (W= = S= + lines), nothing is cut at a buffer boundary.
    @Test func largeTailIsConvertedAcrossWriteBuffers() throws {
        let store = MaildirStore(root: root, hostname: "h")
        let m = MaildirStore.Mailbox(domain: "d.test", localPart: "u")
        var wire = "Subject: large\r\n\r\n"
        var lines = 2
        for i in 0..<3_000 {
            wire += String(repeating: Character(UnicodeScalar(UInt8(97 + i % 26))), count: i % 97) + "\r\n"
            lines += 1
        }
        wire += String(repeating: "z", count: 70_000) + "\r\n"  // one line longer than the buffer
        lines += 1
        let r = try store.deliver(headers: [], spool: nil, tail: ByteBuffer(string: wire), to: [m])
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(root)/d.test/u/new/\(r.fileName)"))
        #expect(String(decoding: data, as: UTF8.self) == wire.replacingOccurrences(of: "\r\n", with: "\n"))
        #expect(r.fileName.hasSuffix(",S=\(data.count),W=\(data.count + lines)"))
        #expect(files("\(root)/d.test/u/tmp").isEmpty)
    }

    @Test func refusesPathEscapes() throws {
        let store = MaildirStore(root: root, hostname: "h")
        for bad in ["..", ".hidden", "a/b", ""] {
            #expect(throws: StoreError.self) {
                try store.deliver(headers: [], spool: nil, tail: ByteBuffer(string: "x\r\n"),
                                  to: [MaildirStore.Mailbox(domain: "d.test", localPart: bad)])
            }
        }
    }

    @Test func writeFailureLeavesNothingVisible() throws {
        let store = MaildirStore(root: root, hostname: "h")
        let ok = MaildirStore.Mailbox(domain: "d.test", localPart: "ok")
        let broken = MaildirStore.Mailbox(domain: "d.test", localPart: "broken")
        try store.ensureMaildir(ok)
        try store.ensureMaildir(broken)
        // Make broken/new unwritable by replacing it with a file: link() into it fails.
        try FileManager.default.removeItem(atPath: "\(root)/d.test/broken/new")
        _ = FileManager.default.createFile(atPath: "\(root)/d.test/broken/new", contents: Data())
        #expect(throws: StoreError.self) {
            try store.deliver(headers: [], spool: nil, tail: ByteBuffer(string: "x\r\n"), to: [ok, broken])
        }
        #expect(files("\(root)/d.test/ok/new").isEmpty)
        #expect(files("\(root)/d.test/ok/tmp").isEmpty)
    }

    /// Group commit: many concurrent deliveries into one mailbox all land, each exactly once, and a
    /// Maildir removed while the store believes it exists is created again.
    @Test func concurrentDeliveriesShareDirectorySyncs() async throws {
        let root = NSTemporaryDirectory() + "store-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = MaildirStore(root: root, hostname: "mx.example.test")
        let box = MaildirStore.Mailbox(domain: "example.test", localPart: "alice")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<400 {
                group.addTask {
                    _ = try store.deliver(headers: [], spool: nil, tail: ByteBuffer(string: "Subject: \(i)\r\n\r\nbody\r\n"), to: [box])
                }
            }
            try await group.waitForAll()
        }
        let newDir = root + "/example.test/alice/new"
        let names = try FileManager.default.contentsOfDirectory(atPath: newDir)
        #expect(names.count == 400)
        let subjects = Set(try names.map { try String(contentsOfFile: newDir + "/" + $0, encoding: .utf8).split(separator: "\n")[0] })
        #expect(subjects.count == 400)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/example.test/alice/tmp").isEmpty)
        try FileManager.default.removeItem(atPath: root + "/example.test/alice")
        _ = try store.deliver(headers: [], spool: nil, tail: ByteBuffer(string: "Subject: again\r\n\r\nx\r\n"), to: [box])
        #expect(try FileManager.default.contentsOfDirectory(atPath: newDir).count == 1)
    }
}
