import ListenerSupport
import NIOCore
import NIOEmbedded
import Testing

@Suite struct IdleTimerTests {
    @Test("fires a period after the last restart; a restart only moves the deadline")
    func restartMovesTheDeadline() {
        let loop = EmbeddedEventLoop()
        var fired: [Int64] = []
        let start = loop.now
        let timer = IdleTimer(eventLoop: loop) { fired.append((loop.now - start).nanoseconds / 1_000_000) }
        timer.restart(.milliseconds(100))
        loop.advanceTime(by: .milliseconds(60))
        timer.restart(.milliseconds(100))  // now due at 160 ms
        loop.advanceTime(by: .milliseconds(60))
        #expect(fired.isEmpty)
        loop.advanceTime(by: .milliseconds(39))
        #expect(fired.isEmpty)
        loop.advanceTime(by: .milliseconds(1))
        #expect(fired == [160])
        loop.advanceTime(by: .seconds(10))
        #expect(fired == [160])  // once per restart
    }

    @Test("a shorter period than the one counting down takes effect")
    func shorterPeriodReschedules() {
        let loop = EmbeddedEventLoop()
        var fired = 0
        let timer = IdleTimer(eventLoop: loop) { fired += 1 }
        timer.restart(.seconds(300))  // e.g. the DATA timeout
        timer.restart(.seconds(5))    // then the command timeout
        loop.advanceTime(by: .seconds(5))
        #expect(fired == 1)
    }

    @Test("cancel stops the countdown until the next restart; stop ends it for good")
    func cancelAndStop() {
        let loop = EmbeddedEventLoop()
        var fired = 0
        let timer = IdleTimer(eventLoop: loop) { fired += 1 }
        timer.restart(.seconds(1))
        timer.cancel()
        loop.advanceTime(by: .seconds(2))
        #expect(fired == 0)
        timer.restart(.seconds(1))
        loop.advanceTime(by: .seconds(1))
        #expect(fired == 1)
        timer.restart(.seconds(1))
        timer.stop()
        timer.restart(.seconds(1))
        loop.advanceTime(by: .seconds(5))
        #expect(fired == 1)
    }
}
