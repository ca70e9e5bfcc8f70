import NIOCore

/// What both protocol clients share: items parsed from the connection are handed to one waiter at a
/// time (or kept until asked for); a terminal failure fails the waiter and every later request; a
/// timeout fails the waiter and runs `onTimeout` (which closes the connection).
///
/// Not thread-safe: use it on the connection's event loop only.
public final class ResponseQueue<Item: Sendable> {
    private var items: [Result<Item, any Error>] = []
    private var waiter: EventLoopPromise<Item>?
    private var terminal: (any Error)?

    /// An empty queue keeping at most `maximumUnrequested` items nobody asked for yet.
    public init(maximumUnrequested: Int = .max) { self.maximumUnrequested = maximumUnrequested }

    /// Items received and not yet asked for.
    public var count: Int { items.count }

    /// Hands `item` to the waiter, or keeps it. `false` (and the item dropped) when
    /// ``maximumUnrequested`` items already wait: the caller ends the connection.
    @discardableResult
    public func deliver(_ item: Item) -> Bool {
        if waiter == nil && items.count >= maximumUnrequested { return false }
        hand(.success(item))
        return true
    }

    /// Records a failure that ends the connection: the waiter and every later request fail with it.
    public func fail(_ error: any Error) {
        if terminal == nil { terminal = error }
        hand(.failure(error))
    }

    /// Forgets items received but not asked for (after STARTTLS/STLS: they were sent in plaintext).
    public func removeAll() { items.removeAll() }

    /// The next item if one has arrived (or the terminal failure), without waiting; `nil` otherwise.
    public func takeReceived(annotate: (any Error) -> any Error) -> Result<Item, any Error>? {
        if !items.isEmpty { return items.removeFirst().mapError(annotate) }
        if let terminal { return .failure(annotate(terminal)) }
        return nil
    }

    /// The next item. `annotate` adjusts an error for the request (e.g. adds the command);
    /// `timeoutError` is the error after `timeout`.
    public func next(on eventLoop: any EventLoop, timeout: TimeAmount, annotate: @escaping (any Error) -> any Error,
                     timeoutError: @escaping () -> any Error, onTimeout: @escaping () -> Void) -> EventLoopFuture<Item> {
        if !items.isEmpty {
            switch items.removeFirst() {
            case .success(let i): return eventLoop.makeSucceededFuture(i)
            case .failure(let e): return eventLoop.makeFailedFuture(annotate(e))
            }
        }
        if let terminal { return eventLoop.makeFailedFuture(annotate(terminal)) }
        let p = eventLoop.makePromise(of: Item.self)
        waiter = p
        let bound = NIOLoopBound((self, timeoutError, onTimeout), eventLoop: eventLoop)
        let timer = eventLoop.scheduleTask(in: timeout) {
            let (queue, timeoutError, onTimeout) = bound.value
            guard let w = queue.waiter, w.futureResult === p.futureResult else { return }
            queue.waiter = nil
            w.fail(timeoutError())
            onTimeout()
        }
        p.futureResult.whenComplete { _ in timer.cancel() }
        return p.futureResult
    }

    /// Most items kept without a request: a server that sends replies nobody asked for (a hostile MX
    /// flooding an idle cached connection) then ends the connection instead of growing memory.
    public let maximumUnrequested: Int

    private func hand(_ r: Result<Item, any Error>) {
        guard let w = waiter else { return items.append(r) }
        waiter = nil
        switch r {
        case .success(let i): w.succeed(i)
        case .failure(let e): w.fail(e)
        }
    }
}
