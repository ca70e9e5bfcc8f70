#if canImport(Glibc)
import Glibc
#endif
import MailCore
import Synchronization

/// One Maildir folder (INBOX or a `.Name` folder) with its UIDs, flags and MODSEQs: the index every
/// IMAP session of this process shares.
///
/// Obtain it with ``open(path:)``: one object per folder path, so all sessions see one index; it is
/// thread-safe (one `Mutex` around the state; file I/O runs inside it, so call it from a thread pool,
/// not an event loop). Other processes (Dovecot, POP3's ``MaildirMaildrop``, mutt, delivery) may change
/// the folder at any time; ``sync()`` picks up their changes, and `dovecot-uidlist.lock` guards UID
/// assignment against them.
///
/// Every mutating call is durable before it returns: renamed/linked/unlinked files and their
/// directory are `fsync`ed, the uidlist is replaced atomically, MODSEQs are journalled with `fdatasync`.
public final class MaildirFolder: Sendable {
    /// The folder directory (holding `cur/`, `new/`, `tmp/`).
    public let path: String
    /// The account root (INBOX's directory), where `dovecot-uidvalidity` lives.
    let root: String
    private let state: Mutex<State>

    struct Entry {
        var uid: UInt32
        /// The name before `:` (the same string as the uidlist record's: one copy in memory).
        var base: String
        var inNew: Bool
        /// The name after `:`, as on disk (`nil`: no info part). A few octets: stored inline, so an
        /// entry holds no copy of its file name.
        var infoPart: String?
        var size: Int
        var virtualSize: Int
        var info: MaildirInfo
        var modSeq: UInt64

        init(uid: UInt32, base: String, inNew: Bool, name: String, size: Int, virtualSize: Int, info: MaildirInfo,
             modSeq: UInt64) {
            self.uid = uid
            self.base = base
            self.inNew = inNew
            self.size = size
            self.virtualSize = virtualSize
            self.info = info
            self.modSeq = modSeq
            self.name = name
        }

        /// The file name (`base`, then `:` and the info part when there is one). Setting it keeps
        /// `base` (a file keeps its base when renamed) and leaves `info` to the caller.
        var name: String {
            get { infoPart.map { base + ":" + $0 } ?? base }
            set {
                let colon = newValue.utf8.firstIndex(of: UInt8(ascii: ":"))
                infoPart = colon.map { String(newValue[newValue.index(after: $0)...]) }
            }
        }
    }

    struct State {
        var uidList: UIDList?
        var uidListStamp: FileStamp?
        var keywords: [String?] = []
        var keywordsStamp: FileStamp?
        var entries: [UInt32: Entry] = [:]
        var journal: ModSeqJournal?
        var dates: [UInt32: Int64] = [:]
        /// The last ``versions()`` handed out: returned again while nothing changed, so that the
        /// sessions idling on this folder share one copy of its UIDs and MODSEQs.
        var lastVersions: FolderVersions?
    }

    /// Opaque per-message records a protocol derives from a message's octets (IMAP keeps ENVELOPE and
    /// BODYSTRUCTURE in wire form here): in memory only, at most `cacheLimit` octets per folder (all
    /// dropped when full), gone with the folder object. A UID's octets never change, so a record
    /// never goes stale.
    private let records = Mutex<(bytes: Int, byUID: [UInt32: [UInt8]])>((0, [:]))
    static let cacheLimit = 32 << 20

    /// The records of `uids` that are cached.
    public func cachedRecords(_ uids: [UInt32]) -> [UInt32: [UInt8]] {
        records.withLock { r in
            var out: [UInt32: [UInt8]] = [:]
            for u in uids { if let v = r.byUID[u] { out[u] = v } }
            return out
        }
    }

    /// Keeps records (see ``cachedRecords(_:)``).
    public func cacheRecords(_ new: [(uid: UInt32, record: [UInt8])]) {
        records.withLock { r in
            for (u, v) in new {
                if r.bytes + v.count > Self.cacheLimit { r = (0, [:]) }
                if r.byUID.updateValue(v, forKey: u) == nil { r.bytes += v.count }
            }
        }
    }

    private struct WeakFolder { weak var folder: MaildirFolder? }
    private static let cache = Mutex<[String: WeakFolder]>([:])

    /// The shared object for the folder at `path` (created and synced on first use).
    /// - Throws: ``MailboxError/nonexistent(_:)`` when `path` is not a Maildir.
    public static func open(path: String) throws -> MaildirFolder {
        if let f = cache.withLock({ $0[path]?.folder }) { return f }
        let made = try MaildirFolder(path: path)
        return cache.withLock { cache in
            if let f = cache[path]?.folder { return f }
            if cache.count > 10_000 { cache = cache.filter { $0.value.folder != nil } }
            cache[path] = WeakFolder(folder: made)
            return made
        }
    }

    /// Forgets the shared object for `path` (the folder was deleted or renamed).
    static func evict(path: String) {
        _ = cache.withLock { $0.removeValue(forKey: path) }
    }

    private init(path: String) throws {
        self.path = path
        let last = path.split(separator: "/").last.map(String.init) ?? ""
        root = last.hasPrefix(".") ? parentDirectory(of: path) : path
        guard POSIX.exists(path + "/cur") || !last.hasPrefix(".") else { throw MailboxError.nonexistent(path) }
        if !last.hasPrefix(".") { try MaildirStore.ensureMaildir(at: path) }
        for sub in ["cur", "new", "tmp"] where !POSIX.exists(path + "/" + sub) { _ = try POSIX.mkdir(path + "/" + sub) }
        state = Mutex(State())
        _ = try sync()
    }

