import ListenerSupport
import Logging
import MailCore
import NIOCore
import NIOEmbedded
import SMTPCore
import Synchronization
import Testing
@testable import SMTPServer

/// A message sink whose commit waits until the test releases it: a store "held" on a slow disk.
final class HeldSink: SMTPMessageSink, Sendable {
    private let gate = Mutex<CheckedContinuation<Void, Never>?>(nil)
    private let arrived = Mutex(false)
    let aborted = Mutex(false)

    func write(_ bytes: ByteBuffer) async throws {}

    func commit(_ bytes: ByteBuffer, envelope: SMTPEnvelope, connection: SMTPConnectionInfo) async throws -> String {
        await withCheckedContinuation { c in
            gate.withLock { $0 = c }
            arrived.withLock { $0 = true }
        }
        return "QID1"
    }

    func abort() async { aborted.withLock { $0 = true } }

    var isHeld: Bool { arrived.withLock { $0 } && gate.withLock { $0 != nil } }

    func release() { gate.withLock { c in c?.resume(); c = nil } }
}

/// Accepts every recipient; stores through the given sink.
final class TestDelegate: SMTPServerDelegate, Sendable {
    let sink: HeldSink
    init(sink: HeldSink) { self.sink = sink }
    func verifyRecipient(_ recipient: ForwardPath, envelope: SMTPEnvelope, connection: SMTPConnectionInfo) async throws {}
    func makeMessageSink(connection: SMTPConnectionInfo) -> any SMTPMessageSink { sink }
}

/// The SMTP adapter on an in-memory channel with a virtual clock: what live listener tests cannot
/// reach in reasonable time — the command timeout, shutdown while a store is held, the drain deadline.
@Suite(.timeLimit(.minutes(1))) struct SMTPServerConnectionTests {
    /// The channel with the handler under test; the handler is only touched on the channel's event
    /// loop (``onLoop(_:)``).
    struct Harness: Sendable {
        let channel: NIOAsyncTestingChannel
        let sink: HeldSink

        /// Every reply line written so far (without CRLF).
        func replies() async throws -> [String] {
            var lines: [String] = []
            while let buffer = try await channel.readOutbound(as: ByteBuffer.self) {
                lines += String(buffer: buffer).split(separator: "\r\n").map(String.init)
            }
            return lines
        }

        func send(_ text: String) async throws {
            try await channel.writeInbound(ByteBuffer(string: text))
        }

        /// Runs `body` on the channel's event loop, as the listener's registry calls the handler.
        func onLoop(_ body: @escaping @Sendable (SMTPServerConnection) -> Void) async throws {
            let channel = self.channel
            try await channel.testingEventLoop.executeInContext {
                body(try! channel.pipeline.syncOperations.handler(type: SMTPServerConnection.self))
            }
        }

        /// Lets tasks started by the handler (delegate calls) run and their results reach the loop.
        func settle() async throws {
            for _ in 0..<50 {
                try await Task.sleep(for: .milliseconds(2))
                await channel.testingEventLoop.run()
            }
        }
    }

    static func start(commandTimeout: TimeAmount = .seconds(300), shutdownGrace: TimeAmount = .seconds(10)) async throws -> Harness {
        let configuration = SMTPListener.Configuration(
            name: "smtp", addresses: [], machine: .init(hostname: "mx.example.test", startTLSAvailable: false),
            commandTimeout: commandTimeout, shutdownGrace: shutdownGrace)
        let sink = HeldSink()
        let logger: Logger = {
            var l = Logger(label: "test")
            l.logLevel = .critical
            return l
        }()
        let delegate = TestDelegate(sink: sink)
        let listener = ListenerContext(configuration)
        let channel = try await NIOAsyncTestingChannel { channel in
            try channel.pipeline.syncOperations.addHandler(SMTPServerConnection(listener: listener, delegate: delegate, logger: logger))
        }
        try await channel.connect(to: SocketAddress(ipAddress: "192.0.2.7", port: 4321))
        let h = Harness(channel: channel, sink: sink)
        #expect(try await h.replies().first?.hasPrefix("220 mx.example.test") == true)
        return h
    }

    @Test func idleClientGets421AtTheCommandTimeoutAndIsClosed() async throws {
        let h = try await Self.start(commandTimeout: .seconds(300))
        try await h.send("EHLO client.example\r\n")
        let ehlo = try await h.replies()
        #expect(ehlo.first == "250-mx.example.test" && ehlo.last?.hasPrefix("250 ") == true, "\(ehlo)")
        await h.channel.testingEventLoop.advanceTime(by: .seconds(299))
        #expect(try await h.replies().isEmpty)
        #expect(h.channel.isActive)
        await h.channel.testingEventLoop.advanceTime(by: .seconds(1))
        let lines = try await h.replies()
        #expect(lines.count == 1 && lines[0].hasPrefix("421 4.4.2"), "\(lines)")
        try await h.settle()
        #expect(!h.channel.isActive)
    }

    /// A client that sends one byte a minute is idle: only whole commands restart the timer.
    @Test func dribblingACommandDoesNotKeepTheConnection() async throws {
        let h = try await Self.start(commandTimeout: .seconds(300))
        for byte in "NOOP".utf8 {
            try await h.channel.writeInbound(ByteBuffer(bytes: [byte]))
            await h.channel.testingEventLoop.advanceTime(by: .seconds(60))
        }
        await h.channel.testingEventLoop.advanceTime(by: .seconds(60))
        #expect(try await h.replies().first?.hasPrefix("421 4.4.2") == true)
    }

    /// While the store of a message is in flight: no timeout reply, no shutdown reply; the 250 comes
    /// when the store completes, and the drain then ends the session with 421 4.3.2.
    @Test func heldStoreIsAnsweredBeforeTimeoutsAndShutdown() async throws {
        let h = try await Self.start(commandTimeout: .seconds(300), shutdownGrace: .seconds(10))
        try await h.send("EHLO client.example\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
        try await h.settle()
        #expect(try await h.replies().last?.hasPrefix("354") == true)
        try await h.send("Subject: held\r\n\r\nbody\r\n.\r\n")
        for _ in 0..<200 where !h.sink.isHeld { try await h.settle() }
        #expect(h.sink.isHeld, "the store never started")
        await h.channel.testingEventLoop.advanceTime(by: .seconds(600))  // past the command timeout
        try await h.onLoop { $0.shutdownRequested() }
        #expect(try await h.replies().isEmpty, "replied while the store was in flight")
        #expect(h.channel.isActive)
        h.sink.release()
        try await h.settle()
        let lines = try await h.replies()
        #expect(lines.first?.hasPrefix("250 2.0.0") == true, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("421 4.3.2") }, "\(lines)")
        #expect(!h.sink.aborted.withLock { $0 })
    }

    @Test func drainDeadlineClosesAnIdleSessionWith421() async throws {
        let h = try await Self.start()
        try await h.send("EHLO client.example\r\nMAIL FROM:<a@remote.test>\r\n")
        _ = try await h.replies()
        try await h.onLoop { $0.shutdownDeadlinePassed() }
        let lines = try await h.replies()
        #expect(lines.count == 1 && lines[0].hasPrefix("421 4.3.2"), "\(lines)")
        try await h.settle()
        #expect(!h.channel.isActive)
    }
}
