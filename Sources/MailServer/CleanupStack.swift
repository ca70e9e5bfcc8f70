import Synchronization

/// What the server acquired while starting, released in reverse order from one place: at once when
/// the start fails half way, otherwise when the server stops. Each resource is pushed right after it
/// is acquired, so no failure path can forget one.
final class CleanupStack: Sendable {
    private let steps = Mutex<[@Sendable () async -> Void]>([])

    /// Adds the release of the resource just acquired.
    func push(_ release: @escaping @Sendable () async -> Void) {
        steps.withLock { $0.append(release) }
    }

    /// Releases everything pushed so far, the last acquired first (once: a second call finds nothing).
    func unwind() async {
        let all = steps.withLock { s in
            defer { s = [] }
            return s
        }
        for release in all.reversed() { await release() }
    }

    /// Runs `body`; when it throws, everything pushed so far is released before the error goes on.
    func releasingOnError<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            await unwind()
            throw error
        }
    }
}
