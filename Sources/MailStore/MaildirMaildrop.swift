#if canImport(Glibc)
import Glibc
#endif
import CSwallowSystem
import MailCore
import NIOCore

/// A read/delete view of one Maildir for POP3: a snapshot of `new/` and `cur/` taken at open.
///
/// Sizes come from Dovecot-style `W=` in the file name when present (no file is read to log in);
/// otherwise the file is read once to count its line ends. The unique ID is the part of the file name
/// before `:` — stable when a file moves from `new/` to `cur/`, across restarts, and never reused
/// (names carry time, pid, a counter and the host; the `,S=…,W=…` fields are left out) — or a hash of
/// it when it is not a valid UIDL.
public final class MaildirMaildrop: @unchecked Sendable {
    /// One message in the snapshot.
    public struct Entry: Hashable, Sendable {
        /// `new` or `cur`.
        public var subdirectory: String
        /// The file name.
        public var name: String
        /// The name before `:` (flags are after it).
        public var base: String
        /// Size with CRLF line ends.
        public var size: Int
        /// The UIDL.
        public var uid: String
    }

    /// The Maildir path.
    public let path: String
    /// The snapshot, oldest first.
    public let entries: [Entry]

    /// `new/` and `cur/`, open for the life of the snapshot: messages are opened relative to them.
    private let newDirectory: Int32
    private let curDirectory: Int32

    /// Lists `path` (which need not exist yet: an empty maildrop).
    public init(path: String) throws {
        self.path = path
        newDirectory = Glibc.open("\(path)/new", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        curDirectory = Glibc.open("\(path)/cur", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        var list: [(key: (Int, Int), entry: Entry)] = []
        for sub in ["new", "cur"] {
            for name in try Self.names(in: "\(path)/\(sub)") {
                let base = Self.prefix(of: name, before: UInt8(ascii: ":"))
                // Not a regular file, vanished meanwhile, or unreadable: not a message of this snapshot.
                guard let size = try? Self.virtualSize(name: base, file: "\(path)/\(sub)/\(name)") else { continue }
                let unique = Self.prefix(of: base, before: UInt8(ascii: ","))
                list.append((Self.orderKey(base), Entry(subdirectory: sub, name: name, base: base, size: size, uid: Self.uid(for: unique))))
            }
        }
        // Delivery order: seconds, then microseconds of `<secs>.M<usecs>P…` names (numerically: the
        // microseconds are not zero-padded), then the name. Keys are computed once per file.
        list.sort { a, b in
            if a.key.0 != b.key.0 { return a.key.0 < b.key.0 }
            if a.key.1 != b.key.1 { return a.key.1 < b.key.1 }
            return a.entry.base < b.entry.base
        }
        entries = list.map(\.entry)
    }

    static func names(in dir: String) throws -> [String] {
        guard let d = opendir(dir) else {
            if errno == ENOENT { return [] }
            throw StoreError("opendir", dir)
        }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            // Regular files only (links, FIFOs, devices, directories are not messages); a file system
            // that does not report types (DT_UNKNOWN) gets an lstat.
            let type = e.pointee.d_type
            guard type == UInt8(DT_REG) || type == UInt8(DT_UNKNOWN) else { continue }
            let name = directoryEntryName(e)
            if name.hasPrefix(".") { continue }
            if type == UInt8(DT_UNKNOWN) && !isRegularFile("\(dir)/\(name)") { continue }
            out.append(name)
        }
        return out
    }

    /// `(seconds, microseconds)` of a `<secs>.M<usecs>P…` name (0 where absent); byte-wise.
    static func orderKey(_ name: String) -> (Int, Int) {
        let u = Array(name.utf8)
        var i = 0
        let seconds = number(u, &i, maxDigits: 18)
        guard i + 1 < u.count, u[i] == UInt8(ascii: "."), u[i + 1] == UInt8(ascii: "M") else { return (seconds, 0) }
        i += 2
        return (seconds, number(u, &i, maxDigits: 9))
    }

    /// The decimal number at `i` (at most `maxDigits` digits); advances `i` past all digits.
    private static func number(_ u: [UInt8], _ i: inout Int, maxDigits: Int) -> Int {
        var n = 0
        var digits = 0
        while i < u.count, u[i] >= 0x30, u[i] <= 0x39 {
            if digits < maxDigits { n = n * 10 + Int(u[i] - 0x30) }
            digits += 1
            i += 1
        }
        return n
    }

    /// The part of `s` before the first `separator` byte (all of it when there is none).
    static func prefix(of s: String, before separator: UInt8) -> String {
        guard let cut = s.utf8.firstIndex(of: separator) else { return s }
        return String(s[..<cut])
    }

    /// RFC 1939 §7: 1–70 characters in 0x21–0x7E.
    static func uid(for base: String) -> String {
        if (1...70).contains(base.utf8.count), base.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) { return base }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in base.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        let hex = String(h, radix: 16)
        return "H" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// `W=` from the name, else counted from the file.
    /// `true` for a regular file (not a link, FIFO, device or directory).
    static func isRegularFile(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    static func virtualSize(name: String, file: String) throws -> Int {
        let u = Array(name.utf8)
        var i = 0
        while i + 3 < u.count {
            if u[i] == UInt8(ascii: ","), u[i + 1] == UInt8(ascii: "W"), u[i + 2] == UInt8(ascii: "=") {
                var j = i + 3
                let start = j
                let n = number(u, &j, maxDigits: 18)
                if j > start && j - start <= 18 && (j == u.count || u[j] == UInt8(ascii: ",")) { return n }
            }
            i += 1
        }
        let fd = try POSIX.openMessage(file)
        defer { POSIX.close(fd) }
        var size = 0
        var previousCR = false
        var last: UInt8?
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw StoreError("read", file) }
            if n == 0 { break }
            for i in 0..<n {
                let b = buf[i]
                if b == 0x0A && !previousCR { size += 1 }
                if previousCR && b != 0x0A { size += 1 }  // bare CR gains an LF on the wire
                previousCR = b == 0x0D
                last = b
                size += 1
            }
        }
        if previousCR {
            size += 1  // the bare CR at the end gains an LF
        } else if let last, last != 0x0A {
            size += 2  // POP3 sends a final CRLF the file lacks
        }
        return size
    }

