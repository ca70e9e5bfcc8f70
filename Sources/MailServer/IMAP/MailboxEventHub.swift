import NIOConcurrencyHelpers

/// Tells IMAP sessions that a folder changed: local delivery, APPEND, COPY/MOVE, STORE, EXPUNGE
/// and POP3's UPDATE post the folder's path; every session with that folder selected gets its
/// `changed` callback (and then takes the change from the shared index). In memory, one process.
final class MailboxEventHub: Sendable {
    private struct Watchers {
        var next = 0
        var byPath: [String: [Int: @Sendable () -> Void]] = [:]
    }

    private let watchers = NIOLockedValueBox(Watchers())

    /// Calls `callback` after each ``post(_:)`` of `path` until the returned token is cancelled.
    func watch(_ path: String, _ callback: @escaping @Sendable () -> Void) -> Int {
        watchers.withLockedValue { w in
            w.next += 1
            w.byPath[path, default: [:]][w.next] = callback
            return w.next
        }
    }

    /// Stops the callback registered as `token`.
    func cancel(_ path: String, _ token: Int) {
        watchers.withLockedValue { w in
            w.byPath[path]?[token] = nil
            if w.byPath[path]?.isEmpty == true { w.byPath[path] = nil }
        }
    }

    /// `true` when some session watches `path` (delivery syncs the index only then).
    func isWatched(_ path: String) -> Bool {
        watchers.withLockedValue { $0.byPath[path] != nil }
    }

    /// Every folder some session watches.
    func watchedPaths() -> [String] {
        watchers.withLockedValue { Array($0.byPath.keys) }
    }

    /// The folder at `path` changed.
    func post(_ path: String) {
        let callbacks = watchers.withLockedValue { w in w.byPath[path].map { Array($0.values) } ?? [] }
        for c in callbacks { c() }
    }
}

/// Hands deliveries and POP3 deletions to the IMAP service, which exists only after the store it
/// listens to was made.
final class FolderChanges: Sendable {
    private let box = NIOLockedValueBox<IMAPService?>(nil)

    var service: IMAPService? {
        get { box.withLockedValue { $0 } }
        set { box.withLockedValue { $0 = newValue } }
    }
}
