import Foundation
@testable import MailStore
import Testing

/// Folders as Maildir++ dot-directories, subscriptions, special use.
@Suite struct MaildirAccountTests {
    let root: String
    let account: MaildirAccount

    init() throws {
        root = NSTemporaryDirectory() + "account-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        account = MaildirAccount(root: root)
    }

    func entries() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted() }

    @Test func createsDotFoldersInModifiedUTF7() throws {
        try account.create("Archive/2026")
        try account.create("Entwürfe")
        #expect(entries().contains(".Archive.2026"))
        #expect(entries().contains(".Entw&APw-rfe"))
        for sub in ["cur", "new", "tmp", "maildirfolder", "dovecot-uidlist"] {
            #expect(FileManager.default.fileExists(atPath: root + "/.Archive.2026/" + sub))
        }
        let list = try account.listFolders()
        #expect(list.map(\.name) == ["INBOX", "Archive", "Archive/2026", "Entwürfe"])
        #expect(list.first { $0.name == "Archive" }?.exists == false)  // implied parent
        #expect(list.first { $0.name == "Archive" }?.hasChildren == true)
        #expect(list.first { $0.name == "Archive/2026" }?.hasChildren == false)
        #expect(throws: MailboxError.alreadyExists("Archive/2026")) { try account.create("Archive/2026") }
        #expect(throws: MailboxError.alreadyExists("inbox")) { try account.create("inbox") }
    }

    @Test(arguments: ["a.b", "", "/x", "x/", "a//b", "tab\there", "wild*", "wild%"])
    func refusesInvalidNames(_ name: String) {
        #expect(throws: MailboxError.self) { try account.create(name) }
        #expect(entries().filter { $0.hasPrefix(".") && !$0.hasPrefix("..") }.isEmpty)
    }

    @Test func dotInNameIsRefusedLikeDovecot() {
        #expect(throws: MailboxError.invalidName("a.b", reason: "Character not allowed in mailbox name: '.'")) { try account.create("a.b") }
    }

    @Test func deleteRules() throws {
        try account.create("Parent")
        try account.create("Parent/Child")
        #expect(throws: MailboxError.hasChildren("Parent")) { try account.delete("Parent") }
        #expect(throws: MailboxError.cannot("INBOX can't be deleted.")) { try account.delete("INBOX") }
        #expect(throws: MailboxError.nonexistent("Nope")) { try account.delete("Nope") }
        try account.delete("Parent/Child")
        try account.delete("Parent")
        #expect(try account.listFolders().map(\.name) == ["INBOX"])
        #expect(entries().filter { $0.hasPrefix(".") }.isEmpty)
    }

    @Test func uidValidityIsNewWhenAFolderIsRecreated() throws {
        try account.create("X")
        let first = try account.openFolder("X").snapshot().uidValidity
        try account.delete("X")
        try account.create("X")
        let second = try account.openFolder("X").snapshot().uidValidity
        #expect(first != 0 && second > first)
        // Dovecot's allocator files.
        #expect(entries().contains("dovecot-uidvalidity"))
        #expect(entries().contains { $0.hasPrefix("dovecot-uidvalidity.") })
    }

    @Test func renameMovesChildrenSubscriptionsAndSpecialUse() throws {
        try account.create("Work", specialUse: .archive)
        try account.create("Work/2025")
        try account.subscribe("Work/2025")
        let folder = try account.openFolder("Work/2025")
        let uid = try folder.append(Array("Subject: a\n\nx\n".utf8), flags: ["\\Seen"])
        try account.rename("Work", to: "Job")
        #expect(try account.listFolders().map(\.name) == ["INBOX", "Job", "Job/2025"])
        #expect(try account.subscriptions() == ["Job/2025"])
        #expect(try account.specialUses() == ["Job": .archive])
        let moved = try account.openFolder("Job/2025").snapshot()
        #expect(moved.messages.map(\.uid) == [uid])
        #expect(moved.messages[0].flags == ["\\Seen"])
        try account.create("Other")
        #expect(throws: MailboxError.alreadyExists("Other")) { try account.rename("Job", to: "Other") }
        #expect(throws: MailboxError.nonexistent("Gone")) { try account.rename("Gone", to: "New") }
        #expect(throws: MailboxError.self) { try account.rename("Job", to: "Job/Sub") }
    }

    @Test func renamingInboxMovesItsMessages() throws {
        let inbox = try account.openFolder("INBOX")
        _ = try inbox.append(Array("Subject: 1\n\n1\n".utf8))
        _ = try inbox.append(Array("Subject: 2\n\n2\n".utf8), flags: ["\\Flagged"])
        try account.rename("INBOX", to: "Old")
        #expect(inbox.snapshot().messages.isEmpty)
        let old = try account.openFolder("Old").snapshot()
        #expect(old.messages.count == 2)
        #expect(old.messages[1].flags == ["\\Flagged"])
        #expect(try account.exists("INBOX"))
    }

    @Test func subscriptionsFileIsDovecotVersion2() throws {
        try account.subscribe("INBOX")
        try account.subscribe("Entwürfe")
        try account.subscribe("Archive/2026")
        try account.subscribe("Entwürfe")
        let text = try String(contentsOfFile: root + "/subscriptions", encoding: .utf8)
        #expect(text == "V\t2\n\nINBOX\nEntw&APw-rfe\nArchive\t2026\n")
        try account.unsubscribe("Entwürfe")
        #expect(try account.subscriptions() == ["INBOX", "Archive/2026"])
        #expect(!FileManager.default.fileExists(atPath: root + "/subscriptions.lock"))
    }

    @Test func defaultFoldersAreIdempotent() throws {
        try account.create("Junk")  // exists already without special use
        try account.ensureDefaultFolders()
        try account.ensureDefaultFolders()
        let list = try account.listFolders()
        #expect(list.map(\.name) == ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"])
        #expect(list.first { $0.name == "Sent" }?.specialUse == .sent)
        #expect(list.first { $0.name == "Junk" }?.specialUse == .junk)
        let allSubscribed = list.allSatisfy { $0.isSubscribed }
        #expect(allSubscribed)
        // A use the user moved elsewhere is respected.
        try account.create("Papierkorb")
        try account.setSpecialUse(.trash, for: "Papierkorb")
        try account.delete("Trash")
        try account.ensureDefaultFolders()
        #expect(try !account.exists("Trash"))
        #expect(try account.specialUses()["Papierkorb"] == .trash)
    }

    @Test func storageUsedSumsSizesFromNames() throws {
        try account.create("A")
        _ = try account.openFolder("A").append(Array("12345\n".utf8))
        _ = try account.openFolder("INBOX").append(Array("abc\r\n".utf8))
        let used = try account.storageUsed()
        #expect(used.messages == 2)
        #expect(used.bytes == 6 + 4)
    }
}
