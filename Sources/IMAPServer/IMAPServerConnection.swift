import IMAPCore
import ListenerSupport
import Logging
import MailCore
import NIOCore

/// The IMAP protocol on the shared ``ServerConnection`` shell: bytes → ``IMAPCommandParser`` →
/// ``IMAPServerStateMachine`` → `run`. Store work runs off the event loop with reads paused; FETCH
/// output is produced in chunks of ``IMAPListener/Configuration/fetchChunk`` octets and the next
/// chunk waits until the client has taken the last one, so a client that never reads a large FETCH
/// holds at most one chunk (and is logged out by the timer). Changes to the selected mailbox come
/// from the store's `changed` callback: pushed at once during IDLE, otherwise announced when a
/// command completes (the machine decides which may go out when).
final class IMAPServerConnection: ServerConnection<IMAPListener.Configuration> {
    private var machine: IMAPServerStateMachine
    private var parser: IMAPCommandParser
    private let delegate: any IMAPServerDelegate
    private var account: (any IMAPAccount)?
    private var mailbox: (any IMAPSelectedMailbox)?
    private var appendSink: (any IMAPAppendSink)?
    private var appendPending: [ByteBuffer] = []
    private var appendPendingBytes = 0
    private var appendFailure: MailboxError?
    private var user: String?
    private var commands = 0

    init(listener: ListenerContext<IMAPListener.Configuration>, delegate: any IMAPServerDelegate, logger: Logger) {
        self.delegate = delegate
        self.machine = IMAPServerStateMachine(configuration: listener.configuration.machine,
                                              implicitTLS: listener.configuration.endpoint.implicitTLS)
        self.parser = IMAPCommandParser(configuration: listener.configuration.parser)
        super.init(listener: listener, logger: logger, shutdownWaitsForWork: false)
    }

    // MARK: The shell's hooks

    override var startTLSCommand: String { "STARTTLS" }
    override var idleTimeout: TimeAmount { machine.isAuthenticated ? configuration.autologout : configuration.loginTimeout }
    override var bufferedByteCount: Int { parser.bufferedByteCount }
    override func discardBufferedBytes() { parser.discardBufferedBytes() }
    override func greet(context: ChannelHandlerContext) { run(machine.connectionEstablished(), context: context) }
    override func tlsEstablished(version: String, context: ChannelHandlerContext) { machine.tlsEstablished() }
    override func received(_ bytes: ByteBuffer, context: ChannelHandlerContext) { parser.append(bytes) }

    override func timedOut(_ phase: TimeoutPhase, context: ChannelHandlerContext) {
        switch phase {
        case .handshake, .busy:
            logger.notice(phase == .handshake ? "autologout during the TLS handshake" : "autologout while the client does not read")
            closeNow(context: context)
        case .idle:
            logger.notice("autologout")
            run(machine.autologoutTimerFired(), context: context)
        }
    }

    override func drainRequested(context: ChannelHandlerContext) {
        run(machine.shutdownRequested(), context: context)
        context.flush()
    }

    override func sessionAbandoned() {
        if let sink = appendSink {
            appendSink = nil
            Task { await sink.abort() }
        }
    }

    override func disconnected(context: ChannelHandlerContext) {
        releaseMailbox()
        if let account {
            self.account = nil
            Task { await account.close() }
        }
        logger.info("disconnect", metadata: ["user": "\(user?.logEscaped() ?? "-")", "commands": "\(commands)"])
    }

    // MARK: Input

    override func handleNext(context: ChannelHandlerContext) -> Bool {
        guard let item = parser.next() else { return false }
        switch item {
        case .command(let command):
            commands += 1
            takeUpdate()
            run(machine.commandReceived(command), context: context)
        case .continuationRequested(let tag, let size):
            run(machine.continuationRequested(tag: tag, size: size), context: context)
        case .appendStarted(let tag, let name, let message, let synchronizing):
            commands += 1
            takeUpdate()
            run(machine.appendStarted(tag: tag, mailbox: name, message: message, synchronizing: synchronizing), context: context)
            dropAbandonedAppend()
        case .appendData(let bytes):
            appendReceived(bytes, context: context)
        case .appendFinished:
            run(machine.appendDataFinished(), context: context)
        case .saslResponse(let line):
            run(machine.saslResponseReceived(line), context: context)
        case .idleDone:
            takeUpdate()
            run(machine.idleDone(), context: context)
        case .error(let error):
            run(machine.parseFailed(error), context: context)
            dropAbandonedAppend()
        }
        return true
    }