    // MARK: Reading

    /// The folder as the index knows it now (no disk access).
    public func snapshot() -> FolderSnapshot {
        state.withLock { s in Self.snapshot(s, path: path) }
    }

    /// The messages of `uids` that exist, in the order given (no disk access).
    public func messages(_ uids: [UInt32]) -> [MaildirMessage] {
        state.withLock { s in uids.compactMap { s.entries[$0].map { Self.message($0, s, path: path) } } }
    }

    /// RFC822.SIZE (octets with CRLF line ends) of each of `uids` that exists (no disk access).
    public func virtualSizes(_ uids: [UInt32]) -> [UInt32: Int] {
        state.withLock { s in
            var out: [UInt32: Int] = [:]
            out.reserveCapacity(uids.count)
            for u in uids { if let e = s.entries[u] { out[u] = e.virtualSize } }
            return out
        }
    }

    /// UIDs and MODSEQs, ascending UID, with UIDVALIDITY, HIGHESTMODSEQ and the keywords: what a
    /// session needs to tell what changed since it last looked, without the file names (no disk access).
    ///
    /// While the folder does not change, every call returns the same arrays (copy-on-write storage
    /// shared by all the sessions that keep them).
    public func versions() -> FolderVersions {
        state.withLock { s in Self.versions(&s) }
    }

    /// ``snapshot()`` and ``versions()`` of one moment (SELECT answers from the first and keeps the
    /// second).
    public func snapshotAndVersions() -> (FolderSnapshot, FolderVersions) {
        state.withLock { s in (Self.snapshot(s, path: path), Self.versions(&s)) }
    }

    private static func versions(_ s: inout State) -> FolderVersions {
        let sorted = s.entries.values.sorted { $0.uid < $1.uid }
        let fresh = FolderVersions(uidValidity: s.uidList?.uidValidity ?? 0, highestModSeq: s.journal?.highest ?? 0,
                                   uids: sorted.map(\.uid), modSeqs: sorted.map(\.modSeq), keywords: s.keywords.compactMap { $0 })
        if let last = s.lastVersions, last == fresh { return last }
        s.lastVersions = fresh
        return fresh
    }

    private static func snapshot(_ s: State, path: String) -> FolderSnapshot {
        let messages = s.entries.values.sorted { $0.uid < $1.uid }.map { message($0, s, path: path) }
        return FolderSnapshot(uidValidity: s.uidList?.uidValidity ?? 0, nextUID: s.uidList?.nextUID ?? 1,
                              highestModSeq: s.journal?.highest ?? 0, messages: messages,
                              keywords: s.keywords.compactMap { $0 })
    }

    private static func message(_ e: Entry, _ s: State, path: String) -> MaildirMessage {
        MaildirMessage(uid: e.uid, flags: e.info.flags(keywords: s.keywords), modSeq: e.modSeq, size: e.size,
                       virtualSize: e.virtualSize, path: path + (e.inNew ? "/new/" : "/cur/") + e.name)
    }

    /// Opens message `uid` for reading (the caller closes the descriptor). Follows a rename by another
    /// program (flags changed); never a symbolic link, FIFO or device.
    /// - Throws: ``MailboxError/messageGone(uid:)`` when the file was deleted (e.g. by POP3).
    public func openMessage(uid: UInt32) throws -> Int32 {
        guard let p = state.withLock({ s in s.entries[uid].map { "\(path)/\($0.inNew ? "new" : "cur")/\($0.name)" } }) else {
            throw MailboxError.messageGone(uid: uid)
        }
        do {
            return try POSIX.openMessage(p)
        } catch let e as StoreError where e.code == ENOENT {
            guard let current = try state.withLock({ s in try relocate(uid, &s) }) else { throw MailboxError.messageGone(uid: uid) }
            do { return try POSIX.openMessage(current) } catch let e as StoreError where e.code == ENOENT {
                throw MailboxError.messageGone(uid: uid)
            }
        }
    }

    /// The whole stored message (LF line ends). - Throws: ``MailboxError/messageGone(uid:)``.
    public func readMessage(uid: UInt32) throws -> [UInt8] {
        var single = Directories(batch: false)
        return try readMessage(uid: uid, directories: &single)
    }

    /// `cur/` and `new/` opened once for a run of reads (``readMessage(uid:directories:)``), so that
    /// each message is opened relative to its directory, not by walking its whole path. Closed by
    /// ``close()`` or when the value goes away.
    public struct Directories: ~Copyable {
        fileprivate var cur: Int32 = -1
        fileprivate var new: Int32 = -1
        /// `false`: nothing is kept open, each message is opened by its path (for one read).
        fileprivate let batch: Bool
        public init() { batch = true }
        fileprivate init(batch: Bool) { self.batch = batch }
        public mutating func close() {
            if cur >= 0 { POSIX.close(cur) }
            if new >= 0 { POSIX.close(new) }
            cur = -1
            new = -1
        }
        deinit {
            if cur >= 0 { POSIX.close(cur) }
            if new >= 0 { POSIX.close(new) }
        }
    }

