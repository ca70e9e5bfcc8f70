/// What the queue manager does with a message after one delivery attempt — the decision half of
/// Postfix's qmgr, with no file, clock or log of its own (pure: envelope, outcomes and time in, the
/// new envelope and what to do out). ``QueueRunner`` carries the decision out.
///
/// - Each pending recipient takes its outcome: delivered, failed (it goes into a "failed" DSN), or
///   deferred (status and reply kept; a recipient the agent said nothing about is deferred with
///   `4.0.0`).
/// - Recipients still pending after the attempt: past the lifetime every one of them fails with
///   `4.4.7` (RFC 3464 §2.3.4's "delivery time expired"); otherwise the message waits until the
///   policy's next attempt time, and a "delayed" notice goes out once when the policy asks for one.
/// - Nothing pending: the message leaves the queue.
///
/// - SeeAlso: RFC 5321 §4.5.4.1 (retry strategy), RFC 3464 §2.3.3 (Action values)
public struct QueueDecision: Hashable, Sendable {
    /// Where the message goes.
    public enum Disposition: Hashable, Sendable {
        /// Every recipient is done (delivered or failed): remove the message.
        case remove
        /// Back to `deferred/` until this time (seconds since the epoch).
        case deferUntil(Int)
    }

    /// What happened to one recipient, for the log.
    public struct Event: Hashable, Sendable {
        public enum Kind: Hashable, Sendable {
            case delivered(reply: String)
            case bounced(diagnostic: String)
            case deferred(diagnostic: String)
            case expired
        }

        public var address: String
        public var kind: Kind

        public init(_ address: String, _ kind: Kind) {
            self.address = address
            self.kind = kind
        }
    }

    /// The envelope as it must be recorded (attempt counted, recipients updated, next attempt set).
    public var envelope: QueueEnvelope
    /// Where the message goes.
    public var disposition: Disposition
    /// Recipients that failed in this attempt (refused, or expired): one "failed" DSN to the sender.
    public var failed: [DeliveryStatusNotification.RecipientReport]
    /// Recipients to name in a "delayed" DSN now (empty: none is due).
    public var delayed: [DeliveryStatusNotification.RecipientReport]
    /// One event per recipient that was tried, in envelope order (expired ones after their attempt).
    public var events: [Event]

    /// Decides after an attempt at `now` that reported `outcomes` for the envelope's pending recipients.
    public static func after(attempt outcomes: [String: DeliveryOutcome], on envelope: QueueEnvelope, now: Int,
                             policy: RetryPolicy) -> QueueDecision {
        var env = envelope
        env.attempts += 1
        var failed: [DeliveryStatusNotification.RecipientReport] = []
        var events: [Event] = []
        for i in env.recipients.indices where env.recipients[i].state == .pending {
            let address = env.recipients[i].address
            switch outcomes[address] ?? .deferred(status: "4.0.0", diagnostic: "no outcome reported") {
            case .delivered(let reply):
                env.recipients[i].state = .delivered
                env.recipients[i].lastResponse = reply
                events.append(Event(address, .delivered(reply: reply)))
            case .failed(let status, let diagnostic, let mta):
                env.recipients[i].state = .failed
                env.recipients[i].status = status
                env.recipients[i].lastResponse = diagnostic
                failed.append(.init(address: address, action: "failed", status: status, diagnostic: diagnostic, remoteMTA: mta))
                events.append(Event(address, .bounced(diagnostic: diagnostic)))
            case .deferred(let status, let diagnostic):
                env.recipients[i].status = status
                env.recipients[i].lastResponse = diagnostic
                env.lastError = diagnostic
                events.append(Event(address, .deferred(diagnostic: diagnostic)))
            }
        }
        guard !env.pending.isEmpty else {
            return QueueDecision(envelope: env, disposition: .remove, failed: failed, delayed: [], events: events)
        }
        switch policy.decide(created: env.created, attempts: env.attempts, now: now) {
        case .expire:
            for i in env.recipients.indices where env.recipients[i].state == .pending {
                env.recipients[i].state = .failed
                let last = env.recipients[i].lastResponse ?? "delivery time expired"
                failed.append(.init(address: env.recipients[i].address, action: "failed", status: "4.4.7",
                                    diagnostic: "delivery time expired; last error: \(last)"))
                events.append(Event(env.recipients[i].address, .expired))
            }
            return QueueDecision(envelope: env, disposition: .remove, failed: failed, delayed: [], events: events)
        case .retry(let at):
            env.nextAttempt = at
            var delayed: [DeliveryStatusNotification.RecipientReport] = []
            if policy.shouldWarn(created: env.created, now: now, alreadyWarned: env.delayNotified) {
                delayed = env.pending.map {
                    .init(address: $0.address, action: "delayed", status: $0.status ?? "4.0.0", diagnostic: $0.lastResponse)
                }
                env.delayNotified = true
            }
            return QueueDecision(envelope: env, disposition: .deferUntil(at), failed: failed, delayed: delayed, events: events)
        }
    }
}
