// ConnectionLifecycle governs whether a server connection may read, process input, upgrade to TLS or
// close, whatever the protocol (SMTP, POP3). It is pure: the adapter feeds it channel events and the
// protocol's off-loop work, and performs the action it returns. Time comes in as instants (the idle
// deadline is computed by the caller, `now` is passed to `idleTimerFired`), so it is tested without a
// clock or a channel.
//
// Phases:
//   idle          created; the channel is not active yet
//   handshaking   a TLS handshake is under way (implicit TLS before the greeting, or after STARTTLS/STLS)
//   open          the session runs
//   closing       the last reply is being flushed; then the channel closes
//   closed        closed, or inactive
// Beside the phase: `busy` (off-loop work in flight, or a STARTTLS/STLS handshake: nothing is parsed or
// read meanwhile), `writable` (the channel takes writes), the idle deadline and the deadline of the one
// scheduled timer task (a later deadline only moves the first; an early firing reschedules).
//
// Actions:
//   start(greet:)           the channel is up: log it, send the greeting unless TLS comes first, arm, read
//   read                    ask the channel for more bytes
//   resume                  process what is buffered, then read if still allowed
//   startTLS                flush, insert TLS, discard buffered plaintext, read
//   tlsEstablished(greet:)  tell the protocol; greet (implicit TLS), then resume
//   armTimer(at:)           schedule the timer task for this deadline
//   cancelTimer             cancel the timer task
//   timedOut(phase)         the idle deadline passed during a handshake, busy work, or an idle session
//   flushThenClose          write out what is queued, then close
//   close(abandon:)         close now; `abandon`: the session ends without its protocol's goodbye
//   shutdown                the server drains: ask the protocol to finish
//   shutdownDeadline        the drain deadline passed with the session still open
//   none
public struct ConnectionLifecycle<Instant: Comparable & Sendable>: Sendable {
    /// Where the idle deadline passed.
    public enum TimeoutPhase: Hashable, Sendable {
        /// During a TLS handshake: nothing can be said; close.
        case handshake
        /// While off-loop work (a check, a store, a message stream) is in flight.
        case busy
        /// While the session waits for the client.
        case idle
    }

    /// What the adapter does next.
    public enum Action: Equatable, Sendable {
        case none
        case start(greet: Bool)
        case read
        case resume
        case startTLS
        case tlsEstablished(greet: Bool)
        case armTimer(at: Instant)
        case cancelTimer
        case timedOut(TimeoutPhase)
        case flushThenClose
        case close(abandon: Bool)
        case shutdown
        case shutdownDeadline
    }

    private enum Phase: Sendable {
        case idle, handshaking, open, closing, closed
    }

    private var phase: Phase = .idle
    private var busy = false
    private var writable = true
    private let implicitTLS: Bool
    private let shutdownWaitsForWork: Bool
    /// The idle deadline; `nil` while no countdown runs.
    private var deadline: Instant?
    /// The deadline of the scheduled timer task; `nil` when none is scheduled.
    private var scheduled: Instant?

    /// A lifecycle for a new connection.
    /// - Parameters:
    ///   - implicitTLS: the listener wraps the connection in TLS before the greeting (RFC 8314).
    ///   - shutdownWaitsForWork: a drain request that arrives while work is in flight is ignored (the
    ///     deadline closes what is left); otherwise the protocol is asked and decides itself.
    public init(implicitTLS: Bool, shutdownWaitsForWork: Bool = false) {
        self.implicitTLS = implicitTLS
        self.shutdownWaitsForWork = shutdownWaitsForWork
    }

    // MARK: Queries

    /// Input may be parsed and handed to the protocol now.
    public var mayProcess: Bool { phase == .open && !busy }

    /// The connection is closing or closed: no more protocol work.
    public var isClosed: Bool { phase == .closing || phase == .closed }

    /// Off-loop work (or a STARTTLS/STLS handshake) is in flight.
    public var isBusy: Bool { busy }

