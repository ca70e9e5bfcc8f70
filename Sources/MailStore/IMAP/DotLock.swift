#if canImport(Glibc)
import Glibc
#endif

/// A Dovecot-compatible dot-lock: the file `<path>.lock`, created with `O_EXCL`, holding `<pid>:<host>`.
///
/// A lock is stale (and taken over) when its holder runs on this host and is gone, or when neither the
/// lock nor the protected file changed for `staleAfter` seconds (Dovecot: 120 s for `dovecot-uidlist`
/// and `dovecot-keywords`, 30 s for `subscriptions`). The holder normally ends it with
/// ``replace(path:with:)``: the new content is written into the lock file, `fsync`ed and renamed over the
/// protected file (one atomic step that also releases the lock), then the directory is `fsync`ed.
final class DotLock {
    let path: String
    let lockPath: String
    private var fd: Int32 = -1

    /// Waits up to `timeout` seconds for the lock.
    init(protecting path: String, timeout: Double = 30, staleAfter: Int = 120) throws {
        self.path = path
        lockPath = path + ".lock"
        let deadline = Self.now() + timeout
        var delay: UInt32 = 2_000
        while true {
            let fd = Glibc.open(lockPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
            if fd >= 0 {
                let owner = "\(getpid()):\(Self.hostname)"
                try? owner.utf8.withContiguousStorageIfAvailable { try POSIX.writeAll(fd, UnsafeRawBufferPointer($0), path: lockPath) }
                self.fd = fd
                return
            }
            let code = errno
            if code == EINTR { continue }
            guard code == EEXIST else { throw StoreError("open", lockPath, code: code) }
            if Self.isStale(lockPath: lockPath, protected: path, staleAfter: staleAfter) {
                _ = unlink(lockPath)
                continue
            }
            guard Self.now() < deadline else { throw MailboxError.lockTimeout(path) }
            usleep(delay)
            delay = min(delay * 2, 100_000)
        }
    }

    static let hostname: String = {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, 255) == 0 else { return "localhost" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    private static func isStale(lockPath: String, protected: String, staleAfter: Int) -> Bool {
        var st = stat()
        guard lstat(lockPath, &st) == 0 else { return false }  // gone: the next open tries again
        let nowSeconds = Int(now())
        if let pid = owner(lockPath), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH { return true }
        var newest = Int(st.st_mtim.tv_sec)
        var pst = stat()
        if stat(protected, &pst) == 0 { newest = max(newest, Int(pst.st_mtim.tv_sec), Int(pst.st_ctim.tv_sec)) }
        return nowSeconds > newest + staleAfter
    }

    /// The PID in a lock file written by a process on this host.
    private static func owner(_ lockPath: String) -> pid_t? {
        guard let bytes = try? readFile(lockPath), bytes.count < 512 else { return nil }
        var text = String(decoding: bytes, as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }
        guard let colon = text.firstIndex(of: ":"), String(text[text.index(after: colon)...]) == hostname else { return nil }
        guard let pid = Int32(text[..<colon]), pid > 0 else { return nil }
        return pid
    }

    /// Durably replaces `path` with `bytes` and releases the lock.
    func replace(with bytes: [UInt8]) throws {
        precondition(fd >= 0, "DotLock.replace after release")
        defer { fd = -1 }
        do {
            defer { POSIX.close(fd) }
            guard ftruncate(fd, 0) == 0, lseek(fd, 0, SEEK_SET) == 0 else { throw StoreError("ftruncate", lockPath) }
            try bytes.withUnsafeBytes { try POSIX.writeAll(fd, $0, path: lockPath) }
            try POSIX.fsync(fd, path: lockPath)
        } catch {
            _ = unlink(lockPath)
            throw error
        }
        do { try POSIX.rename(lockPath, path) } catch { _ = unlink(lockPath); throw error }
        try POSIX.fsyncDirectory(parentDirectory(of: path))
    }

    /// Releases the lock without changing the protected file.
    func release() {
        guard fd >= 0 else { return }
        POSIX.close(fd)
        fd = -1
        _ = unlink(lockPath)
    }

    deinit { release() }
}

/// The directory part of `path` (`.` when there is none).
func parentDirectory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

/// The whole content of a (small) file; `nil` when it does not exist.
func readFile(_ path: String) throws -> [UInt8]? {
    let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
    if fd < 0 {
        if errno == ENOENT { return nil }
        throw StoreError("open", path)
    }
    defer { POSIX.close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        if n < 0 { if errno == EINTR { continue }; throw StoreError("read", path) }
        if n == 0 { return out }
        out += buf[0..<n]
    }
}

/// Durably writes `bytes` to `path`: a temporary file beside it, `fsync`, `rename`, directory `fsync`.
func writeFileAtomically(_ path: String, _ bytes: [UInt8]) throws {
    let tmp = "\(path).tmp.\(getpid()).\(writeCounter.next())"
    let fd = try POSIX.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW)
    do {
        defer { POSIX.close(fd) }
        try bytes.withUnsafeBytes { try POSIX.writeAll(fd, $0, path: tmp) }
        try POSIX.fsync(fd, path: tmp)
    } catch {
        POSIX.unlink(tmp)
        throw error
    }
    do { try POSIX.rename(tmp, path) } catch { POSIX.unlink(tmp); throw error }
    try POSIX.fsyncDirectory(parentDirectory(of: path))
}

let writeCounter = Counter()
