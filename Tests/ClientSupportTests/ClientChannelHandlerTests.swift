import ClientSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOSSL
import NIOTLS
import Testing

/// A client error as the handler builds it.
struct TestError: Error, Hashable {
    var kind: String
    var command: String?
    var isPermanent = false
}

enum TestFailures: ClientFailures {
    static var command: WritableKeyPath<TestError, String?> { \.command }

    static func error(_ failure: ClientFailure) -> TestError {
        switch failure {
        case .connectionClosed: TestError(kind: "closed")
        case .timeout(let command): TestError(kind: "timeout", command: command)
        case .tls(_, let permanent): TestError(kind: "tls", isPermanent: permanent)
        case .connectFailed: TestError(kind: "connect")
        case .closedBeforeHandshake: TestError(kind: "closed before handshake")
        case .handshakeTimedOut(let t): TestError(kind: "handshake timeout \(t.nanoseconds / 1_000_000_000)")
        }
    }

    /// As the SMTP client does: whatever ends the handshake is a TLS failure.
    static func handshakeFailed(_ error: TestError) -> TestError {
        error.kind == "tls" ? error : TestError(kind: "tls", command: "STARTTLS")
    }
}

/// Each read is one item; `bad` is unreadable input.
final class LineHandler: ClientChannelHandler<String, TestFailures> {
    var discards = 0

    override func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let text = String(buffer: unwrapInboundIn(data))
        guard text != "bad" else { return close(context: context, failing: TestError(kind: "malformed")) }
        responses.deliver(text)
    }

    override func discardBufferedInput() { discards += 1 }
}

/// What a future ended with, read after the embedded loop ran.
final class Outcome<T: Sendable>: Sendable {
    private let box = NIOLockedValueBox<Result<T, any Error>?>(nil)
    init(_ future: EventLoopFuture<T>) { future.whenComplete { r in self.box.withLockedValue { $0 = r } } }
    var result: Result<T, any Error>? { box.withLockedValue { $0 } }
    var value: T? { try? result?.get() }
    var error: TestError? {
        guard case .failure(let e) = result else { return nil }
        return e as? TestError
    }
}

@Suite struct ClientChannelHandlerTests {
    let handler = LineHandler(maximumUnrequested: 2)
    let channel: EmbeddedChannel

