/// A monotonic clock to inject into anything that measures intervals or waits (throttling windows,
/// rate limits, idle connections), so tests move time instead of sleeping. It wraps any
/// `Clock` whose durations are `Duration`: ``now`` is the time since the clock was wrapped.
public struct MonotonicClock: Sendable {
    private let elapsed: @Sendable () -> Duration
    private let wait: @Sendable (Duration) async throws -> Void

    /// Wraps `clock`.
    public init<C: Clock>(_ clock: C) where C.Duration == Duration {
        let start = clock.now
        elapsed = { start.duration(to: clock.now) }
        wait = { try await clock.sleep(until: start.advanced(by: $0), tolerance: nil) }
    }

    /// The system's monotonic clock (`ContinuousClock`).
    public static let continuous = MonotonicClock(ContinuousClock())

    /// Time since the clock was wrapped.
    public var now: Duration { elapsed() }

    /// Returns at `deadline` (a value of ``now``), or throws `CancellationError` when cancelled first.
    public func sleep(until deadline: Duration) async throws { try await wait(deadline) }

    /// Returns after `duration`.
    public func sleep(for duration: Duration) async throws { try await wait(now + duration) }
}
