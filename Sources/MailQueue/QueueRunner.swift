import Logging
import MailCore
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One message handed to a delivery agent.
public struct QueuedMessage: Sendable {
    /// The queue ID.
    public var id: String
    /// The envelope sender (empty = null sender).
    public var sender: String
    /// Recipients to try now.
    public var recipients: [String]
    /// Path of the message file (LF line ends).
    public var messagePath: String
}

/// What happened to one recipient.
public enum DeliveryOutcome: Hashable, Sendable {
    /// Accepted by the next hop.
    case delivered(String)
    /// Refused for good: RFC 3463 status and the reply text.
    case failed(status: String, diagnostic: String, remoteMTA: String?)
    /// Try again later.
    case deferred(status: String, diagnostic: String)
}

/// Delivers messages; MailQueue never speaks SMTP itself (ARCHITECTURE §1.6).
public protocol DeliveryAgent: Sendable {
    /// Tries `message`; returns an outcome for every recipient in `message.recipients`.
    func deliver(_ message: QueuedMessage) async -> [String: DeliveryOutcome]
}

/// Runs blocking file-system work (renames, fsyncs) off Swift's cooperative threads. The composition
/// root backs it with a thread pool; without one the work runs inline.
public protocol BlockingExecutor: Sendable {
    func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T
}

/// Runs the work where it is called (tests).
public struct InlineExecutor: BlockingExecutor {
    public init() {}
    public func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T { work() }
}

/// Something that reads the clock (seconds since the epoch); injected so tests never sleep.
public protocol QueueClock: Sendable {
    func now() -> Int
}

/// The wall clock.
public struct SystemQueueClock: QueueClock {
    public init() {}
    public func now() -> Int { Int(time(nil)) }
}

/// The queue manager: picks messages from `incoming/` and due ones from `deferred/`, hands them to the
/// delivery agent (several at once), records outcomes, retries with backoff and bounces with an
/// RFC 3464 DSN. Runs as a ServiceLifecycle service.
public final class QueueRunner: Service, Sendable {
    /// Settings.
    public struct Configuration: Sendable {
        /// Our host name (DSNs).
        public var hostname: String
        /// Messages in delivery at once.
        public var concurrency: Int
        /// Retry and lifetime.
        public var retry: RetryPolicy
        /// How often `deferred/` is scanned when nothing wakes the runner, seconds.
        public var scanInterval: Int
        /// How long deliveries in flight may take to finish at shutdown, seconds.
        public var shutdownGrace: Int = 10
        /// Where blocking spool work runs.
        public var blocking: any BlockingExecutor = InlineExecutor()

        public init(hostname: String, concurrency: Int = 20, retry: RetryPolicy = RetryPolicy(), scanInterval: Int = 1) {
            self.hostname = hostname
            self.concurrency = concurrency
            self.retry = retry
            self.scanInterval = scanInterval
        }
    }

    /// Puts a generated message (a DSN) into the queue; the composition root implements it with the
    /// same code path as intake.
    public typealias Injector = @Sendable (_ sender: String, _ recipients: [String], _ message: [UInt8]) throws -> String

    let spool: Spool
    let agent: any DeliveryAgent
    let configuration: Configuration
    let clock: any QueueClock
    let logger: Logger
    let inject: Injector
    private let woken = Mutex(false)
    /// IDs in delivery (`run()`), and whether a slot freed up since the loop last looked.
    private let inFlight = Mutex(Set<String>())
    /// Outcomes that could not be written (disk full): the envelope as it should be on disk. The entry
    /// itself went back to `deferred/` by a rename (which needs no space); this copy is used instead of
    /// the stale one on disk, and its next-attempt time is honoured, until a write succeeds.
    private let unrecorded = Mutex([String: QueueEnvelope]())
    private let slotFreed = Mutex(false)
    /// The read-write descriptor of the spool's wake-up FIFO while `run()` runs (`-1` otherwise): the
    /// loop waits on it, and every wake-up — new mail, a freed slot, shutdown, another process's
    /// `requestScan` — is one byte written to it.
    private let wakeupFD = Mutex<Int32>(-1)
    /// Whether start-up recovery has run (it must run once, before anything new is prepared).
    private let recovered = Mutex(false)
    /// Next-attempt times of the messages in `deferred/` (Postfix's qmgr keeps the same in its in-core
    /// queue), so that a scan lists the directory instead of reading every envelope: an ID listed for
    /// the first time has its envelope read once, the runner records the time it sets when it defers
    /// a message, and an operator's request (`queue retry ID`, `release`: a new wake-up stamp) empties
    /// it, since those rewrite envelopes from another process.
    private let schedule = Mutex(Schedule())

