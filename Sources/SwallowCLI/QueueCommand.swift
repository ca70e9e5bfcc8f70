import ArgumentParser
import MailCore
import MailQueue
import MailServer
import MailStore
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// `swallow queue …`: inspect and steer the outbound queue; works while the server runs (every
/// change is an atomic rename or envelope replacement the runner sees at its next scan).
struct QueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue", abstract: "Inspect and manage the outbound queue.",
        subcommands: [List.self, Show.self, Retry.self, Hold.self, Release.self, Delete.self, Bounce.self])

    /// The queue of the configured data directory, which must exist (these commands never create
    /// one); `nil` when the server has not made its queue yet (nothing was ever queued).
    static func openSpool(_ options: ConfigOption) throws -> (Spool?, ServerConfiguration) {
        let (layout, c) = try dataLayout(options, create: false)
        guard access(layout.queue, F_OK) == 0 else { return (nil, c) }
        do { return (try Spool(root: layout.queue), c) } catch { throw fail("\(error)") }
    }

    /// The queue, for a command about message `id`: a missing queue has no such message.
    static func openSpool(_ options: ConfigOption, for id: String) throws -> (Spool, ServerConfiguration) {
        guard QueueEnvelope.isValidID(id) else { throw fail("'\(id)' is not a queue ID") }
        let (spool, c) = try openSpool(options)
        guard let spool else { throw fail("no message \(id) in the queue") }
        return (spool, c)
    }

    static func find(_ spool: Spool, _ id: String) throws -> Spool.State {
        guard QueueEnvelope.isValidID(id) else { throw fail("'\(id)' is not a queue ID") }
        for s in Spool.State.allCases where access(spool.path(id, s), F_OK) == 0 { return s }
        throw fail("no message \(id) in the queue")
    }

    /// A queue state as the predicate of "… is …".
    static func phrase(_ state: Spool.State) -> String {
        switch state {
        case .incoming: "waiting for its first delivery attempt"
        case .active: "being delivered right now"
        case .deferred: "deferred"
        case .hold: "held"
        case .corrupt: "corrupt (its envelope could not be read)"
        }
    }

    static func age(_ seconds: Int) -> String {
        if seconds < 120 { return "\(seconds)s" }
        if seconds < 7200 { return "\(seconds / 60)m" }
        if seconds < 172_800 { return "\(seconds / 3600)h" }
        return "\(seconds / 86400)d"
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One line per queued message.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            guard let spool = try QueueCommand.openSpool(options).0 else {
                print("the queue is empty")
                return
            }
            let now = Int(time(nil))
            var count = 0
            for state in Spool.State.allCases {
                for id in spool.ids(state) {
                    count += 1
                    guard let e = spool.envelope(id, state) else {
                        print("\(id)  \(state.rawValue)  (unreadable envelope)")
                        continue
                    }
                    let pending = e.pending.map(\.address).joined(separator: ",")
                    let next = state == .deferred ? " next in \(QueueCommand.age(max(0, e.nextAttempt - now)))" : ""
                    print("\(id)  \(state.rawValue)  age \(QueueCommand.age(now - e.created))  from <\(e.sender)>  to \(pending.isEmpty ? "-" : pending)\(next)  attempts \(e.attempts)\(e.lastError.map { "  last: \($0)" } ?? "")")
                }
            }
            if count == 0 { print("the queue is empty") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Envelope, recipients and headers of a message.")
        @Argument var id: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let (spool, _) = try QueueCommand.openSpool(options, for: id)
            let state = try QueueCommand.find(spool, id)
            guard let e = spool.envelope(id, state) else { throw fail("the envelope of \(id) is unreadable (state \(state.rawValue))") }
            print("id:        \(e.id)\nstate:     \(state.rawValue)\nsender:    <\(e.sender)>\ncreated:   \(MessageDate.format(secondsSinceEpoch: e.created))")
            print("attempts:  \(e.attempts)\nnext:      \(MessageDate.format(secondsSinceEpoch: e.nextAttempt))")
            if let l = e.lastError { print("last:      \(l)") }
            for r in e.recipients { print("rcpt:      \(r.address)  \(r.state.rawValue)\(r.status.map { " \($0)" } ?? "")\(r.lastResponse.map { "  \($0)" } ?? "")") }
            print("")
            let fd = open(spool.messagePath(id, state), O_RDONLY)
            if fd >= 0 {
                defer { close(fd) }
                var buf = [UInt8](repeating: 0, count: 16384)
                let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
                if n > 0 {
                    print(String(decoding: QueueRunner.headerSection(path: spool.messagePath(id, state)), as: UTF8.self), terminator: "")
                }
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Try deferred messages now (all, or the given IDs).")
        @Argument var ids: [String] = []
        @OptionGroup var options: ConfigOption

        func run() async throws {
            for id in ids where !QueueEnvelope.isValidID(id) { throw fail("'\(id)' is not a queue ID") }
            guard let spool = try QueueCommand.openSpool(options).0 else {
                if let id = ids.first { throw fail("no message \(id) in the queue") }
                print("0 messages scheduled for delivery now")
                return
            }
            if ids.isEmpty {
                // Like `postqueue -f`: the runner takes every deferred message at its next scan; no
                // envelope is rewritten (a message it finds undeliverable gets its next time as usual).
                let n = spool.ids(.deferred).count
                spool.requestScan(flushDeferred: true)
                print("\(n) message\(n == 1 ? "" : "s") scheduled for delivery now")
                return
            }
            var n = 0
            for id in ids {
                let state = try QueueCommand.find(spool, id)
                guard state == .deferred, var e = spool.envelope(id, .deferred) else {
                    writeStandardError("swallow: \(id) is \(QueueCommand.phrase(state)), not deferred\n")
                    continue
                }
                e.nextAttempt = Int(time(nil))
                do { try spool.write(e, .deferred, durable: false); n += 1 } catch { writeStandardError("swallow: \(id): \(error)\n") }
            }
            if n > 0 { spool.requestScan() }
            print("\(n) message\(n == 1 ? "" : "s") scheduled for delivery now")
        }
    }

    struct Hold: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Keep a message in the queue without delivering it.")
        @Argument var id: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let (spool, _) = try QueueCommand.openSpool(options, for: id)
            let state = try QueueCommand.find(spool, id)
            guard state == .incoming || state == .deferred else {
                throw fail("\(id) is \(QueueCommand.phrase(state)); only messages waiting for delivery (incoming or deferred) can be held")
            }
            do { try spool.move(id, from: state, to: .hold) } catch { throw fail("\(id): \(error) (it may be in delivery right now; try again)") }
            print("\(id) held")
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Release a held message for delivery now.")
        @Argument var id: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let (spool, _) = try QueueCommand.openSpool(options, for: id)
            let state = try QueueCommand.find(spool, id)
            guard state == .hold, var e = spool.envelope(id, .hold) else { throw fail("\(id) is \(QueueCommand.phrase(state)), not held") }
            e.nextAttempt = Int(time(nil))
            do {
                try spool.write(e, .hold)
                try spool.move(id, from: .hold, to: .deferred)
            } catch { throw fail("\(id): \(error)") }
            spool.requestScan()
            print("\(id) released")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a message from the queue without notice.")
        @Argument var id: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let (spool, _) = try QueueCommand.openSpool(options, for: id)
            let state = try QueueCommand.find(spool, id)
            guard state != .active else { throw fail("\(id) is being delivered right now; hold it or try again") }
            spool.remove(id, state)
            print("\(id) deleted")
        }
    }

    struct Bounce: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give up on a message now and tell the sender (RFC 3464 DSN).")
        @Argument var id: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let (spool, c) = try QueueCommand.openSpool(options, for: id)
            let state = try QueueCommand.find(spool, id)
            guard state != .active else { throw fail("\(id) is being delivered right now; hold it or try again") }
            if state != .hold {
                do { try spool.move(id, from: state, to: .hold) } catch { throw fail("\(id): \(error)") }
            }
            guard let e = spool.envelope(id, .hold) else { throw fail("the envelope of \(id) is unreadable") }
            let now = Int(time(nil))
            if !e.sender.isEmpty {
                let reports = e.pending.map {
                    DeliveryStatusNotification.RecipientReport(address: $0.address, action: "failed", status: "5.0.0",
                                                               diagnostic: "returned by the postmaster\($0.lastResponse.map { "; last error: \($0)" } ?? "")")
                }
                let dsn = DeliveryStatusNotification(hostname: c.hostname, originalSender: e.sender, originalID: id, arrival: e.created,
                                                     recipients: reports, originalHeaders: QueueRunner.headerSection(path: spool.messagePath(id, .hold)))
                let newID = QueueID(microseconds: UInt64(now) * 1_000_000 + UInt64(getpid() & 0xFFFFF), sequence: 1).rawValue
                do {
                    let dir = try spool.prepare(id: newID)
                    let message = dsn.render(now: now, boundary: "\(newID)/\(c.hostname)")
                    let signatures = DKIMKeyStore(root: DataLayout(root: c.dataDirectory).dkim)
                        .signaturesForGenerated(message, configuredDomains: c.domains, now: Int64(now))
                    _ = try MaildirStore.writeMessageFile(path: dir + "/message", headers: signatures, spool: nil,
                                                          tail: ByteBuffer(bytes: message))
                    try spool.commit(id: newID, envelope: QueueEnvelope(id: newID, sender: "", recipients: [e.sender], created: now))
                } catch { throw fail("cannot queue the notification: \(error)") }
                spool.requestScan()  // a running server sends the notification at once
            }
            spool.remove(id, .hold)
            print("\(id) bounced\(e.sender.isEmpty ? " (null sender: no notification)" : " to <\(e.sender)>")")
        }
    }
}
