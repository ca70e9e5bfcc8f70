#if canImport(CoreFoundation)
import CoreFoundation
#endif
import MailCore
import MailQueue
import MailStore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// Puts messages into the spool for the queue runner: from intake (remote recipients) and from the
/// runner itself (DSNs). Blocking: call from the thread pool.
final class OutboundQueue: Sendable {
    let spool: Spool
    private let runner = NIOLockedValueBox<QueueRunner?>(nil)
    private let sequence = NIOLockedValueBox<UInt32>(0)

    init(spool: Spool) { self.spool = spool }

    /// The runner to wake after each new message.
    func attach(_ r: QueueRunner) { runner.withLockedValue { $0 = r } }

    func nextID() -> QueueID {
        var tv = timeval()
        gettimeofday(&tv, nil)
        let n = sequence.withLockedValue { v -> UInt32 in
            v &+= 1
            return v
        }
        return QueueID(microseconds: UInt64(tv.tv_sec) * 1_000_000 + UInt64(tv.tv_usec), sequence: n)
    }

    /// Writes the message into `queue/tmp/<id>/` (durable, not yet visible to the runner).
    func prepare(id: QueueID, headers: [UInt8], spool file: SpoolFile?, tail: ByteBuffer) throws {
        let dir = try spool.prepare(id: id.rawValue)
        do {
            _ = try MaildirStore.writeMessageFile(path: dir + "/message", headers: headers, spool: file, tail: tail)
        } catch {
            spool.discardPrepared(id: id.rawValue)
            throw error
        }
    }

    /// Makes a prepared message visible to the runner (durably) and wakes it.
    func commit(id: QueueID, sender: String, recipients: [String]) throws {
        let envelope = QueueEnvelope(id: id.rawValue, sender: sender, recipients: recipients, created: Int(time(nil)))
        try spool.commit(id: id.rawValue, envelope: envelope)
        runner.withLockedValue { $0 }?.wake()
    }

    /// Drops a prepared message.
    func discard(id: QueueID) { spool.discardPrepared(id: id.rawValue) }

    /// Queues a generated message (a DSN) in one step.
    /// `headers` (storage form) go before `message` (wire form), e.g. its DKIM signatures.
    func inject(sender: String, recipients: [String], message: [UInt8], headers: [UInt8] = []) throws -> String {
        let id = nextID()
        try prepare(id: id, headers: headers, spool: nil, tail: ByteBuffer(bytes: message))
        try commit(id: id, sender: sender, recipients: recipients)
        return id.rawValue
    }
}

/// Runs the queue runner's blocking spool work on the server's thread pool.
struct ThreadPoolExecutor: BlockingExecutor {
    let pool: NIOThreadPool

    func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        if let value = try? await pool.runIfActive(work) { return value }
        return work()  // the pool is shutting down: finish inline
    }
}

extension QueueRunner.Configuration {
    /// The runner's settings from `[delivery]` (and `[smtp] shutdown_grace`), with blocking spool work
    /// on `threadPool`.
    init(_ c: ServerConfiguration, threadPool: NIOThreadPool) {
        self.init(hostname: c.hostname, concurrency: c.delivery.concurrency,
                  retry: RetryPolicy(initialDelay: c.delivery.retryInitial, maximumDelay: c.delivery.retryMaximum,
                                     lifetime: c.delivery.lifetime,
                                     delayWarning: c.delivery.delayWarning > 0 ? c.delivery.delayWarning : nil))
        shutdownGrace = c.smtp.shutdownGrace
        blocking = ThreadPoolExecutor(pool: threadPool)
    }
}
