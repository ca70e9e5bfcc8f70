/// When to try a deferred message again and when to give up (pure; times are seconds).
///
/// Exponential backoff: the first retry after ``initialDelay``, doubling up to ``maximumDelay``;
/// after ``lifetime`` in the queue the remaining recipients fail (RFC 5321 §4.5.4.1 suggests giving
/// up after 4–5 days). A delay notice may be sent once after ``delayWarning``.
public struct RetryPolicy: Hashable, Sendable {
    /// First retry delay. Default 300 s.
    public var initialDelay: Int
    /// Ceiling of the backoff. Default 4 h.
    public var maximumDelay: Int
    /// Total time in the queue before the message bounces. Default 5 days.
    public var lifetime: Int
    /// Send a "delayed" notice after this long in the queue; `nil` = never (the default).
    public var delayWarning: Int?

    /// Creates a policy.
    public init(initialDelay: Int = 300, maximumDelay: Int = 14_400, lifetime: Int = 432_000, delayWarning: Int? = nil) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.lifetime = lifetime
        self.delayWarning = delayWarning
    }

    /// The delay before attempt `attempts + 1`, after `attempts` failed attempts (≥ 1).
    public func delay(afterAttempts attempts: Int) -> Int {
        var d = initialDelay
        var n = 1
        while n < attempts && d < maximumDelay {
            d *= 2
            n += 1
        }
        return min(d, maximumDelay)
    }

    /// What to do with a message that still has pending recipients after an attempt at `now`.
    public enum Decision: Hashable, Sendable {
        /// Try again at this time.
        case retry(at: Int)
        /// Lifetime exceeded: fail the remaining recipients.
        case expire
    }

    /// Decides after a failed attempt.
    public func decide(created: Int, attempts: Int, now: Int) -> Decision {
        if now - created >= lifetime { return .expire }
        return .retry(at: min(now + delay(afterAttempts: attempts), created + lifetime))
    }

    /// `true` when a delay notice is due (once).
    public func shouldWarn(created: Int, now: Int, alreadyWarned: Bool) -> Bool {
        guard let w = delayWarning, !alreadyWarned else { return false }
        return now - created >= w
    }
}
