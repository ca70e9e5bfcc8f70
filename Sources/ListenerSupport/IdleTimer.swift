import NIOCore

/// An inactivity timer that costs almost nothing to restart: a restart only moves the deadline, and
/// the one scheduled task, when it fires early, schedules itself again for the later deadline
/// (cancelling and scheduling a NIO task for every command showed in profiles of busy sessions).
///
/// Event loop only. `stop()` when the connection ends: it drops the expiry closure (which usually
/// holds the connection).
public final class IdleTimer {
    private let eventLoop: any EventLoop
    private var expired: (() -> Void)?
    private var deadline: NIODeadline?
    private var task: Scheduled<Void>?
    private var taskDeadline = NIODeadline.distantFuture

    /// A timer that calls `expired` on `eventLoop` once a period passes without a restart.
    public init(eventLoop: any EventLoop, expired: @escaping () -> Void) {
        self.eventLoop = eventLoop
        self.expired = expired
    }

    /// A timer for a channel handler: `expired` gets the handler and its context back, on the
    /// context's event loop.
    public convenience init<Handler: AnyObject>(for handler: Handler, context: ChannelHandlerContext,
                                                expired: @escaping (Handler, ChannelHandlerContext) -> Void) {
        let bound = NIOLoopBound((handler, context), eventLoop: context.eventLoop)
        self.init(eventLoop: context.eventLoop) {
            let (handler, context) = bound.value
            expired(handler, context)
        }
    }

    /// Calls the expiry closure after `period` unless restarted, cancelled or stopped first.
    public func restart(_ period: TimeAmount) {
        guard expired != nil else { return }
        let due = eventLoop.now + period
        deadline = due
        if task == nil || due < taskDeadline { schedule(due) }
    }

    /// Stops the countdown until the next `restart`.
    public func cancel() {
        deadline = nil
        task?.cancel()
        task = nil
    }

    /// Stops for good.
    public func stop() {
        cancel()
        expired = nil
    }

    private func schedule(_ due: NIODeadline) {
        task?.cancel()
        taskDeadline = due
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        task = eventLoop.scheduleTask(deadline: due) { bound.value.fire() }
    }

    private func fire() {
        task = nil
        guard let due = deadline else { return }
        if eventLoop.now < due { return schedule(due) }
        deadline = nil
        expired?()
    }
}