    /// Hands the store's pending changes to the machine (cheap when nothing changed).
    private func takeUpdate() {
        guard let mailbox else { return }
        let update = mailbox.takeUpdate()
        if !update.isEmpty || update.highestModSeq != nil { _ = machine.mailboxUpdated(update) }
    }

    /// The store says the selected mailbox changed (on this connection's event loop).
    private func mailboxChanged(context: ChannelHandlerContext) {
        guard !isClosed, let mailbox, machine.isIdling else { return }
        run(machine.mailboxUpdated(mailbox.takeUpdate()), context: context)
        context.flush()
    }

    // MARK: Output

    private func write(_ responses: [IMAPResponse], context: ChannelHandlerContext) {
        guard !responses.isEmpty else { return }
        let encoder = IMAPResponseEncoder(options: machine.encoderOptions)
        var out = context.channel.allocator.buffer(capacity: 128 * responses.count)
        for r in responses { encoder.encode(r, into: &out) }
        context.write(wrapOutboundOut(out), promise: nil)
    }

    private func apply(_ continuation: IMAPServerStateMachine.Continuation, context: ChannelHandlerContext) {
        switch continuation {
        case .readCommands: parser.setMode(.commands)
        case .readSASLResponse: parser.setMode(.saslResponse)
        case .readIdle:
            parser.setMode(.idle)
            context.flush()
        case .acceptLiteral:
            context.flush()
            parser.literalAccepted()
        case .rejectLiteral: parser.literalRejected()
        case .startTLS: startTLS(context: context)
        case .startCompression:
            // The OK leaves uncompressed; everything after it is DEFLATE (RFC 4978 §3). A client that
            // sent more before reading the OK broke the protocol: its bytes cannot be decoded.
            context.flush()
            guard parser.bufferedByteCount == 0 else {
                logger.notice("closing: \(parser.bufferedByteCount) bytes pipelined after COMPRESS")
                return closeNow(context: context)
            }
            do {
                try context.pipeline.syncOperations.addHandler(DeflateHandler(), position: .before(self))
            } catch {
                logger.error("cannot start compression: \(error)")
                closeNow(context: context)
            }
        case .close: closeAfterFlush(context: context)
        }
    }

    /// Runs store work off the loop; the result (errors other than ``MailboxError`` become
    /// `[UNAVAILABLE]`, logged) goes to `then` after the mailbox's changes were taken.
    private func ask<T: Sendable>(_ what: String, context: ChannelHandlerContext, _ work: @escaping @Sendable () async throws -> T,
                                  then: @escaping (Result<T, MailboxError>) -> IMAPServerStateMachine.Action) {
        context.flush()
        offLoop(context, { () async -> Result<T, MailboxError> in
            do { return .success(try await work()) } catch let e as MailboxError { return .failure(e) } catch {
                return .failure(.unavailable)
            }
        }, restartTimer: true) { result in
            if case .failure(.unavailable) = result { self.logger.error("\(what) failed: the store is unavailable") }
            self.takeUpdate()
            self.run(then(result), context: context)
        }
    }

