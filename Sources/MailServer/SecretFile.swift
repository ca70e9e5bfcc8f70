#if canImport(Glibc)
import Glibc
#endif

/// Small files holding secrets (DKIM private keys, the SRS secret): written durably and readable by
/// the owner only.
enum SecretFile {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Writes `text` to `path` durably: a temporary file (0600), fsync, rename, directory fsync.
    static func write(_ path: String, _ text: String) throws {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot write \(tmp): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 { if errno == EINTR { continue }; let e = errno; close(fd); unlink(tmp); throw Failure(description: "cannot write \(tmp): \(String(cString: strerror(e)))") }
            written += n
        }
        guard fsync(fd) == 0 else { let e = errno; close(fd); unlink(tmp); throw Failure(description: "cannot fsync \(tmp): \(String(cString: strerror(e)))") }
        close(fd)
        guard rename(tmp, path) == 0 else { throw Failure(description: "cannot rename \(tmp): \(String(cString: strerror(errno)))") }
        let dirPath = String(path[..<path.lastIndex(of: "/")!])
        let dfd = open(dirPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    /// The whole file as UTF-8 text.
    static func read(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw Failure(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