    /// The whole stored message (LF line ends), read with `directories`: one `openat`, one `fstat`
    /// (its mtime is kept as the internal date, so INTERNALDATE costs nothing more), one `read` of
    /// its size into an uninitialised array (Maildir files never change once delivered). Follows a
    /// rename by another program. - Throws: ``MailboxError/messageGone(uid:)``.
    public func readMessage(uid: UInt32, directories: inout Directories) throws -> [UInt8] {
        guard let (inNew, name) = state.withLock({ s in s.entries[uid].map { ($0.inNew, $0.name) } }) else {
            throw MailboxError.messageGone(uid: uid)
        }
        func directory(_ inNew: Bool) throws -> Int32 {
            guard directories.batch else { return AT_FDCWD }
            if inNew {
                if directories.new < 0 { directories.new = try POSIX.open(path + "/new", O_RDONLY | O_DIRECTORY) }
                return directories.new
            }
            if directories.cur < 0 { directories.cur = try POSIX.open(path + "/cur", O_RDONLY | O_DIRECTORY) }
            return directories.cur
        }
        func open(_ inNew: Bool, _ name: String) throws -> (Int32, stat)? {
            let full = path + (inNew ? "/new/" : "/cur/") + name
            return try POSIX.openMessageWithStat(in: try directory(inNew), directories.batch ? name : full, path: full)
        }
        var opened = try open(inNew, name)
        if opened == nil {
            // Renamed (flags changed by another program) or gone: look again.
            guard let (again, current) = try state.withLock({ s in try relocated(uid, &s) }) else { throw MailboxError.messageGone(uid: uid) }
            opened = try open(again, current)
        }
        guard let (fd, st) = opened else { throw MailboxError.messageGone(uid: uid) }
        defer { POSIX.close(fd) }
        let date = Int64(st.st_mtim.tv_sec)
        state.withLock { $0.dates[uid] = date }
        return try POSIX.readWhole(fd, size: Int(st.st_size), path: "\(self.path)/\(name)")
    }

    /// The internal date (seconds since 1970): the file's mtime (APPEND sets it). One `stat` the
    /// first time (none after ``readMessage(uid:)``), cached after.
    public func internalDate(uid: UInt32) throws -> Int64 {
        if let d = state.withLock({ $0.dates[uid] }) { return d }
        let fd = try openMessage(uid: uid)
        defer { POSIX.close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw StoreError("fstat", path) }
        let date = Int64(st.st_mtim.tv_sec)
        state.withLock { $0.dates[uid] = date }
        return date
    }

    /// Where `uid`'s file is now (re-reading `new/` and `cur/`), updating the entry; `nil` if gone.
    private func relocate(_ uid: UInt32, _ s: inout State) throws -> String? {
        try relocated(uid, &s).map { path + ($0.inNew ? "/new/" : "/cur/") + $0.name }
    }

    /// ``relocate(_:_:)`` as (in `new/`, file name).
    private func relocated(_ uid: UInt32, _ s: inout State) throws -> (inNew: Bool, name: String)? {
        guard let e = s.entries[uid] else { return nil }
        let scan = try scanFiles()
        guard let (inNew, name) = scan[e.base] else { return nil }
        s.entries[uid]!.inNew = inNew
        s.entries[uid]!.name = name
        return (inNew, name)
    }

    // MARK: Sync

    /// Reads `new/` and `cur/` (no `stat` per file when names carry `S=`/`W=`), assigns UIDs in
    /// delivery order to files the uidlist lacks, moves files from `new/` to `cur/` (adding `:2,`), and
    /// reports what changed since the last sync of this shared index: new files, files that vanished
    /// (POP3 DELE, another server's EXPUNGE) and flags changed by other programs, each with a new MODSEQ.
    @discardableResult
    public func sync() throws -> FolderChanges {
        try state.withLock { s in try syncLocked(&s) }
    }

