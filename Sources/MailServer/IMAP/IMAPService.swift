import Directory
import IMAPCore
import IMAPServer
import MailCore
import MailStore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SASL
#if canImport(Glibc)
import Glibc
#endif

/// Implements the IMAP server's delegate over the directory (logins through the shared
/// ``Authenticator``) and the Maildirs (`MailStore`'s shared folder indexes), with the
/// ``MailboxEventHub`` telling sessions about changes.
final class IMAPService: IMAPServerDelegate {
    let authenticator: Authenticator
    let store: MaildirStore
    let threadPool: NIOThreadPool
    let hub: MailboxEventHub
    let maxSessionsPerUser: Int
    let quota: QuotaService
    private let sessions = NIOLockedValueBox<[String: Int]>([:])

    init(authenticator: Authenticator, store: MaildirStore, threadPool: NIOThreadPool, hub: MailboxEventHub, quota: QuotaService,
         maxSessionsPerUser: Int) {
        self.quota = quota
        self.authenticator = authenticator
        self.store = store
        self.threadPool = threadPool
        self.hub = hub
        self.maxSessionsPerUser = maxSessionsPerUser
    }

    func authenticate(user: String, password: String, remoteIP: String) async -> Bool {
        await authenticator.verify(user: user, password: password, remoteIP: remoteIP)
    }

    func scramCredentials(user: String, remoteIP: String) async -> (credentials: SCRAMCredentials, userExists: Bool) {
        let found = await authenticator.scramCredentials(user: user)
        return (found.credentials, found.known)
    }

    /// The Maildir of `user` (an address; compared case-insensitively).
    func root(of user: String) throws(IMAPCore.MailboxError) -> String {
        guard let path = store.path(ofAddress: Authenticator.canonical(user)) else { throw .cannot("No mailbox for this login") }
        return path
    }

    func openAccount(user: String, remoteIP: String) async throws -> any IMAPAccount {
        let key = Authenticator.canonical(user)
        let root = try root(of: user)
        let admitted = sessions.withLockedValue { s -> Bool in
            guard s[key, default: 0] < maxSessionsPerUser else { return false }
            s[key, default: 0] += 1
            return true
        }
        guard admitted else { throw IMAPCore.MailboxError.limit("Maximum number of connections for this user exceeded") }
        let account = MaildirAccount(root: root)
        do {
            try await threadPool.runIfActive { try account.ensureDefaultFolders() }
        } catch {
            release(key)
            throw Self.map(error)
        }
        return IMAPAccountSession(account: account, user: key, service: self) { [weak self] in self?.release(key) }
    }

    private func release(_ key: String) {
        sessions.withLockedValue { s in
            s[key, default: 1] -= 1
            if s[key] == 0 { s[key] = nil }
        }
    }

    /// A folder changed on disk outside the shared index (local delivery, POP3): sync its index and
    /// tell the sessions watching it. Cheap when nobody watches.
    func folderChangedOnDisk(_ path: String) {
        guard hub.isWatched(path) else { return }
        let hub = self.hub
        threadPool.submit { state in
            guard state == .active else { return }
            if (try? MaildirFolder.open(path: path).sync()) != nil { hub.post(path) }
        }
    }

    /// Maps store errors to IMAP's (RFC 5530 codes).
    static func map(_ error: any Error) -> IMAPCore.MailboxError {
        if let e = error as? IMAPCore.MailboxError { return e }
        if let e = error as? MailStore.MailboxError {
            switch e {
            case .alreadyExists: return .alreadyExists
            case .nonexistent: return .nonexistent
            case .hasChildren: return .hasChildren
            case .invalidName(_, let reason): return .cannot(reason)
            case .cannot(let reason): return .cannot(reason)
            case .messageGone: return .expungeIssued
            case .tooManyKeywords: return .limit("Too many keywords in this mailbox (at most 26)")
            case .lockTimeout: return .inUse
            }
        }
        if let e = error as? StoreError, e.code == ENOSPC || e.code == EDQUOT { return .overQuota }
        return .unavailable
    }
}

/// One logged-in user's account.
final class IMAPAccountSession: IMAPAccount, @unchecked Sendable {
    let account: MaildirAccount
    /// The canonical `local@domain`.
    let user: String
    let service: IMAPService
    private let onClose: @Sendable () -> Void
    private let closed = NIOLockedValueBox(false)

    init(account: MaildirAccount, user: String, service: IMAPService, onClose: @escaping @Sendable () -> Void) {
        self.account = account
        self.user = user
        self.service = service
        self.onClose = onClose
    }

