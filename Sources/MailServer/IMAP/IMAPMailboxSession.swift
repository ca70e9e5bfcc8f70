import IMAPCore
import IMAPServer
import MailCore
import MailStore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// One session's selected folder: the shared ``MaildirFolder`` index plus what this session has
/// been shown (`known`), so ``takeUpdate()`` reports each change by others exactly once and never
/// the session's own.
final class IMAPMailboxSession: IMAPSelectedMailbox, @unchecked Sendable {
    let folder: MaildirFolder
    let account: MaildirAccount
    let service: IMAPService
    private struct State {
        /// What this session has shown: UIDs and MODSEQs only (12 octets a message), so 10,000
        /// idle sessions on one folder do not hold 10,000 copies of its file names.
        var known: FolderVersions
        var dirty = false
        var token: Int?
    }

    private let state: NIOLockedValueBox<State>

    /// A session that has shown `shown` (the versions of the snapshot its SELECT answered from).
    init(folder: MaildirFolder, shown: FolderVersions, account: MaildirAccount, service: IMAPService,
         changed: @escaping @Sendable () -> Void) {
        self.folder = folder
        self.account = account
        self.service = service
        let state = NIOLockedValueBox(State(known: shown, dirty: true))
        self.state = state
        let token = service.hub.watch(folder.path) {
            state.withLockedValue { $0.dirty = true }
            changed()
        }
        state.withLockedValue { $0.token = token }
    }

    static func flags(_ m: MaildirMessage) -> MessageFlags {
        MessageFlags(uid: m.uid, flags: m.flags.map(IMAPFlag.init), modSeq: m.modSeq)
    }

    func takeUpdate() -> MailboxUpdate {
        guard state.withLockedValue({ s -> Bool in defer { s.dirty = false }; return s.dirty }) else { return MailboxUpdate() }
        let now = folder.versions()
        let (diff, keywordsChanged) = state.withLockedValue { s -> ((expunged: [UInt32], added: [UInt32], changed: [UInt32]), Bool) in
            let d = now.changes(since: s.known)
            let k = now.keywords != s.known.keywords
            s.known = now
            return (d, k)
        }
        let changed = diff.changed.isEmpty ? [] : folder.messages(diff.changed).map(Self.flags)
        return MailboxUpdate(expunged: diff.expunged, appended: diff.added, flags: changed,
                             keywords: keywordsChanged ? now.keywords.map(IMAPFlag.init) : nil,
                             highestModSeq: now.highestModSeq)
    }

    /// `true` when the session has shown `uid` (and not its expunge).
    private func isKnown(_ uid: UInt32) -> Bool {
        state.withLockedValue { s in Self.index(of: uid, in: s.known.uids) != nil }
    }

