import Foundation
import IMAPCore
import MailTesting
import NIOCore
import SASL

/// Plays an ``IMAPTranscript`` against ``IMAPCommandParser`` + ``IMAPServerStateMachine`` +
/// ``IMAPResponseEncoder`` with no sockets, one machine per connection over one ``MemoryMailStore``.
/// Actions are performed the way IMAPServer's adapter performs them (IMAPServerConnection.run): the
/// store's pending changes are handed to the machine before each command and after each store
/// request, an idling session gets changes pushed at once, FETCH responses are built by
/// ``FetchResponseBuilder`` from the session's facts and the message's ``MessageStructure``.
/// The listener settings are those of the live server (SwallowServer's IMAP listener).
struct IMAPTranscriptRunner {
    struct Failure: CustomStringConvertible {
        var line: Int
        var message: String
        var description: String { "line \(line): \(message)" }
    }

    struct Outcome {
        var failures: [Failure] = []
        /// Every line the server wrote, per connection.
        var serverLines: [Int: [String]] = [:]
        /// Client writes and server lines in the order they happened, in transcript syntax (for writing
        /// new transcripts: `IMAP_TRANSCRIPT_DUMP=1`).
        var log: [String] = []
    }

    static let hostname = "mx.example.test"

    static func run(_ transcript: IMAPTranscript, splitting: WriteSplitting = .asWritten) -> Outcome {
        let harness = Harness(transcript, splitting: splitting)
        harness.play()
        return harness.outcome
    }

    /// What an adapter holds for one connection.
    final class Connection {
        let number: Int
        var machine: IMAPServerStateMachine
        var parser: IMAPCommandParser
        var output: [UInt8] = []
        var unread: [String] = []
        var closed = false
        var tlsPending = false
        var session: MemoryMailStore.Session?
        var append: (mailbox: String, message: AppendMessage, bytes: [UInt8])?

        init(number: Int, machine: IMAPServerStateMachine, parser: IMAPCommandParser) {
            self.number = number
            self.machine = machine
            self.parser = parser
        }
    }

    final class Harness {
        let transcript: IMAPTranscript
        let splitting: WriteSplitting
        let store = MemoryMailStore()
        var connections: [Int: Connection] = [:]
        var outcome = Outcome()
        var bindings: [String: String] = [:]
        var currentLine = 0

        init(_ transcript: IMAPTranscript, splitting: WriteSplitting) {
            self.transcript = transcript
            self.splitting = splitting
        }

        func fail(_ message: String) { outcome.failures.append(Failure(line: currentLine, message: message)) }

        var machineConfiguration: IMAPServerStateMachine.Configuration {
            .init(hostname: IMAPTranscriptRunner.hostname, tlsAvailable: true,
                  allowPlaintextAuthentication: transcript.plaintextAuthentication,
                  appendLimit: transcript.maxLiteral ?? 50 * 1_048_576, compressionAvailable: true)
        }

        var parserConfiguration: IMAPCommandParser.Configuration {
            .init(maxCommandSize: transcript.maxCommandSize ?? 65_536, maxAppendSize: transcript.maxLiteral ?? 50 * 1_048_576)
        }

        static var now: Int64 { Int64(Date().timeIntervalSince1970) }

