import MailQueue
import Testing

/// `QueueDecision` as tables: an envelope and one attempt's outcomes in, the recorded envelope, the
/// disposition and the notifications out. No files, no clock.
@Suite struct QueueDecisionTests {
    typealias Report = DeliveryStatusNotification.RecipientReport
    static let created = 1_800_000_000
    static let policy = RetryPolicy(initialDelay: 300, maximumDelay: 14_400, lifetime: 432_000, delayWarning: 14_400)

    static func envelope(_ recipients: [String], attempts: Int = 0, delayNotified: Bool = false) -> QueueEnvelope {
        var e = QueueEnvelope(id: "Q1", sender: "alice@example.test", recipients: recipients, created: created)
        e.attempts = attempts
        e.delayNotified = delayNotified
        return e
    }

    struct Row: Sendable, CustomTestStringConvertible {
        var name: String
        var attempts: Int = 0
        var delayNotified = false
        /// Seconds since the message was created.
        var age: Int
        var outcomes: [String: DeliveryOutcome]
        var disposition: QueueDecision.Disposition
        var failed: [String] = []
        var delayed: [String] = []
        var pendingAfter: [String]
        var testDescription: String { name }
    }

    static let ok = DeliveryOutcome.delivered("250 2.0.0 ok")
    static let refused = DeliveryOutcome.failed(status: "5.1.1", diagnostic: "smtp; 550 5.1.1 no such user", remoteMTA: "mx.b.test")
    static let later = DeliveryOutcome.deferred(status: "4.2.0", diagnostic: "smtp; 451 4.2.0 try later")

    static let rows: [Row] = [
        Row(name: "all delivered → removed", age: 0, outcomes: ["a@b.test": ok, "c@b.test": ok],
            disposition: .remove, pendingAfter: []),
        Row(name: "one refused, one delivered → removed, one failed report", age: 0, outcomes: ["a@b.test": ok, "c@b.test": refused],
            disposition: .remove, failed: ["c@b.test"], pendingAfter: []),
        Row(name: "first deferral → retry after the initial delay", age: 0, outcomes: ["a@b.test": later, "c@b.test": ok],
            disposition: .deferUntil(created + 300), pendingAfter: ["a@b.test"]),
        Row(name: "third deferral → delay doubled twice", attempts: 2, age: 3_600, outcomes: ["a@b.test": later, "c@b.test": later],
            disposition: .deferUntil(created + 3_600 + 1_200), pendingAfter: ["a@b.test", "c@b.test"]),
        Row(name: "backoff capped at the maximum", attempts: 20, delayNotified: true, age: 100_000, outcomes: ["a@b.test": later, "c@b.test": later],
            disposition: .deferUntil(created + 100_000 + 14_400), pendingAfter: ["a@b.test", "c@b.test"]),
        Row(name: "next attempt never after the lifetime", attempts: 20, delayNotified: true, age: 430_000, outcomes: ["a@b.test": later, "c@b.test": later],
            disposition: .deferUntil(created + 432_000), pendingAfter: ["a@b.test", "c@b.test"]),
        Row(name: "deferred past the lifetime → expired, both fail with 4.4.7", attempts: 30, age: 432_000,
            outcomes: ["a@b.test": later, "c@b.test": later],
            disposition: .remove, failed: ["a@b.test", "c@b.test"], pendingAfter: []),
        Row(name: "no outcome reported counts as deferred", age: 0, outcomes: ["a@b.test": ok],
            disposition: .deferUntil(created + 300), pendingAfter: ["c@b.test"]),
        Row(name: "delay warning due → delayed report once", attempts: 5, age: 14_400, outcomes: ["a@b.test": later, "c@b.test": ok],
            disposition: .deferUntil(created + 14_400 + 9_600), delayed: ["a@b.test"], pendingAfter: ["a@b.test"]),
        Row(name: "delay warning already sent → none", attempts: 6, delayNotified: true, age: 20_000,
            outcomes: ["a@b.test": later, "c@b.test": later],
            disposition: .deferUntil(created + 20_000 + 14_400), pendingAfter: ["a@b.test", "c@b.test"]),
    ]