    private func syncLocked(_ s: inout State) throws -> FolderChanges {
        var changes = FolderChanges()
        var scan = try scanFiles()
        try reloadKeywords(&s)
        // The uidlist, when another process changed it (or at first).
        let stamp = FileStamp(path + "/dovecot-uidlist")
        if stamp == nil || stamp != s.uidListStamp || s.uidList == nil {
            let fresh = try readFile(path + "/dovecot-uidlist").flatMap(UIDList.parse)
            if let fresh, let old = s.uidList, fresh.uidValidity != old.uidValidity {
                changes.uidValidityChanged = true
                changes.expunged = s.entries.keys.sorted()
                s.entries = [:]
                s.dates = [:]
                s.journal = nil
            }
            s.uidList = fresh
            s.uidListStamp = stamp
        }
        // Files without a UID: take the lock, read the newest uidlist and the directory again, assign.
        var unassigned: [String] = []
        if scan.count != s.entries.count || s.entries.values.contains(where: { scan[$0.base] == nil }) {
            let assigned = Set(s.entries.values.map(\.base))
            unassigned = scan.keys.filter { !assigned.contains($0) }
        }
        if !unassigned.isEmpty, let list = s.uidList {
            let known = Set(list.records.map(\.baseName))
            unassigned.removeAll { known.contains($0) }
        }
        if !unassigned.isEmpty || s.uidList == nil {
            let lock = try DotLock(protecting: path + "/dovecot-uidlist")
            scan = try scanFiles()
            var list: UIDList
            if let fresh = try readFile(path + "/dovecot-uidlist").flatMap(UIDList.parse) {
                list = fresh
                if let old = s.uidList, old.uidValidity != fresh.uidValidity, !s.entries.isEmpty {
                    changes.uidValidityChanged = true
                    changes.expunged = s.entries.keys.sorted()
                    s.entries = [:]
                        s.journal = nil
                }
            } else {
                list = UIDList(uidValidity: try UIDValidityAllocator.next(root: root), guid: Self.newGUID())
                if s.uidList != nil {
                    changes.uidValidityChanged = true
                    changes.expunged = s.entries.keys.sorted()
                    s.entries = [:]
                        s.journal = nil
                }
            }
            let known = Set(list.records.map(\.baseName))
            // Delivery order; each name's key computed once.
            var keyed: [(key: (Int, Int), base: String)] = scan.keys.filter { !known.contains($0) }
                .map { (MaildirMaildrop.orderKey($0), $0) }
            keyed.sort { a, b in
                if a.key.0 != b.key.0 { return a.key.0 < b.key.0 }
                if a.key.1 != b.key.1 { return a.key.1 < b.key.1 }
                return a.base < b.base
            }
            let missing = keyed.map(\.base)
            // Records whose file is gone are dropped (we hold the lock: no save is half done).
            list.records.removeAll { scan[$0.baseName] == nil }
            for base in missing {
                let (inNew, name) = scan[base]!
                let parsed = MaildirFileName(name)
                var ext: [String] = []
                if parsed.size == nil || parsed.virtualSize == nil {
                    guard let sizes = try? Self.measure("\(path)/\(inNew ? "new" : "cur")/\(name)") else { continue }
                    if parsed.size == nil { ext.append("S\(sizes.size)") }
                    if parsed.virtualSize == nil { ext.append("W\(sizes.virtualSize)") }
                }
                list.records.append(.init(uid: list.nextUID, extensions: ext, baseName: base))
                list.nextUID += 1
            }
            try lock.replace(with: list.encoded())
            s.uidList = list
            s.uidListStamp = FileStamp(path + "/dovecot-uidlist")
        }
        guard let list = s.uidList else { preconditionFailure("MaildirFolder.sync: no uidlist after assignment") }
        if s.journal == nil { s.journal = ModSeqJournal(folder: path, uidValidity: list.uidValidity) }
        var journal = s.journal!
        defer { s.journal = journal }
        let recovering = journal.damaged
        let recoveryModSeq: UInt64? = try recovering ? journal.next() : nil

        // Files that vanished: read the directories once more before believing it (a concurrent
        // rename can hide an entry from one readdir).
        var vanished = s.entries.values.filter { scan[$0.base] == nil }.map(\.uid)
        if !vanished.isEmpty {
            for (base, value) in try scanFiles() where scan[base] == nil { scan[base] = value }
            vanished = s.entries.values.filter { scan[$0.base] == nil }.map(\.uid)
        }
        var expungedNow: [(uid: UInt32, modSeq: UInt64)] = []
        if !vanished.isEmpty {
            let m = try journal.next()
            for uid in vanished.sorted() {
                s.entries[uid] = nil
                s.dates[uid] = nil
                changes.expunged.append(uid)
                expungedNow.append((uid, m))
            }
        }
        // New and changed messages.
        var journalled: [(uid: UInt32, entry: ModSeqJournal.Entry)] = []
        var moves: [(UInt32, String, String)] = []
        var addedUIDs: [UInt32] = [], changedUIDs: [UInt32] = []
        for record in list.records {
            guard let (inNew, name) = scan[record.baseName] else { continue }
            let parsed = MaildirFileName(name)
            let info = MaildirInfo(info: parsed.info)
            if var e = s.entries[record.uid] {
                e.inNew = inNew
                e.name = name
                if e.info != info || recovering {
                    e.info = info
                    e.modSeq = try recoveryModSeq ?? journal.next()
                    journalled.append((e.uid, .init(modSeq: e.modSeq, letters: info.letters)))
                    changedUIDs.append(e.uid)
                }
                s.entries[record.uid] = e
            } else {
                var size = parsed.size ?? record.extensionValue("S").flatMap { Int($0) }
                var vsize = parsed.virtualSize ?? record.extensionValue("W").flatMap { Int($0) }
                if size == nil || vsize == nil {
                    guard let m = try? Self.measure("\(path)/\(inNew ? "new" : "cur")/\(name)") else { continue }
                    size = size ?? m.size
                    vsize = vsize ?? m.virtualSize
                }
                var modSeq: UInt64
                if let j = journal.entries[record.uid], j.letters == info.letters, !recovering {
                    modSeq = j.modSeq
                } else {
                    modSeq = try recoveryModSeq ?? journal.next()
                    journalled.append((record.uid, .init(modSeq: modSeq, letters: info.letters)))
                }
                let e = Entry(uid: record.uid, base: record.baseName, inNew: inNew, name: name, size: size!,
                              virtualSize: vsize!, info: info, modSeq: modSeq)
                s.entries[record.uid] = e
                addedUIDs.append(e.uid)
            }
            if inNew { moves.append((record.uid, name, record.baseName + (parsed.info.map { ":" + $0 } ?? ":2,"))) }
        }
        // new/ → cur/, as Dovecot does once a session has seen the messages.
        var moved = false
        for (uid, from, to) in moves {
            if Glibc.rename("\(path)/new/\(from)", "\(path)/cur/\(to)") == 0 {
                s.entries[uid]?.inNew = false
                s.entries[uid]?.name = to
                moved = true
            }  // ENOENT: another program moved it; the next sync finds it
        }
        if moved {
            try MaildirStore.directorySync.sync(path + "/cur")
            try MaildirStore.directorySync.sync(path + "/new")
        }
        if recovering {
            let all = s.entries.values.map { (uid: $0.uid, entry: ModSeqJournal.Entry(modSeq: $0.modSeq, letters: $0.info.letters)) }
            try journal.record(all, expunged: [])
            try journal.rewrite()
        } else {
            try journal.record(journalled, expunged: expungedNow)
        }
        changes.added = addedUIDs.sorted().compactMap { s.entries[$0].map { Self.message($0, s, path: path) } }
        changes.flagsChanged = changedUIDs.sorted().compactMap { s.entries[$0].map { Self.message($0, s, path: path) } }
        changes.expunged.sort()
        if changes.uidValidityChanged {
            changes.flagsChanged = []
        }
        return changes
    }