    /// The only place that writes, closes, starts TLS or calls the delegate.
    private func run(_ action: IMAPServerStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .send(let responses, let then):
            write(responses, context: context)
            apply(then, context: context)
        case .verifyPassword(let user, let password):
            context.flush()
            let delegate = self.delegate
            let ip = remoteIP
            offLoop(context, { await delegate.authenticate(user: user, password: password, remoteIP: ip) }, restartTimer: true) { ok in
                if !ok { self.logger.notice("authentication failed", metadata: ["login": "\(user.logEscaped())"]) }
                self.run(self.machine.passwordVerified(ok, user: user), context: context)
            }
        case .lookUpSCRAMCredentials(let user):
            context.flush()
            let delegate = self.delegate
            let ip = remoteIP
            offLoop(context, { await delegate.scramCredentials(user: user, remoteIP: ip) }, restartTimer: true) { found in
                self.run(self.machine.scramCredentialsFound(found.credentials, userExists: found.userExists), context: context)
            }
        case .openSession(let user):
            let delegate = self.delegate
            let ip = remoteIP
            offLoop(context, { () async -> Result<any IMAPAccount, MailboxError> in
                do { return .success(try await delegate.openAccount(user: user, remoteIP: ip)) } catch let e as MailboxError {
                    return .failure(e)
                } catch {
                    return .failure(.unavailable)
                }
            }, ifClosed: { result in
                if case .success(let account) = result { Task { await account.close() } }
            }, restartTimer: true) { result in
                switch result {
                case .success(let account):
                    self.account = account
                    self.user = user
                    self.logger.user = user.logEscaped()
                    self.logger.info("login")
                    self.run(self.machine.sessionOpened(.success(())), context: context)
                case .failure(let error):
                    if case .limit = error { self.logger.notice("login refused: too many connections", metadata: ["login": "\(user.logEscaped())"]) }
                    self.run(self.machine.sessionOpened(.failure(error)), context: context)
                }
            }
        case .select(let name, let readOnly, let qresync):
            releaseMailbox()
            guard let account else { preconditionFailure("SELECT without an account") }
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            let changed: @Sendable () -> Void = {
                loop.execute {
                    let (handler, context) = bound.value
                    handler.mailboxChanged(context: context)
                }
            }
            context.flush()
            offLoop(context, { () async -> Result<(any IMAPSelectedMailbox, SelectedMailboxInfo), MailboxError> in
                do { return .success(try await account.select(name, readOnly: readOnly, qresync: qresync, changed: changed)) } catch let e as MailboxError {
                    return .failure(e)
                } catch {
                    return .failure(.unavailable)
                }
            }, ifClosed: { result in
                if case .success(let (mailbox, _)) = result { mailbox.close() }
            }, restartTimer: true) { result in
                switch result {
                case .success(let (mailbox, info)):
                    self.mailbox = mailbox
                    self.run(self.machine.mailboxSelected(.success(info)), context: context)
                case .failure(let error):
                    if case .unavailable = error { self.logger.error("SELECT failed: the store is unavailable") }
                    self.run(self.machine.mailboxSelected(.failure(error)), context: context)
                }
            }
        case .unselect(let responses):
            releaseMailbox()
            write(responses, context: context)
        case .listMailboxes:
            guard let account else { preconditionFailure("LIST without an account") }
            ask("LIST", context: context, { try await account.mailboxes() }) { self.machine.mailboxesListed($0) }
        case .status(let names):
            guard let account else { preconditionFailure("STATUS without an account") }
            ask("STATUS", context: context, { try await account.status(of: names) }) { self.machine.statusesFetched($0) }
        case .create(let name, let use):
            guard let account else { preconditionFailure("CREATE without an account") }
            ask("CREATE", context: context, { try await account.create(name, specialUse: use) }) { self.machine.mailboxOperationCompleted($0) }
        case .delete(let name):
            guard let account else { preconditionFailure("DELETE without an account") }
            ask("DELETE", context: context, { try await account.delete(name) }) { self.machine.mailboxOperationCompleted($0) }
        case .rename(let from, let to):
            guard let account else { preconditionFailure("RENAME without an account") }
            ask("RENAME", context: context, { try await account.rename(from, to: to) }) { self.machine.mailboxOperationCompleted($0) }
        case .subscribe(let name):
            guard let account else { preconditionFailure("SUBSCRIBE without an account") }
            ask("SUBSCRIBE", context: context, { try await account.subscribe(name) }) { self.machine.mailboxOperationCompleted($0) }
        case .unsubscribe(let name):
            guard let account else { preconditionFailure("UNSUBSCRIBE without an account") }
            ask("UNSUBSCRIBE", context: context, { try await account.unsubscribe(name) }) { self.machine.mailboxOperationCompleted($0) }
        case .quota:
            guard let account else { preconditionFailure("GETQUOTA without an account") }
            ask("GETQUOTA", context: context, { try await account.quota() }) { self.machine.quotaFetched($0) }
        case .fetch(let request):
            fetch(request, context: context)
        case .search(let request):
            guard let mailbox else { preconditionFailure("SEARCH without a mailbox") }
            ask("SEARCH", context: context, { try await mailbox.search(request) }) { self.machine.searchCompleted($0) }
        case .sort(let request, let criteria):
            guard let mailbox else { preconditionFailure("SORT without a mailbox") }
            ask("SORT", context: context, { try await mailbox.sort(request, by: criteria) }) { self.machine.sortCompleted($0) }
        case .thread(let request, let algorithm):
            guard let mailbox else { preconditionFailure("THREAD without a mailbox") }
            ask("THREAD", context: context, { try await mailbox.thread(request, algorithm: algorithm) }) { self.machine.threadCompleted($0) }
        case .store(let request):
            guard let mailbox else { preconditionFailure("STORE without a mailbox") }
            ask("STORE", context: context, { try await mailbox.store(request) }) { self.machine.storeCompleted($0) }
        case .copy(let uids, let target, let move):
            guard let mailbox else { preconditionFailure("COPY without a mailbox") }
            ask(move ? "MOVE" : "COPY", context: context, { try await mailbox.copy(uids, to: target, move: move) }) { self.machine.copyCompleted($0) }
        case .expunge(let uids):
            guard let mailbox else { preconditionFailure("EXPUNGE without a mailbox") }
            ask("EXPUNGE", context: context, { try await mailbox.expunge(uids) }) { self.machine.expungeCompleted($0) }
        case .beginAppend(let name, let message, let continuation, let then):
            guard let account else { preconditionFailure("APPEND without an account") }
            appendSink = account.appendSink(mailbox: name, message: message)
            appendPending = []
            appendPendingBytes = 0
            appendFailure = nil
            write(continuation, context: context)
            apply(then, context: context)
        case .commitAppend:
            guard let sink = appendSink else { preconditionFailure("commitAppend without a sink") }
            appendSink = nil
            let pending = appendPending
            let failure = appendFailure
            appendPending = []
            appendPendingBytes = 0
            ask("APPEND", context: context, { () async throws -> (uidValidity: UInt32, uid: UInt32) in
                if let failure {
                    await sink.abort()
                    throw failure
                }
                do {
                    for chunk in pending { try await sink.write(chunk) }
                    return try await sink.commit()
                } catch {
                    await sink.abort()
                    throw error
                }
            }) { self.machine.appendCompleted($0) }
        case .close:
            closeNow(context: context)
        }
    }

    // MARK: APPEND

    /// The machine gave up an APPEND whose message was arriving (a malformed line after it, a refused
    /// second message): discard what was spooled.
    private func dropAbandonedAppend() {
        guard let sink = appendSink, !machine.isReceivingAppend else { return }
        appendSink = nil
        appendPending = []
        appendPendingBytes = 0
        Task { await sink.abort() }
    }

    private func appendReceived(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        guard let sink = appendSink, appendFailure == nil else { return }  // a refused APPEND: discard
        appendPending.append(bytes)
        appendPendingBytes += bytes.readableBytes
        guard appendPendingBytes >= 1 << 20 else { return }
        let chunks = appendPending
        appendPending = []
        appendPendingBytes = 0
        offLoop(context, { () async -> MailboxError? in
            do {
                for chunk in chunks { try await sink.write(chunk) }
                return nil
            } catch let e as MailboxError {
                return e
            } catch {
                return .unavailable
            }
        }) { failure in
            if let failure { self.appendFailure = failure }
        }
    }

    // MARK: FETCH

    private func fetch(_ request: FetchRequest, context: ChannelHandlerContext) {
        guard let mailbox else { preconditionFailure("FETCH without a mailbox") }
        write(request.preceding, context: context)
        context.flush()
        beginWork()
        fetchChunk(request, from: 0, missing: [], mailbox: mailbox, context: context)
    }

    /// Builds the responses of the messages from `index` on until a chunk is full, writes them, and
    /// goes on once the client took them.
    private func fetchChunk(_ request: FetchRequest, from index: Int, missing: [UInt32], mailbox: any IMAPSelectedMailbox,
                            context: ChannelHandlerContext) {
        let encoder = IMAPResponseEncoder(options: machine.encoderOptions)
        let limit = configuration.fetchChunk
        let needsContent = FetchResponseBuilder.needsContent(request.attributes)
        let marksSeen = request.setsSeen && FetchResponseBuilder.setsSeen(request.attributes)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let promise = context.eventLoop.makePromise(of: (ByteBuffer, Int, [UInt32], MailboxError?).self)
        // A chunk is at most 64 messages that need their content (or 512 that do not), at most
        // about `limit` octets of message content, and stops early once `limit` octets of
        // responses are built.
        let batch = needsContent || marksSeen ? 64 : 512
        let cacheable = request.attributes.contains(where: FetchResponseBuilder.isCacheable)
        let cacheSuffices = FetchResponseBuilder.cacheSuffices(request.attributes)
        let wantsDates = request.attributes.contains(.internalDate)
        let build: @Sendable () async -> (ByteBuffer, Int, [UInt32], MailboxError?) = {
            var out = ByteBufferAllocator().buffer(capacity: 4096)
            var gone = missing
            let end = min(index + batch, request.messages.count)
            var wanted = request.messages[index..<end]
            if needsContent, !cacheSuffices, wanted.count > 1 {
                // Content is read for about `limit` octets of messages (at least one), not for the
                // whole batch: 64 large messages read in one go would all be held at once (64 MB
                // per client that never reads), while the chunk sends only `limit` octets of them.
                let sizes = mailbox.sizes(of: wanted.map(\.uid))
                var total = 0
                var cut = wanted.startIndex
                for j in wanted.indices {
                    cut = j + 1
                    total += sizes[wanted[j].uid] ?? 0
                    if total >= limit { break }
                }
                wanted = wanted[wanted.startIndex..<cut]
            }
            var loaded: [FetchedMessage]
            do {
                loaded = try await mailbox.load(wanted.map(\.uid), content: !needsContent ? .never : cacheSuffices ? .unlessCached : .always,
                                                cached: needsContent && cacheable, internalDates: wantsDates)
            } catch let e as MailboxError {
                return (out, index, gone, e)
            } catch {
                return (out, index, gone, .unavailable)
            }
            let present = Set(loaded.map(\.facts.uid))
            if let since = request.changedSince { loaded.removeAll { $0.facts.modSeq <= since } }
            if marksSeen {
                let unseen = loaded.filter { !$0.facts.flags.contains(.seen) }.map(\.facts.uid)
                if !unseen.isEmpty {
                    do {
                        let now = try await mailbox.markSeen(unseen)
                        var byUID: [UInt32: MessageFlags] = [:]
                        for f in now { byUID[f.uid] = f }
                        for j in loaded.indices {
                            if let f = byUID[loaded[j].facts.uid] {
                                loaded[j].facts.flags = f.flags
                                loaded[j].facts.modSeq = f.modSeq
                            }
                        }
                    } catch let e as MailboxError {
                        return (out, index, gone, e)
                    } catch {
                        return (out, index, gone, .unavailable)
                    }
                }
            }
            var byUID: [UInt32: FetchedMessage] = [:]
            for m in loaded { byUID[m.facts.uid] = m }
            var records: [(uid: UInt32, record: [UInt8])] = []
            defer { if !records.isEmpty { mailbox.cache(records) } }
            var i = index
            for m in wanted {
                i += 1
                guard let found = byUID[m.uid] else {
                    // Not changed since CHANGEDSINCE: skipped; not there at all: expunged meanwhile.
                    if !present.contains(m.uid) { gone.append(m.uid) }
                    continue
                }
                do {
                    let (items, record) = try FetchResponseBuilder.items(request.attributes, facts: found.facts, content: found.content,
                                                                          cached: found.cached, seenWasSet: marksSeen)
                    if let record { records.append((m.uid, record)) }
                    encoder.encode(.fetch(sequenceNumber: m.sequenceNumber, items), into: &out)
                } catch let e as MailboxError {
                    return (out, i, gone, e)
                } catch {
                    return (out, i, gone, .unavailable)
                }
                if out.readableBytes >= limit { break }
            }
            return (out, i, gone, nil)
        }
        promise.completeWithTask(build)
        promise.futureResult.whenSuccess { result in
            let (handler, context) = bound.value
            let (out, next, gone, failure) = result
            guard !handler.isClosed else { return }
            let done = next >= request.messages.count || failure != nil
            let written = context.writeAndFlush(handler.wrapOutboundOut(out))
            if done {
                guard handler.finishWork() else { return }
                handler.takeUpdate()
                if let failure {
                    handler.logger.error("FETCH failed: \(failure)")
                    handler.run(handler.machine.fetchCompleted(missing: gone + request.messages[next...].map(\.uid)), context: context)
                } else {
                    handler.run(handler.machine.fetchCompleted(missing: gone), context: context)
                }
                handler.restartIdleTimer(context: context)
                handler.resume(context: context)
                return
            }
            written.whenComplete { _ in
                let (handler, context) = bound.value
                guard !handler.isClosed else { return }
                handler.restartIdleTimer(context: context)
                handler.fetchChunk(request, from: next, missing: gone, mailbox: mailbox, context: context)
            }
        }
    }

    private func releaseMailbox() {
        guard let mailbox else { return }
        self.mailbox = nil
        mailbox.close()
    }
}
