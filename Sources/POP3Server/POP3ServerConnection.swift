import ListenerSupport
import Logging
import MailCore
import NIOCore
import NIOSSL
import NIOTLS
import POP3Core

/// The per-connection POP3 handler: bytes → ``POP3LineParser`` → ``POP3ServerStateMachine`` → `run`.
/// RETR/TOP stream from disk one chunk at a time, waiting for each write, so memory per session stays
/// bounded whatever the message size; and no command is read or parsed while the channel is not
/// writable (a client that pipelines commands but does not read the answers cannot grow our memory).
/// The autologout timer also runs while a command is in progress: a client that stops reading in the
/// middle of a RETR, or never finishes the TLS handshake, is disconnected after `autologout`.
final class POP3ServerConnection: ChannelInboundHandler, DrainableConnection {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Settings: Sendable {
        var machine: POP3ServerStateMachine.Configuration
        var listener: String
        var implicitTLS: Bool
        var tls: NIOSSLContext?
        var autologout: TimeAmount
        var chunkSize: Int
        /// Messages up to this size that are in the page cache are sent from the event loop.
        var inlineLimit: Int
    }

    private var machine: POP3ServerStateMachine
    private var parser = POP3LineParser()
    private let settings: Settings
    private let delegate: any POP3ServerDelegate
    private var logger: ConnectionLogger
    private var context: ChannelHandlerContext?
    private var remoteIP = "?"
    private var busy = false
    private var closed = false
    private var handshaking = false
    private var readingSASL = false
    private var updating = false
    private var started = false
    private var maildrop: (any POP3Maildrop)?
    private var retrieved = Set<Int>()
    private var user: String?
    private var timer: IdleTimer?
    private var retrievedCount = 0
    private var deletedCount = 0