        func play() {
            for (user, name) in transcript.mailboxes {
                do { try store.create(user, name, specialUse: nil) } catch { fail("cannot create \(name): \(error)") }
            }
            for m in transcript.messages {
                guard let folder = store.account(m.user).folders[m.mailbox] else { fail("no mailbox \(m.mailbox)"); continue }
                var date = Self.now
                if let text = m.internalDate {
                    guard let d = Self.parseDateTime(text) else { fail("bad date \(text)"); continue }
                    date = d
                }
                folder.append(MemoryMailStore.crlf(m.content), flags: m.flags, internalDate: date)
            }
            for step in transcript.steps {
                currentLine = step.line
                outcome.log.append("#step \(step.line)")
                switch step {
                case .write(let n, let bytes, _):
                    let c = connection(n)
                    guard !c.closed else {
                        fail("connection \(n) writes, but the server has closed it")
                        continue
                    }
                    for piece in splitting.pieces(of: [IMAPTranscript.substitute(bytes, bindings)]) {
                        if c.closed { break }
                        if c.tlsPending { continue }  // would go to the TLS handshake
                        c.parser.append(ByteBuffer(bytes: piece))
                        process(c)
                    }
                case .expect(let n, let pattern, _):
                    let c = connection(n)
                    guard !c.unread.isEmpty else {
                        fail("connection \(n): expected '\(pattern)', but the server wrote nothing more")
                        continue
                    }
                    let actual = c.unread.removeFirst()
                    if !IMAPTranscript.matches(pattern, actual, bindings: &bindings) {
                        fail("connection \(n): expected '\(pattern)', got '\(actual)'")
                    }
                case .tls(let n, _):
                    let c = connection(n)
                    guard c.tlsPending else {
                        fail("@\(n) tls, but no STARTTLS was accepted")
                        continue
                    }
                    c.tlsPending = false
                    c.machine.tlsEstablished()
                case .expectClosed(let n, _):
                    let c = connection(n)
                    if !c.unread.isEmpty { fail("connection \(n): unexpected lines before close: \(c.unread)") }
                    c.unread.removeAll()
                    if !c.closed { fail("connection \(n): expected the server to have closed the connection") }
                case .clientCloses(let n, _):
                    let c = connection(n)
                    c.session?.close()
                    c.session = nil
                    c.closed = true
                    c.unread.removeAll()
                case .deliver(let mailbox, let content, _):
                    guard let user = transcript.users.first?.user, let folder = store.account(user).folders[mailbox] else {
                        fail("no mailbox \(mailbox) to deliver to")
                        continue
                    }
                    folder.append(MemoryMailStore.crlf(content), flags: [], internalDate: Self.now)
                    folder.post()
                }
            }
            currentLine = 0
            for n in connections.keys.sorted() {
                let c = connections[n]!
                if !c.unread.isEmpty { fail("connection \(n): unexpected lines at the end: \(c.unread)") }
            }
        }

        func connection(_ n: Int) -> Connection {
            if let c = connections[n] { return c }
            let c = Connection(number: n, machine: IMAPServerStateMachine(configuration: machineConfiguration),
                               parser: IMAPCommandParser(configuration: parserConfiguration))
            connections[n] = c
            run(c, c.machine.connectionEstablished())
            return c
        }

        // MARK: The adapter

        /// IMAPServerConnection.handleNext, until the parser needs more bytes.
        func process(_ c: Connection) {
            while !c.closed, !c.tlsPending {
                guard let item = c.parser.next() else { return }
                switch item {
                case .command(let command):
                    takeUpdate(c)
                    run(c, c.machine.commandReceived(command))
                case .continuationRequested(let tag, let size):
                    run(c, c.machine.continuationRequested(tag: tag, size: size))
                case .appendStarted(let tag, let name, let message, let synchronizing):
                    takeUpdate(c)
                    run(c, c.machine.appendStarted(tag: tag, mailbox: name, message: message, synchronizing: synchronizing))
                    dropAbandonedAppend(c)
                case .appendData(let bytes):
                    if c.append != nil { c.append!.bytes += Array(bytes.readableBytesView) }
                case .appendFinished:
                    run(c, c.machine.appendDataFinished())
                case .saslResponse(let line):
                    run(c, c.machine.saslResponseReceived(line))
                case .idleDone:
                    takeUpdate(c)
                    run(c, c.machine.idleDone())
                case .error(let error):
                    run(c, c.machine.parseFailed(error))
                    dropAbandonedAppend(c)
                }
            }
        }

        func dropAbandonedAppend(_ c: Connection) {
            if c.append != nil, !c.machine.isReceivingAppend { c.append = nil }
        }

        func takeUpdate(_ c: Connection) {
            guard let s = c.session else { return }
            let update = s.takeUpdate()
            if !update.isEmpty || update.highestModSeq != nil { _ = c.machine.mailboxUpdated(update) }
        }

        /// The store says `c`'s mailbox changed (IMAPServerConnection.mailboxChanged).
        func changed(_ c: Connection) {
            guard !c.closed, let s = c.session, c.machine.isIdling else { return }
            run(c, c.machine.mailboxUpdated(s.takeUpdate()))
        }

        func write(_ c: Connection, _ responses: [IMAPResponse]) {
            guard !responses.isEmpty, !c.closed else { return }
            let encoder = IMAPResponseEncoder(options: c.machine.encoderOptions)
            var out = ByteBuffer()
            for r in responses { encoder.encode(r, into: &out) }
            c.output += Array(out.readableBytesView)
            let lines = IMAPTranscript.takeLines(&c.output)
            c.unread += lines
            outcome.serverLines[c.number, default: []] += lines
            outcome.log += lines.map { "S\(c.number): \($0)" }
        }

