import ListenerSupport
import Logging
import MailCore
import NIOCore
import POP3Core

/// The POP3 protocol on the shared ``ServerConnection`` shell: bytes → ``POP3LineParser`` →
/// ``POP3ServerStateMachine`` → `run`. RETR/TOP stream from disk one chunk at a time, waiting for each
/// write, so memory per session stays bounded whatever the message size; and no command is read or
/// parsed while the channel is not writable. The autologout timer also runs while a command is in
/// progress: a client that stops reading in the middle of a RETR, or never finishes the TLS
/// handshake, is disconnected after `autologout`.
final class POP3ServerConnection: ServerConnection<POP3Listener.Configuration> {
    private var machine: POP3ServerStateMachine
    private var parser = POP3LineParser()
    private let delegate: any POP3ServerDelegate
    private var maildrop: (any POP3Maildrop)?
    private var user: String?
    private var deletedCount = 0

    init(listener: ListenerContext<POP3Listener.Configuration>, delegate: any POP3ServerDelegate, logger: Logger) {
        self.delegate = delegate
        self.machine = POP3ServerStateMachine(configuration: listener.configuration.machine,
                                               implicitTLS: listener.configuration.endpoint.implicitTLS)
        // A RETR or UPDATE in flight finishes first at shutdown; the deadline closes the rest.
        super.init(listener: listener, logger: logger, shutdownWaitsForWork: true)
    }

    // MARK: The shell's hooks

    override var startTLSCommand: String { "STLS" }
    override var idleTimeout: TimeAmount { configuration.autologout }
    override var bufferedByteCount: Int { parser.bufferedByteCount }
    override func discardBufferedBytes() { parser.discardBufferedBytes() }
    override func greet(context: ChannelHandlerContext) { run(machine.connectionEstablished(), context: context) }
    override func tlsEstablished(version: String, context: ChannelHandlerContext) { run(machine.tlsEstablished(), context: context) }

    /// Only a whole command line restarts the autologout timer (see `process`): a client dribbling
    /// one byte at a time does not keep its connection.
    override func received(_ bytes: ByteBuffer, context: ChannelHandlerContext) { parser.append(bytes) }

    override func timedOut(_ phase: TimeoutPhase, context: ChannelHandlerContext) {
        switch phase {
        case .handshake, .busy:
            // No progress for the whole period: a TLS handshake that does not finish, or a client that
            // stopped reading a RETR. Nothing useful can be said; close (an UPDATE in flight still
            // completes and releases the maildrop).
            logger.notice(phase == .handshake ? "autologout during the TLS handshake" : "autologout while the client does not read")
            closeNow(context: context)
        case .idle:
            logger.notice("autologout")
            run(machine.timeoutFired(), context: context)
        }
    }

    override func drainRequested(context: ChannelHandlerContext) {
        run(machine.shutdownRequested(), context: context)
        context.flush()
    }

    override func drainDeadlinePassed(context: ChannelHandlerContext) { run(machine.shutdownDeadlinePassed(), context: context) }

    override func disconnected(context: ChannelHandlerContext) {
        // An UPDATE in flight keeps the lock until its deletions are done (it releases it itself).
        if !machine.isUpdating { releaseMaildrop() }
        logger.info("disconnect", metadata: ["user": "\(user?.logEscaped() ?? "-")", "retrieved": "\(machine.retrievals)", "deleted": "\(deletedCount)"])
    }

    // MARK: The protocol