    /// `base → (in new/, file name)` for every message file in `new/` and `cur/` (`cur/` wins).
    private func scanFiles() throws -> [String: (Bool, String)] {
        var out: [String: (Bool, String)] = [:]
        for name in try MaildirMaildrop.names(in: path + "/new") {
            out[String(MaildirFileName(name).base)] = (true, name)
        }
        for name in try MaildirMaildrop.names(in: path + "/cur") {
            out[String(MaildirFileName(name).base)] = (false, name)
        }
        return out
    }

    private func reloadKeywords(_ s: inout State) throws {
        let stamp = FileStamp(path + "/dovecot-keywords")
        guard stamp != s.keywordsStamp || stamp == nil else { return }
        s.keywords = try readFile(path + "/dovecot-keywords").map(KeywordsFile.parse) ?? []
        s.keywordsStamp = stamp
    }

    /// The info letter of each keyword in `names`, adding missing ones to `dovecot-keywords` (locked).
    private func keywordLetters(_ names: [String], _ s: inout State) throws -> [String: UInt8] {
        func lookup(_ k: [String?]) -> [String: UInt8] {
            var out: [String: UInt8] = [:]
            for (i, n) in k.enumerated() { if let n { out[n.lowercased()] = UInt8(ascii: "a") + UInt8(i) } }
            return out
        }
        var map = lookup(s.keywords)
        let missing = names.filter { map[$0.lowercased()] == nil }
        guard !missing.isEmpty else { return map }
        let lock = try DotLock(protecting: path + "/dovecot-keywords")
        var keywords = try readFile(path + "/dovecot-keywords").map(KeywordsFile.parse) ?? []
        map = lookup(keywords)
        for name in missing where map[name.lowercased()] == nil {
            guard Self.isValidKeyword(name) else { throw MailboxError.cannot("Invalid keyword: \(name)") }
            if let free = keywords.firstIndex(where: { $0 == nil }) {
                keywords[free] = name
            } else {
                guard keywords.count < 26 else { lock.release(); throw MailboxError.tooManyKeywords }
                keywords.append(name)
            }
            map = lookup(keywords)
        }
        try lock.replace(with: KeywordsFile.encode(keywords))
        s.keywords = keywords
        s.keywordsStamp = FileStamp(path + "/dovecot-keywords")
        return map
    }

    /// RFC 3501 `flag-keyword` = atom: no controls, space, `(){%*"\]`.
    static func isValidKeyword(_ k: String) -> Bool {
        !k.isEmpty && k.utf8.count <= 128 && k.utf8.allSatisfy { b in
            b > 0x20 && b < 0x7F && !"(){%*\"\\]".utf8.contains(b)
        }
    }

    // MARK: Changing flags

    /// Sets, adds or removes `flags` on `uids` (system flags as `\Seen`…, keywords as `$Forwarded`…;
    /// `\Recent` is ignored). With `unchangedSince`, a message whose MODSEQ is higher is left alone and
    /// reported (RFC 7162 §3.1.3). Files are renamed in `cur/`, then one directory `fsync` covers the
    /// batch; each changed message gets a new MODSEQ.
    public func store(_ flags: [String], _ operation: FlagOperation, uids: [UInt32], unchangedSince: UInt64? = nil) throws -> StoreResult {
        try state.withLock { s in
            try reloadKeywords(&s)
            let keywordNames = flags.filter { !$0.hasPrefix("\\") }
            let letters = try operation == .remove ? [:] : keywordLetters(keywordNames, &s)
            var result = StoreResult(changed: [], failedUnchangedSince: [], gone: [])
            var renamed: [(UInt32, MaildirInfo, String)] = []
            var touchedNew = false
            var scan: [String: (Bool, String)]?
            for uid in uids {
                guard var e = s.entries[uid] else { result.gone.append(uid); continue }
                if let limit = unchangedSince, e.modSeq > limit { result.failedUnchangedSince.append(uid); continue }
                guard e.info.foreign == nil else { continue }
                let current = e.info.flags(keywords: s.keywords)
                var target: [String]
                switch operation {
                case .replace: target = flags
                case .add: target = current + flags
                case .remove:
                    let drop = Set(flags.map { $0.lowercased() })
                    target = current.filter { !drop.contains($0.lowercased()) }
                }
                let info = try e.info.replacingFlags(with: target, keywords: s.keywords) { name in
                    guard let l = letters[name.lowercased()] else { throw MailboxError.tooManyKeywords }
                    return l
                }
                guard info != e.info else { continue }
                let newName = e.base + info.suffix
                var from = "\(path)/\(e.inNew ? "new" : "cur")/\(e.name)"
                if Glibc.rename(from, "\(path)/cur/\(newName)") != 0 {
                    guard errno == ENOENT else { throw StoreError("rename", from) }
                    if scan == nil { scan = try scanFiles() }
                    guard let (inNew, name) = scan![e.base] else { result.gone.append(uid); continue }
                    e.inNew = inNew
                    e.name = name
                    let actual = MaildirInfo(info: MaildirFileName(name).info)
                    var redo = actual
                    if actual != e.info {  // changed by another program meanwhile: apply to what it is now
                        e.info = actual
                        redo = try actual.replacingFlags(with: Self.apply(operation, flags, to: actual.flags(keywords: s.keywords)),
                                                     keywords: s.keywords) { name in
                            guard let l = letters[name.lowercased()] else { throw MailboxError.tooManyKeywords }
                            return l
                        }
                    } else {
                        redo = info
                    }
                    from = "\(path)/\(inNew ? "new" : "cur")/\(name)"
                    guard Glibc.rename(from, "\(path)/cur/\(e.base + redo.suffix)") == 0 else {
                        if errno == ENOENT { result.gone.append(uid); continue }
                        throw StoreError("rename", from)
                    }
                    if e.inNew { touchedNew = true }
                    renamed.append((uid, redo, e.base + redo.suffix))
                    s.entries[uid] = e
                    continue
                }
                if e.inNew { touchedNew = true }
                renamed.append((uid, info, newName))
            }
            guard !renamed.isEmpty else { return result }
            try MaildirStore.directorySync.sync(path + "/cur")
            if touchedNew { try MaildirStore.directorySync.sync(path + "/new") }
            var journal = s.journal!
            defer { s.journal = journal }
            var journalled: [(uid: UInt32, entry: ModSeqJournal.Entry)] = []
            for (uid, info, name) in renamed {
                s.entries[uid]!.info = info
                s.entries[uid]!.name = name
                s.entries[uid]!.inNew = false
                s.entries[uid]!.modSeq = try journal.next()
                journalled.append((uid, .init(modSeq: s.entries[uid]!.modSeq, letters: info.letters)))
                result.changed.append(Self.message(s.entries[uid]!, s, path: path))
            }
            try journal.record(journalled, expunged: [])
            return result
        }
    }