    @Test(arguments: rows)
    func decision(row: Row) {
        let before = Self.envelope(["a@b.test", "c@b.test"], attempts: row.attempts, delayNotified: row.delayNotified)
        let d = QueueDecision.after(attempt: row.outcomes, on: before, now: Self.created + row.age, policy: Self.policy)
        #expect(d.disposition == row.disposition)
        #expect(d.envelope.attempts == row.attempts + 1)
        #expect(d.failed.map(\.address) == row.failed)
        #expect(d.delayed.map(\.address) == row.delayed)
        #expect(d.envelope.pending.map(\.address) == row.pendingAfter)
        #expect(d.envelope.delayNotified == (row.delayNotified || !row.delayed.isEmpty))
        if case .deferUntil(let at) = row.disposition { #expect(d.envelope.nextAttempt == at) }
    }

    @Test func recipientDetailsAndReports() {
        var before = Self.envelope(["a@b.test", "c@b.test", "done@b.test"])
        before.recipients[2].state = .delivered
        let d = QueueDecision.after(attempt: ["a@b.test": Self.refused, "c@b.test": Self.later], on: before,
                                    now: Self.created, policy: Self.policy)
        #expect(d.failed == [Report(address: "a@b.test", action: "failed", status: "5.1.1",
                                    diagnostic: "smtp; 550 5.1.1 no such user", remoteMTA: "mx.b.test")])
        #expect(d.envelope.recipients[0].state == .failed)
        #expect(d.envelope.recipients[0].status == "5.1.1")
        #expect(d.envelope.recipients[1].lastResponse == "smtp; 451 4.2.0 try later")
        #expect(d.envelope.lastError == "smtp; 451 4.2.0 try later")
        #expect(d.envelope.recipients[2].state == .delivered)  // done before: not tried, not reported
        #expect(d.events == [.init("a@b.test", .bounced(diagnostic: "smtp; 550 5.1.1 no such user")),
                             .init("c@b.test", .deferred(diagnostic: "smtp; 451 4.2.0 try later"))])
    }

    @Test func expiryKeepsTheLastErrorInTheReport() {
        let before = Self.envelope(["a@b.test"], attempts: 40)
        let d = QueueDecision.after(attempt: ["a@b.test": Self.later], on: before, now: Self.created + 500_000, policy: Self.policy)
        #expect(d.failed == [Report(address: "a@b.test", action: "failed", status: "4.4.7",
                                    diagnostic: "delivery time expired; last error: smtp; 451 4.2.0 try later")])
        #expect(d.events.map(\.kind) == [.deferred(diagnostic: "smtp; 451 4.2.0 try later"), .expired])
    }

    @Test func delayedReportCarriesStatusAndLastReply() {
        let before = Self.envelope(["a@b.test"], attempts: 3)
        let d = QueueDecision.after(attempt: [:], on: before, now: Self.created + 15_000, policy: Self.policy)
        #expect(d.delayed == [Report(address: "a@b.test", action: "delayed", status: "4.0.0", diagnostic: "no outcome reported")])
    }

    /// The `dsn=` of the delivery log lines: the first enhanced status code of a reply.
    @Test(arguments: [
        ("mx.example.net [192.0.2.1] TLS: 250 2.0.0 Ok: queued as 4ABC", "2.0.0"),
        ("451 4.3.0 try again later", "4.3.0"),
        ("550 5.1.1 <x@example.net>: no such user", "5.1.1"),
        ("cannot connect to 192.0.2.1: refused", nil),
        ("550 no enhanced code in 1.2.3.4 at all", nil),
        ("5.7.1", "5.7.1"),
        ("version 12.5.1.1 of something", nil),
    ] as [(String, String?)])
    func enhancedStatusOfReplies(text: String, expected: String?) {
        #expect(QueueRunner.enhancedStatus(in: text) == expected, "\(text)")
    }
}
