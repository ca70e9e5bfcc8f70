import MailStore
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Notices changes that other programs (Dovecot, mutt, a script) make in folders that IMAP sessions
/// have selected: every `interval` it compares the modification times of each watched folder's
/// `new/` and `cur/` (two `stat`s), and syncs and announces only the folders whose directories
/// changed. Swallow's own deliveries, POP3 and IMAP changes are announced at once without it.
final class FolderWatcher: Service, Sendable {
    let hub: MailboxEventHub
    let threadPool: NIOThreadPool
    let interval: Duration

    init(hub: MailboxEventHub, threadPool: NIOThreadPool, interval: Duration = .seconds(15)) {
        self.hub = hub
        self.threadPool = threadPool
        self.interval = interval
    }

    func run() async throws {
        // A graceful shutdown cancels the wait at once (the server stops without waiting a round).
        try? await cancelWhenGracefulShutdown { try await self.watch() }
    }

    private func watch() async throws {
        var seen: [String: [Int]] = [:]
        while !Task.isCancelled {
            try await Task.sleep(for: interval)
            let watched = hub.watchedPaths()
            let previous = seen
            let (stamps, changed) = (try? await threadPool.runIfActive { () -> ([String: [Int]], [String]) in
                var stamps: [String: [Int]] = [:]
                var changed: [String] = []
                for path in watched {
                    guard let s = MaildirFolder.changeStamp(at: path) else { continue }
                    stamps[path] = s
                    // A folder seen for the first time is synced once: a change made between its
                    // session's SELECT and now has no earlier stamp to differ from.
                    if previous[path] != s { changed.append(path) }
                }
                // Only folders whose sync found something are announced.
                let announced = changed.filter { path in
                    guard let changes = try? MaildirFolder.open(path: path).sync() else { return false }
                    return !changes.isEmpty
                }
                return (stamps, announced)
            }) ?? ([:], [])
            seen = stamps
            for path in changed { hub.post(path) }
        }
    }
}
