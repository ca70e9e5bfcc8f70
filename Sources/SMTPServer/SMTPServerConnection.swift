import ListenerSupport
import Logging
import MailCore
import NIOCore
import NIOSSL
import NIOTLS
import SMTPCore

/// The per-connection NIO handler: bytes → ``SMTPCommandParser`` → ``SMTPServerStateMachine`` →
/// ``run(_:context:)``. It owns no protocol decisions; it performs the machine's actions.
///
/// Reads are explicit (`autoRead` off): while an action is in flight (recipient check, spill to disk,
/// commit) nothing more is read, so a fast client cannot make us buffer without bound. Nor is anything
/// read or parsed while the channel is not writable (more than its high watermark of replies waits for
/// a peer that does not read): pipelining cheap commands with long answers cannot grow our memory.
final class SMTPServerConnection: ChannelInboundHandler, RemovableChannelHandler, DrainableConnection {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Settings: Sendable {
        var machine: SMTPServerStateMachine.Configuration
        var listener: String
        var implicitTLS: Bool
        var tls: NIOSSLContext?
        var commandTimeout: TimeAmount
        var dataTimeout: TimeAmount
        /// Content is handed to the sink in slices of at least this many bytes.
        var spillThreshold: Int
    }

    private var machine: SMTPServerStateMachine
    private var parser = SMTPCommandParser()
    private let settings: Settings
    private let delegate: any SMTPServerDelegate
    private var logger: ConnectionLogger
    private var remoteIP = "?"
    private var remotePort = 0

    private var busy = false
    private var closed = false
    /// A TLS handshake is under way (STARTTLS, or implicit TLS before the greeting).
    private var handshaking = false
    private var sink: (any SMTPMessageSink)?
    private var saslExchange: (any SMTPSASLExchange)?
    private var content = ByteBuffer()
    private var timer: IdleTimer?
    private var messagesAccepted = 0
    private var commands = 0
    private var opened = NIODeadline.now()
    private var tlsVersion: String?

    private var context: ChannelHandlerContext?

    init(settings: Settings, delegate: any SMTPServerDelegate, logger: Logger) {
        self.settings = settings
        self.delegate = delegate
        self.logger = ConnectionLogger(logger)
        self.machine = SMTPServerStateMachine(configuration: settings.machine, implicitTLS: settings.implicitTLS)
    }