    private static func apply(_ op: FlagOperation, _ flags: [String], to current: [String]) -> [String] {
        switch op {
        case .replace: return flags
        case .add: return current + flags
        case .remove:
            let drop = Set(flags.map { $0.lowercased() })
            return current.filter { !drop.contains($0.lowercased()) }
        }
    }

    // MARK: Expunge

    /// Removes `uids` (unlink, directory `fsync`, uidlist rewrite). Returns the UIDs that were removed
    /// (a UID already gone is not reported again).
    @discardableResult
    public func expunge(uids: [UInt32]) throws -> [UInt32] {
        try state.withLock { s in
            var removed: [UInt32] = []
            var dirs = Set<String>()
            var scan: [String: (Bool, String)]?
            for uid in uids.sorted() {
                guard let e = s.entries[uid] else { continue }
                let sub = e.inNew ? "new" : "cur"
                if Glibc.unlink("\(path)/\(sub)/\(e.name)") != 0 {
                    guard errno == ENOENT else { throw StoreError("unlink", "\(path)/\(sub)/\(e.name)") }
                    if scan == nil { scan = try scanFiles() }
                    if let (inNew, name) = scan![e.base] {
                        let p = "\(path)/\(inNew ? "new" : "cur")/\(name)"
                        if Glibc.unlink(p) != 0 && errno != ENOENT { throw StoreError("unlink", p) }
                        dirs.insert(inNew ? "new" : "cur")
                    }
                } else {
                    dirs.insert(sub)
                }
                removed.append(uid)
            }
            guard !removed.isEmpty else { return [] }
            for d in dirs { try MaildirStore.directorySync.sync("\(path)/\(d)") }
            let gone = Set(removed.compactMap { s.entries[$0]?.base })
            try rewriteUIDList(&s) { $0.records.removeAll { gone.contains($0.baseName) } }
            var journal = s.journal!
            defer { s.journal = journal }
            let m = try journal.next()
            for uid in removed {
                s.entries[uid] = nil
                s.dates[uid] = nil
            }
            try journal.record([], expunged: removed.map { ($0, m) })
            return removed
        }
    }

    /// Re-reads the uidlist under its lock, lets `change` edit it, and replaces it.
    private func rewriteUIDList(_ s: inout State, _ change: (inout UIDList) throws -> Void) throws {
        let lock = try DotLock(protecting: path + "/dovecot-uidlist")
        guard var list = try readFile(path + "/dovecot-uidlist").flatMap(UIDList.parse) ?? s.uidList else {
            lock.release()
            return
        }
        try change(&list)
        try lock.replace(with: list.encoded())
        s.uidList = list
        s.uidListStamp = FileStamp(path + "/dovecot-uidlist")
    }

    // MARK: Append, copy, move

    /// A file ready to enter `cur/`: how to make it at a path, its base name, info and sizes.
    struct Incoming {
        var place: (String) throws -> Void
        var base: String
        var info: MaildirInfo
        var size: Int
        var virtualSize: Int
        var flags: [String]
        var internalDate: Int64?
    }

    /// Appends a message given as bytes with LF or CRLF line ends (stored with LF, exactly otherwise).
    /// - Parameters:
    ///   - flags: its initial flags.
    ///   - internalDate: seconds since 1970 (the file's mtime); `nil` = now.
    /// - Returns: the new UID.
    public func append(_ content: [UInt8], flags: [String] = [], internalDate: Int64? = nil) throws -> UInt32 {
        try content.withUnsafeBytes { raw in try appendWriting(flags: flags, internalDate: internalDate) { fd, tmp, stored, lines in
            var last: UInt8?
            try MaildirStore.writeConverted(raw, fd: fd, path: tmp, stored: &stored, lines: &lines, last: &last)
        } }
    }

