#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import Synchronization

/// Stores messages in Maildir++ folders: `<root>/<domain>/<local>/{tmp,new,cur}`.
///
/// Files use LF line ends (what Postfix's local(8), Dovecot, mutt and Python's `mailbox` expect) and
/// Dovecot-style names `<secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>,W=<size with CRLF>` so POP3 and IMAP
/// can report sizes without reading the file.
///
/// Durability: the message is written once into `tmp/` of the first mailbox, `fsync`ed, hard-linked
/// into `new/` of every mailbox but the last and renamed into the last one's (copied when a mailbox is
/// on another file system), each `new/` is
/// `fsync`ed (concurrent deliveries into one `new/` share that `fsync`: group commit), and only then
/// does ``deliver(headers:spool:tail:to:)`` return. On failure every name placed in a `new/` so far is
/// removed, so no recipient sees a message the client was told failed.
public struct MaildirStore: Sendable {
    /// Root of all mailboxes (`<data_dir>/mail`).
    public let root: String
    private let hostname: String
    static let counter = Counter()
    /// Concurrent deliveries into one `new/` share its `fsync` (group commit).
    static let directorySync = DirectorySync()
    /// Maildirs known to exist, so a delivery does not stat three directories each time.
    private static let knownMaildirs = Mutex<Set<String>>([])

    /// Creates a store rooted at `root`; `hostname` goes into file names.
    public init(root: String, hostname: String) {
        self.root = root
        var safe = ""
        for ch in hostname.unicodeScalars {
            switch ch {
            case "/": safe += "\\057"
            case ":": safe += "\\072"
            case ",": safe += "\\054"
            default: safe.unicodeScalars.append(ch)
            }
        }
        self.hostname = safe.isEmpty ? "localhost" : safe
    }

    /// A mailbox location.
    public struct Mailbox: Hashable, Sendable {
        /// Lower-case domain directory name.
        public var domain: String
        /// Lower-case local part directory name.
        public var localPart: String

        /// Creates a mailbox reference; components are validated at delivery.
        public init(domain: String, localPart: String) {
            self.domain = domain
            self.localPart = localPart
        }

        /// The mailbox of a canonical `local@domain` address (split at the last `@`); `nil` without one.
        public init?(address: String) {
            guard let at = address.lastIndex(of: "@") else { return nil }
            self.init(domain: String(address[address.index(after: at)...]), localPart: String(address[..<at]))
        }
    }

    /// The Maildir path of a canonical `local@domain` address, or `nil` (no `@`, or unsafe components).
    public func path(ofAddress address: String) -> String? {
        Mailbox(address: address).flatMap(path(of:))
    }

    /// The Maildir path of `mailbox`, or `nil` if a component could escape the store.
    public func path(of mailbox: Mailbox) -> String? {
        guard Self.isSafeComponent(mailbox.domain), Self.isSafeComponent(mailbox.localPart) else { return nil }
        return "\(root)/\(mailbox.domain)/\(mailbox.localPart)"
    }

    static func isSafeComponent(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 255 && s.first != "." && !s.utf8.contains(where: { $0 == UInt8(ascii: "/") || $0 < 0x20 })
    }

    /// Creates `tmp/`, `new/`, `cur/` for `mailbox` if missing (durably).
    @discardableResult
    public func ensureMaildir(_ mailbox: Mailbox) throws -> String {
        guard let dir = path(of: mailbox) else { throw StoreError("mailbox", "\(mailbox.localPart)@\(mailbox.domain)", code: EINVAL) }
        try Self.ensureMaildir(at: dir)
        return dir
    }

    /// What a delivery produced.
    public struct Receipt: Hashable, Sendable {
        /// The file name (without directory) used in every `new/`.
        public var fileName: String
        /// Size on disk.
        public var size: Int
    }

    /// Durably delivers one message to every mailbox in `mailboxes` (at least one).
    ///
    /// - Parameters:
    ///   - headers: header lines to prepend, in storage form (LF line ends).
    ///   - spool: content already spooled, if any.
    ///   - tail: the rest of the content in wire form (CRLF), appended after `spool`.
    ///   - folder: a Maildir++ folder of each mailbox (`Junk` → `<maildir>/.Junk`, created when
    ///     missing) instead of the INBOX.
    public func deliver(headers: [UInt8], spool: SpoolFile?, tail: ByteBuffer, to mailboxes: [Mailbox],
                        folder: String? = nil) throws -> Receipt {
        precondition(!mailboxes.isEmpty, "deliver() without mailboxes")
        var dirs = try mailboxes.map { try ensureMaildir($0) }
        if let folder {
            dirs = dirs.map { "\($0)/.\(folder)" }
            for d in dirs { try Self.ensureMaildir(at: d) }
        }
        let receipt = try deliver(headers: headers, spool: spool, tail: tail, toMaildirs: dirs)
        if let changed { for d in dirs { changed(d) } }
        return receipt
    }

    /// Called with a Maildir's path after a delivery into it (or, from POP3, after deletions): IMAP
    /// sessions watching it are told (`MailServer`'s mailbox event hub). `nil`: nobody listens.
    public var changed: (@Sendable (String) -> Void)?

