import ListenerSupport
import Logging
import MailCore
import NIOCore
import SMTPCore

/// The SMTP protocol on the shared ``ServerConnection`` shell: bytes → ``SMTPCommandParser`` →
/// ``SMTPServerStateMachine`` → ``run(_:context:)``. It owns no protocol decisions; it performs the
/// machine's actions. The shell keeps the lifecycle (explicit reads, writability, STARTTLS, the idle
/// timer, close, drain): while an action is in flight (recipient check, spill to disk, commit) nothing
/// more is read, and nothing is read or parsed while the channel is not writable.
final class SMTPServerConnection: ServerConnection<SMTPListener.Configuration> {
    var machine: SMTPServerStateMachine
    private var parser = SMTPCommandParser()
    let delegate: any SMTPServerDelegate
    var sink: (any SMTPMessageSink)?
    private var saslExchange: (any SMTPSASLExchange)?
    var content = ByteBuffer()
    var messagesAccepted = 0
    private var commands = 0
    private var opened = NIODeadline.now()
    private var tlsVersion: String?

    init(listener: ListenerContext<SMTPListener.Configuration>, delegate: any SMTPServerDelegate, logger: Logger) {
        self.delegate = delegate
        self.machine = SMTPServerStateMachine(configuration: listener.configuration.machine,
                                               implicitTLS: listener.configuration.endpoint.implicitTLS)
        super.init(listener: listener, logger: logger)
    }

    var connectionInfo: SMTPConnectionInfo {
        SMTPConnectionInfo(remoteIP: remoteIP, remotePort: remotePort, listener: configuration.endpoint.name, session: machine.sessionFacts)
    }

    // MARK: The shell's hooks

    override var idleTimeout: TimeAmount { machine.isReceivingContent ? configuration.dataTimeout : configuration.commandTimeout }
    override var bufferedByteCount: Int { parser.bufferedByteCount }
    override func discardBufferedBytes() { parser.discardBufferedBytes() }
    override func connectionStarted(context: ChannelHandlerContext) { opened = .now() }
    override func greet(context: ChannelHandlerContext) { run(machine.connectionEstablished(), context: context) }

    override func received(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        parser.append(bytes)
        // Content arriving is progress; in command mode only a whole command is (a client dribbling
        // a line one byte at a time does not keep its connection: slowloris).
        if machine.isReceivingContent { restartIdleTimer(context: context) }
    }

    override func tlsEstablished(version: String, context: ChannelHandlerContext) {
        tlsVersion = version
        logger.debug("TLS established", metadata: ["tls": "\(version)"])
        run(machine.tlsEstablished(TLSFacts(version: version)), context: context)
    }

    override func timedOut(_ phase: TimeoutPhase, context: ChannelHandlerContext) {
        guard phase != .handshake else {
            // Nothing can be said in plaintext now, and TLS is not up: just close.
            logger.notice("timeout during the TLS handshake")
            return closeNow(context: context)
        }
        logger.notice("timeout")
        run(machine.timeoutFired(), context: context)
        context.flush()
    }

    override func drainRequested(context: ChannelHandlerContext) {
        run(machine.shutdownRequestedEvent(), context: context)
        context.flush()
    }

    override func drainDeadlinePassed(context: ChannelHandlerContext) {
        run(machine.shutdownDeadlinePassed(), context: context)
        context.flush()
    }

    override func sessionAbandoned() {
        if case .discardMessage = machine.connectionClosed() { abortSink() }
    }

    override func disconnected(context: ChannelHandlerContext) {
        let ms = (NIODeadline.now() - opened).nanoseconds / 1_000_000
        logger.info("disconnect", metadata: [
            "helo": "\(machine.sessionFacts.heloName.logEscaped())", "tls": "\(tlsVersion ?? "no")",
            "commands": "\(commands)", "messages": "\(messagesAccepted)", "ms": "\(ms)",
        ])
    }

    // MARK: The protocol

    override func handleNext(context: ChannelHandlerContext) -> Bool {
        guard let item = parser.next() else { return false }
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
        return true
    }

    /// The only place that writes, closes, upgrades to TLS or calls out to the delegate.
    func run(_ action: SMTPServerStateMachine.Action, context: ChannelHandlerContext) {
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
                restartIdleTimer(context: context)
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
            ask(context, { try await delegate.verifyRecipient(path, envelope: envelope, connection: info) }) { result in
                switch result {
                case .success: self.machine.recipientAccepted()
                case .failure(let error): self.machine.recipientRejected(self.reply(for: error))
                }
            }

        case .verifySender(let path, let envelope, _):
            let info = connectionInfo
            let delegate = self.delegate
            ask(context, { try await delegate.verifySender(path, envelope: envelope, connection: info) }) { result in
                switch result {
                case .success: self.machine.senderAccepted()
                case .failure(let error): self.machine.senderRejected(self.reply(for: error))
                }
            }

        case .saslResponse(let mechanism, let response, let first):
            if first { saslExchange = delegate.makeSASLExchange(mechanism: mechanism, connection: connectionInfo) }
            guard let exchange = saslExchange else { return run(machine.saslExchangeUnavailable(), context: context) }
            context.flush()
            ask(context, { try await exchange.respond(to: response) }) { result in
                if case .success(.challenge(let challenge)) = result { return self.machine.saslChallenge(challenge) }
                self.saslExchange = nil
                switch result {
                case .success(.success(let login, let data)):
                    return self.authenticated(login, mechanism: mechanism, additionalData: data)
                case .success(.failure), .success(.challenge):
                    return self.authenticationFailed(mechanism: mechanism, login: nil, error: nil)
                case .failure(let error):
                    return self.authenticationFailed(mechanism: mechanism, login: nil, error: error)
                }
            }

        case .appendMessageData(let bytes):
            append(bytes, context: context)

        case .storeMessage(let envelope, _):
            store(envelope, context: context)

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
            ask(context, { try await delegate.authenticate(user: user, password: password, connection: info) }) { result in
                switch result {
                case .success(let login?): self.authenticated(login, mechanism: mechanism, additionalData: nil)
                case .success(nil): self.authenticationFailed(mechanism: mechanism, login: user, error: nil)
                case .failure(let error): self.authenticationFailed(mechanism: mechanism, login: user, error: error)
                }
            }
        }
    }

    /// Runs a delegate call off the event loop with reads paused, then feeds the machine's answer to
    /// `run` and resumes (unless the connection closed meanwhile).
    private func ask<T: Sendable>(_ context: ChannelHandlerContext, _ work: @escaping @Sendable () async throws -> T,
                                  then next: @escaping (Result<T, any Error>) -> SMTPServerStateMachine.Action) {
        offLoop(context, { () async -> Result<T, any Error> in
            do { return .success(try await work()) } catch { return .failure(error) }
        }) { result in self.run(next(result), context: context) }
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

    func reply(for error: any Error) -> SMTPReply {
        if let r = error as? SMTPRejection { return r.reply }
        logger.error("local error: \(error)")
        return .localError
    }
}
