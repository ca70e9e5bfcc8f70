import Synchronization

/// A clock that only moves when told to (``advance(by:)``): cache expiry, throttling windows, idle
/// timeouts without sleeping. `sleep(until:)` returns once the clock has been moved past the deadline.
public final class ManualTestClock: Clock, Sendable {
    public struct Instant: InstantProtocol {
        public var offset: Duration
        public func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        public func duration(to other: Instant) -> Duration { other.offset - offset }
        public static func < (a: Instant, b: Instant) -> Bool { a.offset < b.offset }
    }

    private let current = Mutex(Instant(offset: .zero))

    public init() {}
    public var now: Instant { current.withLock { $0 } }
    public var minimumResolution: Duration { .nanoseconds(1) }
    public func advance(by duration: Duration) { current.withLock { $0 = $0.advanced(by: duration) } }
    public func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        while now < deadline { try await Task.sleep(for: .milliseconds(1)) }
    }
}