    init(settings: Settings, delegate: any POP3ServerDelegate, logger: Logger) {
        self.settings = settings
        self.delegate = delegate
        self.logger = ConnectionLogger(logger)
        self.machine = POP3ServerStateMachine(configuration: settings.machine, implicitTLS: settings.implicitTLS)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        if let a = context.channel.remoteAddress {
            remoteIP = a.ipAddress ?? "?"
            logger.client = "\(remoteIP):\(a.port ?? 0)"
        }
        logger.info("connect", metadata: ["listener": "\(settings.listener)"])
        if !settings.implicitTLS {
            run(machine.connectionEstablished(), context: context)
            context.flush()
        } else {
            handshaking = true
        }
        armTimer(context: context)
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        parser.append(unwrapInboundIn(data))
        // Only a whole command line restarts the autologout timer (see process): a client dribbling
        // one byte at a time does not keep its connection.
        process(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        readIfIdle(context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            process(context: context)
            readIfIdle(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    private func readIfIdle(context: ChannelHandlerContext) {
        if !busy && !closed && context.channel.isWritable { context.read() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? TLSUserEvent, case .handshakeCompleted = e {
            handshaking = false
            run(machine.tlsEstablished(), context: context)
            if settings.implicitTLS {
                run(machine.connectionEstablished(), context: context)
                context.flush()
            }
            busy = false
            process(context: context)
            readIfIdle(context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.stop()  // drops the expiry closure, which holds this handler
        closed = true
        // An UPDATE in flight keeps the lock until its deletions are done (it releases it itself).
        if !updating { releaseMaildrop() }
        logger.info("disconnect", metadata: ["user": "\(user?.logEscaped() ?? "-")", "retrieved": "\(retrievedCount)", "deleted": "\(deletedCount)"])
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let e = error as? NIOSSLError, case .uncleanShutdown = e {
            logger.debug("peer closed without TLS close_notify")
        } else {
            logger.notice("connection error: \(error)")
        }
        closed = true
        context.close(promise: nil)
    }

    func shutdownRequested() {
        guard let context, !closed else { return }
        if busy { return }  // a RETR or UPDATE in flight finishes first; the deadline closes the rest
        run(machine.shutdownRequested(), context: context)
        context.flush()
    }

    func shutdownDeadlinePassed() {
        guard let context else { return }
        closed = true
        context.close(promise: nil)
    }

    private func process(context: ChannelHandlerContext) {
        var handled = false
        defer { if handled && !closed { armTimer(context: context) } }
        while !busy && !closed {
            guard context.channel.isWritable else {
                // Wait for the client to take what is written (channelWritabilityChanged resumes).
                context.flush()
                return
            }
            guard let item = parser.next() else {
                context.flush()
                return
            }
            handled = true
            let action: POP3ServerStateMachine.Action
            switch item {
            case .lineTooLong:
                readingSASL = false
                action = machine.lineTooLong()
            case .line(let bytes):
                if readingSASL {
                    readingSASL = false
                    action = machine.saslResponseReceived(bytes)
                } else {
                    action = machine.commandReceived(POP3Command.parse(bytes))
                }
            }
            run(action, context: context)
        }
    }

    private func write(_ response: POP3Response, context: ChannelHandlerContext) {
        var out = context.channel.allocator.buffer(capacity: 64)
        out.writePOP3Response(response)
        context.write(wrapOutboundOut(out), promise: nil)
    }

    /// The only place that writes, closes, starts TLS or calls the delegate.
    private func run(_ action: POP3ServerStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .send(let response, let then):
            write(response, context: context)
            switch then {
            case .readCommands: break
            case .readSASLResponse: readingSASL = true
            case .close: closeAfterFlush(context: context)
            case .startTLS: startTLS(context: context)
            }
        case .sendLines(let response, let lines):
            var out = context.channel.allocator.buffer(capacity: 64 + lines.count * 24)
            out.writePOP3Response(response)
            out.writePOP3MultiLine(lines)
            context.write(wrapOutboundOut(out), promise: nil)
        case .authenticate(let user, let password):
            busy = true
            context.flush()
            let delegate = self.delegate
            let ip = remoteIP
            after(context, { await delegate.authenticate(user: user, password: password, remoteIP: ip) }) { handler, context, ok in
                if ok {
                    handler.user = user
                    handler.logger.user = user.logEscaped()
                    handler.run(handler.machine.authenticationSucceeded(), context: context)
                } else {
                    handler.logger.notice("authentication failed", metadata: ["login": "\(user.logEscaped())"])
                    handler.run(handler.machine.authenticationFailed(), context: context)
                }
            }
        case .openMaildrop(let user):
            busy = true
            let delegate = self.delegate
            after(context, { () async -> Result<any POP3Maildrop, any Error> in
                do { return .success(try await delegate.openMaildrop(user: user)) } catch { return .failure(error) }
            }, ifClosed: { result in
                // The client left while the maildrop was being opened: unlock it, or it stays [IN-USE].
                if case .success(let drop) = result { Task { await drop.release() } }
            }) { handler, context, result in
                switch result {
                case .success(let drop):
                    handler.maildrop = drop
                    handler.logger.info("login", metadata: ["messages": "\(drop.messages.count)"])
                    handler.run(handler.machine.maildropOpened(drop.messages), context: context)
                case .failure(let error):
                    let inUse = (error as? POP3MaildropError) == .inUse
                    if !inUse { handler.logger.error("cannot open maildrop: \(error)") }
                    handler.run(handler.machine.maildropUnavailable(inUse: inUse), context: context)
                }
            }
        case .sendMessage(let index, let topLines):
            guard let maildrop else { preconditionFailure("sendMessage without a maildrop") }
            busy = true
            stream(maildrop: maildrop, index: index, topLines: topLines, context: context)
        case .update(let deleted):
            busy = true
            updating = true
            let drop = maildrop
            let retrieved = self.retrieved
            deletedCount = deleted.count
            after(context, { () async -> Bool in
                guard let drop else { return true }
                do {
                    try await drop.update(deleted: Set(deleted), retrieved: retrieved)
                    return true
                } catch {
                    return false
                }
            }, ifClosed: { _ in
                if let drop { Task { await drop.release() } }
            }) { handler, context, ok in
                handler.updating = false
                if !ok { handler.logger.error("UPDATE failed; some messages were not deleted") }
                handler.releaseMaildrop()
                handler.run(handler.machine.updateFinished(success: ok), context: context)
            }
        case .close:
            closed = true
            context.close(promise: nil)
        }
    }

    /// Runs `work` off the loop, then `then` on the loop (or `ifClosed` when the connection closed
    /// meanwhile), then resumes.
    private func after<T: Sendable>(_ context: ChannelHandlerContext, _ work: @escaping @Sendable () async -> T,
                                    ifClosed: @escaping @Sendable (T) -> Void = { _ in },
                                    then: @escaping (POP3ServerConnection, ChannelHandlerContext, T) -> Void) {
        let bound = NIOLoopBound((self, context, then), eventLoop: context.eventLoop)
        let promise = context.eventLoop.makePromise(of: T.self)
        promise.completeWithTask { await work() }
        promise.futureResult.whenSuccess { value in
            let (handler, context, then) = bound.value
            handler.busy = false
            guard !handler.closed else {
                ifClosed(value)
                return
            }
            then(handler, context, value)
            handler.armTimer(context: context)
            handler.process(context: context)
            handler.readIfIdle(context: context)
        }
    }

    private func stream(maildrop: any POP3Maildrop, index: Int, topLines: Int?, context: ChannelHandlerContext) {
        let size = maildrop.messages[index].size
        // Small messages already in the page cache go out at once, without leaving the event loop;
        // the next pipelined command is then handled only while the socket still takes data.
        if let whole = maildrop.readCached(index, limit: settings.inlineLimit) {
            write(.ok(topLines == nil ? "\(size) octets" : "Top of message follows"), context: context)
            var encoder = POP3MessageEncoder(topLines: topLines)
            var out = context.channel.allocator.buffer(capacity: whole.readableBytes + whole.readableBytes / 32 + 8)
            whole.withUnsafeReadableBytes { encoder.encode($0, into: &out) }
            encoder.finish(into: &out)
            if topLines == nil {
                retrieved.insert(index)
                retrievedCount += 1
            }
            if context.channel.isWritable {
                context.write(wrapOutboundOut(out), promise: nil)
                busy = false
            } else {
                // The client is not reading: wait for this write before taking another command.
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                context.writeAndFlush(wrapOutboundOut(out)).whenComplete { _ in
                    let (handler, context) = bound.value
                    handler.busy = false
                    guard !handler.closed else { return }
                    handler.armTimer(context: context)
                    handler.process(context: context)
                    handler.readIfIdle(context: context)
                }
            }
            return
        }
        let chunkSize = settings.chunkSize
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let opened = context.eventLoop.makePromise(of: (any POP3MessageReader).self)
        opened.completeWithTask { try await maildrop.read(index, chunkSize: chunkSize) }
        opened.futureResult.whenComplete { result in
            let (handler, context) = bound.value
            switch result {
            case .failure(let error):
                handler.logger.error("cannot read message \(index + 1): \(error)")
                handler.busy = false
                handler.run(handler.machine.messageUnavailable(), context: context)
                handler.process(context: context)
            case .success(let reader):
                guard !handler.closed else { Task { await reader.close() }; return }
                handler.write(.ok(topLines == nil ? "\(size) octets" : "Top of message follows"), context: context)
                handler.pump(reader: reader, encoder: POP3MessageEncoder(topLines: topLines), index: index,
                             isTop: topLines != nil, context: context)
            }
        }
    }

    /// Reads the next chunk, encodes it, writes it, and continues once the write completes.
    private func pump(reader: any POP3MessageReader, encoder state: POP3MessageEncoder, index: Int, isTop: Bool,
                      context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let next = context.eventLoop.makePromise(of: ByteBuffer?.self)
        next.completeWithTask { state.isComplete ? nil : try await reader.next() }
        next.futureResult.whenComplete { result in
            let (handler, context) = bound.value
            guard !handler.closed else { Task { await reader.close() }; return }
            var encoder = state
            var out = context.channel.allocator.buffer(capacity: 0)
            switch result {
            case .success(let chunk?):
                chunk.withUnsafeReadableBytes { encoder.encode($0, into: &out) }
                let advanced = encoder
                context.writeAndFlush(handler.wrapOutboundOut(out)).whenComplete { _ in
                    let (handler, context) = bound.value
                    handler.armTimer(context: context)  // the client is reading: not idle
                    handler.pump(reader: reader, encoder: advanced, index: index, isTop: isTop, context: context)
                }
            case .success(nil):
                encoder.finish(into: &out)
                context.write(handler.wrapOutboundOut(out), promise: nil)
                Task { await reader.close() }
                if !isTop {
                    handler.retrieved.insert(index)
                    handler.retrievedCount += 1
                }
                handler.busy = false
                handler.armTimer(context: context)
                handler.process(context: context)
                handler.readIfIdle(context: context)
            case .failure(let error):
                // The +OK is already out: the only honest thing left is to drop the connection.
                handler.logger.error("reading message \(index + 1) failed mid-stream: \(error)")
                Task { await reader.close() }
                handler.closed = true
                context.close(promise: nil)
            }
        }
    }

    private func startTLS(context: ChannelHandlerContext) {
        guard let tls = settings.tls else { preconditionFailure("STLS accepted without a TLS context") }
        context.flush()
        do {
            try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: .first)
        } catch {
            logger.error("cannot start TLS: \(error)")
            closed = true
            context.close(promise: nil)
            return
        }
        if parser.bufferedByteCount > 0 {
            logger.warning("discarding \(parser.bufferedByteCount) plaintext bytes pipelined after STLS")
            parser.discardBufferedBytes()
        }
        busy = true
        handshaking = true
        context.read()
    }

    private func armTimer(context: ChannelHandlerContext) {
        guard !closed else {
            timer?.cancel()
            return
        }
        if timer == nil {
            timer = IdleTimer(for: self, context: context) { handler, context in
                guard !handler.closed else { return }
                if handler.busy || handler.handshaking {
                    // No progress for the whole period: a TLS handshake that does not finish, or a client
                    // that stopped reading a RETR. Nothing useful can be said; close (an UPDATE in flight
                    // still completes and releases the maildrop).
                    handler.logger.notice(handler.handshaking ? "autologout during the TLS handshake" : "autologout while the client does not read")
                    handler.closed = true
                    context.close(promise: nil)
                    return
                }
                handler.logger.notice("autologout")
                handler.run(handler.machine.timeoutFired(), context: context)
            }
        }
        timer?.restart(settings.autologout)
    }

    private func closeAfterFlush(context: ChannelHandlerContext) {
        guard !closed else { return }
        closed = true
        timer?.cancel()
        // A client that does not take the last response gets 10 s before the connection closes.
        context.flushThenClose(deadline: .seconds(10))
    }

    private func releaseMaildrop() {
        guard let drop = maildrop else { return }
        maildrop = nil
        Task { await drop.release() }
    }
}
