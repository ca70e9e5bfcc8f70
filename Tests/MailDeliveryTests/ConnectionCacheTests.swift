import MailCore
import MailTesting
import Synchronization
import Testing
@testable import MailDelivery

/// A connection that records when it is closed.
final class FakeConnection: CachedConnection {
    let name: String
    let closed = Mutex(false)
    init(_ name: String) { self.name = name }
    func quit() async { closed.withLock { $0 = true } }
    var isClosed: Bool { closed.withLock { $0 } }
}

/// Waits (bounded) for `condition`; the cache closes connections in tasks of their own.
func eventually(_ condition: () -> Bool) async -> Bool {
    for _ in 0..<2000 {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(1))
    }
    return condition()
}

@Suite(.timeLimit(.minutes(1))) struct ConnectionCacheTests {
    @Test func idleConnectionIsClosedWhenItExpiresWithoutAnotherDelivery() async {
        let clock = ManualTestClock()
        let cache = ConnectionCache<FakeConnection>(idleTimeout: .seconds(30), clock: MonotonicClock(clock))
        let a = FakeConnection("a")
        await cache.checkIn("mx.example.test:25", a)
        clock.advance(by: .seconds(29))
        try? await Task.sleep(for: .milliseconds(20))  // the sweeper had time to act, and must not have
        #expect(!a.isClosed)
        #expect(await cache.count == 1)
        clock.advance(by: .seconds(1))
        #expect(await eventually { a.isClosed }, "not closed at its idle timeout")
        #expect(await cache.count == 0)
        #expect(await cache.checkOut("mx.example.test:25") == nil)
    }

    @Test func eachConnectionExpiresAtItsOwnTime() async {
        let clock = ManualTestClock()
        let cache = ConnectionCache<FakeConnection>(idleTimeout: .seconds(30), clock: MonotonicClock(clock))
        let first = FakeConnection("first"), second = FakeConnection("second")
        await cache.checkIn("h:25", first)
        clock.advance(by: .seconds(20))
        await cache.checkIn("h:25", second)
        clock.advance(by: .seconds(10))
        #expect(await eventually { first.isClosed })
        #expect(!second.isClosed)
        #expect(await cache.count == 1)
        clock.advance(by: .seconds(20))
        #expect(await eventually { second.isClosed })
    }

    @Test func checkOutReturnsTheFreshestAndClosesExpiredOnes() async {
        let clock = ManualTestClock()
        let cache = ConnectionCache<FakeConnection>(maximumPerKey: 2, idleTimeout: .seconds(30), clock: MonotonicClock(clock))
        let a = FakeConnection("a"), b = FakeConnection("b"), c = FakeConnection("c")
        await cache.checkIn("h:25", a)
        await cache.checkIn("h:25", b)
        await cache.checkIn("h:25", c)  // full: closed at once
        #expect(await eventually { c.isClosed })
        #expect(await cache.checkOut("h:25")?.name == "b")
        #expect(await cache.checkOut("other:25") == nil)
        #expect(await cache.checkOut("h:25")?.name == "a")
        #expect(await cache.checkOut("h:25") == nil)
        #expect(!a.isClosed && !b.isClosed)
    }
}