    private func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        do { return try await service.threadPool.runIfActive(work) } catch { throw IMAPService.map(error) }
    }

    func mailboxes() async throws -> [MailboxInfo] {
        let account = self.account
        return try await blocking {
            try account.listFolders().map {
                MailboxInfo(name: $0.name, specialUse: $0.specialUse?.rawValue, subscribed: $0.isSubscribed,
                            hasChildren: $0.hasChildren, exists: $0.exists)
            }
        }
    }

    func status(of mailboxes: [String]) async throws -> [String: MailboxStatus] {
        let account = self.account
        return try await blocking {
            var out: [String: MailboxStatus] = [:]
            for name in mailboxes {
                guard let folder = try? account.openFolder(name) else { continue }
                try folder.sync()
                out[name] = Self.status(folder.snapshot())
            }
            return out
        }
    }

    static func status(_ s: FolderSnapshot) -> MailboxStatus {
        var unseen = 0, deleted = 0
        var size: UInt64 = 0
        for m in s.messages {
            if !m.flags.contains("\\Seen") { unseen += 1 }
            if m.flags.contains("\\Deleted") { deleted += 1 }
            size += UInt64(m.virtualSize)
        }
        return MailboxStatus(messages: s.messages.count, uidNext: s.nextUID, uidValidity: s.uidValidity, unseen: unseen,
                             deleted: deleted, size: size, highestModSeq: s.highestModSeq)
    }

    func create(_ mailbox: String, specialUse: String?) async throws {
        let account = self.account
        let use = specialUse.flatMap(SpecialUse.init(rawValue:))
        if specialUse != nil, use == nil { throw IMAPCore.MailboxError.cannot("Unsupported special use") }
        try await blocking { try account.create(mailbox, specialUse: use) }
    }

    func delete(_ mailbox: String) async throws {
        let account = self.account
        try await blocking { try account.delete(mailbox) }
    }

    func rename(_ mailbox: String, to newName: String) async throws {
        let account = self.account
        try await blocking { try account.rename(mailbox, to: newName) }
        if mailbox == "INBOX" { service.hub.post(account.root) }
    }

    func subscribe(_ mailbox: String) async throws {
        let account = self.account
        try await blocking { try account.subscribe(mailbox) }
    }

    func unsubscribe(_ mailbox: String) async throws {
        let account = self.account
        try await blocking { try account.unsubscribe(mailbox) }
    }

    func select(_ mailbox: String, readOnly: Bool, qresync: SelectParameters.QResync?,
                changed: @escaping @Sendable () -> Void) async throws -> (any IMAPSelectedMailbox, SelectedMailboxInfo) {
        let account = self.account
        let folder = try await blocking { () throws -> MaildirFolder in
            let f = try account.openFolder(mailbox)
            try f.sync()
            return f
        }
        let (snapshot, versions) = folder.snapshotAndVersions()
        let session = IMAPMailboxSession(folder: folder, shown: versions, account: account, service: service, changed: changed)
        var firstUnseen: Int?
        for (i, m) in snapshot.messages.enumerated() where !m.flags.contains("\\Seen") {
            firstUnseen = i + 1
            break
        }
        var changedSince: [MessageFlags] = []
        if let q = qresync, q.uidValidity == snapshot.uidValidity {
            changedSince = snapshot.messages.filter { $0.modSeq > q.modSeq }.map(IMAPMailboxSession.flags)
        }
        let info = SelectedMailboxInfo(name: mailbox, uidValidity: snapshot.uidValidity, uidNext: snapshot.nextUID,
                                       highestModSeq: max(snapshot.highestModSeq, 1), uids: versions.uids,
                                       keywords: snapshot.keywords.map(IMAPFlag.init), firstUnseen: firstUnseen,
                                       changed: changedSince)
        return (session, info)
    }

    func appendSink(mailbox: String, message: AppendMessage) -> any IMAPAppendSink {
        IMAPAppendFile(account: account, user: user, mailbox: mailbox, message: message, service: service)
    }

    func quota() async throws -> QuotaUsage {
        do {
            let limit = try await service.quota.directory.quota(of: user)
            let used = try await service.quota.used(user)
            return QuotaUsage(usedBytes: UInt64(used), limitBytes: limit.map(UInt64.init))
        } catch {
            throw IMAPService.map(error)
        }
    }

    func close() async {
        let first = closed.withLockedValue { c -> Bool in
            defer { c = true }
            return !c
        }
        if first { onClose() }
    }
}