        func apply(_ c: Connection, _ continuation: IMAPServerStateMachine.Continuation) {
            switch continuation {
            case .readCommands: c.parser.setMode(.commands)
            case .readSASLResponse: c.parser.setMode(.saslResponse)
            case .readIdle: c.parser.setMode(.idle)
            case .acceptLiteral: c.parser.literalAccepted()
            case .rejectLiteral: c.parser.literalRejected()
            case .startTLS:
                c.tlsPending = true
                c.parser.discardBufferedBytes()
            case .startCompression:
                fail("COMPRESS cannot be played in a transcript")
                close(c)
            case .close: close(c)
            }
        }

        func close(_ c: Connection) {
            c.closed = true
            c.session?.close()
            c.session = nil
        }

        /// A store request's result goes to the machine after the mailbox's changes were taken (`ask`).
        func ask<T>(_ c: Connection, _ work: () throws(MailboxError) -> T,
                    then: (inout IMAPServerStateMachine, Result<T, MailboxError>) -> IMAPServerStateMachine.Action) {
            let result: Result<T, MailboxError>
            do { result = .success(try work()) } catch { result = .failure(error) }
            takeUpdate(c)
            run(c, then(&c.machine, result))
        }

        func run(_ c: Connection, _ action: IMAPServerStateMachine.Action) {
            guard !c.closed else { return }
            let user = c.machine.user ?? ""
            switch action {
            case .none:
                break
            case .send(let responses, let then):
                write(c, responses)
                apply(c, then)
            case .verifyPassword(let name, let password):
                let ok = transcript.password(of: name) == password
                run(c, c.machine.passwordVerified(ok, user: name))
            case .lookUpSCRAMCredentials(let name):
                let password = transcript.password(of: name)
                run(c, c.machine.scramCredentialsFound(SCRAMCredentials(password: password ?? "decoy"), userExists: password != nil))
            case .openSession(let name):
                _ = store.account(name)
                run(c, c.machine.sessionOpened(.success(())))
            case .select(let name, _, let qresync):
                c.session?.close()
                c.session = nil
                guard let folder = store.account(user).folders[name] else {
                    run(c, c.machine.mailboxSelected(.failure(.nonexistent)))
                    return
                }
                let session = MemoryMailStore.Session(store: store, user: user, folder: folder) { [unowned self, unowned c] in
                    self.changed(c)
                }
                let known = session.known
                var changedSince: [MessageFlags] = []
                if let q = qresync, q.uidValidity == folder.uidValidity {
                    changedSince = known.filter { $0.modSeq > q.modSeq }.map(folder.messageFlags)
                }
                let info = SelectedMailboxInfo(
                    name: name, uidValidity: folder.uidValidity, uidNext: folder.nextUID, highestModSeq: max(folder.highestModSeq, 1),
                    uids: known.map(\.uid), keywords: folder.keywords.map(IMAPFlag.init),
                    firstUnseen: known.firstIndex { !$0.flags.contains("\\seen") }.map { $0 + 1 }, changed: changedSince)
                c.session = session
                run(c, c.machine.mailboxSelected(.success(info)))
            case .unselect(let responses):
                c.session?.close()
                c.session = nil
                write(c, responses)
            case .listMailboxes:
                ask(c, { () throws(MailboxError) in store.mailboxes(user) }) { $0.mailboxesListed($1) }
            case .status(let names):
                ask(c, { () throws(MailboxError) in store.status(user, names) }) { $0.statusesFetched($1) }
            case .create(let name, let use):
                ask(c, { () throws(MailboxError) in try store.create(user, name, specialUse: use) }) { $0.mailboxOperationCompleted($1) }
            case .delete(let name):
                ask(c, { () throws(MailboxError) in try store.delete(user, name) }) { $0.mailboxOperationCompleted($1) }
            case .rename(let from, let to):
                ask(c, { () throws(MailboxError) in try store.rename(user, from, to) }) { $0.mailboxOperationCompleted($1) }
            case .subscribe(let name):
                ask(c, { () throws(MailboxError) in try store.subscribe(user, name) }) { $0.mailboxOperationCompleted($1) }
            case .unsubscribe(let name):
                ask(c, { () throws(MailboxError) in store.unsubscribe(user, name) }) { $0.mailboxOperationCompleted($1) }
            case .quota:
                ask(c, { () throws(MailboxError) in store.quota(user) }) { $0.quotaFetched($1) }
            case .fetch(let request):
                fetch(c, request)
            case .search(let request):
                guard let s = c.session else { return fail("SEARCH without a mailbox") }
                ask(c, { () throws(MailboxError) in s.search(request) }) { $0.searchCompleted($1) }
            case .sort(let request, let criteria):
                guard let s = c.session else { return fail("SORT without a mailbox") }
                ask(c, { () throws(MailboxError) in MessageSorter.sort(s.sortable(request), by: criteria) }) { $0.sortCompleted($1) }
            case .thread(let request, let algorithm):
                guard let s = c.session else { return fail("THREAD without a mailbox") }
                ask(c, { () throws(MailboxError) in
                    let m = s.sortable(request)
                    return algorithm == "ORDEREDSUBJECT" ? MessageThreader.orderedSubject(m) : MessageThreader.references(m)
                }) { $0.threadCompleted($1) }
            case .store(let request):
                guard let s = c.session else { return fail("STORE without a mailbox") }
                ask(c, { () throws(MailboxError) in s.store(request) }) { $0.storeCompleted($1) }
            case .copy(let uids, let target, let move):
                guard let s = c.session else { return fail("COPY without a mailbox") }
                ask(c, { () throws(MailboxError) in try s.copy(uids, to: target, move: move) }) { $0.copyCompleted($1) }
            case .expunge(let uids):
                guard let s = c.session else { return fail("EXPUNGE without a mailbox") }
                ask(c, { () throws(MailboxError) in s.expunge(uids) }) { $0.expungeCompleted($1) }
            case .beginAppend(let name, let message, let continuation, let then):
                c.append = (name, message, [])
                write(c, continuation)
                apply(c, then)
            case .commitAppend:
                guard let append = c.append else { return fail("commitAppend without a message") }
                c.append = nil
                ask(c, { () throws(MailboxError) -> (uidValidity: UInt32, uid: UInt32) in
                    guard let folder = store.account(user).folders[append.mailbox] else { throw .nonexistent }
                    let uid = folder.append(MemoryMailStore.crlf(append.bytes), flags: append.message.flags.map(\.name),
                                            internalDate: append.message.internalDate?.secondsSinceEpoch ?? Self.now)
                    folder.post()
                    return (folder.uidValidity, uid)
                }) { $0.appendCompleted($1) }
            case .close:
                close(c)
            }
        }