    /// Appends the message in the file at `source` (LF or CRLF line ends; stored with LF).
    public func append(contentsOf source: String, flags: [String] = [], internalDate: Int64? = nil) throws -> UInt32 {
        try appendWriting(flags: flags, internalDate: internalDate) { fd, tmp, stored, lines in
            let rfd = try POSIX.open(source, O_RDONLY)
            defer { POSIX.close(rfd) }
            var buf = [UInt8](repeating: 0, count: 1 << 16)
            var last: UInt8?
            while true {
                let n = buf.withUnsafeMutableBytes { read(rfd, $0.baseAddress!, $0.count) }
                if n < 0 { if errno == EINTR { continue }; throw StoreError("read", source) }
                if n == 0 { break }
                try buf.withUnsafeBytes { raw in
                    try MaildirStore.writeConverted(UnsafeRawBufferPointer(rebasing: raw[0..<n]), fd: fd, path: tmp,
                                                    stored: &stored, lines: &lines, last: &last)
                }
            }
        }
    }

    private func appendWriting(flags: [String], internalDate: Int64?,
                               _ write: (Int32, String, inout Int, inout Int) throws -> Void) throws -> UInt32 {
        let unique = Self.uniqueName()
        let tmp = "\(path)/tmp/\(unique)"
        let fd = try POSIX.open(tmp, O_WRONLY | O_CREAT | O_EXCL)
        var stored = 0, lines = 0
        do {
            defer { POSIX.close(fd) }
            try write(fd, tmp, &stored, &lines)
            if let internalDate {
                var times = [timespec(tv_sec: Int(internalDate), tv_nsec: 0), timespec(tv_sec: Int(internalDate), tv_nsec: 0)]
                if futimens(fd, &times) != 0 { throw StoreError("futimens", tmp) }
            }
            try POSIX.fsync(fd, path: tmp)
        } catch {
            POSIX.unlink(tmp)
            throw error
        }
        let incoming = Incoming(place: { target in try POSIX.rename(tmp, target) },
                                base: "\(unique),S=\(stored),W=\(stored + lines)", info: MaildirInfo(letters: []),
                                size: stored, virtualSize: stored + lines, flags: flags, internalDate: internalDate)
        do {
            return try receive([incoming])[0]
        } catch {
            POSIX.unlink(tmp)
            throw error
        }
    }

    /// Copies `uids` into `destination` (hard links where possible; new names, same flags).
    /// - Returns: source and destination UIDs, in ascending source UID order.
    /// - Throws: ``MailboxError/messageGone(uid:)`` if a source file vanished (nothing is copied then).
    public func copy(uids: [UInt32], to destination: MaildirFolder) throws -> [UIDPair] {
        let sources: [(UInt32, String, String, Int, Int, [String])] = try state.withLock { s in
            try uids.sorted().compactMap { uid in
                guard let e = s.entries[uid] else { throw MailboxError.messageGone(uid: uid) }
                return (uid, "\(path)/\(e.inNew ? "new" : "cur")/\(e.name)", e.base, e.size, e.virtualSize, e.info.flags(keywords: s.keywords))
            }
        }
        guard !sources.isEmpty else { return [] }
        let incoming = sources.map { (uid, source, base, size, vsize, flags) in
            Incoming(place: { [path] target in
                do {
                    try Self.linkOrCopy(source, target)
                } catch let e as StoreError where e.code == ENOENT {
                    // Renamed by another program: find it without this folder's lock (the destination's
                    // is held; taking ours too could deadlock with a copy the other way).
                    guard let now = try Self.locate(base, in: path) else { throw MailboxError.messageGone(uid: uid) }
                    do { try Self.linkOrCopy(now, target) } catch let e as StoreError where e.code == ENOENT {
                        throw MailboxError.messageGone(uid: uid)
                    }
                }
            }, base: "\(Self.uniqueName()),S=\(size),W=\(vsize)", info: MaildirInfo(letters: []), size: size,
               virtualSize: vsize, flags: flags, internalDate: nil)
        }
        let newUIDs = try destination.receive(incoming)
        return zip(sources, newUIDs).map { UIDPair(source: $0.0.0, destination: $0.1) }
    }

    /// COPY then EXPUNGE of the originals. A crash in between leaves both copies, never none.
    public func move(uids: [UInt32], to destination: MaildirFolder) throws -> [UIDPair] {
        let pairs = try copy(uids: uids, to: destination)
        try expunge(uids: pairs.map(\.source))
        return pairs
    }

    /// The current path of the file with base name `base` in the folder at `folder`, if any.
    static func locate(_ base: String, in folder: String) throws -> String? {
        for sub in ["cur", "new"] {
            for name in try MaildirMaildrop.names(in: "\(folder)/\(sub)") where MaildirFileName(name).base == base {
                return "\(folder)/\(sub)/\(name)"
            }
        }
        return nil
    }

    private static func linkOrCopy(_ source: String, _ target: String) throws {
        if Glibc.link(source, target) == 0 { return }
        let code = errno
        if code == EXDEV || code == EPERM || code == EMLINK {
            try MaildirStore.copyDurably(from: source, to: target)
            return
        }
        throw StoreError("link", source, code: code)
    }