    private static func index(of uid: UInt32, in uids: [UInt32]) -> Int? {
        var lo = 0
        var hi = uids.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if uids[mid] < uid { lo = mid + 1 } else { hi = mid }
        }
        return lo < uids.count && uids[lo] == uid ? lo : nil
    }

    /// Records this session's own changes in what it has shown (so they are not announced back).
    private func learn(changed: [MaildirMessage], removed: [UInt32] = []) {
        state.withLockedValue { s in
            if !removed.isEmpty {
                let gone = Set(removed)
                var uids: [UInt32] = []
                var mods: [UInt64] = []
                uids.reserveCapacity(s.known.uids.count)
                mods.reserveCapacity(s.known.uids.count)
                for (u, m) in zip(s.known.uids, s.known.modSeqs) where !gone.contains(u) {
                    uids.append(u)
                    mods.append(m)
                }
                s.known.uids = uids
                s.known.modSeqs = mods
            }
            for c in changed {
                if let i = Self.index(of: c.uid, in: s.known.uids) { s.known.modSeqs[i] = c.modSeq }
                s.known.highestModSeq = max(s.known.highestModSeq, c.modSeq)
            }
        }
    }

    /// The session's messages among `uids`, as the folder knows them now.
    private func current(_ uids: [UInt32]) -> [MaildirMessage] {
        folder.messages(known(uids))
    }

    /// `uids` that the session has shown (one lock for all).
    private func known(_ uids: [UInt32]) -> [UInt32] {
        state.withLockedValue { s in uids.filter { Self.index(of: $0, in: s.known.uids) != nil } }
    }

    func load(_ uids: [UInt32], content: FetchedMessage.ContentNeed, cached: Bool, internalDates: Bool) async throws -> [FetchedMessage] {
        let records = current(uids)
        let folder = self.folder
        let cache = cached ? folder.cachedRecords(records.map(\.uid)) : [:]
        return try await blocking {
            var out: [FetchedMessage] = []
            out.reserveCapacity(records.count)
            var directories = MaildirFolder.Directories()
            for m in records {
                let record = cache[m.uid]
                var bytes: ByteBuffer?
                if content == .always || (content == .unlessCached && record == nil) {
                    // Read first: the read's fstat gives the internal date too.
                    do { bytes = Self.crlf(try folder.readMessage(uid: m.uid, directories: &directories)) } catch MailStore.MailboxError.messageGone {
                        continue
                    }
                }
                let date = internalDates ? ((try? folder.internalDate(uid: m.uid)) ?? 0) : 0
                let facts = MessageFacts(uid: m.uid, flags: m.flags.map(IMAPFlag.init), size: m.virtualSize,
                                         internalDate: IMAPDateTime(secondsSinceEpoch: date), modSeq: m.modSeq)
                out.append(FetchedMessage(facts: facts, content: bytes, cached: record))
            }
            return out
        }
    }

    func sizes(of uids: [UInt32]) -> [UInt32: Int] {
        folder.virtualSizes(known(uids))
    }

    func cache(_ records: [(uid: UInt32, record: [UInt8])]) {
        folder.cacheRecords(records)
    }

    func facts(of uid: UInt32) -> MessageFacts? {
        guard let m = current([uid]).first else { return nil }
        let date = (try? folder.internalDate(uid: uid)) ?? 0
        return MessageFacts(uid: uid, flags: m.flags.map(IMAPFlag.init), size: m.virtualSize,
                            internalDate: IMAPDateTime(secondsSinceEpoch: date), modSeq: m.modSeq)
    }

    /// Runs blocking store work on the server's thread pool; store errors become IMAP's.
    func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        do { return try await service.threadPool.runIfActive(work) } catch { throw IMAPService.map(error) }
    }

    /// The message with CRLF line ends, read here and now (call it on the thread pool); `nil` when it
    /// is gone (POP3 or another session removed it), an error for any other failure.
    func readContent(of uid: UInt32, directories: inout MaildirFolder.Directories) throws -> ByteBuffer? {
        do { return Self.crlf(try folder.readMessage(uid: uid, directories: &directories)) } catch MailStore.MailboxError.messageGone {
            return nil
        }
    }

    /// LF line ends (as Maildir stores them) to CRLF (what IMAP sends); CRLF stays. One pass: lines
    /// are found with `memchr` and copied with `memcpy` into a buffer sized for a bare LF every 16
    /// octets (mail lines are longer); a file with shorter lines is counted first and copied again.
    static func crlf(_ bytes: [UInt8]) -> ByteBuffer {
        bytes.withUnsafeBytes { raw -> ByteBuffer in
            guard raw.count > 0 else { return ByteBuffer() }
            if let out = crlf(raw, capacity: raw.count + raw.count / 16 + 2) { return out }
            return crlf(raw, capacity: raw.count + bareLineFeeds(raw))!
        }
    }

    private static func bareLineFeeds(_ raw: UnsafeRawBufferPointer) -> Int {
        let base = raw.baseAddress!
        let end = base + raw.count
        var bare = 0
        var p = base
        while p < end, let hit = memchr(p, 0x0A, end - p) {
            let lf = UnsafeRawPointer(hit)
            if lf == base || lf.load(fromByteOffset: -1, as: UInt8.self) != 0x0D { bare += 1 }
            p = lf + 1
        }
        return bare
    }

    /// The conversion into a buffer of `capacity` octets; `nil` when it does not fit.
    private static func crlf(_ raw: UnsafeRawBufferPointer, capacity: Int) -> ByteBuffer? {
        let base = raw.baseAddress!
        let end = base + raw.count
        var out = ByteBufferAllocator().buffer(capacity: capacity)
        var fits = true
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { target in
            let limit = target.baseAddress! + capacity
            var q = target.baseAddress!
            var start = base
            var p = base
            while p < end, let hit = memchr(p, 0x0A, end - p) {
                let lf = UnsafeRawPointer(hit)
                if lf == base || lf.load(fromByteOffset: -1, as: UInt8.self) != 0x0D {
                    let n = start.distance(to: lf)
                    guard q + n + 2 <= limit else { fits = false; return 0 }
                    memcpy(q, start, n)
                    q += n
                    q.storeBytes(of: 0x0D, as: UInt8.self)
                    (q + 1).storeBytes(of: 0x0A, as: UInt8.self)
                    q += 2
                    start = lf + 1
                }
                p = lf + 1
            }
            let n = start.distance(to: end)
            guard q + n <= limit else { fits = false; return 0 }
            memcpy(q, start, n)
            q += n
            return target.baseAddress!.distance(to: q)
        }
        return fits ? out : nil
    }

    func markSeen(_ uids: [UInt32]) async throws -> [MessageFlags] {
        let folder = self.folder
        let result = try await blocking { try folder.store(["\\Seen"], .add, uids: uids) }
        learn(changed: result.changed)
        if !result.changed.isEmpty { service.hub.post(folder.path) }
        return current(uids).map(Self.flags)
    }

    func search(_ request: SearchRequest) async throws -> (uids: [UInt32], highestModSeq: UInt64?) {
        let evaluator = MailboxSearch(session: self)
        return try await evaluator.run(request)
    }

    func sort(_ request: SearchRequest, by criteria: [SortCriterion]) async throws -> [UInt32] {
        try await MailboxSearch(session: self).sort(request, by: criteria)
    }

    func thread(_ request: SearchRequest, algorithm: String) async throws -> [ThreadNode] {
        try await MailboxSearch(session: self).thread(request, algorithm: algorithm)
    }

    func store(_ request: StoreRequest) async throws -> StoreOutcome {
        let folder = self.folder
        let m = request.modification
        let op: FlagOperation = switch m.operation {
        case .replace: .replace
        case .add: .add
        case .remove: .remove
        }
        let names = m.flags.map(\.name)
        let result = try await blocking { try folder.store(names, op, uids: request.uids, unchangedSince: m.unchangedSince) }
        learn(changed: result.changed)
        if !result.changed.isEmpty { service.hub.post(folder.path) }
        // Every message of the set is reported with its flags now (RFC 9051 §6.4.6), changed or not.
        let failed = Set(result.failedUnchangedSince)
        let gone = Set(result.gone)
        let updated = current(request.uids.filter { !failed.contains($0) && !gone.contains($0) }).map(Self.flags)
        return StoreOutcome(updated: updated, modified: result.failedUnchangedSince)
    }

    func copy(_ uids: [UInt32], to mailbox: String, move: Bool) async throws -> CopyOutcome {
        let folder = self.folder
        let account = self.account
        let (pairs, destination) = try await blocking { () throws -> ([UIDPair], MaildirFolder) in
            let target = try account.openFolder(mailbox)
            let pairs = move ? try folder.move(uids: uids, to: target) : try folder.copy(uids: uids, to: target)
            return (pairs, target)
        }
        if move { learn(changed: [], removed: pairs.map(\.source)) }
        service.hub.post(destination.path)
        if move, destination.path != folder.path { service.hub.post(folder.path) }
        return CopyOutcome(uidValidity: destination.snapshot().uidValidity, source: pairs.map(\.source),
                           destination: pairs.map(\.destination))
    }

    func expunge(_ uids: [UInt32]?) async throws -> [UInt32] {
        let folder = self.folder
        let shown = state.withLockedValue { $0.known.uids }
        let candidates = folder.messages(shown).filter { $0.flags.contains("\\Deleted") }.map(\.uid)
        let targets = uids.map { Set($0) }.map { only in candidates.filter { only.contains($0) } } ?? candidates
        guard !targets.isEmpty else { return [] }
        let removed = try await blocking { try folder.expunge(uids: targets) }
        learn(changed: [], removed: removed)
        if !removed.isEmpty { service.hub.post(folder.path) }
        return removed
    }

    func close() {
        if let token = state.withLockedValue({ s -> Int? in defer { s.token = nil }; return s.token }) {
            service.hub.cancel(folder.path, token)
        }
    }
}

