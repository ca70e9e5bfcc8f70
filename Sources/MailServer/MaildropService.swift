import Directory
import MailCore
import MailStore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import POP3Core
import POP3Server
#if canImport(Glibc)
import Glibc
#endif

/// Implements the POP3 server's delegate over the directory and the Maildirs: logins through the
/// ``Authenticator``, one session per maildrop at a time, snapshots taken at login.
final class MaildropService: POP3ServerDelegate {
    let authenticator: Authenticator
    let store: MaildirStore
    let threadPool: NIOThreadPool
    private let locked = NIOLockedValueBox<Set<String>>([])

    init(authenticator: Authenticator, store: MaildirStore, threadPool: NIOThreadPool) {
        self.authenticator = authenticator
        self.store = store
        self.threadPool = threadPool
    }

    func authenticate(user: String, password: String, remoteIP: String) async -> Bool {
        await authenticator.verify(user: user, password: password, remoteIP: remoteIP)
    }

    func openMaildrop(user: String) async throws -> any POP3Maildrop {
        let key = user.lowercased()
        guard let path = store.path(ofAddress: key) else { throw StoreError("maildrop", key, code: EINVAL) }
        let acquired = locked.withLockedValue { $0.insert(path).inserted }
        guard acquired else { throw POP3MaildropError.inUse }
        do {
            let drop = try await threadPool.runIfActive { try MaildirMaildrop(path: path) }
            return MaildirPOP3Maildrop(drop: drop, threadPool: threadPool, changed: store.changed) { [locked] in
                _ = locked.withLockedValue { $0.remove(path) }
            }
        } catch {
            _ = locked.withLockedValue { $0.remove(path) }
            throw error
        }
    }
}

final class MaildirPOP3Maildrop: POP3Maildrop {
    let drop: MaildirMaildrop
    let threadPool: NIOThreadPool
    let messages: [POP3ServerStateMachine.MessageInfo]
    private let unlock: @Sendable () -> Void
    private let released = NIOLockedValueBox(false)

    private let changed: (@Sendable (String) -> Void)?

    init(drop: MaildirMaildrop, threadPool: NIOThreadPool, changed: (@Sendable (String) -> Void)?, unlock: @escaping @Sendable () -> Void) {
        self.changed = changed
        self.drop = drop
        self.threadPool = threadPool
        self.unlock = unlock
        self.messages = drop.entries.map { .init(size: $0.size, uid: $0.uid) }
    }

    func read(_ index: Int, chunkSize: Int) async throws -> any POP3MessageReader {
        let fd = try await threadPool.runIfActive { try self.drop.open(index) }
        return FileReader(fd: fd, chunkSize: chunkSize, threadPool: threadPool)
    }

    func readCached(_ index: Int, limit: Int) -> ByteBuffer? { drop.readCached(index, limit: limit) }

    func update(deleted: Set<Int>, retrieved: Set<Int>) async throws {
        try await threadPool.runIfActive { try self.drop.update(deleted: deleted, retrieved: retrieved) }
        changed?(drop.path)
    }

    func release() async {
        let first = released.withLockedValue { r -> Bool in
            defer { r = true }
            return !r
        }
        if first { unlock() }
    }
}

final class FileReader: POP3MessageReader {
    private let fd: NIOLockedValueBox<Int32>
    private let chunkSize: Int
    private let threadPool: NIOThreadPool

    init(fd: Int32, chunkSize: Int, threadPool: NIOThreadPool) {
        self.fd = NIOLockedValueBox(fd)
        self.chunkSize = chunkSize
        self.threadPool = threadPool
    }

    func next() async throws -> ByteBuffer? {
        let size = chunkSize
        return try await threadPool.runIfActive { [fd] in
            try fd.withLockedValue { fd -> ByteBuffer? in
                guard fd >= 0 else { return nil }
                var buffer = ByteBuffer()
                let n = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw -> Int in
                    while true {
                        let r = Glibc.read(fd, raw.baseAddress!, min(raw.count, size))
                        if r >= 0 { return r }
                        if errno != EINTR { throw StoreError("read", "message", code: errno) }
                    }
                }
                return n == 0 ? nil : buffer
            }
        }
    }

    func close() async {
        fd.withLockedValue { fd in
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
        }
    }

    deinit {
        let f = fd.withLockedValue { $0 }
        if f >= 0 { Glibc.close(f) }
    }
}
