import Foundation
import Logging
import MailQueue
import Synchronization
import Testing

final class ManualClock: QueueClock, Sendable {
    let value = Mutex(1_800_000_000)
    func now() -> Int { value.withLock { $0 } }
    func advance(_ s: Int) { value.withLock { $0 += s } }
}

/// A delivery agent that answers from a script: recipient → outcomes for successive attempts.
final class ScriptedAgent: DeliveryAgent, Sendable {
    let script: Mutex<[String: [DeliveryOutcome]]>
    let calls = Mutex<[[String]]>([])
    init(_ script: [String: [DeliveryOutcome]]) { self.script = Mutex(script) }
    func deliver(_ message: QueuedMessage) async -> [String: DeliveryOutcome] {
        calls.withLock { $0.append(message.recipients) }
        return script.withLock { s in
            var out: [String: DeliveryOutcome] = [:]
            for r in message.recipients {
                var list = s[r] ?? [.deferred(status: "4.0.0", diagnostic: "no script")]
                out[r] = list.count > 1 ? list.removeFirst() : list[0]
                s[r] = list
            }
            return out
        }
    }
}

final class Injected: Sendable {
    let list = Mutex<[(String, [String], [UInt8])]>([])
    func withLock<T>(_ f: (inout [(String, [String], [UInt8])]) -> T) -> T { list.withLock { f(&$0) } }
}

@Suite struct MailQueueTests {
    let root = NSTemporaryDirectory() + "queue-\(UUID().uuidString)"
    var logger: Logger { var l = Logger(label: "q"); l.logLevel = .critical; return l }

    func enqueue(_ spool: Spool, id: String, sender: String, to: [String], created: Int, body: String = "Subject: t\n\nhi\n") throws {
        let dir = try spool.prepare(id: id)
        try Data(body.utf8).write(to: URL(fileURLWithPath: dir + "/message"))
        try spool.commit(id: id, envelope: QueueEnvelope(id: id, sender: sender, recipients: to, created: created))
    }

    func runner(_ spool: Spool, _ agent: any DeliveryAgent, _ clock: ManualClock,
                injected: Injected) -> QueueRunner {
        QueueRunner(spool: spool, agent: agent,
                    configuration: .init(hostname: "mx.test", retry: RetryPolicy(initialDelay: 300, maximumDelay: 3600, lifetime: 86400)),
                    clock: clock, logger: logger, inject: { s, r, m in
                        injected.withLock { $0.append((s, r, m)) }
                        return "DSN1"
                    })
    }

    @Test func envelopeRoundTripAndTornWrites() {
        var e = QueueEnvelope(id: "ABC123", sender: "a@x.test", recipients: ["b@y.test", "c@y.test"], created: 10)
        e.recipients[1].state = .failed
        e.recipients[1].status = "5.1.1"
        e.recipients[1].lastResponse = "550 5.1.1 no\r\nsuch user"
        e.lastError = "451 later"
        let text = e.encoded()
        var expected = e
        expected.recipients[1].lastResponse = "550 5.1.1 no  such user"
        #expect(QueueEnvelope.decode(text) == expected)
        #expect(QueueEnvelope.decode(String(text.dropLast(4))) == nil)  // no "end": torn
        #expect(QueueEnvelope.decode("garbage") == nil)
        #expect(QueueEnvelope.decode(text.replacingOccurrences(of: "id ABC123", with: "id ../etc")) == nil)
        #expect(QueueEnvelope(id: "X1", sender: "", recipients: ["b@y"], created: 1).encoded().contains("sender \n"))
        #expect(QueueEnvelope.decode(QueueEnvelope(id: "X1", sender: "", recipients: ["b@y"], created: 1).encoded())?.sender == "")
    }

    @Test("recipients with spaces and percent signs (quoted local parts) survive; version 1 files still read")
    func envelopeAddressesWithSpaces() {
        var e = QueueEnvelope(id: "Q7", sender: "a@x.test", recipients: ["\"john smith\"@y.test", "\"100% \\\" x\"@y.test", "plain+tag@y.test"], created: 10)
        e.recipients[0].lastResponse = "451 4.3.0 try later"
        let text = e.encoded()
        #expect(text.contains("rcpt pending - \"john%20smith\"@y.test 451 4.3.0 try later\n"))
        #expect(QueueEnvelope.decode(text) == e)
        let v1 = "swallow-envelope 1\nid Q8\nsender a@x.test\ncreated 1\nattempts 0\nnext 1\ndelay-notified 0\nrcpt pending - b%c@y.test 451 later\nend\n"
        #expect(QueueEnvelope.decode(v1)?.recipients.first?.address == "b%c@y.test")
        #expect(QueueEnvelope.decode(v1)?.recipients.first?.lastResponse == "451 later")
        #expect(QueueEnvelope.decode(text.replacingOccurrences(of: "john%20smith", with: "john%2")) == nil)
    }