    struct Schedule {
        var nextAttempt: [String: Int] = [:]
        var stamp: Int?
        /// The earliest next-attempt time of a deferred message not yet due (seconds), if any.
        var earliest: Int?
    }

    public init(spool: Spool, agent: any DeliveryAgent, configuration: Configuration, clock: any QueueClock = SystemQueueClock(),
                logger: Logger, inject: @escaping Injector) {
        self.spool = spool
        self.agent = agent
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        self.inject = inject
    }

    /// Asks the runner to look at the queue now (after intake added a message, or `queue retry`).
    public func wake() {
        woken.withLock { $0 = true }
        poke()
    }

    /// Interrupts the loop's wait.
    private func poke() {
        let fd = wakeupFD.withLock { $0 }
        if fd >= 0 { Spool.poke(fd) }
    }

    /// The first RFC 3463 enhanced status code (`2.0.0`, `5.1.1`) in a reply or diagnostic.
    public static func enhancedStatus(in text: String) -> String? {
        let u = Array(text.utf8)
        func digits(_ i: Int, _ max: Int) -> Int {
            var n = 0
            while i + n < u.count, n < max, (0x30...0x39).contains(u[i + n]) { n += 1 }
            return n
        }
        var i = 0
        while i + 4 < u.count {
            if [0x32, 0x34, 0x35].contains(u[i]), i == 0 || (!(0x30...0x39).contains(u[i - 1]) && u[i - 1] != 0x2E),
               u[i + 1] == 0x2E {
                let a = digits(i + 2, 3)
                if a > 0, i + 2 + a < u.count, u[i + 2 + a] == 0x2E {
                    let b = digits(i + 3 + a, 3)
                    let end = i + 3 + a + b
                    if b > 0, end == u.count || !(0x30...0x39).contains(u[end]) && u[end] != 0x2E {
                        return String(decoding: u[i..<end], as: UTF8.self)
                    }
                }
            }
            i += 1
        }
        return nil
    }

    /// Start-up recovery of the spool (``Spool/recover()``: `tmp/` cleared, `active/` back to
    /// `incoming/`), once. A server calls it before its listeners accept mail: recovery clears
    /// `tmp/`, so it must not run while the intake is preparing new entries there. ``run()`` calls it
    /// too (a no-op the second time).
    public func recover() {
        let first = recovered.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        let corrupt = spool.recover()
        for id in corrupt { logger.error("unreadable queue entry moved to corrupt/", metadata: ["id": "\(id)"]) }
    }