    /// Places `files` in `cur/` under the uidlist lock, `fsync`s `cur/`, assigns UIDs, replaces the
    /// uidlist, journals MODSEQs. All or nothing: on failure every file placed is removed again.
    func receive(_ files: [Incoming]) throws -> [UInt32] {
        try state.withLock { s in
            try reloadKeywords(&s)
            let keywordNames = Set(files.flatMap { $0.flags.filter { !$0.hasPrefix("\\") } }).sorted()
            let letters = try keywordLetters(keywordNames, &s)
            if s.uidList == nil { _ = try syncLocked(&s) }
            let lock = try DotLock(protecting: path + "/dovecot-uidlist")
            var list = try readFile(path + "/dovecot-uidlist").flatMap(UIDList.parse) ?? s.uidList!
            var placed: [String] = []
            var uids: [UInt32] = []
            var newEntries: [Entry] = []
            do {
                for f in files {
                    let info = try f.info.replacingFlags(with: f.flags, keywords: s.keywords) { name in
                        guard let l = letters[name.lowercased()] else { throw MailboxError.tooManyKeywords }
                        return l
                    }
                    let name = f.base + info.suffix
                    let target = "\(path)/cur/\(name)"
                    try f.place(target)
                    placed.append(target)
                    let uid = list.nextUID
                    list.nextUID += 1
                    list.records.append(.init(uid: uid, baseName: f.base))
                    uids.append(uid)
                    newEntries.append(Entry(uid: uid, base: f.base, inNew: false, name: name, size: f.size,
                                            virtualSize: f.virtualSize, info: info, modSeq: 0))
                    if let d = f.internalDate { s.dates[uid] = d }
                }
                try MaildirStore.directorySync.sync(path + "/cur")
                try lock.replace(with: list.encoded())
            } catch {
                for p in placed { POSIX.unlink(p) }
                if !placed.isEmpty { try? POSIX.fsyncDirectory(path + "/cur") }
                lock.release()
                throw error
            }
            s.uidList = list
            s.uidListStamp = FileStamp(path + "/dovecot-uidlist")
            var journal = s.journal!
            defer { s.journal = journal }
            var journalled: [(uid: UInt32, entry: ModSeqJournal.Entry)] = []
            for var e in newEntries {
                e.modSeq = try journal.next()
                s.entries[e.uid] = e
                journalled.append((e.uid, .init(modSeq: e.modSeq, letters: e.info.letters)))
            }
            try journal.record(journalled, expunged: [])
            return uids
        }
    }

    // MARK: Helpers

    /// Total octets (`S=`) and number of messages in the index.
    public func usage() -> (bytes: Int, messages: Int) {
        state.withLock { s in (s.entries.values.reduce(0) { $0 + $1.size }, s.entries.count) }
    }

    static let hostname: String = {
        var safe = ""
        for ch in DotLock.hostname.unicodeScalars {
            switch ch {
            case "/": safe += "\\057"
            case ":": safe += "\\072"
            case ",": safe += "\\054"
            default: safe.unicodeScalars.append(ch)
            }
        }
        return safe.isEmpty ? "localhost" : safe
    }()

    /// `<secs>.M<usecs>P<pid>Q<n>.<host>`, Dovecot's form; `Q` numbers are shared with MaildirStore.
    static func uniqueName() -> String {
        var now = timeval()
        gettimeofday(&now, nil)
        return "\(now.tv_sec).M\(now.tv_usec)P\(getpid())Q\(MaildirStore.counter.next()).\(hostname)"
    }

    static func newGUID() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<4).map { _ in
            let h = String(UInt32.random(in: .min ... .max, using: &g), radix: 16)
            return String(repeating: "0", count: 8 - h.count) + h
        }.joined()
    }

    /// Size on disk and size with CRLF line ends, read from the file.
    static func measure(_ path: String) throws -> (size: Int, virtualSize: Int) {
        let fd = try POSIX.openMessage(path)
        defer { POSIX.close(fd) }
        var size = 0, lf = 0, cr = 0
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        var previous: UInt8 = 0
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw StoreError("read", path) }
            if n == 0 { break }
            for i in 0..<n {
                if buf[i] == 0x0A && previous != 0x0D { lf += 1 }
                if buf[i] == 0x0D { cr += 1 }
                previous = buf[i]
            }
            size += n
        }
        _ = cr
        return (size, size + lf)
    }
}

/// Identity and version of a file (inode, size, mtime), to notice that another process replaced it.
struct FileStamp: Hashable {
    var inode: UInt64
    var size: Int64
    var seconds: Int
    var nanoseconds: Int

    init?(_ path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        inode = UInt64(st.st_ino)
        size = Int64(st.st_size)
        seconds = Int(st.st_mtim.tv_sec)
        nanoseconds = Int(st.st_mtim.tv_nsec)
    }
}

extension MaildirFolder {
    /// The modification times of the folder's `new/` and `cur/` (seconds and nanoseconds each): a
    /// cheap test for "another program changed this folder" (two `stat`s); `nil` when they are missing.
    public static func changeStamp(at path: String) -> [Int]? {
        var a = stat()
        var b = stat()
        guard stat(path + "/new", &a) == 0, stat(path + "/cur", &b) == 0 else { return nil }
        return [a.st_mtim.tv_sec, a.st_mtim.tv_nsec, b.st_mtim.tv_sec, b.st_mtim.tv_nsec]
    }
}
