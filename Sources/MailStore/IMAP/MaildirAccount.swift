#if canImport(Glibc)
import Glibc
#endif
import MailCore
import Synchronization

/// The folders of one Maildir++ account, in Dovecot's default `maildir` layout.
///
/// The account root is INBOX (`tmp/`, `new/`, `cur/`); the folder `Archive/2026` is the directory
/// `.Archive.2026`, each level in modified UTF-7 (`Entwürfe` → `.Entw&APw-rfe`), holding an empty
/// `maildirfolder` file. The IMAP hierarchy delimiter is `/`; a `.` inside a level is refused, as
/// Dovecot refuses it ("Character not allowed in mailbox name: '.'"). `INBOX` is case-insensitive.
/// Subscriptions live in `subscriptions` (Dovecot 2.3's format), special use in `swallow-special-use`.
public struct MaildirAccount: Sendable {
    /// The account's Maildir (INBOX).
    public let root: String
    /// The IMAP hierarchy delimiter.
    public static let delimiter: Character = "/"
    /// The folders ``ensureDefaultFolders()`` creates.
    public static let defaultFolders: [(String, SpecialUse)] = [
        ("Sent", .sent), ("Drafts", .drafts), ("Trash", .trash), ("Junk", .junk), ("Archive", .archive),
    ]
    private static let locks = Mutex<[String: Int]>([:])

    /// An account rooted at `root` (created on first use).
    public init(root: String) {
        self.root = root.hasSuffix("/") && root.count > 1 ? String(root.dropLast()) : root
    }

    // MARK: Names