    /// Recovers the spool (unless done already), then delivers until graceful shutdown (messages in flight finish first).
    ///
    /// Up to `concurrency` messages are in delivery at once, and a slot that frees up is refilled at
    /// once: a slow or stalled destination holds only its own slot, never the rest of the queue.
    /// Between scans the loop sleeps in `poll(2)` on the wake-up FIFO (on the blocking executor) until
    /// something writes to it — new mail, a freed slot, shutdown, `swallow queue retry` from another
    /// process — or until the earliest deferred message is due or the scan interval passes.
    public func run() async throws {
        recover()
        let fd: Int32
        do { fd = try spool.openWakeupFIFO() } catch {
            logger.error("cannot open the queue's wake-up FIFO; the queue is looked at every 20 ms instead: \(error)")
            fd = -1
        }
        wakeupFD.withLock { $0 = fd }
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await loop(fifo: fd)
            } onCancel: {
                self.poke()
            }
        } onGracefulShutdown: {
            self.poke()
        }
        // Shutdown: let deliveries in flight finish for up to `shutdownGrace` seconds.
        var waited = 0
        while inFlight.withLock({ !$0.isEmpty }) && waited < configuration.shutdownGrace * 1000 {
            try? await Task.sleep(for: .milliseconds(20))
            waited += 20
        }
        wakeupFD.withLock { $0 = -1 }
        if fd >= 0 { close(fd) }
        let left = inFlight.withLock { $0.count }
        if left > 0 {
            logger.notice("stopping with \(left) deliveries in flight; they are retried at the next start")
        }
    }

    private func loop(fifo: Int32) async {
        var scanRequest = spool.scanRequestStamp()
        var backlog: [(String, Spool.State)] = []
        var next = 0
        var rescan = true
        var lastScan = clock.now()
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            if next >= backlog.count && rescan {
                let busy = inFlight.withLock { $0 }
                backlog = dueWork(flushDeferred: spool.takeFlushRequest()).filter { !busy.contains($0.0) }
                next = 0
                rescan = false
                lastScan = clock.now()
            }
            while next < backlog.count {
                let (id, state) = backlog[next]
                let started = inFlight.withLock { set -> Bool in
                    guard set.count < configuration.concurrency else { return false }
                    set.insert(id)
                    return true
                }
                guard started else { break }
                next += 1
                // Unstructured, so that shutdown can stop waiting for a stalled peer: a delivery
                // cut short leaves its message in active/, which goes back to incoming/ at start.
                Task { [self] in
                    _ = await process(id, from: state)
                    inFlight.withLock { _ = $0.remove(id) }
                    slotFreed.withLock { $0 = true }
                    poke()
                }
            }
            // Wait until woken (new mail; a freed slot while work waits; a request from another
            // process), the earliest deferred message is due, the scan interval passes, or shutdown.
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                if woken.withLock({ w in defer { w = false }; return w }) { rescan = true; break }
                let stamp = spool.scanRequestStamp()  // `swallow queue retry/release` from another process
                if stamp != scanRequest { scanRequest = stamp; rescan = true; break }
                if next < backlog.count && slotFreed.withLock({ f in defer { f = false }; return f }) { break }
                let now = clock.now()
                var deadline = lastScan + configuration.scanInterval
                if let due = schedule.withLock({ $0.earliest }) { deadline = min(deadline, due) }
                if now >= deadline {
                    rescan = true
                    if next >= backlog.count { break }
                    // Work still waits for a slot, so a scan could start nothing now: wait for a slot
                    // (the scan follows once the backlog is started).
                    deadline = now + configuration.scanInterval
                }
                let milliseconds = fifo >= 0 ? Int32(clamping: (deadline - now) * 1000) : 20
                await configuration.blocking.run { Self.waitForWakeup(fifo, milliseconds: milliseconds) }
            }
        }
    }

    /// Blocks in `poll(2)` until a byte arrives in the FIFO (then reads every byte there) or
    /// `milliseconds` pass. Without a FIFO it just sleeps.
    private static func waitForWakeup(_ fd: Int32, milliseconds: Int32) {
        guard fd >= 0 else {
            usleep(useconds_t(max(0, milliseconds)) * 1000)
            return
        }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, milliseconds) > 0 else { return }
        var sink = [UInt8](repeating: 0, count: 512)
        while sink.withUnsafeMutableBytes({ read(fd, $0.baseAddress!, $0.count) }) > 0 {}
    }

    /// Messages to try now: all of `incoming/`, then the due ones of `deferred/` (all of them when
    /// `flushDeferred`).
    func dueWork(flushDeferred: Bool = false) -> [(String, Spool.State)] {
        let now = clock.now()
        var work: [(String, Spool.State)] = spool.ids(.incoming).map { ($0, .incoming) }
        let deferred = spool.ids(.deferred)
        if flushDeferred { return work + deferred.map { ($0, .deferred) } }
        let stamp = spool.scanRequestStamp()
        let known = schedule.withLock { s -> [String: Int] in
            if s.stamp != stamp {
                s.stamp = stamp
                s.nextAttempt.removeAll(keepingCapacity: true)
            }
            return s.nextAttempt
        }
        let pendingRecords = unrecorded.withLock { $0 }
        var learned: [String: Int] = [:]
        var earliest: Int?
        for id in deferred {
            let at: Int
            if let t = known[id] {
                at = t
            } else if let env = pendingRecords[id] ?? spool.envelope(id, .deferred) {
                at = env.nextAttempt
                learned[id] = at
            } else {
                continue  // taken or removed meanwhile
            }
            if at <= now { work.append((id, .deferred)) } else { earliest = min(earliest ?? at, at) }
        }
        schedule.withLock { s in
            if known.count != deferred.count - learned.count {
                // Some left deferred/ (delivered, held, deleted): forget them.
                let listed = Set(deferred)
                s.nextAttempt = s.nextAttempt.filter { listed.contains($0.key) }
            }
            s.nextAttempt.merge(learned) { current, _ in current }
            s.earliest = earliest
        }
        return work
    }

    /// One pass: every message in `incoming/` and every due one in `deferred/` is tried, at most
    /// `concurrency` at a time. Returns the IDs processed (tests call this directly).
    @discardableResult
    public func runOnce() async -> [String] {
        let work = dueWork(flushDeferred: spool.takeFlushRequest())
        guard !work.isEmpty else { return [] }
        var done: [String] = []
        await withTaskGroup(of: String?.self) { group in
            var next = 0
            func startNext() {
                guard next < work.count else { return }
                let (id, state) = work[next]
                next += 1
                group.addTask { [self] in await process(id, from: state) ? id : nil }
            }
            for _ in 0..<min(configuration.concurrency, work.count) { startNext() }
            while let r = await group.next() {
                if let r { done.append(r) }
                startNext()
            }
        }
        return done
    }

    /// Delivers one message; `false` when it could not be taken (moved meanwhile, or corrupt).
    func process(_ id: String, from state: Spool.State) async -> Bool {
        let spool = self.spool
        let logger = self.logger
        let taken: QueueEnvelope? = await configuration.blocking.run {
            do {
                // Not fsynced: after a crash, recovery returns active/ to incoming/ anyway.
                try spool.move(id, from: state, to: .active, durable: false)
            } catch {
                return nil  // gone (delivered by another pass, held or deleted by an operator)
            }
            guard let env = spool.envelope(id, .active) else {
                logger.error("unreadable envelope; moved to corrupt/", metadata: ["id": "\(id)"])
                try? spool.move(id, from: .active, to: .corrupt)
                return nil
            }
            return env
        }
        // An outcome of an earlier attempt that could not be written wins over the stale file.
        guard let onDisk = taken else { return false }
        let env = unrecorded.withLock { $0[id] } ?? onDisk
        let pending = env.pending.map(\.address)
        let outcomes = await agent.deliver(QueuedMessage(id: id, sender: env.sender, recipients: pending,
                                                         messagePath: spool.messagePath(id, .active)))
        let now = clock.now()
        let decision = QueueDecision.after(attempt: outcomes, on: env, now: now, policy: configuration.retry)
        for e in decision.events {
            // Like Postfix's delivery lines: delay= since arrival, dsn= the enhanced status, status=.
            func meta(_ text: String, _ status: String) -> Logger.Metadata {
                var m: Logger.Metadata = ["id": "\(id)", "to": "\(e.address.logEscaped())", "reply": "\(text.logEscaped())",
                                          "delay": "\(max(0, now - env.created))", "status": "\(status)"]
                if let dsn = Self.enhancedStatus(in: text) { m["dsn"] = "\(dsn)" }
                return m
            }
            switch e.kind {
            case .delivered(let reply): logger.info("delivered", metadata: meta(reply, "sent"))
            case .bounced(let diagnostic): logger.notice("bounced", metadata: meta(diagnostic, "bounced"))
            case .deferred(let diagnostic): logger.info("deferred", metadata: meta(diagnostic, "deferred"))
            case .expired: break
            }
        }
        if decision.events.contains(where: { $0.kind == .expired }) { logger.notice("expired", metadata: ["id": "\(id)"]) }
        if !decision.delayed.isEmpty { notify(decision.envelope, decision.delayed, now: now) }
        await configuration.blocking.run { [self] in
            let finalEnvelope = decision.envelope
            if !decision.failed.isEmpty { notify(finalEnvelope, decision.failed, now: now) }
            guard case .deferUntil = decision.disposition else {
                spool.remove(id, .active)
                return
            }
            // Known before the entry is visible in deferred/, so that no scan reads its envelope.
            schedule.withLock { s in
                s.nextAttempt[id] = finalEnvelope.nextAttempt
                s.earliest = min(s.earliest ?? finalEnvelope.nextAttempt, finalEnvelope.nextAttempt)
            }
            do {
                try spool.write(finalEnvelope, .active)
                try spool.move(id, from: .active, to: .deferred)
                unrecorded.withLock { _ = $0.removeValue(forKey: id) }
            } catch {
                // Most likely the disk is full: keep the outcome in memory and put the entry back in
                // deferred/ by a rename. It is retried at its time and recorded once space returns
                // (after a restart in between, the older envelope on disk applies: at worst a
                // recipient delivered meanwhile gets the message again).
                unrecorded.withLock { $0[id] = finalEnvelope }
                do {
                    try spool.move(id, from: .active, to: .deferred)
                    logger.error("cannot record the outcome; kept in memory and retried at the next attempt: \(error)",
                                 metadata: ["id": "\(id)"])
                } catch {
                    logger.error("cannot record the outcome; the message stays in active/ and is retried at restart: \(error)",
                                 metadata: ["id": "\(id)"])
                }
            }
        }
        return true
    }

    /// Sends a DSN to the original sender (never for the null sender: no bounce of a bounce).
    private func notify(_ env: QueueEnvelope, _ reports: [DeliveryStatusNotification.RecipientReport], now: Int) {
        guard !env.sender.isEmpty else {
            logger.notice("not bouncing a message with the null sender", metadata: ["id": "\(env.id)"])
            return
        }
        let headers = Self.headerSection(path: spool.messagePath(env.id, .active))
        let dsn = DeliveryStatusNotification(hostname: configuration.hostname, originalSender: env.sender, originalID: env.id,
                                             arrival: env.created, recipients: reports, originalHeaders: headers)
        let boundary = "\(env.id).\(now)/\(configuration.hostname)"
        do {
            let newID = try inject("", [env.sender], dsn.render(now: now, boundary: boundary))
            logger.info("sender notified", metadata: ["id": "\(env.id)", "dsn": "\(newID)", "to": "\(env.sender.logEscaped())"])
        } catch {
            logger.error("cannot queue a delivery status notification: \(error)", metadata: ["id": "\(env.id)"])
        }
    }

    /// The header section of a stored message (up to the first empty line, at most 64 KiB).
    public static func headerSection(path: String) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 65536)
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        guard n > 0 else { return [] }
        let bytes = Array(buf[0..<n])
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0x0A, i + 1 < bytes.count, bytes[i + 1] == 0x0A { return Array(bytes[...i]) }
            if bytes[i] == 0x0A, i + 2 < bytes.count, bytes[i + 1] == 0x0D, bytes[i + 2] == 0x0A { return Array(bytes[...i]) }
            i += 1
        }
        return bytes
    }
}