    private var connectionInfo: SMTPConnectionInfo {
        SMTPConnectionInfo(remoteIP: remoteIP, remotePort: remotePort, listener: settings.listener, session: machine.sessionFacts)
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private var started = false
    private func start(context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        opened = .now()
        if let addr = context.channel.remoteAddress {
            remoteIP = addr.ipAddress ?? "?"
            remotePort = addr.port ?? 0
        }
        logger.client = "\(remoteIP):\(remotePort)"
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
        // Content arriving is progress; in command mode only a whole command is (a client dribbling
        // a line one byte at a time does not keep its connection: slowloris).
        if machine.isReceivingContent { armTimer(context: context) }
        process(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        requestMoreIfIdle(context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent {
            let version = (try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self))?.tlsVersion
            let name = version.map(Self.name(of:)) ?? "TLS"
            tlsVersion = name
            handshaking = false
            logger.debug("TLS established", metadata: ["tls": "\(name)"])
            run(machine.tlsEstablished(TLSFacts(version: name)), context: context)
            if settings.implicitTLS {
                run(machine.connectionEstablished(), context: context)
                context.flush()
            }
            busy = false
            process(context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            process(context: context)
            requestMoreIfIdle(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.stop()  // drops the expiry closure, which holds this handler
        if !closed {
            closed = true
            if case .discardMessage = machine.connectionClosed() { abortSink() }
        }
        let ms = (NIODeadline.now() - opened).nanoseconds / 1_000_000
        logger.info("disconnect", metadata: [
            "helo": "\(machine.sessionFacts.heloName.logEscaped())", "tls": "\(tlsVersion ?? "no")",
            "commands": "\(commands)", "messages": "\(messagesAccepted)", "ms": "\(ms)",
        ])
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let e = error as? NIOSSLError, case .uncleanShutdown = e {
            logger.debug("peer closed without TLS close_notify")
        } else {
            logger.notice("connection error: \(error)")
        }
        closeNow(context: context)
    }

    // MARK: Shutdown (called on this channel's event loop by the listener)

    func shutdownRequested() {
        guard !closed, let context else { return }
        run(machine.shutdownRequestedEvent(), context: context)
        context.flush()
    }

    func shutdownDeadlinePassed() {
        guard let context else { return }
        guard !closed else { return context.close(promise: nil) }
        run(machine.shutdownDeadlinePassed(), context: context)
        context.flush()
    }

    // MARK: The loop

    private func process(context: ChannelHandlerContext) {
        var handled = false
        defer { if handled && !closed { armTimer(context: context) } }
        while !busy && !closed {
            guard context.channel.isWritable else {
                // Wait for the peer to take our replies (channelWritabilityChanged resumes).
                context.flush()
                return
            }
            guard let item = parser.next() else {
                context.flush()
                return
            }
            handled = true
            let action: SMTPServerStateMachine.Action
            switch item {
            case .command(let command):
                commands += 1
                action = machine.commandReceived(command, pipelinedBytes: parser.bufferedByteCount)
            case .invalidCommand(let problem):
                commands += 1
                action = machine.invalidCommandReceived(problem)
            case .messageData(let bytes):
                action = machine.messageDataReceived(bytes)
            case .endOfMessage(let flags):
                action = machine.endOfMessageReceived(flags)
            case .chunkData(let bytes):
                action = machine.chunkDataReceived(bytes)
            case .endOfChunk:
                action = machine.endOfChunkReceived()
            case .saslLine(let line):
                action = machine.saslResponseReceived(line)
            }
            run(action, context: context)
        }
    }

    private func requestMoreIfIdle(context: ChannelHandlerContext) {
        if !busy && !closed && context.channel.isWritable { context.read() }
    }

    /// The only place that writes, closes, upgrades to TLS or calls out to the delegate.
    private func run(_ action: SMTPServerStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break

        case .send(let replies, let then):
            if !replies.isEmpty {
                var out = context.channel.allocator.buffer(capacity: 128)
                for r in replies { out.writeSMTPReply(r) }
                context.write(wrapOutboundOut(out), promise: nil)
            }
            switch then {
            case .readCommands:
                break
            case .close:
                closeAfterFlush(context: context)
            case .startTLS:
                startTLS(context: context)
            case .readData:
                parser.beginData()
                content.clear()
            case .readChunk(let size):
                parser.beginChunk(size: size)
                armTimer(context: context)
            case .readSASLResponse:
                parser.beginSASLLine()
            }

        case .verifyRecipient(let path, let envelope, _):
            let info = connectionInfo
            let delegate = self.delegate
            switch delegate.immediateRecipientVerdict(path, envelope: envelope, connection: info) {
            case .accept?: return run(machine.recipientAccepted(), context: context)
            case .reject(let reply)?: return run(machine.recipientRejected(reply), context: context)
            case nil: break
            }
            ask(context, { try await delegate.verifyRecipient(path, envelope: envelope, connection: info) }) { handler, result in
                switch result {
                case .success: handler.machine.recipientAccepted()
                case .failure(let error): handler.machine.recipientRejected(handler.reply(for: error))
                }
            }

        case .verifySender(let path, let envelope, _):
            let info = connectionInfo
            let delegate = self.delegate
            ask(context, { try await delegate.verifySender(path, envelope: envelope, connection: info) }) { handler, result in
                switch result {
                case .success: handler.machine.senderAccepted()
                case .failure(let error): handler.machine.senderRejected(handler.reply(for: error))
                }
            }

        case .saslResponse(let mechanism, let response, let first):
            if first { saslExchange = delegate.makeSASLExchange(mechanism: mechanism, connection: connectionInfo) }
            guard let exchange = saslExchange else {
                run(machine.authenticationFailed(SMTPReply(code: 504, .init(5, 5, 4), "Unrecognized authentication type")), context: context)
                return
            }
            context.flush()
            ask(context, { try await exchange.respond(to: response) }) { handler, result in
                if case .success(.challenge(let challenge)) = result { return handler.machine.saslChallenge(challenge) }
                handler.saslExchange = nil
                switch result {
                case .success(.success(let login, let data)):
                    return handler.authenticated(login, mechanism: mechanism, additionalData: data)
                case .success(.failure), .success(.challenge):
                    return handler.authenticationFailed(mechanism: mechanism, login: nil, error: nil)
                case .failure(let error):
                    return handler.authenticationFailed(mechanism: mechanism, login: nil, error: error)
                }
            }

        case .appendMessageData(var bytes):
            if sink == nil { sink = delegate.makeMessageSink(connection: connectionInfo) }
            content.writeBuffer(&bytes)
            if content.readableBytes >= settings.spillThreshold { spill(context: context) }

        case .storeMessage(let envelope, _):
            busy = true
            context.flush()
            if sink == nil { sink = delegate.makeMessageSink(connection: connectionInfo) }
            let sink = self.sink!
            let last = content
            content = ByteBuffer()
            let info = connectionInfo
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            sink.commit(last, envelope: envelope, connection: info, on: context.eventLoop).whenComplete { result in
                let (handler, context) = bound.value
                handler.busy = false
                handler.sink = nil
                switch result {
                case .success(let id):
                    handler.messagesAccepted += 1
                    if !handler.closed { handler.run(handler.machine.messageStored(queueID: id), context: context) }
                case .failure(let error):
                    if !handler.closed { handler.run(handler.machine.messageStoreFailed(handler.reply(for: error)), context: context) }
                }
                handler.armTimer(context: context)
                handler.process(context: context)
                handler.requestMoreIfIdle(context: context)
            }

        case .discardMessage(let reply, let then):
            if reply.code >= 500 {
                logger.notice("message refused", metadata: ["reply": "\(reply.description.logEscaped())"])
            }
            abortSink()
            run(.send([reply], then: then), context: context)

        case .authenticate(let mechanism, let user, let password):
            context.flush()
            let info = connectionInfo
            let delegate = self.delegate
            ask(context, { try await delegate.authenticate(user: user, password: password, connection: info) }) { handler, result in
                switch result {
                case .success(let login?): handler.authenticated(login, mechanism: mechanism, additionalData: nil)
                case .success(nil): handler.authenticationFailed(mechanism: mechanism, login: user, error: nil)
                case .failure(let error): handler.authenticationFailed(mechanism: mechanism, login: user, error: error)
                }
            }
        }
    }

    /// Runs a delegate call off the event loop with reads paused, then feeds the machine's answer to
    /// `run` and resumes the loop (unless the connection closed meanwhile).
    private func ask<T: Sendable>(_ context: ChannelHandlerContext, _ work: @escaping @Sendable () async throws -> T,
                                  then next: @escaping (SMTPServerConnection, Result<T, any Error>) -> SMTPServerStateMachine.Action) {
        busy = true
        let bound = NIOLoopBound((self, context, next), eventLoop: context.eventLoop)
        let promise = context.eventLoop.makePromise(of: T.self)
        promise.completeWithTask(work)
        promise.futureResult.whenComplete { result in
            let (handler, context, next) = bound.value
            handler.busy = false
            guard !handler.closed else { return }
            handler.run(next(handler, result), context: context)
            handler.process(context: context)
            handler.requestMoreIfIdle(context: context)
        }
    }

    private func authenticated(_ login: String, mechanism: String, additionalData: [UInt8]?) -> SMTPServerStateMachine.Action {
        logger.user = login.logEscaped()
        logger.info("authenticated", metadata: ["mechanism": "\(mechanism)"])
        return machine.authenticationSucceeded(user: login, additionalData: additionalData)
    }

    /// Logs who failed (never with what) and answers `535`, or the delegate's own refusal.
    private func authenticationFailed(mechanism: String, login: String?, error: (any Error)?) -> SMTPServerStateMachine.Action {
        var metadata: Logger.Metadata = ["mechanism": "\(mechanism)"]
        if let login { metadata["login"] = "\(login.logEscaped())" }
        logger.notice("authentication failed", metadata: metadata)
        return machine.authenticationFailed((error as? SMTPRejection)?.reply)
    }

    private func spill(context: ChannelHandlerContext) {
        guard let sink else { return }
        busy = true
        let chunk = content
        content = ByteBuffer()
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.completeWithTask { try await sink.write(chunk) }
        promise.futureResult.whenComplete { result in
            let (handler, context) = bound.value
            handler.busy = false
            guard !handler.closed else { return }
            if case .failure(let error) = result {
                // Keep consuming the content; the failure is reported at the end of data.
                handler.logger.warning("spooling message content failed: \(error)")
                let failed = handler.sink
                handler.sink = FailingSink(reply: handler.reply(for: error))
                if let failed { Task { await failed.abort() } }
            }
            handler.process(context: context)
            handler.requestMoreIfIdle(context: context)
        }
    }

    private func abortSink() {
        content.clear()
        guard let s = sink else { return }
        sink = nil
        Task { await s.abort() }
    }

    private func reply(for error: any Error) -> SMTPReply {
        if let r = error as? SMTPRejection { return r.reply }
        logger.error("local error: \(error)")
        return .localError
    }

    private func startTLS(context: ChannelHandlerContext) {
        guard let tls = settings.tls else { preconditionFailure("STARTTLS accepted without a TLS context") }
        context.flush()  // the 220 leaves in plaintext, before the TLS handler exists
        do {
            try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: .first)
        } catch {
            logger.error("cannot start TLS: \(error)")
            closeNow(context: context)
            return
        }
        if parser.bufferedByteCount > 0 {
            // RFC 3207 §4.2 / CVE-2011-0411: plaintext sent before the handshake is never executed.
            logger.warning("discarding \(parser.bufferedByteCount) plaintext bytes pipelined after STARTTLS")
            parser.discardBufferedBytes()
        }
        busy = true  // until the handshake completes
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
                if handler.handshaking {
                    // Nothing can be said in plaintext now, and TLS is not up: just close.
                    handler.logger.notice("timeout during the TLS handshake")
                    return handler.closeNow(context: context)
                }
                handler.logger.notice("timeout")
                handler.run(handler.machine.timeoutFired(), context: context)
                context.flush()
            }
        }
        timer?.restart(machine.isReceivingContent ? settings.dataTimeout : settings.commandTimeout)
    }

    private func closeAfterFlush(context: ChannelHandlerContext) {
        guard !closed else { return }
        closed = true
        timer?.cancel()
        context.flushThenClose(deadline: Self.closeDeadline)
    }

    /// How long the last reply may take to leave before the connection is closed anyway.
    static let closeDeadline = TimeAmount.seconds(10)

    private func closeNow(context: ChannelHandlerContext) {
        if !closed {
            closed = true
            if case .discardMessage = machine.connectionClosed() { abortSink() }
        }
        context.close(promise: nil)
    }

    static func name(of version: TLSVersion) -> String {
        switch version {
        case .tlsv1: "TLSv1"
        case .tlsv11: "TLSv1.1"
        case .tlsv12: "TLSv1.2"
        case .tlsv13: "TLSv1.3"
        }
    }
}

/// Stands in for a sink whose spill failed: content is dropped, the commit reports the failure.
private final class FailingSink: SMTPMessageSink {
    let reply: SMTPReply
    init(reply: SMTPReply) { self.reply = reply }
    func write(_ bytes: ByteBuffer) async throws {}
    func commit(_ bytes: ByteBuffer, envelope: SMTPEnvelope, connection: SMTPConnectionInfo) async throws -> String {
        throw SMTPRejection(reply)
    }
    func abort() async {}
}
