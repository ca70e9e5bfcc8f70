import Foundation
@testable import MailStore
import Testing

/// Hooks for checking against a real Dovecot (run by hand, see Sources/MailStore/README.md):
/// `SWALLOW_DOVECOT_WRITE=<dir>` makes an account there for `doveadm` to read;
/// `SWALLOW_DOVECOT_READ=<dir>` prints what Swallow reads from an account Dovecot wrote.
@Suite struct DovecotInteropTests {
    static let writeDir = ProcessInfo.processInfo.environment["SWALLOW_DOVECOT_WRITE"]
    static let readDir = ProcessInfo.processInfo.environment["SWALLOW_DOVECOT_READ"]

    @Test(.enabled(if: writeDir != nil)) func writeAccountForDovecot() throws {
        let account = MaildirAccount(root: Self.writeDir!)
        try account.ensureDefaultFolders()
        try account.create("Archive/2026")
        try account.create("Entwürfe")
        try account.subscribe("Archive/2026")
        try account.subscribe("Entwürfe")
        let inbox = try account.openFolder("INBOX")
        _ = try inbox.append(Array("Subject: one\r\n\r\nfirst\r\n".utf8), flags: ["\\Seen", "$Forwarded"])
        _ = try inbox.append(Array("Subject: two\r\n\r\nsecond\r\n".utf8), flags: ["\\Flagged", "Junk"], internalDate: 1_600_000_000)
        _ = try inbox.append(Array("Subject: three\r\n\r\nthird\r\n".utf8))
        _ = try inbox.expunge(uids: [3])
        _ = try inbox.copy(uids: [1, 2], to: try account.openFolder("Archive/2026"))
        _ = try account.openFolder("Entwürfe").append(Array("Subject: draft\n\nd\n".utf8), flags: ["\\Draft"])
    }

    @Test(.enabled(if: readDir != nil)) func readAccountDovecotWrote() throws {
        let account = MaildirAccount(root: Self.readDir!)
        for f in try account.listFolders() {
            print("folder \(f.name) subscribed=\(f.isSubscribed) children=\(f.hasChildren) exists=\(f.exists)")
            guard f.exists else { continue }
            let snap = try account.openFolder(f.name).snapshot()
            print("  uidvalidity=\(snap.uidValidity) uidnext=\(snap.nextUID) highestmodseq=\(snap.highestModSeq)")
            for m in snap.messages { print("  uid=\(m.uid) flags=\(m.flags) size=\(m.size) vsize=\(m.virtualSize)") }
        }
    }
}
