import ListenerSupport
import NIOCore
import SMTPCore

/// Message content: collected on the event loop, handed to the delegate's sink in slices of at least
/// `spillThreshold` bytes while it arrives (reads paused meanwhile), and committed at the end of data.
extension SMTPServerConnection {
    /// A piece of DATA/BDAT content.
    func append(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        if sink == nil { sink = delegate.makeMessageSink(connection: connectionInfo) }
        content.writeImmutableBuffer(bytes)
        if content.readableBytes >= configuration.spillThreshold { spill(context: context) }
    }

    /// The end of data: the last slice and the envelope go to the sink; the machine hears the outcome.
    /// No `250` before the sink says the message is durable.
    func store(_ envelope: SMTPEnvelope, context: ChannelHandlerContext) {
        beginWork()
        context.flush()
        if sink == nil { sink = delegate.makeMessageSink(connection: connectionInfo) }
        let sink = self.sink!
        let last = content
        content = ByteBuffer()
        let info = connectionInfo
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        sink.commit(last, envelope: envelope, connection: info, on: context.eventLoop).whenComplete { result in
            let (handler, context) = bound.value
            let open = handler.finishWork()
            handler.sink = nil
            switch result {
            case .success(let id):
                handler.messagesAccepted += 1
                if open { handler.run(handler.machine.messageStored(queueID: id), context: context) }
            case .failure(let error):
                if open { handler.run(handler.machine.messageStoreFailed(handler.reply(for: error)), context: context) }
            }
            handler.restartIdleTimer(context: context)
            handler.resume(context: context)
        }
    }

    /// Hands the collected slice to the sink off the loop; a failure is kept for the end of data.
    func spill(context: ChannelHandlerContext) {
        guard let sink else { return }
        let chunk = content
        content = ByteBuffer()
        offLoop(context, { () async -> (any Error)? in
            do { try await sink.write(chunk) } catch { return error }
            return nil
        }) { error in
            guard let error else { return }
            // Keep consuming the content; the failure is reported at the end of data.
            self.logger.warning("spooling message content failed: \(error)")
            let failed = self.sink
            self.sink = FailingSink(reply: self.reply(for: error))
            if let failed { Task { await failed.abort() } }
        }
    }

    /// Drops the content and aborts the sink (the transaction ended without a message).
    func abortSink() {
        content.clear()
        guard let s = sink else { return }
        sink = nil
        Task { await s.abort() }
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
