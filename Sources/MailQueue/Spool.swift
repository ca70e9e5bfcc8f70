#if canImport(Glibc)
import Glibc
#endif
import MailCore

/// The durable outbound queue on disk (Postfix's idea, one process):
///
/// ```
/// queue/tmp/<id>/                 being written; never seen by the runner; deleted at start
/// queue/{incoming,active,deferred,hold,corrupt}/<id>/{message,envelope}
/// queue/wakeup                    its time stamp asks the runner to scan now (`swallow queue …`)
/// queue/flush                     present: every deferred message is due at the next scan
/// ```
/// A message is a directory, so every state change is one atomic `rename(2)` of that directory
/// (followed by an fsync of both parent directories). The envelope is replaced atomically (write to
/// `envelope.tmp`, fsync, rename). On start, `active/` goes back to `incoming/`; a directory whose
/// envelope cannot be read goes to `corrupt/` and is logged, never deleted.
public final class Spool: Sendable {
    /// The queue's state directories.
    public enum State: String, CaseIterable, Sendable {
        case incoming, active, deferred, hold, corrupt
    }

    /// `<data_dir>/queue`.
    public let root: String

    /// Opens (creating) the queue directories.
    public init(root: String) throws {
        self.root = root
        try Self.mkdirDurable(root)
        for d in ["tmp"] + State.allCases.map(\.rawValue) { try Self.mkdirDurable("\(root)/\(d)") }
    }

    /// The directory of message `id` in `state`.
    public func path(_ id: String, _ state: State) -> String { "\(root)/\(state.rawValue)/\(id)" }

    /// Creates `tmp/<id>/` for a new message and returns its path; write `message` there, then
    /// ``commit(id:envelope:)``.
    public func prepare(id: String) throws -> String {
        guard QueueEnvelope.isValidID(id) else { throw QueueError("invalid queue ID", id) }
        let dir = "\(root)/tmp/\(id)"
        guard mkdir(dir, 0o700) == 0 else { throw QueueError("mkdir", dir, errno) }
        return dir
    }

    /// Writes the envelope, fsyncs, and moves the prepared message into `incoming/` durably.
    public func commit(id: String, envelope: QueueEnvelope) throws {
        let dir = "\(root)/tmp/\(id)"
        try Self.writeFileDurably("\(dir)/envelope", envelope.encoded())
        try Self.fsyncPath(dir)
        try Self.renameDurably(dir, path(id, .incoming), fromParent: "\(root)/tmp", toParent: "\(root)/incoming")
    }

    /// Removes a prepared (uncommitted) message.
    public func discardPrepared(id: String) {
        Self.removeTree("\(root)/tmp/\(id)")
    }

    /// Moves message `id` between states (one rename, then fsyncs of both parents unless `durable` is
    /// false — for moves a crash may undo harmlessly, like taking a message into `active/`, which
    /// recovery returns to `incoming/` anyway).
    public func move(_ id: String, from: State, to: State, durable: Bool = true) throws {
        if durable {
            try Self.renameDurably(path(id, from), path(id, to), fromParent: "\(root)/\(from.rawValue)", toParent: "\(root)/\(to.rawValue)")
        } else {
            guard rename(path(id, from), path(id, to)) == 0 else { throw QueueError("rename", "\(path(id, from)) -> \(path(id, to))", errno) }
        }
    }

    /// Reads the envelope of `id` in `state`; `nil` when missing or unreadable.
    public func envelope(_ id: String, _ state: State) -> QueueEnvelope? {
        guard let text = Self.readFile("\(path(id, state))/envelope") else { return nil }
        return QueueEnvelope.decode(text)
    }

    /// Replaces the envelope of `id` in `state` atomically. `durable: false` skips the fsyncs, for
    /// changes a crash may lose harmlessly (an earlier next-attempt time from `queue retry`): the
    /// rename stays atomic, so the envelope is always the old one or the new one.
    public func write(_ envelope: QueueEnvelope, _ state: State, durable: Bool = true) throws {
        let dir = path(envelope.id, state)
        try Self.writeFile("\(dir)/envelope.tmp", envelope.encoded(), durably: durable)
        guard rename("\(dir)/envelope.tmp", "\(dir)/envelope") == 0 else { throw QueueError("rename", dir, errno) }
        if durable { try Self.fsyncPath(dir) }
    }