    @Test func retryPolicy() {
        let p = RetryPolicy(initialDelay: 300, maximumDelay: 3600, lifetime: 86400, delayWarning: 7200)
        #expect((1...6).map { p.delay(afterAttempts: $0) } == [300, 600, 1200, 2400, 3600, 3600])
        #expect(p.decide(created: 0, attempts: 1, now: 100) == .retry(at: 400))
        #expect(p.decide(created: 0, attempts: 9, now: 86000) == .retry(at: 86400))
        #expect(p.decide(created: 0, attempts: 9, now: 86400) == .expire)
        #expect(!p.shouldWarn(created: 0, now: 7199, alreadyWarned: false))
        #expect(p.shouldWarn(created: 0, now: 7200, alreadyWarned: false))
        #expect(!p.shouldWarn(created: 0, now: 9000, alreadyWarned: true))
    }

    /// A runner whose one message, M1, was tried once and deferred (its agent always answers 451).
    func deferredOnce() async throws -> (Spool, ManualClock, ScriptedAgent, QueueRunner) {
        let spool = try Spool(root: root)
        let clock = ManualClock()
        let agent = ScriptedAgent(["later@y.test": [.deferred(status: "4.2.0", diagnostic: "451 busy")]])
        let r = runner(spool, agent, clock, injected: Injected())
        try enqueue(spool, id: "M1", sender: "s@x.test", to: ["later@y.test"], created: clock.now())
        #expect(await r.runOnce() == ["M1"])
        return (spool, clock, agent, r)
    }

    /// The runner keeps the next-attempt times of deferred messages in memory: a scan lists
    /// `deferred/` without reading envelopes, so a rewrite behind its back is not seen until an
    /// operator's request (`queue retry ID`, `release`: a new wake-up stamp) makes it read them again.
    @Test func deferredTimesComeFromTheRunnersIndex() async throws {
        let (spool, clock, agent, r) = try await deferredOnce()
        #expect(spool.envelope("M1", .deferred)?.nextAttempt == clock.now() + 300)
        clock.advance(10)
        #expect(await r.runOnce() == [])
        // Another process makes it due without telling the runner: the index still says +300.
        var e = try #require(spool.envelope("M1", .deferred))
        e.nextAttempt = clock.now()
        try spool.write(e, .deferred)
        #expect(await r.runOnce() == [])
        // An operator's request makes the runner read the envelopes again.
        try await Task.sleep(for: .milliseconds(5))  // a wake-up stamp distinct from the first one
        spool.requestScan()
        #expect(await r.runOnce() == ["M1"])
        // At its recorded time the message is due without any request.
        let next = try #require(spool.envelope("M1", .deferred)).nextAttempt
        clock.advance(next - clock.now() - 1)
        #expect(await r.runOnce() == [])
        clock.advance(1)
        #expect(await r.runOnce() == ["M1"])
        #expect(agent.calls.withLock { $0.count } == 3)
    }

    @Test func deliversDefersRetriesAndBounces() async throws {
        let spool = try Spool(root: root)
        let clock = ManualClock()
        let agent = ScriptedAgent([
            "ok@y.test": [.delivered("250 ok")],
            "later@y.test": [.deferred(status: "4.2.0", diagnostic: "451 busy"), .delivered("250 ok")],
            "bad@y.test": [.failed(status: "5.1.1", diagnostic: "550 5.1.1 unknown", remoteMTA: "mx.y.test")],
        ])
        let injected = Injected()
        let r = runner(spool, agent, clock, injected: injected)
        try enqueue(spool, id: "M1", sender: "s@x.test", to: ["ok@y.test", "later@y.test", "bad@y.test"], created: clock.now())
        #expect(await r.runOnce() == ["M1"])
        // ok delivered, bad bounced at once, later deferred for 300 s.
        #expect(spool.ids(.deferred) == ["M1"])
        let env = try #require(spool.envelope("M1", .deferred))
        #expect(env.pending.map(\.address) == ["later@y.test"])
        #expect(env.nextAttempt == clock.now() + 300)
        let dsn = injected.withLock { $0 }
        #expect(dsn.count == 1 && dsn[0].0 == "" && dsn[0].1 == ["s@x.test"])
        let text = String(decoding: dsn[0].2, as: UTF8.self)
        #expect(text.contains("Content-Type: multipart/report; report-type=delivery-status;"))
        #expect(text.contains("Final-Recipient: rfc822; bad@y.test\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.y.test\r\nDiagnostic-Code: smtp; 550 5.1.1 unknown"))
        #expect(text.contains("Content-Type: text/rfc822-headers\r\n\r\nSubject: t\r\n"))
        // Not due yet: nothing happens.
        #expect(await r.runOnce().isEmpty)
        clock.advance(300)
        #expect(await r.runOnce() == ["M1"])
        #expect(Spool.State.allCases.allSatisfy { spool.ids($0).isEmpty })
        #expect(agent.calls.withLock { $0 } == [["ok@y.test", "later@y.test", "bad@y.test"], ["later@y.test"]])
    }

