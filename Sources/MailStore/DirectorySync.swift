#if canImport(Glibc)
import Glibc
#endif

/// Group commit for directory `fsync`s: concurrent deliveries into the same `new/` share one `fsync`.
///
/// A caller that has linked its file into the directory asks for a sync. If none is running it runs
/// one, covering every request made before it started; if one is running, the caller's link may have
/// come after that sync began, so it waits for the next round (which one of the waiters leads). No
/// caller returns before an `fsync` that started after its request has completed, so durability is
/// the same as one `fsync` per delivery, with fewer of them under load.
final class DirectorySync: @unchecked Sendable {
    private struct Round {
        var requested: UInt64 = 0
        var completed: UInt64 = 0
        var running = false
        /// Tickets up to here failed with `failedErrno` (the round that covered them failed).
        var failedThrough: UInt64 = 0
        var failedErrno: Int32 = 0
        var waiters = 0
    }

    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var rounds: [String: Round] = [:]

    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    deinit {
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    /// Returns once an `fsync` of `path` that started after this call has completed.
    func sync(_ path: String) throws {
        pthread_mutex_lock(&mutex)
        var r = rounds[path] ?? Round()
        r.requested += 1
        let ticket = r.requested
        rounds[path] = r
        while true {
            let current = rounds[path]!
            if current.completed >= ticket { break }
            if current.failedThrough >= ticket && current.failedThrough > current.completed {
                let code = current.failedErrno
                release(path)
                pthread_mutex_unlock(&mutex)
                throw StoreError("fsync", path, code: code)
            }
            if !current.running {
                let covers = current.requested
                rounds[path]!.running = true
                pthread_mutex_unlock(&mutex)
                var failure: Int32 = 0
                do { try POSIX.fsyncDirectory(path) } catch let e as StoreError { failure = e.code } catch { failure = EIO }
                pthread_mutex_lock(&mutex)
                rounds[path]!.running = false
                if failure == 0 {
                    rounds[path]!.completed = max(rounds[path]!.completed, covers)
                } else {
                    rounds[path]!.failedThrough = covers
                    rounds[path]!.failedErrno = failure
                }
                pthread_cond_broadcast(&condition)
                continue
            }
            rounds[path]!.waiters += 1
            pthread_cond_wait(&condition, &mutex)
            rounds[path]!.waiters -= 1
        }
        release(path)
        pthread_mutex_unlock(&mutex)
    }

    /// Forgets an idle directory so the table does not grow with every mailbox ever written.
    private func release(_ path: String) {
        if let r = rounds[path], !r.running, r.waiters == 0, r.completed >= r.requested || r.failedThrough >= r.requested {
            rounds[path] = nil
        }
    }
}