    /// Creates `tmp/`, `new/`, `cur/` under any Maildir path (durably).
    ///
    /// A new Maildir is built whole under a temporary name beside it and renamed into place, so a
    /// reader (a POP3 session, mutt, a test) never sees it with `new/` but without `cur/`. A Maildir
    /// that exists with parts missing (made by another tool) gets them in the order `tmp/`, `cur/`,
    /// `new/`: a message can only appear once `cur/` is there too.
    public static func ensureMaildir(at dir: String) throws {
        if knownMaildirs.withLock({ $0.contains(dir) }) { return }
        if !(POSIX.exists(dir + "/new") && POSIX.exists(dir + "/tmp") && POSIX.exists(dir + "/cur")) {
            if !POSIX.exists(dir) { try createMaildir(at: dir) }
            var created = false
            for sub in ["tmp", "cur", "new"] where try POSIX.mkdir(dir + "/" + sub) { created = true }
            if created { try POSIX.fsyncDirectory(dir) }
        }
        knownMaildirs.withLock { known in
            if known.count > 100_000 { known.removeAll() }
            known.insert(dir)
        }
    }

    /// Makes `dir` (which does not exist) with its three subdirectories in one rename. Losing a race
    /// with another delivery that made it first is fine: the temporary copy is removed.
    private static func createMaildir(at dir: String) throws {
        guard let slash = dir.lastIndex(of: "/") else { throw StoreError("mkdir", dir, code: EINVAL) }
        let parent = slash == dir.startIndex ? "/" : String(dir[..<slash])
        try POSIX.makeDirectories(parent)
        // A dot name: never a mailbox (local parts may not start with "."), never listed as one.
        let building = "\(parent)/.creating.\(getpid()).\(counter.next())"
        _ = try POSIX.mkdir(building)
        do {
            for sub in ["tmp", "cur", "new"] { _ = try POSIX.mkdir(building + "/" + sub) }
            try POSIX.fsyncDirectory(building)
            if Glibc.rename(building, dir) != 0 {
                let code = errno
                guard code == EEXIST || code == ENOTEMPTY else { throw StoreError("rename", dir, code: code) }
                removeEmptyMaildir(building)  // another delivery made it first
                return
            }
        } catch {
            removeEmptyMaildir(building)
            throw error
        }
        try POSIX.fsyncDirectory(parent)
    }

    private static func removeEmptyMaildir(_ path: String) {
        for sub in ["tmp", "cur", "new"] { _ = Glibc.rmdir(path + "/" + sub) }
        _ = Glibc.rmdir(path)
    }

    /// Forgets that `dir` exists (it vanished under us: an operator removed a Maildir).
    static func forgetMaildir(_ dir: String) {
        _ = knownMaildirs.withLock { $0.remove(dir) }
    }

    /// Durably delivers one message into existing Maildirs given by path (e.g. `swallow fetch`).
    public func deliver(headers: [UInt8], spool: SpoolFile?, tail: ByteBuffer, toMaildirs dirs: [String]) throws -> Receipt {
        precondition(!dirs.isEmpty, "deliver() without Maildirs")
        var now = timeval()
        gettimeofday(&now, nil)
        let seq = Self.counter.next()
        let base = "\(now.tv_sec).M\(now.tv_usec)P\(getpid())Q\(seq).\(hostname)"
        let tmpPath = "\(dirs[0])/tmp/\(base)"
        let stored: Int, lines: Int
        do {
            (stored, lines) = try Self.writeMessageFile(path: tmpPath, headers: headers, spool: spool, tail: tail)
        } catch let e as StoreError where e.code == ENOENT {
            // The Maildir was removed while we believed it existed: create it again, once.
            for d in dirs { Self.forgetMaildir(d) }
            for d in dirs { try Self.ensureMaildir(at: d) }
            (stored, lines) = try Self.writeMessageFile(path: tmpPath, headers: headers, spool: spool, tail: tail)
        }
        let name = "\(base),S=\(stored),W=\(stored + lines)"
        // Each Maildir once; the file is linked into all but the last, and renamed into the last
        // (one directory operation instead of a link and an unlink of tmp/).
        var unique: [String] = []
        for dir in dirs where !unique.contains(dir) { unique.append(dir) }
        var placed: [String] = []
        var tmpRemains = true  // until the rename into the last Maildir takes the name away
        do {
            for (index, dir) in unique.enumerated() {
                let target = "\(dir)/new/\(name)"
                let last = index == unique.count - 1
                let place = last ? POSIX.rename : POSIX.link
                do {
                    try place(tmpPath, target)
                    if last { tmpRemains = false }
                } catch let e as StoreError where e.code == EXDEV {
                    try Self.copyDurably(from: tmpPath, to: target)
                } catch let e as StoreError where e.code == ENOENT && POSIX.exists(tmpPath) {
                    Self.forgetMaildir(dir)  // removed under us: create it again, once
                    try Self.ensureMaildir(at: dir)
                    try place(tmpPath, target)
                    if last { tmpRemains = false }
                }
                placed.append(target)
                try Self.directorySync.sync("\(dir)/new")
            }
        } catch {
            for p in placed { POSIX.unlink(p) }
            POSIX.unlink(tmpPath)
            throw error
        }
        if tmpRemains { POSIX.unlink(tmpPath) }  // the last Maildir was on another file system (copied)
        return Receipt(fileName: name, size: stored)
    }

