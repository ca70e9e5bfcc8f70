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

    /// A size as `mailq` readers expect it: octets up to 10 KiB, then K and M.
    static func size(_ n: Int) -> String {
        if n < 10_240 { return "\(n)" }
        if n < 10_485_760 { return "\(n / 1024)K" }
        return "\(n / 1_048_576)M"
    }

    static func fileSize(_ path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One line per queued message, and the totals (like mailq).",
            discussion: "Filters combine: --state deferred --to example.org lists the deferred messages with a pending recipient containing example.org.")
        @Option(name: .long, help: "Only messages in this state (incoming, active, deferred, hold, corrupt).") var state: String?
        @Option(name: .long, help: "Only messages whose sender contains this text (case-insensitive).") var from: String?
        @Option(name: .long, help: "Only messages with a pending recipient containing this text (case-insensitive).") var to: String?
        @Flag(name: .long, help: "One JSON array of {id, state, created, age, size, sender, recipients, attempts, next_attempt, last_error}.") var json = false
        @OptionGroup var options: ConfigOption

        func validate() throws {
            if let state, Spool.State(rawValue: state) == nil {
                throw ValidationError("--state must be one of \(Spool.State.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        func run() async throws {
            guard let spool = try QueueCommand.openSpool(options).0 else {
                print(json ? "[]" : "the queue is empty")
                return
            }
            let now = Int(time(nil))
            var lines: [String] = [], items: [String] = []
            var total = 0, octets = 0
            var byState: [Spool.State: Int] = [:]
            for state in Spool.State.allCases where self.state == nil || self.state == state.rawValue {
                for id in spool.ids(state) {
                    let e = spool.envelope(id, state)
                    if let from, !(e?.sender.lowercased().contains(from.lowercased()) ?? false) { continue }
                    if let to, !(e?.pending.contains { $0.address.lowercased().contains(to.lowercased()) } ?? false) { continue }
                    let size = QueueCommand.fileSize(spool.messagePath(id, state))
                    total += 1
                    octets += size
                    byState[state, default: 0] += 1
                    guard let e else {
                        lines.append("\(id)  \(state.rawValue)  (unreadable envelope)")
                        items.append("{\"id\": \(QuotedLiteral.quote(id)), \"state\": \(QuotedLiteral.quote(state.rawValue)), \"size\": \(size)}")
                        continue
                    }
                    let pending = e.pending.map(\.address)
                    let next = state == .deferred ? " next in \(QueueCommand.age(max(0, e.nextAttempt - now)))" : ""
                    lines.append("\(id)  \(state.rawValue)  age \(QueueCommand.age(now - e.created))  size \(QueueCommand.size(size))  from <\(e.sender)>  to \(pending.isEmpty ? "-" : pending.joined(separator: ","))\(next)  attempts \(e.attempts)\(e.lastError.map { "  last: \($0)" } ?? "")")
                    items.append("{\"id\": \(QuotedLiteral.quote(id)), \"state\": \(QuotedLiteral.quote(state.rawValue)), \"created\": \(e.created), "
                        + "\"age\": \(now - e.created), \"size\": \(size), \"sender\": \(QuotedLiteral.quote(e.sender)), "
                        + "\"recipients\": [\(pending.map(QuotedLiteral.quote).joined(separator: ", "))], \"attempts\": \(e.attempts), "
                        + "\"next_attempt\": \(e.nextAttempt), \"last_error\": \(e.lastError.map(QuotedLiteral.quote) ?? "null")}")
                }
            }
            if json {
                print("[" + items.joined(separator: ",\n ") + "]")
                return
            }
            if total == 0 {
                print(self.state == nil && from == nil && to == nil ? "the queue is empty" : "no message matches")
                return
            }
            for l in lines { print(l) }
            let states = Spool.State.allCases.compactMap { st in byState[st].map { "\(st.rawValue) \($0)" } }.joined(separator: ", ")
            print("-- \(total) message\(total == 1 ? "" : "s"), \(QueueCommand.size(octets)) octets (\(states))")
        }
    }

    /// The IDs a command acts on: as arguments, `-` for standard input (one per line, like
    /// `postsuper -d -`), or `--all`.
    struct Selection: ParsableArguments {
        @Argument(help: "Queue IDs; - reads them from standard input, one per line.") var ids: [String] = []
        @Flag(name: .long, help: "Every message the command applies to.") var all = false

        func validate() throws {
            if all == !ids.isEmpty { throw ValidationError(all ? "give IDs or --all, not both" : "give at least one queue ID, - (standard input) or --all") }
        }

        /// The IDs, checked; with `--all` those in `states`.
        func resolve(_ spool: Spool?, states: [Spool.State]) throws -> [String] {
            if all { return spool.map { sp in states.flatMap { sp.ids($0) } } ?? [] }
            var out: [String] = []
            for id in ids {
                if id == "-" {
                    while let line = readLine() {
                        let t = line.split(whereSeparator: \.isWhitespace).first.map(String.init) ?? ""
                        if !t.isEmpty { out.append(t) }
                    }
                } else {
                    out.append(id)
                }
            }
            for id in out where !QueueEnvelope.isValidID(id) { throw fail("'\(id)' is not a queue ID") }
            return out
        }
    }

    /// Runs `body` for each selected message; a failure is reported (one line) and the others go on,
    /// and the command then exits 1 (as postsuper does). A single ID keeps the one-line error.
    static func each(_ selection: Selection, _ options: ConfigOption, states: [Spool.State],
                     _ body: (Spool, ServerConfiguration, String) throws -> Void) throws {
        let (spool, c) = try openSpool(options)
        let ids = try selection.resolve(spool, states: states)
        guard let spool else {
            if let id = ids.first { throw fail("no message \(id) in the queue") }
            return
        }
        if ids.count == 1 && !selection.all {
            try body(spool, c, ids[0])
            return
        }
        var failed = 0
        for id in ids {
            do { try body(spool, c, id) } catch is ExitCode { failed += 1 } catch {
                failed += 1
                writeStandardError("swallow: \(id): \(error)\n")
            }
        }
        if failed > 0 { throw ExitCode(1) }
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
        static let configuration = CommandConfiguration(abstract: "Keep messages in the queue without delivering them (like postsuper -h).")
        @OptionGroup var selection: Selection
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try QueueCommand.each(selection, options, states: [.incoming, .deferred]) { spool, _, id in
                let state = try QueueCommand.find(spool, id)
                guard state == .incoming || state == .deferred else {
                    throw fail("\(id) is \(QueueCommand.phrase(state)); only messages waiting for delivery (incoming or deferred) can be held")
                }
                do { try spool.move(id, from: state, to: .hold) } catch { throw fail("\(id): \(error) (it may be in delivery right now; try again)") }
                print("\(id) held")
            }
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Release held messages for delivery now (like postsuper -H).")
        @OptionGroup var selection: Selection
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try QueueCommand.each(selection, options, states: [.hold]) { spool, _, id in
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
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete messages from the queue without notice (like postsuper -d).")
        @OptionGroup var selection: Selection
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try QueueCommand.each(selection, options, states: [.incoming, .deferred, .hold, .corrupt]) { spool, _, id in
                let state = try QueueCommand.find(spool, id)
                guard state != .active else { throw fail("\(id) is being delivered right now; hold it or try again") }
                spool.remove(id, state)
                print("\(id) deleted")
            }
        }
    }

    struct Bounce: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give up on messages now and tell their senders (RFC 3464 DSN).")
        @OptionGroup var selection: Selection
        @OptionGroup var options: ConfigOption

        func run() async throws {
            var sequence: UInt32 = 0
            try QueueCommand.each(selection, options, states: [.incoming, .deferred, .hold]) { spool, c, id in
                sequence += 1
                try Self.bounce(spool, c, id, sequence: sequence)
            }
        }

        /// Bounces one message; `sequence` tells apart the notifications one run queues.
        static func bounce(_ spool: Spool, _ c: ServerConfiguration, _ id: String, sequence: UInt32) throws {
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
                let newID = QueueID(microseconds: UInt64(now) * 1_000_000 + UInt64(getpid() & 0xFFFFF), sequence: sequence).rawValue
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