    private var mayRead: Bool { (phase == .open || phase == .handshaking) && !busy && writable }

    // MARK: Channel events

    /// The channel is active (or the handler was added to an active channel); only the first counts.
    public mutating func channelActive() -> Action {
        guard phase == .idle else { return .none }
        phase = implicitTLS ? .handshaking : .open
        return .start(greet: !implicitTLS)
    }

    /// A read finished; with explicit reads, the next one is asked for here when allowed.
    public mutating func readComplete() -> Action {
        mayRead ? .read : .none
    }

    /// The channel's writability changed (its high or low watermark was crossed).
    public mutating func writabilityChanged(isWritable: Bool) -> Action {
        writable = isWritable
        guard isWritable, !busy, phase == .open || phase == .handshaking else { return .none }
        return .resume
    }

    /// The channel is inactive: the adapter cancels its timer task. `close(abandon: true)` when the
    /// session had not been closed by us (the protocol then drops what it holds).
    public mutating func channelInactive() -> Action {
        let wasClosed = isClosed
        phase = .closed
        deadline = nil
        scheduled = nil
        return .close(abandon: !wasClosed)
    }

    // MARK: Protocol events

    /// The protocol starts off-loop work: nothing is read or parsed until it finishes.
    public mutating func workStarted() {
        busy = true
    }

    /// The off-loop work finished: `.resume` when the session goes on, `.none` when it closed meanwhile.
    public mutating func workFinished() -> Action {
        busy = false
        return phase == .open ? .resume : .none
    }

    /// The protocol accepted STARTTLS/STLS and its positive reply is queued.
    public mutating func tlsUpgradeRequested() -> Action {
        guard phase == .open else { return .none }
        phase = .handshaking
        busy = true
        return .startTLS
    }

    /// The TLS handshake completed.
    public mutating func tlsHandshakeCompleted() -> Action {
        guard phase == .handshaking else { return .none }
        phase = .open
        busy = false
        return .tlsEstablished(greet: implicitTLS)
    }

    /// The protocol (or an error) ends the session: after its last reply leaves (`flush`: the timer
    /// task is cancelled), or at once (`abandon` unless it was already closing).
    public mutating func closeRequested(flush: Bool) -> Action {
        if isClosed { return flush ? .none : .close(abandon: false) }
        if flush {
            phase = .closing
            deadline = nil
            scheduled = nil
            return .flushThenClose
        }
        phase = .closed
        return .close(abandon: true)
    }

    // MARK: Idle timer

    /// Progress (a command, content, a chunk written): the idle period starts again, ending at `deadline`.
    public mutating func activity(deadline: Instant) -> Action {
        guard !isClosed else {
            self.deadline = nil
            guard scheduled != nil else { return .none }
            scheduled = nil
            return .cancelTimer
        }
        self.deadline = deadline
        if let scheduled, scheduled <= deadline { return .none }
        scheduled = deadline
        return .armTimer(at: deadline)
    }

    /// The scheduled timer task ran at `now`.
    public mutating func idleTimerFired(now: Instant) -> Action {
        scheduled = nil
        guard !isClosed, phase != .idle, let due = deadline else { return .none }
        if now < due {
            scheduled = due
            return .armTimer(at: due)
        }
        deadline = nil
        if phase == .handshaking { return .timedOut(.handshake) }
        return .timedOut(busy ? .busy : .idle)
    }

    // MARK: Server shutdown

    /// The server drains: `.shutdown` asks the protocol to finish.
    public mutating func shutdownRequested() -> Action {
        guard !isClosed, phase != .idle else { return .none }
        if busy && shutdownWaitsForWork { return .none }
        return .shutdown
    }

    /// The drain deadline passed: the protocol has its last word, or what is already closing closes.
    public mutating func shutdownDeadlinePassed() -> Action {
        isClosed ? .close(abandon: false) : .shutdownDeadline
    }
}