        /// IMAPServerConnection.fetch / fetchChunk, in one chunk.
        func fetch(_ c: Connection, _ request: FetchRequest) {
            guard let s = c.session else { return fail("FETCH without a mailbox") }
            write(c, request.preceding)
            let needsContent = FetchResponseBuilder.needsContent(request.attributes)
            let marksSeen = request.setsSeen && FetchResponseBuilder.setsSeen(request.attributes)
            var gone: [UInt32] = []
            var responses: [IMAPResponse] = []
            var failed = false
            for (i, m) in request.messages.enumerated() {
                guard var facts = s.facts(of: m.uid) else {
                    gone.append(m.uid)
                    continue
                }
                if let since = request.changedSince, facts.modSeq <= since { continue }
                do throws(MailboxError) {
                    var content: ByteBuffer?
                    if needsContent { content = try s.content(of: m.uid) }
                    if marksSeen, !facts.flags.contains(.seen), let now = s.markSeen([m.uid]).first {
                        facts.flags = now.flags
                        facts.modSeq = now.modSeq
                    }
                    let items = try FetchResponseBuilder.items(request.attributes, facts: facts, content: content,
                                                               seenWasSet: marksSeen).items
                    responses.append(.fetch(sequenceNumber: m.sequenceNumber, items))
                } catch .expungeIssued {
                    gone.append(m.uid)
                } catch {
                    gone += request.messages[(i + 1)...].map(\.uid)
                    failed = true
                }
                if failed { break }
            }
            write(c, responses)
            takeUpdate(c)
            run(c, c.machine.fetchCompleted(missing: gone))
        }

        /// `05-Jan-2026 10:00:00 +0000` → seconds since 1970.
        static func parseDateTime(_ text: String) -> Int64? {
            let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            let parts = text.split(separator: " ")
            guard parts.count == 3 else { return nil }
            let d = parts[0].split(separator: "-"), t = parts[1].split(separator: ":")
            guard d.count == 3, t.count == 3, let day = Int(d[0]), let month = months.firstIndex(of: String(d[1])),
                  let year = Int(d[2]), let h = Int(t[0]), let mi = Int(t[1]), let sec = Int(t[2]),
                  parts[2].count == 5, let zone = Int(parts[2].dropFirst()) else { return nil }
            let sign = parts[2].first == "-" ? -1 : 1
            let dt = IMAPDateTime(date: IMAPDate(year: year, month: month + 1, day: day), hour: h, minute: mi, second: sec,
                                  zoneMinutes: sign * (zone / 100 * 60 + zone % 100))
            return dt.secondsSinceEpoch
        }
    }
}
