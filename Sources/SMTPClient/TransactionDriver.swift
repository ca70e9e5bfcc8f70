import ClientSupport
import NIOCore
import SMTPCore

/// Runs one mail transaction on the connection's event loop: every write and reply of the pipelined
/// exchange happens there, and the caller is resumed once, with the outcome (instead of a hop to the
/// event loop and back for each write and each reply).
///
/// Event loop only; created and started on it.
final class TransactionDriver {
    private var transaction: SMTPClientTransaction
    private let channel: any Channel
    private let handler: SMTPClientHandler
    private let timeouts: SMTPClientConfiguration.Timeouts
    private let promise: EventLoopPromise<SMTPClientTransaction.Outcome>
    private var lastCommand = "MAIL FROM"

    init(_ transaction: SMTPClientTransaction, channel: any Channel, handler: SMTPClientHandler,
         timeouts: SMTPClientConfiguration.Timeouts) {
        self.transaction = transaction
        self.channel = channel
        self.handler = handler
        self.timeouts = timeouts
        self.promise = channel.eventLoop.makePromise()
    }

    /// Starts the transaction; the future fails with an `SMTPClientError` when the connection fails,
    /// times out or sends something unreadable.
    func run() -> EventLoopFuture<SMTPClientTransaction.Outcome> {
        step(transaction.start())
        return promise.futureResult
    }

    private func step(_ first: SMTPClientTransaction.Action) {
        var action = first
        while true {
            switch action {
            case .send(let bytes):
                lastCommand = Self.label(bytes) ?? lastCommand
                let bound = NIOLoopBound(self, eventLoop: channel.eventLoop)
                Self.write(bytes, on: channel, blockTimeout: timeouts.dataBlock).whenComplete { result in
                    switch result {
                    case .success: bound.value.step(.wait)
                    case .failure(let error): bound.value.promise.fail(error)
                    }
                }
                return
            case .wait:
                let timeout = lastCommand == "end of data" || lastCommand == "BDAT" ? timeouts.dataTermination
                    : lastCommand == "DATA" ? timeouts.dataInitiation : timeouts.command
                // Replies already received are taken here, in this loop: no callback per reply.
                if let ready = handler.takeReceived(command: lastCommand) {
                    switch ready {
                    case .success(let reply):
                        action = transaction.replyReceived(reply)
                        continue
                    case .failure(let error):
                        promise.fail(error)
                        return
                    }
                }
                let bound = NIOLoopBound(self, eventLoop: channel.eventLoop)
                handler.next(timeout: timeout, eventLoop: channel.eventLoop, command: lastCommand).whenComplete { result in
                    let driver = bound.value
                    switch result {
                    case .success(let reply): driver.step(driver.transaction.replyReceived(reply))
                    case .failure(let error): driver.promise.fail(error)
                    }
                }
                return
            case .finished(let outcome):
                promise.succeed(outcome)
                return
            }
        }
    }

    /// The command a write starts with, for timeouts and error messages.
    static func label(_ bytes: ByteBuffer) -> String? {
        guard let first = bytes.getString(at: bytes.readerIndex, length: min(bytes.readableBytes, 12)) else { return nil }
        return first.hasPrefix("MAIL") ? "MAIL FROM" : first.hasPrefix("RCPT") ? "RCPT TO"
            : first.hasPrefix("DATA") ? "DATA" : first.hasPrefix("BDAT") ? "BDAT" : "end of data"
    }

    /// Writes `bytes` in blocks of 64 KiB, each of which must leave within `blockTimeout` (RFC 5321
    /// §4.5.3.2.5: a server that stops reading does not hold the delivery forever); on that timeout the
    /// connection is closed. Fails with `.timeout` or `.connectionClosed`. Event loop only.
    static func write(_ bytes: ByteBuffer, on channel: any Channel, blockTimeout: TimeAmount) -> EventLoopFuture<Void> {
        var remaining = bytes
        let block = remaining.readSlice(length: min(remaining.readableBytes, 1 << 16))!
        let rest = remaining
        let loop = channel.eventLoop
        let timedOut = NIOLoopBoundBox(false, eventLoop: loop)
        let written = channel.writeAndFlush(block)
        let timer = loop.scheduleTask(in: blockTimeout) {
            timedOut.value = true
            channel.close(promise: nil)
        }
        return written.flatMapError { _ in
            loop.makeFailedFuture(SMTPClientError(kind: timedOut.value ? .timeout : .connectionClosed, isPermanent: false))
        }.flatMap {
            timer.cancel()
            return rest.readableBytes > 0 ? write(rest, on: channel, blockTimeout: blockTimeout) : loop.makeSucceededVoidFuture()
        }
    }
}