    /// Writes a message file durably in storage form (LF line ends): `headers`, then the spooled
    /// content, then `tail` (CRLF wire form), a final LF if missing; fsyncs it. Returns the stored size
    /// and the number of lines. On failure nothing is left at `path`.
    public static func writeMessageFile(path tmpPath: String, headers: [UInt8], spool: SpoolFile?,
                                        tail: ByteBuffer) throws -> (stored: Int, lines: Int) {
        let fd = try POSIX.open(tmpPath, O_WRONLY | O_CREAT | O_EXCL)
        var stored = 0
        var lines = 0
        var last: UInt8?
        do {
            defer { POSIX.close(fd) }
            try headers.withUnsafeBytes { raw in
                try Self.writeConverted(raw, fd: fd, path: tmpPath, stored: &stored, lines: &lines, last: &last)
            }
            if let spool {
                let rfd = try spool.openForReading()
                defer { POSIX.close(rfd) }
                var buf = [UInt8](repeating: 0, count: 1 << 16)
                while true {
                    let n = buf.withUnsafeMutableBytes { Glibc.read(rfd, $0.baseAddress!, $0.count) }
                    if n < 0 { if errno == EINTR { continue }; throw StoreError("read", spool.path) }
                    if n == 0 { break }
                    try buf.withUnsafeBytes { raw in
                        try POSIX.writeAll(fd, UnsafeRawBufferPointer(rebasing: raw[0..<n]), path: tmpPath)
                    }
                }
                stored += spool.storedSize
                lines += spool.lineCount
                if spool.storedSize > 0 { last = spool.lastByte }
            }
            try tail.withUnsafeReadableBytes { raw in
                try Self.writeConverted(raw, fd: fd, path: tmpPath, stored: &stored, lines: &lines, last: &last)
            }
            if last != nil && last != 0x0A {
                try [UInt8(0x0A)].withUnsafeBytes { try POSIX.writeAll(fd, $0, path: tmpPath) }
                stored += 1
                lines += 1
            }
            try POSIX.fsync(fd, path: tmpPath)
        } catch {
            POSIX.unlink(tmpPath)
            throw error
        }
        return (stored, lines)
    }

    static func copyDurably(from: String, to: String) throws {
        let rfd = try POSIX.open(from, O_RDONLY)
        defer { POSIX.close(rfd) }
        let wfd = try POSIX.open(to, O_WRONLY | O_CREAT | O_EXCL)
        do {
            defer { POSIX.close(wfd) }
            var buf = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = buf.withUnsafeMutableBytes { Glibc.read(rfd, $0.baseAddress!, $0.count) }
                if n < 0 { if errno == EINTR { continue }; throw StoreError("read", from) }
                if n == 0 { break }
                try buf.withUnsafeBytes { try POSIX.writeAll(wfd, UnsafeRawBufferPointer(rebasing: $0[0..<n]), path: to) }
            }
            try POSIX.fsync(wfd, path: to)
        } catch {
            POSIX.unlink(to)
            throw error
        }
    }

    /// Writes `raw` without its CR bytes (one `write` per 64 KiB), counting stored octets and LFs.
    /// `memchr` finds the CRs; the runs between them are copied whole.
    static func writeConverted(_ raw: UnsafeRawBufferPointer, fd: Int32, path: String,
                               stored: inout Int, lines: inout Int, last: inout UInt8?) throws {
        guard raw.count > 0, let base = raw.baseAddress else { return }
        let n = raw.count
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: min(n, 1 << 16), alignment: 1)
        defer { out.deallocate() }
        var o = 0
        func flush() throws {
            guard o > 0 else { return }
            try POSIX.writeAll(fd, UnsafeRawBufferPointer(rebasing: out[0..<o]), path: path)
            stored += o
            last = out[o - 1]
            o = 0
        }
        var i = 0
        while i < n {
            let cr = memchr(base + i, 0x0D, n - i).map { base.distance(to: UnsafeRawPointer($0)) } ?? n
            var run = cr - i  // octets before the next CR: copied as they are
            while run > 0 {
                if o == out.count { try flush() }
                let m = min(run, out.count - o)
                let chunk = UnsafeRawBufferPointer(start: base + i, count: m)
                var lf = 0
                for b in chunk where b == 0x0A { lf += 1 }  // vectorised by the compiler
                lines += lf
                (out.baseAddress! + o).copyMemory(from: base + i, byteCount: m)
                o += m
                i += m
                run -= m
            }
            i += 1  // the CR itself is not stored
        }
        try flush()
    }
}

/// A process-wide sequence number for unique file names.
final class Counter: @unchecked Sendable {
    private var value: UInt64 = 0
    private var lock = pthread_mutex_t()
    init() { pthread_mutex_init(&lock, nil) }
    func next() -> UInt64 {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        value += 1
        return value
    }
}