    /// Opens message `index` for reading; follows a rename between `new/` and `cur/`.
    /// The whole stored message `index` when it is at most `limit` octets and entirely in the page
    /// cache, read without ever waiting for the disk (so it may run on an event loop); `nil` otherwise.
    public func readCached(_ index: Int, limit: Int) -> ByteBuffer? {
        guard index < entries.count, entries[index].size <= limit, let fd = try? open(index) else { return nil }
        defer { POSIX.close(fd) }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(entries[index].size + 1)
        var offset = 0
        while true {
            // The reserve is the expected size + 1: the read that finds the end needs no new memory.
            let room = max(buffer.writableBytes, 1)
            var failed = false
            let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: room) { raw -> Int in
                let r = swallow_pread_nowait(fd, raw.baseAddress!, UInt(raw.count), offset)
                if r < 0 { failed = true; return 0 }
                return r
            }
            if failed {
                if errno == EINTR { continue }
                return nil  // EAGAIN: not cached; or unsupported: the caller streams it from a thread
            }
            if n == 0 { return buffer }
            offset += n
            if offset > limit { return nil }
        }
    }

    deinit {
        if newDirectory >= 0 { Glibc.close(newDirectory) }
        if curDirectory >= 0 { Glibc.close(curDirectory) }
    }

    public func open(_ index: Int) throws -> Int32 {
        let e = entries[index]
        let directory = e.subdirectory == "cur" ? curDirectory : newDirectory
        if directory >= 0, let fd = try? POSIX.openMessage(in: directory, e.name, path: "\(path)/\(e.subdirectory)/\(e.name)") {
            return fd
        }
        if let fd = try? POSIX.openMessage("\(path)/\(e.subdirectory)/\(e.name)") { return fd }
        if let m = moved(e) { return try POSIX.openMessage("\(path)/\(m.subdirectory)/\(m.name)") }
        throw StoreError("open", "\(path)/\(e.subdirectory)/\(e.name)", code: ENOENT)
    }

    /// Where another program moved `e` since the snapshot (`new/` → `cur/`, flags changed), if anywhere.
    private func moved(_ e: Entry) -> (subdirectory: String, name: String)? {
        for sub in ["cur", "new"] {
            for name in (try? Self.names(in: "\(path)/\(sub)")) ?? [] where name == e.base || name.hasPrefix(e.base + ":") {
                return (sub, name)
            }
        }
        return nil
    }

    /// Applies a POP3 UPDATE: removes `deleted`, and marks `retrieved` as seen by moving them to
    /// `cur/` with the `S` flag (so IMAP clients later see them as read). Directories are fsynced.
    /// A file already gone counts as deleted.
    public func update(deleted: Set<Int>, retrieved: Set<Int>) throws {
        var touched = Set<String>()
        var firstError: (any Error)?
        for i in deleted.sorted() {
            let e = entries[i]
            var sub = e.subdirectory
            var p = "\(path)/\(sub)/\(e.name)"
            var result = unlink(p)
            if result != 0 && errno == ENOENT, let m = moved(e) {
                // Moved by another program since the snapshot (e.g. a MUA marked it seen): delete it there.
                sub = m.subdirectory
                p = "\(path)/\(sub)/\(m.name)"
                result = unlink(p)
            }
            if result != 0 && errno != ENOENT {
                firstError = firstError ?? StoreError("unlink", p)
                continue
            }
            touched.insert(sub)
        }
        for i in retrieved.subtracting(deleted).sorted() {
            let e = entries[i]
            var flags = ""
            if let colon = e.name.firstIndex(of: ":") {
                let info = e.name[e.name.index(after: colon)...]
                if info.hasPrefix("2,") { flags = String(info.dropFirst(2)) }
            }
            if e.subdirectory == "cur" && flags.contains("S") { continue }
            if !flags.contains("S") { flags = String((flags + "S").sorted()) }
            let target = "\(path)/cur/\(e.base):2,\(flags)"
            if rename("\(path)/\(e.subdirectory)/\(e.name)", target) == 0 {
                touched.insert(e.subdirectory)
                touched.insert("cur")
            }
        }
        for sub in touched {
            do { try POSIX.fsyncDirectory("\(path)/\(sub)") } catch { firstError = firstError ?? error }
        }
        if let firstError { throw firstError }
    }
}