    override func handleNext(context: ChannelHandlerContext) -> Bool {
        switch parser.next() {
        case nil: return false
        case .lineTooLong?: run(machine.lineTooLong(), context: context)
        case .line(let bytes)?: run(machine.lineReceived(bytes), context: context)
        }
        return true
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
            case .readCommands, .readSASLResponse: break
            case .close: closeAfterFlush(context: context)
            case .startTLS: startTLS(context: context)
            }
        case .sendLines(let response, let lines):
            var out = context.channel.allocator.buffer(capacity: 64 + lines.count * 24)
            out.writePOP3Response(response)
            out.writePOP3MultiLine(lines)
            context.write(wrapOutboundOut(out), promise: nil)
        case .authenticate(let user, let password):
            context.flush()
            let delegate = self.delegate
            let ip = remoteIP
            offLoop(context, { await delegate.authenticate(user: user, password: password, remoteIP: ip) }, restartTimer: true) { ok in
                if ok {
                    self.user = user
                    self.logger.user = user.logEscaped()
                    self.run(self.machine.authenticationSucceeded(), context: context)
                } else {
                    self.logger.notice("authentication failed", metadata: ["login": "\(user.logEscaped())"])
                    self.run(self.machine.authenticationFailed(), context: context)
                }
            }
        case .openMaildrop(let user):
            let delegate = self.delegate
            offLoop(context, { () async -> Result<any POP3Maildrop, any Error> in
                do { return .success(try await delegate.openMaildrop(user: user)) } catch { return .failure(error) }
            }, ifClosed: { result in
                // The client left while the maildrop was being opened: unlock it, or it stays [IN-USE].
                if case .success(let drop) = result { Task { await drop.release() } }
            }, restartTimer: true) { result in
                switch result {
                case .success(let drop):
                    self.maildrop = drop
                    self.logger.info("login", metadata: ["messages": "\(drop.messages.count)"])
                    self.run(self.machine.maildropOpened(drop.messages), context: context)
                case .failure(let error):
                    let inUse = (error as? POP3MaildropError) == .inUse
                    if !inUse { self.logger.error("cannot open maildrop: \(error)") }
                    self.run(self.machine.maildropUnavailable(inUse: inUse), context: context)
                }
            }
        case .sendMessage(let index, let topLines):
            guard let maildrop else { preconditionFailure("sendMessage without a maildrop") }
            stream(maildrop: maildrop, index: index, topLines: topLines, context: context)
        case .update(let deleted):
            let drop = maildrop
            let retrieved = machine.retrievedMessages
            deletedCount = deleted.count
            offLoop(context, { () async -> Bool in
                guard let drop else { return true }
                do {
                    try await drop.update(deleted: Set(deleted), retrieved: retrieved)
                    return true
                } catch {
                    return false
                }
            }, ifClosed: { _ in
                if let drop { Task { await drop.release() } }
            }, restartTimer: true) { ok in
                if !ok { self.logger.error("UPDATE failed; some messages were not deleted") }
                self.releaseMaildrop()
                self.run(self.machine.updateFinished(success: ok), context: context)
            }
        case .close:
            closeNow(context: context)
        }
    }

    private func stream(maildrop: any POP3Maildrop, index: Int, topLines: Int?, context: ChannelHandlerContext) {
        // Small messages already in the page cache go out at once, without leaving the event loop;
        // the next pipelined command is then handled only while the socket still takes data.
        if let whole = maildrop.readCached(index, limit: configuration.inlineLimit) {
            write(machine.messageResponse(index: index, topLines: topLines), context: context)
            var encoder = POP3MessageEncoder(topLines: topLines)
            var out = context.channel.allocator.buffer(capacity: whole.readableBytes + whole.readableBytes / 32 + 8)
            whole.withUnsafeReadableBytes { encoder.encode($0, into: &out) }
            encoder.finish(into: &out)
            machine.messageSent(index: index, topLines: topLines)
            guard !context.channel.isWritable else { return context.write(wrapOutboundOut(out), promise: nil) }
            // The client is not reading: wait for this write before taking another command.
            beginWork()
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(out)).whenComplete { _ in
                let (handler, context) = bound.value
                guard handler.finishWork() else { return }
                handler.restartIdleTimer(context: context)
                handler.resume(context: context)
            }
            return
        }
        beginWork()
        let chunkSize = configuration.chunkSize
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let opened = context.eventLoop.makePromise(of: (any POP3MessageReader).self)
        opened.completeWithTask { try await maildrop.read(index, chunkSize: chunkSize) }
        opened.futureResult.whenComplete { result in
            let (handler, context) = bound.value
            switch result {
            case .failure(let error):
                handler.logger.error("cannot read message \(index + 1): \(error)")
                guard handler.finishWork() else { return }
                handler.run(handler.machine.messageUnavailable(), context: context)
                handler.resume(context: context)
            case .success(let reader):
                guard !handler.isClosed else { Task { await reader.close() }; return }
                handler.write(handler.machine.messageResponse(index: index, topLines: topLines), context: context)
                handler.pump(reader: reader, encoder: POP3MessageEncoder(topLines: topLines), index: index,
                             topLines: topLines, context: context)
            }
        }
    }

    /// Reads the next chunk, encodes it, writes it, and continues once the write completes.
    private func pump(reader: any POP3MessageReader, encoder state: POP3MessageEncoder, index: Int, topLines: Int?,
                      context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let next = context.eventLoop.makePromise(of: ByteBuffer?.self)
        next.completeWithTask { state.isComplete ? nil : try await reader.next() }
        next.futureResult.whenComplete { result in
            let (handler, context) = bound.value
            guard !handler.isClosed else { Task { await reader.close() }; return }
            var encoder = state
            var out = context.channel.allocator.buffer(capacity: 0)
            switch result {
            case .success(let chunk?):
                chunk.withUnsafeReadableBytes { encoder.encode($0, into: &out) }
                let advanced = encoder
                context.writeAndFlush(handler.wrapOutboundOut(out)).whenComplete { _ in
                    let (handler, context) = bound.value
                    handler.restartIdleTimer(context: context)  // the client is reading: not idle
                    handler.pump(reader: reader, encoder: advanced, index: index, topLines: topLines, context: context)
                }
            case .success(nil):
                encoder.finish(into: &out)
                context.write(handler.wrapOutboundOut(out), promise: nil)
                Task { await reader.close() }
                handler.machine.messageSent(index: index, topLines: topLines)
                guard handler.finishWork() else { return }
                handler.restartIdleTimer(context: context)
                handler.resume(context: context)
            case .failure(let error):
                // The +OK is already out: the only honest thing left is to drop the connection.
                handler.logger.error("reading message \(index + 1) failed mid-stream: \(error)")
                Task { await reader.close() }
                handler.closeNow(context: context)
            }
        }
    }

    private func releaseMaildrop() {
        guard let drop = maildrop else { return }
        maildrop = nil
        Task { await drop.release() }
    }
}