    /// Tells a running queue runner (in another process) to look at the queue now, like Postfix's
    /// `postqueue -f`: the `wakeup` file gets a new time, which the runner compares at every scan, and
    /// a byte goes into the ``wakeupFIFO`` that a running runner waits on (like Postfix's `public/qmgr`
    /// FIFO), so it looks at once. With `flushDeferred`, every deferred message is due at that scan
    /// whatever its next-attempt time, so "retry everything" rewrites no envelope; the request is a
    /// file, so one made while the server is down is carried out when it starts.
    public func requestScan(flushDeferred: Bool = false) {
        // `flush` first: a runner that sees the new `wakeup` time also finds the request.
        if flushDeferred { Self.touch("\(root)/flush") }
        Self.touch("\(root)/wakeup")
        // No runner (the FIFO has no reader, or is not there): the open fails, and the files above
        // carry the request to the next start.
        let fd = open(wakeupFIFO, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        if fd >= 0 {
            Self.poke(fd)
            close(fd)
        }
    }

    /// `queue/wakeup.fifo`: a running queue runner wakes up at every byte written to it.
    public var wakeupFIFO: String { "\(root)/wakeup.fifo" }

    /// Opens the ``wakeupFIFO`` for the runner, creating it when missing. Read-write, so that it
    /// never reads end-of-file when a writer goes away, and non-blocking.
    func openWakeupFIFO() throws -> Int32 {
        if mkfifo(wakeupFIFO, 0o600) != 0 && errno != EEXIST { throw QueueError("mkfifo", wakeupFIFO, errno) }
        let fd = open(wakeupFIFO, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw QueueError("open", wakeupFIFO, errno) }
        return fd
    }

    /// Writes one wake-up byte (a full FIFO already holds a wake-up).
    static func poke(_ fd: Int32) {
        var byte: UInt8 = 0x0A
        _ = Glibc.write(fd, &byte, 1)
    }

    /// The modification time of the wake-up file (0 when absent), compared by the runner.
    public func scanRequestStamp() -> Int {
        var st = stat()
        guard stat("\(root)/wakeup", &st) == 0 else { return 0 }
        return st.st_mtim.tv_sec &* 1_000_000_000 &+ st.st_mtim.tv_nsec
    }

    /// Takes a pending "flush every deferred message" request (`true` once per request).
    public func takeFlushRequest() -> Bool { unlink("\(root)/flush") == 0 }

    private static func touch(_ path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        if fd >= 0 { close(fd) }
        _ = utimensat(AT_FDCWD, path, nil, 0)  // both times: now
    }

    /// The message file of `id` in `state`.
    public func messagePath(_ id: String, _ state: State) -> String { "\(path(id, state))/message" }

    /// Deletes message `id` (after it was delivered or bounced). Not fsynced, as Postfix does not: a
    /// deletion lost to a power failure means one more delivery attempt (at least once), never a loss.
    public func remove(_ id: String, _ state: State) {
        // Out of the state directory first (one rename), so that a crash in the middle of the deletion
        // leaves no half-emptied entry for recovery to take for a corrupt message (tmp/ is cleared at start).
        let doomed = "\(root)/tmp/\(id).removed"
        if rename(path(id, state), doomed) == 0 {
            Self.removeTree(doomed)
        } else {
            Self.removeTree(path(id, state))
        }
    }

    /// IDs in `state`, oldest first (IDs sort by creation time).
    public func ids(_ state: State) -> [String] {
        Self.names("\(root)/\(state.rawValue)").filter(QueueEnvelope.isValidID).sorted()
    }

    /// Start-up recovery: `tmp/` is cleared, `active/` returns to `incoming/`, unreadable envelopes go
    /// to `corrupt/`. Returns the IDs moved to `corrupt/`.
    @discardableResult
    public func recover() -> [String] {
        for name in Self.names("\(root)/tmp") { Self.removeTree("\(root)/tmp/\(name)") }
        for id in ids(.active) { try? move(id, from: .active, to: .incoming) }
        var corrupt: [String] = []
        for state in [State.incoming, .deferred, .hold] {
            for name in Self.names("\(root)/\(state.rawValue)") {
                let ok = QueueEnvelope.isValidID(name) && envelope(name, state) != nil
                    && access("\(root)/\(state.rawValue)/\(name)/message", R_OK) == 0
                if !ok {
                    try? Self.renameDurably("\(root)/\(state.rawValue)/\(name)", "\(root)/corrupt/\(name)",
                                            fromParent: "\(root)/\(state.rawValue)", toParent: "\(root)/corrupt")
                    corrupt.append(name)
                }
            }
        }
        return corrupt
    }

    // MARK: File helpers

    static func mkdirDurable(_ path: String) throws {
        if mkdir(path, 0o700) == 0 {
            var parent = path
            if let slash = parent.lastIndex(of: "/") { parent = String(parent[..<slash]) } else { parent = "." }
            try fsyncPath(parent.isEmpty ? "/" : parent)
        } else if errno != EEXIST {
            throw QueueError("mkdir", path, errno)
        }
    }

    static func fsyncPath(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw QueueError("open", path, errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw QueueError("fsync", path, errno) }
    }

    static func renameDurably(_ from: String, _ to: String, fromParent: String, toParent: String) throws {
        guard rename(from, to) == 0 else { throw QueueError("rename", "\(from) -> \(to)", errno) }
        try fsyncPath(toParent)
        if fromParent != toParent { try fsyncPath(fromParent) }
    }

    static func writeFileDurably(_ path: String, _ text: String) throws { try writeFile(path, text, durably: true) }

    static func writeFile(_ path: String, _ text: String, durably: Bool) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw QueueError("open", path, errno) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 { if errno == EINTR { continue }; throw QueueError("write", path, errno) }
            off += n
        }
        if durably { guard fsync(fd) == 0 else { throw QueueError("fsync", path, errno) } }
    }

    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            out += buf[0..<n]
            if out.count > 1 << 22 { return nil }
        }
        return String(validating: out, as: UTF8.self)
    }

    static func names(_ dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = directoryEntryName(e)
            if name != "." && name != ".." { out.append(name) }
        }
        return out
    }

    static func removeTree(_ path: String) {
        for name in names(path) { unlink("\(path)/\(name)") }
        rmdir(path)
    }
}

/// A queue file-system failure (for the log).
public struct QueueError: Error, CustomStringConvertible, Sendable {
    /// What failed, the path, and errno.
    public let operation: String, path: String, code: Int32

    init(_ operation: String, _ path: String, _ code: Int32 = 0) {
        self.operation = operation
        self.path = path
        self.code = code
    }

    /// `true` for ENOSPC/EDQUOT.
    public var isOutOfSpace: Bool { code == ENOSPC || code == EDQUOT }

    public var description: String {
        code == 0 ? "\(operation): \(path)" : "\(operation) \(path): \(String(cString: strerror(code)))"
    }
}