    @Test("a flush request (`queue retry`) makes every deferred message due once, without rewriting envelopes")
    func flushRequestTakesDeferredMessagesOnce() async throws {
        let (spool, _, _, r) = try await deferredOnce()
        let before = try #require(spool.envelope("M1", .deferred))
        #expect(await r.runOnce().isEmpty)  // due in 300 s
        spool.requestScan(flushDeferred: true)
        #expect(try #require(spool.envelope("M1", .deferred)) == before)  // the request touches no envelope
        #expect(await r.runOnce() == ["M1"])
        #expect(try #require(spool.envelope("M1", .deferred)).attempts == 2)
        #expect(await r.runOnce().isEmpty)  // the request was used up
        spool.requestScan()  // a plain wake-up makes nothing due
        #expect(await r.runOnce().isEmpty)
    }

    @Test("the running loop picks up a message as soon as it is woken and a flush request from another process")
    func runLoopWakesAndFlushes() async throws {
        let spool = try Spool(root: root)
        let clock = ManualClock()
        let agent = ScriptedAgent(["ok@y.test": [.delivered("250 ok")],
                                   "later@y.test": [.deferred(status: "4.2.0", diagnostic: "451 busy"), .delivered("250 ok")]])
        let r = QueueRunner(spool: spool, agent: agent,
                            configuration: .init(hostname: "mx.test", retry: RetryPolicy(initialDelay: 300), scanInterval: 3600),
                            clock: clock, logger: logger, inject: { _, _, _ in "DSN1" })
        let loop = Task { try await r.run() }
        defer { loop.cancel() }
        func waitUntil(_ what: String, _ done: () -> Bool) async throws {
            for _ in 0..<500 where !done() { try await Task.sleep(for: .milliseconds(10)) }
            #expect(done(), "\(what)")
        }
        try enqueue(spool, id: "M1", sender: "s@x.test", to: ["later@y.test"], created: clock.now())
        r.wake()
        try await waitUntil("M1 deferred") { spool.ids(.deferred) == ["M1"] }
        try enqueue(spool, id: "M2", sender: "s@x.test", to: ["ok@y.test"], created: clock.now())
        r.wake()
        try await waitUntil("M2 delivered") { Spool.State.allCases.allSatisfy { !spool.ids($0).contains("M2") } }
        #expect(spool.ids(.deferred) == ["M1"])  // not due (scan interval one hour, retry in 300 s)
        spool.requestScan(flushDeferred: true)  // what `swallow queue retry` does from its own process
        try await waitUntil("M1 delivered after the flush") { Spool.State.allCases.allSatisfy { spool.ids($0).isEmpty } }
        #expect(agent.calls.withLock { $0 } == [["later@y.test"], ["ok@y.test"], ["later@y.test"]])
    }

    @Test func expiresAfterLifetimeAndNeverBouncesABounce() async throws {
        let spool = try Spool(root: root)
        let clock = ManualClock()
        let agent = ScriptedAgent(["x@y.test": [.deferred(status: "4.4.1", diagnostic: "connection refused")]])
        let injected = Injected()
        let r = runner(spool, agent, clock, injected: injected)
        try enqueue(spool, id: "B1", sender: "", to: ["x@y.test"], created: clock.now())
        try enqueue(spool, id: "N1", sender: "s@x.test", to: ["x@y.test"], created: clock.now())
        var rounds = 0
        while !(spool.ids(.deferred).isEmpty && spool.ids(.incoming).isEmpty) && rounds < 100 {
            _ = await r.runOnce()
            clock.advance(3600)
            rounds += 1
        }
        #expect(rounds > 20 && rounds < 30)  // 300, 600, … capped at 3600 until 86400 s
        let dsn = injected.withLock { $0 }
        #expect(dsn.count == 1)  // for N1 only: B1 has the null sender
        #expect(String(decoding: dsn[0].2, as: UTF8.self).contains("Status: 4.4.7"))
    }

    @Test func recoveryReturnsActiveAndQuarantinesCorruptEntries() throws {
        let spool = try Spool(root: root)
        try enqueue(spool, id: "A1", sender: "s@x", to: ["r@y"], created: 1)
        try spool.move("A1", from: .incoming, to: .active)  // as if the server died mid-delivery
        try enqueue(spool, id: "C1", sender: "s@x", to: ["r@y"], created: 1)
        try "swallow-envelope 1\nid C1\n".write(toFile: spool.path("C1", .incoming) + "/envelope", atomically: false, encoding: .utf8)
        _ = try spool.prepare(id: "T1")  // a half-written entry in tmp/
        let corrupt = spool.recover()
        #expect(corrupt == ["C1"])
        #expect(spool.ids(.incoming) == ["A1"])
        #expect(spool.ids(.active).isEmpty)
        #expect(spool.ids(.corrupt) == ["C1"])
        #expect(!FileManager.default.fileExists(atPath: root + "/tmp/T1"))
    }
}