    /// The levels of `name` after validation, `INBOX` normalised.
    /// - Throws: ``MailboxError/invalidName(_:reason:)``.
    public static func levels(of name: String) throws -> [String] {
        func invalid(_ reason: String) -> MailboxError { .invalidName(name, reason: reason) }
        guard !name.isEmpty else { throw invalid("The name is empty.") }
        var levels = name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !levels.contains("") else { throw invalid("A hierarchy level is empty (leading, trailing or double '/').") }
        for l in levels {
            if l.contains(".") { throw invalid("Character not allowed in mailbox name: '.'") }
            if l.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || ($0.value >= 0x80 && $0.value < 0xA0) }) {
                throw invalid("Control characters are not allowed in mailbox names.")
            }
            if l.contains("*") || l.contains("%") { throw invalid("'*' and '%' are not allowed in mailbox names.") }
            if l == "~" || l.hasPrefix("~") && levels.first == l { throw invalid("A name may not start with '~'.") }
        }
        if levels[0].uppercased() == "INBOX" { levels[0] = "INBOX" }
        let dir = directoryName(levels)
        guard dir.utf8.count <= 255 else { throw invalid("The name is too long.") }
        return levels
    }

    /// `.Archive.2026` for `["Archive", "2026"]`.
    static func directoryName(_ levels: [String]) -> String {
        "." + levels.map { ModifiedUTF7.encode($0) }.joined(separator: ".")
    }

    /// The directory of folder `name` (the root for INBOX).
    public func path(of name: String) throws -> String {
        let levels = try Self.levels(of: name)
        return levels == ["INBOX"] ? root : root + "/" + Self.directoryName(levels)
    }

    /// The folder name of a `.`-directory (`nil` when it is not one).
    static func folderName(directory: String) -> String? {
        guard directory.hasPrefix("."), !directory.hasPrefix(".."), directory.count > 1 else { return nil }
        let levels = directory.dropFirst().split(separator: ".", omittingEmptySubsequences: false)
        guard !levels.contains(where: \.isEmpty) else { return nil }
        var names = levels.map { ModifiedUTF7.decode(String($0)) ?? String($0) }
        if names[0].uppercased() == "INBOX" { names[0] = "INBOX" }
        return names.joined(separator: "/")
    }

    // MARK: Listing

    /// Every folder (INBOX first, then by name), with special use, subscription and children; implied
    /// parents of nested folders are listed with `exists == false`.
    public func listFolders() throws -> [FolderInfo] {
        try MaildirStore.ensureMaildir(at: root)
        let names = try folderNames()
        let subscribed = Set(try subscriptions())
        let uses = try specialUses()
        var all = Set(names)
        all.insert("INBOX")
        var implied = Set<String>()
        for n in names {
            var parts = n.split(separator: "/").map(String.init)
            while parts.count > 1 {
                parts.removeLast()
                let p = parts.joined(separator: "/")
                if !all.contains(p) { implied.insert(p) }
            }
        }
        let every = all.union(implied)
        func hasChildren(_ n: String) -> Bool { every.contains { $0.hasPrefix(n + "/") } }
        var out = every.map { n in
            FolderInfo(name: n, specialUse: uses[n], isSubscribed: subscribed.contains(n), hasChildren: hasChildren(n),
                       exists: all.contains(n))
        }
        out.sort { a, b in a.name == "INBOX" ? b.name != "INBOX" : (b.name == "INBOX" ? false : a.name < b.name) }
        return out
    }

    /// The names of the `.`-folders on disk (not INBOX).
    private func folderNames() throws -> [String] {
        guard let d = opendir(root) else {
            if errno == ENOENT { return [] }
            throw StoreError("opendir", root)
        }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let entry = directoryEntryName(e)
            guard let name = Self.folderName(directory: entry) else { continue }
            let type = e.pointee.d_type
            if type != UInt8(DT_DIR) {
                var st = stat()
                guard type == UInt8(DT_UNKNOWN), lstat(root + "/" + entry, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { continue }
            }
            out.append(name)
        }
        return out
    }

    /// Whether folder `name` exists.
    public func exists(_ name: String) throws -> Bool {
        let p = try path(of: name)
        return p == root || POSIX.exists(p + "/cur")
    }

    // MARK: Create, delete, rename

    /// Creates folder `name` (its Maildir, `maildirfolder` and a `dovecot-uidlist` with a new
    /// UIDVALIDITY), durably. Parents are not created (Maildir++ does not need them).
    /// - Throws: ``MailboxError/alreadyExists(_:)``, ``MailboxError/invalidName(_:reason:)``.
    public func create(_ name: String, specialUse: SpecialUse? = nil) throws {
        let levels = try Self.levels(of: name)
        guard levels != ["INBOX"] else { throw MailboxError.alreadyExists(name) }
        try MaildirStore.ensureMaildir(at: root)
        let target = root + "/" + Self.directoryName(levels)
        if POSIX.exists(target) { throw MailboxError.alreadyExists(name) }
        let building = "\(root)/..swallow-creating.\(getpid()).\(MaildirStore.counter.next())"
        _ = try POSIX.mkdir(building)
        do {
            for sub in ["tmp", "cur", "new"] { _ = try POSIX.mkdir(building + "/" + sub) }
            let fd = try POSIX.open(building + "/maildirfolder", O_WRONLY | O_CREAT | O_EXCL)
            POSIX.close(fd)
            let list = UIDList(uidValidity: try UIDValidityAllocator.next(root: root), guid: MaildirFolder.newGUID())
            try writeFileAtomically(building + "/dovecot-uidlist", list.encoded())
            if Glibc.rename(building, target) != 0 {
                let code = errno
                if code == EEXIST || code == ENOTEMPTY { throw MailboxError.alreadyExists(name) }
                throw StoreError("rename", target, code: code)
            }
        } catch {
            Self.removeTree(building)
            throw error
        }
        try POSIX.fsyncDirectory(root)
        MaildirFolder.evict(path: target)
        if let specialUse { try setSpecialUse(specialUse, for: name) }
    }

    /// Deletes folder `name` and its messages: renamed away in one step (readers see it gone), then removed.
    /// - Throws: ``MailboxError/cannot(_:)`` for INBOX, ``MailboxError/hasChildren(_:)``,
    ///   ``MailboxError/nonexistent(_:)``.
    public func delete(_ name: String) throws {
        let levels = try Self.levels(of: name)
        guard levels != ["INBOX"] else { throw MailboxError.cannot("INBOX can't be deleted.") }
        let canonical = levels.joined(separator: "/")
        let dir = root + "/" + Self.directoryName(levels)
        guard POSIX.exists(dir) else { throw MailboxError.nonexistent(name) }
        if try folderNames().contains(where: { $0.hasPrefix(canonical + "/") }) { throw MailboxError.hasChildren(name) }
        let trash = "\(root)/..swallow-deleting.\(getpid()).\(MaildirStore.counter.next())"
        try POSIX.rename(dir, trash)
        try POSIX.fsyncDirectory(root)
        MaildirFolder.evict(path: dir)
        Self.removeTree(trash)
        try updateSpecialUses { uses in uses[canonical] = nil }
    }

    /// Renames folder `from` to `to`, with its children (RFC 9051 §6.3.6). Renaming INBOX moves its
    /// messages into a new folder `to` and leaves INBOX empty. Subscriptions and special use follow.
    /// - Throws: ``MailboxError/nonexistent(_:)``, ``MailboxError/alreadyExists(_:)``,
    ///   ``MailboxError/cannot(_:)`` (into itself).
    public func rename(_ from: String, to: String) throws {
        let source = try Self.levels(of: from)
        let target = try Self.levels(of: to)
        let s = source.joined(separator: "/"), t = target.joined(separator: "/")
        guard target != ["INBOX"] else { throw MailboxError.alreadyExists(to) }
        if source == ["INBOX"] { return try renameInbox(to: to) }
        guard POSIX.exists(root + "/" + Self.directoryName(source)) else { throw MailboxError.nonexistent(from) }
        guard !t.hasPrefix(s + "/") else { throw MailboxError.cannot("A mailbox can't be renamed into itself.") }
        let names = try folderNames()
        let moving = names.filter { $0 == s || $0.hasPrefix(s + "/") }
        let renames = moving.map { n in (n, t + n.dropFirst(s.count)) }
        let existing = Set(names)
        for (_, new) in renames where existing.contains(new) { throw MailboxError.alreadyExists(new) }
        for (old, new) in renames.sorted(by: { $0.0.count < $1.0.count }) {
            let o = root + "/" + Self.directoryName(old.split(separator: "/").map(String.init))
            let n = root + "/" + Self.directoryName(new.split(separator: "/").map(String.init))
            try POSIX.rename(o, n)
            MaildirFolder.evict(path: o)
            MaildirFolder.evict(path: n)
        }
        try POSIX.fsyncDirectory(root)
        func moved(_ n: String) -> String { n == s ? t : (n.hasPrefix(s + "/") ? t + n.dropFirst(s.count) : n) }
        try updateSpecialUses { uses in
            var out: [String: SpecialUse] = [:]
            for (n, u) in uses { out[moved(n)] = u }
            uses = out
        }
        try updateSubscriptions { subs in subs = subs.map(moved) }
    }

    private func renameInbox(to: String) throws {
        try create(to)
        let inbox = try MaildirFolder.open(path: root)
        let target = try MaildirFolder.open(path: try path(of: to))
        let uids = inbox.snapshot().messages.map(\.uid)
        _ = try inbox.move(uids: uids, to: target)
        // Files delivered meanwhile stay in INBOX (they arrived after the RENAME).
    }

    /// Removes a directory tree (best effort).
    static func removeTree(_ path: String) {
        if let d = opendir(path) {
            while let e = readdir(d) {
                let n = directoryEntryName(e)
                if n == "." || n == ".." { continue }
                let p = path + "/" + n
                var st = stat()
                if lstat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR { removeTree(p) } else { _ = unlink(p) }
            }
            closedir(d)
        }
        _ = rmdir(path)
    }

    // MARK: Opening

    /// The shared index object of folder `name`. - Throws: ``MailboxError/nonexistent(_:)``.
    public func openFolder(_ name: String) throws -> MaildirFolder {
        let p = try path(of: name)
        if p != root && !POSIX.exists(p + "/cur") { throw MailboxError.nonexistent(name) }
        return try MaildirFolder.open(path: p)
    }

    // MARK: Subscriptions

    /// The subscribed names (Unicode, `/`), in file order.
    public func subscriptions() throws -> [String] {
        try readFile(root + "/subscriptions").map(SubscriptionsFile.parse) ?? []
    }

    /// Adds `name` to the subscriptions (it need not exist, RFC 9051 §6.3.7).
    public func subscribe(_ name: String) throws {
        let levels = try Self.levels(of: name)
        let n = levels.joined(separator: "/")
        try updateSubscriptions { subs in if !subs.contains(n) { subs.append(n) } }
    }

    /// Removes `name` from the subscriptions.
    public func unsubscribe(_ name: String) throws {
        let n = (try? Self.levels(of: name).joined(separator: "/")) ?? name
        try updateSubscriptions { subs in subs.removeAll { $0 == n } }
    }

    private func updateSubscriptions(_ change: (inout [String]) -> Void) throws {
        try MaildirStore.ensureMaildir(at: root)
        let file = root + "/subscriptions"
        try withAccountLock {
            let lock = try DotLock(protecting: file, staleAfter: 30)
            var subs = try readFile(file).map(SubscriptionsFile.parse) ?? []
            let before = subs
            change(&subs)
            if subs == before && POSIX.exists(file) { lock.release(); return }
            try lock.replace(with: SubscriptionsFile.encode(subs))
        }
    }

    // MARK: Special use

    /// Special use per folder name, from `swallow-special-use` (lines `<attribute>\t<name>`).
    public func specialUses() throws -> [String: SpecialUse] {
        guard let bytes = try readFile(root + "/swallow-special-use") else { return [:] }
        var out: [String: SpecialUse] = [:]
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            let parts = line.split(separator: UInt8(ascii: "\t"), maxSplits: 1)
            guard parts.count == 2, let use = SpecialUse(rawValue: String(decoding: parts[0], as: UTF8.self)) else { continue }
            out[String(decoding: parts[1], as: UTF8.self)] = use
        }
        return out
    }

    /// Gives `name` the special use `use` (removing it from any other folder), or none.
    public func setSpecialUse(_ use: SpecialUse?, for name: String) throws {
        let n = try Self.levels(of: name).joined(separator: "/")
        try updateSpecialUses { uses in
            if let use { for (k, v) in uses where v == use { uses[k] = nil } }
            uses[n] = use
        }
    }

    private func updateSpecialUses(_ change: (inout [String: SpecialUse]) -> Void) throws {
        try withAccountLock {
            var uses = try specialUses()
            let before = uses
            change(&uses)
            guard uses != before else { return }
            var text = ""
            for (n, u) in uses.sorted(by: { $0.key < $1.key }) { text += "\(u.rawValue)\t\(n)\n" }
            try writeFileAtomically(root + "/swallow-special-use", Array(text.utf8))
        }
    }

    /// Creates Sent, Drafts, Trash, Junk and Archive with their special use and subscribes them (and
    /// INBOX); a use already given to another folder, or a folder that exists, is kept. Idempotent.
    public func ensureDefaultFolders() throws {
        try MaildirStore.ensureMaildir(at: root)
        var uses = try specialUses()
        let names = Set(try folderNames())
        for (name, use) in Self.defaultFolders {
            if let holder = uses.first(where: { $0.value == use })?.key, names.contains(holder) { continue }
            if !names.contains(name) {
                do { try create(name) } catch MailboxError.alreadyExists { }
            }
            try setSpecialUse(use, for: name)
            uses[name] = use
            try subscribe(name)
        }
        if try !subscriptions().contains("INBOX") { try subscribe("INBOX") }
    }

    // MARK: Quota

    /// Octets (`S=`, or the file size when a name lacks it) and messages in every folder, from the
    /// file names alone (one `readdir` per directory).
    public func storageUsed() throws -> (bytes: Int, messages: Int) {
        var bytes = 0, messages = 0
        let dirs = [root] + (try folderNames()).compactMap { try? path(of: $0) }
        for dir in dirs {
            for sub in ["new", "cur"] {
                for name in try MaildirMaildrop.names(in: "\(dir)/\(sub)") {
                    messages += 1
                    if let s = MaildirFileName(name).size { bytes += s; continue }
                    var st = stat()
                    if lstat("\(dir)/\(sub)/\(name)", &st) == 0 { bytes += Int(st.st_size) }
                }
            }
        }
        return (bytes, messages)
    }

    /// Serialises this process's changes to one account's files (other processes are kept out by dot-locks).
    private func withAccountLock<T>(_ body: () throws -> T) throws -> T {
        let key = root
        while true {
            let got = Self.locks.withLock { locks -> Bool in
                if locks[key] != nil { return false }
                locks[key] = 1
                return true
            }
            if got { break }
            usleep(1_000)
        }
        defer { _ = Self.locks.withLock { $0.removeValue(forKey: key) } }
        return try body()
    }
}
