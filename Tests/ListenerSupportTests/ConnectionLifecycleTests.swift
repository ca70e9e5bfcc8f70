import ListenerSupport
import Testing

/// `ConnectionLifecycle` as event → action tables; instants are plain integers (seconds).
@Suite struct ConnectionLifecycleTests {
    typealias Lifecycle = ConnectionLifecycle<Int>

    /// A lifecycle whose greeting has gone out.
    static func open(shutdownWaitsForWork: Bool = false) -> Lifecycle {
        var l = Lifecycle(implicitTLS: false, shutdownWaitsForWork: shutdownWaitsForWork)
        _ = l.channelActive()
        return l
    }

    @Test func startGreetsOnceOrWaitsForTLS() {
        var plain = Lifecycle(implicitTLS: false)
        #expect(!plain.mayProcess)
        #expect(plain.readComplete() == .none, "nothing is read before the channel is active")
        #expect(plain.channelActive() == .start(greet: true))
        #expect(plain.channelActive() == .none, "handlerAdded and channelActive both report it")
        #expect(plain.mayProcess)

        var implicit = Lifecycle(implicitTLS: true)
        #expect(implicit.channelActive() == .start(greet: false))
        #expect(!implicit.mayProcess, "no protocol input before the handshake")
        #expect(implicit.readComplete() == .read, "the handshake needs reads")
        #expect(implicit.tlsHandshakeCompleted() == .tlsEstablished(greet: true))
        #expect(implicit.mayProcess)
        #expect(implicit.tlsHandshakeCompleted() == .none)
    }

    @Test func readsOnlyWhenIdleAndWritable() {
        var l = Self.open()
        #expect(l.readComplete() == .read)
        #expect(l.writabilityChanged(isWritable: false) == .none)
        #expect(l.readComplete() == .none, "a peer that does not read gets nothing more read")
        #expect(l.mayProcess, "processing itself checks the channel")
        #expect(l.writabilityChanged(isWritable: true) == .resume)
        #expect(l.readComplete() == .read)
    }

    @Test func offLoopWorkPausesReadsAndProcessing() {
        var l = Self.open()
        l.workStarted()
        #expect(l.isBusy)
        #expect(!l.mayProcess)
        #expect(l.readComplete() == .none)
        #expect(l.writabilityChanged(isWritable: true) == .none)
        #expect(l.workFinished() == .resume)
        #expect(l.mayProcess)
        #expect(l.readComplete() == .read)
    }

    @Test func workFinishingAfterCloseDoesNotResume() {
        var l = Self.open()
        l.workStarted()
        #expect(l.closeRequested(flush: false) == .close(abandon: true))
        #expect(l.workFinished() == .none)
        #expect(l.readComplete() == .none)
        #expect(!l.mayProcess)
    }

    @Test func startTLSPausesUntilTheHandshake() {
        var l = Self.open()
        #expect(l.tlsUpgradeRequested() == .startTLS)
        #expect(l.isBusy)
        #expect(!l.mayProcess, "plaintext behind the command is never handed to the protocol")
        #expect(l.readComplete() == .none, "the TLS handler reads for itself")
        #expect(l.tlsUpgradeRequested() == .none)
        #expect(l.tlsHandshakeCompleted() == .tlsEstablished(greet: false))
        #expect(l.mayProcess)
        #expect(l.tlsUpgradeRequested() == .startTLS, "the protocol decides whether a second one is allowed")
    }

    @Test func closing() {
        var l = Self.open()
        #expect(l.closeRequested(flush: true) == .flushThenClose)
        #expect(l.isClosed)
        #expect(l.closeRequested(flush: true) == .none)
        #expect(l.closeRequested(flush: false) == .close(abandon: false), "an error while flushing closes at once")
        #expect(l.channelInactive() == .close(abandon: false))

        var dropped = Self.open()
        #expect(dropped.channelInactive() == .close(abandon: true), "the peer left: the protocol drops its state")
        #expect(dropped.closeRequested(flush: false) == .close(abandon: false))
    }

    @Test func idleTimerMovesItsDeadlineWithoutRescheduling() {
        var l = Self.open()
        #expect(l.activity(deadline: 300) == .armTimer(at: 300))
        #expect(l.activity(deadline: 310) == .none, "a later deadline only moves it")
        #expect(l.idleTimerFired(now: 300) == .armTimer(at: 310), "fired early: scheduled again")
        #expect(l.activity(deadline: 200) == .armTimer(at: 200), "an earlier deadline is scheduled")
        #expect(l.idleTimerFired(now: 200) == .timedOut(.idle))
        #expect(l.idleTimerFired(now: 400) == .none, "expires once")
        #expect(l.activity(deadline: 500) == .armTimer(at: 500))
    }

    @Test(arguments: [
        (Phase.handshake, ConnectionLifecycle<Int>.TimeoutPhase.handshake),
        (.startTLS, .handshake),
        (.busy, .busy),
        (.idle, .idle),
    ])
    func timeoutSaysWhereItHappened(phase: Phase, expected: ConnectionLifecycle<Int>.TimeoutPhase) {
        var l = Lifecycle(implicitTLS: phase == .handshake)
        _ = l.channelActive()
        if phase == .startTLS { _ = l.tlsUpgradeRequested() }
        if phase == .busy { l.workStarted() }
        #expect(l.activity(deadline: 10) == .armTimer(at: 10))
        #expect(l.idleTimerFired(now: 10) == .timedOut(expected))
    }

    enum Phase: Sendable { case handshake, startTLS, busy, idle }

    @Test func noTimeoutOnceClosing() {
        var l = Self.open()
        _ = l.activity(deadline: 10)
        #expect(l.closeRequested(flush: true) == .flushThenClose)
        #expect(l.idleTimerFired(now: 10) == .none)
        #expect(l.activity(deadline: 20) == .none, "nothing left to cancel")

        var m = Self.open()
        _ = m.activity(deadline: 10)
        _ = m.closeRequested(flush: false)
        #expect(m.activity(deadline: 20) == .cancelTimer)
        #expect(m.idleTimerFired(now: 20) == .none)
    }

    @Test func shutdownAsksTheProtocolUnlessClosed() {
        var l = Self.open()
        l.workStarted()
        #expect(l.shutdownRequested() == .shutdown, "the protocol decides what an in-flight store means")
        #expect(l.shutdownDeadlinePassed() == .shutdownDeadline)
        _ = l.closeRequested(flush: true)
        #expect(l.shutdownRequested() == .none)
        #expect(l.shutdownDeadlinePassed() == .close(abandon: false))

        var unstarted = Lifecycle(implicitTLS: false)
        #expect(unstarted.shutdownRequested() == .none)
    }

    @Test func shutdownCanWaitForWork() {
        var l = Self.open(shutdownWaitsForWork: true)
        l.workStarted()
        #expect(l.shutdownRequested() == .none, "a RETR or UPDATE in flight finishes; the deadline closes the rest")
        #expect(l.shutdownDeadlinePassed() == .shutdownDeadline)
        #expect(l.workFinished() == .resume)
        #expect(l.shutdownRequested() == .shutdown)
    }
}
