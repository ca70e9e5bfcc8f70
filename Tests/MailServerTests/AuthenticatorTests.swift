import Directory
import Foundation
import MailCore
import MailTesting
import NIOPosix
import Synchronization
import Testing
@testable import MailServer

/// The Authenticator's throttling windows and failure delay on an injected clock: time moves when
/// the test says so, nothing sleeps for real.
@Suite(.timeLimit(.minutes(1))) struct AuthenticatorTests {
    static func directory() async throws -> SQLiteDirectory {
        let d = try await SQLiteDirectory.open(path: NSTemporaryDirectory() + "auth-\(UUID().uuidString).sqlite",
                                               policy: DirectoryPolicy(domains: ["example.test"]))
        try await d.addUser("alice@example.test", passwordHash: try PasswordHasher.hash("correct horse"))
        return d
    }

    @Test func throttlingEndsWhenTheWindowPasses() async throws {
        let clock = ManualTestClock()
        let d = try await Self.directory()
        let auth = try Authenticator(directory: d, threadPool: .singleton,
                                     policy: .init(failureDelay: .zero, maxFailuresPerIP: 3, maxFailuresPerAccount: 10,
                                                   window: .seconds(900)),
                                     clock: MonotonicClock(clock))
        for _ in 0..<3 { #expect(await auth.check(user: "alice@example.test", password: "wrong", remoteIP: "192.0.2.1") == .rejected) }
        // Throttled: the right password does not help, and the refusal counts as a failure too.
        #expect(await auth.check(user: "alice@example.test", password: "correct horse", remoteIP: "192.0.2.1") == .clientThrottled)
        #expect(await auth.check(user: "alice@example.test", password: "correct horse", remoteIP: "192.0.2.2") == .accepted("alice@example.test"))
        clock.advance(by: .seconds(899))
        #expect(await auth.check(user: "alice@example.test", password: "correct horse", remoteIP: "192.0.2.1") == .clientThrottled)
        clock.advance(by: .seconds(900))  // every recorded failure, the last refusal included, is older than the window
        #expect(await auth.check(user: "alice@example.test", password: "correct horse", remoteIP: "192.0.2.1") == .accepted("alice@example.test"))
        try await d.close()
    }

    /// An hour's failure delay that ends as soon as the injected clock says an hour has passed.
    @Test func failureDelayWaitsOnTheInjectedClock() async throws {
        let clock = ManualTestClock()
        let d = try await Self.directory()
        let auth = try Authenticator(directory: d, threadPool: .singleton,
                                     policy: .init(failureDelay: .seconds(3600), maxFailuresPerIP: 10, maxFailuresPerAccount: 10,
                                                   window: .seconds(900)),
                                     clock: MonotonicClock(clock))
        let done = Mutex(false)
        let attempt = Task {
            let verdict = await auth.check(user: "nobody@example.test", password: "x", remoteIP: "192.0.2.1")
            done.withLock { $0 = true }
            return verdict
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(!done.withLock { $0 }, "answered before the delay")
        // The hash may still be running on a loaded machine: keep moving the clock until the answer comes.
        for _ in 0..<500 where !done.withLock({ $0 }) {
            clock.advance(by: .seconds(3600))
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(done.withLock { $0 }, "the delay did not end when the injected clock passed it")
        #expect(await attempt.value == .rejected)
        try await d.close()
    }
}