    init() throws {
        channel = EmbeddedChannel(handler: handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 25)).wait()
    }

    private func receive(_ text: String) throws { try channel.writeInbound(ByteBuffer(string: text)) }

    private func next(_ command: String? = "NOOP", timeout: TimeAmount = .seconds(5)) -> Outcome<String> {
        Outcome(handler.next(timeout: timeout, eventLoop: channel.eventLoop, command: command))
    }

    @Test func itemsGoToTheWaiterOrWaitInOrder() throws {
        let waiting = next()
        try receive("one")
        #expect(waiting.value == "one")
        try receive("two")
        try receive("three")
        #expect(handler.responses.count == 2)
        #expect(try handler.takeReceived(command: nil)?.get() == "two")
        #expect(next().value == "three")
        #expect(handler.takeReceived(command: nil) == nil)
    }

    @Test func aTimeoutNamesTheCommandAndCloses() throws {
        let waiting = next("RETR 1", timeout: .seconds(2))
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(waiting.result == nil)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(waiting.error == TestError(kind: "timeout", command: "RETR 1"))
        #expect(!channel.isActive)
    }

    @Test func theServerClosingFailsTheWaiterAndEveryLaterRequest() throws {
        let waiting = next("DATA")
        channel.pipeline.fireChannelInactive()
        // A waiter is failed with the error as it ended the connection; later requests name themselves.
        #expect(waiting.error == TestError(kind: "closed"))
        #expect(next("QUIT").error == TestError(kind: "closed", command: "QUIT"))
        guard case .failure(let e) = handler.takeReceived(command: "RSET") else { Issue.record("no failure"); return }
        #expect(e as? TestError == TestError(kind: "closed", command: "RSET"))
    }

    @Test func anIOErrorEndsTheConnection() throws {
        let waiting = next()
        channel.pipeline.fireErrorCaught(ChannelError.ioOnClosedChannel)
        #expect(waiting.error == TestError(kind: "closed"))
        #expect(!channel.isActive)
    }

    @Test(arguments: [NIOSSLError.readInInvalidTLSState, BoringSSLError.syscallError] as [any Error])
    func aTLSErrorIsATLSFailure(error: any Error) throws {
        let waiting = next()
        channel.pipeline.fireErrorCaught(error)
        #expect(waiting.error == TestError(kind: "tls"))
        #expect(!channel.isActive)
    }

    @Test func anUncleanTLSShutdownIsIgnored() throws {
        let waiting = next()
        channel.pipeline.fireErrorCaught(NIOSSLError.uncleanShutdown)
        #expect(waiting.result == nil)
        #expect(channel.isActive)
    }

    @Test func unreadableInputFailsAndCloses() throws {
        let waiting = next()
        try receive("bad")
        #expect(waiting.error == TestError(kind: "malformed"))
        #expect(!channel.isActive)
    }

    @Test func aFloodOfUnrequestedItemsIsRefused() throws {
        try receive("1")
        try receive("2")
        #expect(!handler.responses.deliver("3"))
        #expect(handler.responses.count == 2)
    }

    private func tls() throws -> ClientTLS {
        try ClientTLS(verification: .insecureNoVerification, host: "localhost", serverName: nil)
    }

    @Test func startTLSDiscardsWhatCameInPlaintextAndWaitsForTheHandshake() throws {
        try receive("injected")
        let upgrade = Outcome(handler.startTLS(try tls(), eventLoop: channel.eventLoop, timeout: .seconds(10)))
        #expect(handler.discards == 1)
        #expect(handler.responses.count == 0)
        _ = try channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self)  // throws when absent
        #expect(upgrade.result == nil)
        channel.pipeline.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: nil))
        #expect(upgrade.value != nil)
        channel.embeddedEventLoop.advanceTime(by: .seconds(20))
        #expect(channel.isActive)
    }

    @Test func aHandshakeThatNeverEndsTimesOutAndCloses() throws {
        let upgrade = Outcome(handler.startTLS(try tls(), eventLoop: channel.eventLoop, timeout: .seconds(10)))
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(upgrade.error == TestError(kind: "handshake timeout 10"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(30))  // NIOSSL's own shutdown timeout, if any
        #expect(!channel.isActive)
    }

    @Test func withoutATimeoutTheHandshakeMayTakeItsTime() throws {
        let upgrade = Outcome(handler.startTLS(try tls(), eventLoop: channel.eventLoop, timeout: nil))
        channel.embeddedEventLoop.advanceTime(by: .hours(1))
        #expect(upgrade.result == nil)
        #expect(channel.isActive)
    }

    @Test func theConnectionEndingDuringTheHandshakeFailsTheUpgrade() throws {
        let upgrade = Outcome(handler.startTLS(try tls(), eventLoop: channel.eventLoop, timeout: .seconds(10)))
        channel.pipeline.fireChannelInactive()  // NIOSSL reports the handshake cut short
        #expect(upgrade.error?.kind == "tls")
    }

    @Test func anyOtherFailureDuringTheHandshakeIsWhatTheClientMakesOfIt() throws {
        let waiting = next()
        let upgrade = Outcome(handler.startTLS(try tls(), eventLoop: channel.eventLoop, timeout: .seconds(10)))
        handler.fail(TestError(kind: "closed"))
        #expect(upgrade.error == TestError(kind: "tls", command: "STARTTLS"))
        #expect(waiting.error == TestError(kind: "closed"))
    }

    @Test func aTLSErrorDuringTheHandshakeFailsTheUpgradeAsItIs() throws {
        let upgrade = Outcome(handler.startTLS(try tls(), eventLoop: channel.eventLoop, timeout: .seconds(10)))
        channel.pipeline.fireErrorCaught(ChannelError.ioOnClosedChannel)  // during a handshake: TLS
        #expect(upgrade.error == TestError(kind: "tls"))
    }

    @Test func startTLSAfterTheServerClosedFailsAtOnce() throws {
        try channel.close().wait()
        let upgrade = Outcome(handler.startTLS(try tls(), eventLoop: channel.eventLoop, timeout: .seconds(10)))
        #expect(upgrade.error == TestError(kind: "closed before handshake"))
        #expect(handler.discards == 0)
    }
}
