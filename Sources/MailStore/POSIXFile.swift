#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure of a file-system call, with errno, the call and the path (for the log, never for peers).
public struct StoreError: Error, CustomStringConvertible, Sendable {
    /// The `errno` value.
    public var code: Int32
    /// The call that failed (`open`, `write`, `fsync`, …).
    public var operation: String
    /// The path involved.
    public var path: String

    /// `true` when the file system is full or a quota is exhausted (answer `452 4.3.1`).
    public var isOutOfSpace: Bool { code == ENOSPC || code == EDQUOT }

    public var description: String {
        "\(operation) \(path): \(String(cString: strerror(code))) (errno \(code))"
    }

    /// Creates an error; `code` defaults to the current errno.
    public init(_ operation: String, _ path: String, code: Int32 = errno) {
        self.code = code
        self.operation = operation
        self.path = path
    }
}

/// Thin, EINTR-safe wrappers over the POSIX calls the store needs.
enum POSIX {
    static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0o600) throws -> Int32 {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 { return fd }
            if errno != EINTR { throw StoreError("open", path) }
        }
    }

    /// Opens a message file for reading: never through a symbolic link (a user who can write into the
    /// Maildir must not make the server read another file), never blocking (a FIFO planted there would
    /// hang the reader), and only a regular file.
    static func openMessage(_ path: String) throws -> Int32 {
        try checkedMessage(try open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK), path: path)
    }

    /// `openMessage` of `name` in the open directory `directory` (no path walk from the root);
    /// `path` names the file in errors.
    static func openMessage(in directory: Int32, _ name: String, path: @autoclosure () -> String) throws -> Int32 {
        while true {
            let fd = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            if fd >= 0 { return try checkedMessage(fd, path: path()) }
            if errno != EINTR { throw StoreError("open", path()) }
        }
    }

    /// `openMessage(in:_:path:)` that also returns the file's `stat` (one `fstat` for the check, the
    /// size and the mtime). `nil` when the file does not exist.
    static func openMessageWithStat(in directory: Int32, _ name: String, path: @autoclosure () -> String) throws -> (Int32, stat)? {
        while true {
            let fd = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            if fd >= 0 {
                var st = stat()
                guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
                    close(fd)
                    throw StoreError("open", path(), code: EINVAL)
                }
                return (fd, st)
            }
            if errno == ENOENT { return nil }
            if errno != EINTR { throw StoreError("open", path()) }
        }
    }

    /// Reads the whole file `fd` of `size` octets (reading on if it grew).
    static func readWhole(_ fd: Int32, size: Int, path: @autoclosure () -> String) throws -> [UInt8] {
        var out = [UInt8]()
        var capacity = max(size, 0) + 1  // one more: end of file is seen in the same pass
        while true {
            var failed: Int32 = 0
            var atEnd = false
            let previous = out
            out = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
                count = buffer.initialize(fromContentsOf: previous)
                while count < capacity {
                    let n = read(fd, buffer.baseAddress! + count, capacity - count)
                    if n < 0 { if errno == EINTR { continue }; failed = errno; return }
                    if n == 0 { atEnd = true; return }
                    count += n
                }
            }
            if failed != 0 { throw StoreError("read", path(), code: failed) }
            if atEnd { return out }
            capacity *= 2
        }
    }

    private static func checkedMessage(_ fd: Int32, path: @autoclosure () -> String) throws -> Int32 {
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw StoreError("open", path(), code: EINVAL)
        }
        return fd
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError("write", path)
            }
            offset += n
        }
    }

    static func fsync(_ fd: Int32, path: String) throws {
        while Glibc.fsync(fd) != 0 {
            if errno != EINTR { throw StoreError("fsync", path) }
        }
    }

    static func fsyncDirectory(_ path: String) throws {
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        try fsync(fd, path: path)
    }

    static func close(_ fd: Int32) { _ = Glibc.close(fd) }

    static func mkdir(_ path: String, _ mode: mode_t = 0o700) throws -> Bool {
        if Glibc.mkdir(path, mode) == 0 { return true }
        if errno == EEXIST { return false }
        throw StoreError("mkdir", path)
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    static func unlink(_ path: String) { _ = Glibc.unlink(path) }

    static func link(_ from: String, _ to: String) throws {
        if Glibc.link(from, to) != 0 { throw StoreError("link", to) }
    }

    static func rename(_ from: String, _ to: String) throws {
        if Glibc.rename(from, to) != 0 { throw StoreError("rename", to) }
    }

    /// Creates `path` and any missing parents; fsyncs each parent whose entry list changed.
    static func makeDirectories(_ path: String, mode: mode_t = 0o700) throws {
        if exists(path) { return }
        var parent = path
        if let slash = parent.lastIndex(of: "/") { parent = String(parent[..<slash]) } else { parent = "." }
        if parent.isEmpty { parent = "/" }
        try makeDirectories(parent, mode: mode)
        if try mkdir(path, mode) { try fsyncDirectory(parent) }
    }

    static func fileSize(_ fd: Int32, path: String) throws -> Int {
        var st = stat()
        if fstat(fd, &st) != 0 { throw StoreError("fstat", path) }
        return Int(st.st_size)
    }
}
