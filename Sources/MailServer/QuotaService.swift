import Directory
import MailCore
import MailStore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SMTPCore

/// Storage limits (`swallow user quota`): the limit comes from the directory, the use from the
/// Maildir's file names (`S=`), cached for a few seconds so a burst of RCPTs costs one scan.
/// Enforced at RCPT (a user at or over the limit: `452 4.2.2`, or `552 5.2.2` with
/// `[limits] over_quota_permanent`) and at APPEND (`NO [OVERQUOTA]`, RFC 9208 §4.2).
final class QuotaService: Sendable {
    let directory: any UserDirectory
    let store: MaildirStore
    let threadPool: NIOThreadPool
    let permanent: Bool
    private let usage = NIOLockedValueBox<[String: (bytes: Int, at: NIODeadline)]>([:])
    private static let freshFor = TimeAmount.seconds(5)

    init(directory: any UserDirectory, store: MaildirStore, threadPool: NIOThreadPool, permanent: Bool) {
        self.directory = directory
        self.store = store
        self.threadPool = threadPool
        self.permanent = permanent
    }

    /// The Maildir of a canonical `local@domain` mailbox.
    func root(of mailbox: String) -> String? { store.path(ofAddress: mailbox) }

    /// Octets stored for `mailbox` (cached briefly).
    func used(_ mailbox: String) async throws -> Int {
        guard let root = root(of: mailbox) else { return 0 }
        let now = NIODeadline.now()
        if let hit = usage.withLockedValue({ $0[root] }), now - hit.at < Self.freshFor { return hit.bytes }
        let bytes = try await threadPool.runIfActive { try MaildirAccount(root: root).storageUsed().bytes }
        usage.withLockedValue { u in
            if u.count > 10_000 { u.removeAll(keepingCapacity: true) }
            u[root] = (bytes, now)
        }
        return bytes
    }

    /// Counts octets just stored (so the cached use does not lag behind a burst of appends).
    func added(_ bytes: Int, to mailbox: String) {
        guard let root = root(of: mailbox) else { return }
        usage.withLockedValue { u in if let hit = u[root] { u[root] = (hit.bytes + bytes, hit.at) } }
    }

    /// Limit and use of `mailbox`.
    func state(of mailbox: String) async throws -> (limit: Int?, used: Int) {
        guard let limit = try await directory.quota(of: mailbox) else { return (nil, 0) }
        return (limit, try await used(mailbox))
    }

    /// The RCPT reply for mailboxes at or over their limit, or `nil`.
    func refusal(for mailboxes: [String]) async -> SMTPReply? {
        for m in mailboxes {
            guard let (limit, used) = try? await state(of: m), let limit, used >= limit else { continue }
            return permanent ? SMTPReply(code: 552, .init(5, 2, 2), "Mailbox full: \(m) is over its storage limit")
                             : SMTPReply(code: 452, .init(4, 2, 2), "Mailbox full: \(m) is over its storage limit, try again later")
        }
        return nil
    }

    /// `true` when none of `mailboxes` has a quota (known without waiting).
    func knownUnlimited(_ mailboxes: [String]) -> Bool {
        mailboxes.allSatisfy { directory.cachedQuota(of: $0) == .some(nil) }
    }
}