/// An APPEND's message, spooled into the account's `tmp/` and then handed to the folder.
final class IMAPAppendFile: IMAPAppendSink, @unchecked Sendable {
    let account: MaildirAccount
    let user: String
    let mailbox: String
    let message: AppendMessage
    let service: IMAPService
    private let path: String
    private let fd = NIOLockedValueBox<Int32>(-1)

    private static let counter = NIOLockedValueBox(0)

    init(account: MaildirAccount, user: String, mailbox: String, message: AppendMessage, service: IMAPService) {
        self.account = account
        self.user = user
        self.mailbox = mailbox
        self.message = message
        self.service = service
        let n = Self.counter.withLockedValue { c -> Int in c += 1; return c }
        self.path = "\(account.root)/tmp/append.\(getpid()).\(n).\(time(nil))"
    }

    func write(_ bytes: ByteBuffer) async throws {
        let path = self.path
        let fd = self.fd
        try await service.threadPool.runIfActive {
            var descriptor = fd.withLockedValue { $0 }
            if descriptor < 0 {
                descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                guard descriptor >= 0 else { throw IMAPService.map(StoreError("open", path)) }
                fd.withLockedValue { $0 = descriptor }
            }
            try bytes.withUnsafeReadableBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = Glibc.write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw IMAPService.map(StoreError("write", path))
                    }
                    offset += n
                }
            }
        }
    }

    func commit() async throws -> (uidValidity: UInt32, uid: UInt32) {
        let path = self.path
        let account = self.account
        let mailbox = self.mailbox
        let flags = message.flags.map(\.name)
        let date = message.internalDate?.secondsSinceEpoch
        let fd = self.fd
        do {
            // RFC 9208 §4.2: an APPEND that would go over the limit fails with [OVERQUOTA].
            let (limit, used) = try await service.quota.state(of: user)
            if let limit, used + message.size > limit {
                await abort()
                throw IMAPCore.MailboxError.overQuota
            }
            let (folder, uid) = try await service.threadPool.runIfActive { () throws -> (MaildirFolder, UInt32) in
                let descriptor = fd.withLockedValue { d -> Int32 in defer { d = -1 }; return d }
                if descriptor >= 0 { Glibc.close(descriptor) } else {
                    // An empty message: nothing was written.
                    let d = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
                    if d >= 0 { Glibc.close(d) }
                }
                defer { unlink(path) }
                let folder = try account.openFolder(mailbox)
                let uid = try folder.append(contentsOf: path, flags: flags, internalDate: date)
                return (folder, uid)
            }
            service.hub.post(folder.path)
            service.quota.added(message.size, to: user)
            return (folder.snapshot().uidValidity, uid)
        } catch {
            throw IMAPService.map(error)
        }
    }

    func abort() async {
        let path = self.path
        let fd = self.fd
        _ = try? await service.threadPool.runIfActive {
            let descriptor = fd.withLockedValue { d -> Int32 in defer { d = -1 }; return d }
            if descriptor >= 0 { Glibc.close(descriptor) }
            unlink(path)
        }
    }
}
