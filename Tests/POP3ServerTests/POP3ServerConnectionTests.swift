import ListenerSupport
import Logging
import NIOCore
import NIOEmbedded
import POP3Core
import Synchronization
import Testing
@testable import POP3Server

/// A maildrop of two small messages that records what the session does to it.
final class RecordingMaildrop: POP3Maildrop, Sendable {
    let updates = Mutex<[(deleted: Set<Int>, retrieved: Set<Int>)]>([])
    let released = Mutex(false)
    var messages: [POP3ServerStateMachine.MessageInfo] { [.init(size: 20, uid: "u1"), .init(size: 20, uid: "u2")] }

    func read(_ index: Int, chunkSize: Int) async throws -> any POP3MessageReader { OneChunk(index: index) }
    func update(deleted: Set<Int>, retrieved: Set<Int>) async throws { updates.withLock { $0.append((deleted, retrieved)) } }
    func release() async { released.withLock { $0 = true } }
}

final class OneChunk: POP3MessageReader, Sendable {
    let index: Int
    private let done = Mutex(false)
    init(index: Int) { self.index = index }
    func next() async throws -> ByteBuffer? {
        done.withLock { d in defer { d = true }; return d } ? nil : ByteBuffer(string: "Subject: m\(index)\r\n\r\nbody\r\n")
    }
    func close() async {}
}

final class OneUser: POP3ServerDelegate, Sendable {
    let maildrop = RecordingMaildrop()
    func authenticate(user: String, password: String, remoteIP: String) async -> Bool { user == "alice" && password == "secret-pw" }
    func openMaildrop(user: String) async throws -> any POP3Maildrop { maildrop }
}

/// The POP3 adapter on an in-memory channel with a virtual clock: autologout (no UPDATE: what the
/// client deleted stays), QUIT's UPDATE, and a drain that waits for the session's command.
@Suite(.timeLimit(.minutes(1))) struct POP3ServerConnectionTests {
    struct Harness: Sendable {
        let channel: NIOAsyncTestingChannel
        let delegate: OneUser

        func replies() async throws -> [String] {
            var lines: [String] = []
            while let buffer = try await channel.readOutbound(as: ByteBuffer.self) {
                lines += String(buffer: buffer).split(separator: "\r\n").map(String.init)
            }
            return lines
        }

        /// Sends `line` and collects replies until one starts with `prefix` (the session's work runs in tasks).
        func command(_ line: String, until prefix: String) async throws -> [String] {
            try await channel.writeInbound(ByteBuffer(string: line + "\r\n"))
            var lines: [String] = []
            for _ in 0..<500 {
                lines += try await replies()
                if lines.contains(where: { $0.hasPrefix(prefix) }) { return lines }
                try await Task.sleep(for: .milliseconds(2))
                await channel.testingEventLoop.run()
            }
            Issue.record("no reply starting with \(prefix) to \(line): \(lines)")
            return lines
        }

        func settle() async throws {
            for _ in 0..<50 {
                try await Task.sleep(for: .milliseconds(2))
                await channel.testingEventLoop.run()
            }
        }
    }

    static func start(autologout: TimeAmount = .minutes(10)) async throws -> Harness {
        let configuration = POP3Listener.Configuration(
            name: "pop3", addresses: [],
            machine: .init(hostname: "mx.example.test", tlsAvailable: false, allowPlaintextAuthentication: true),
            tls: nil, implicitTLS: false, autologout: autologout)
        let delegate = OneUser()
        let logger: Logger = {
            var l = Logger(label: "test")
            l.logLevel = .critical
            return l
        }()
        let listener = ListenerContext(configuration)
        let channel = try await NIOAsyncTestingChannel { channel in
            try channel.pipeline.syncOperations.addHandler(POP3ServerConnection(listener: listener, delegate: delegate, logger: logger))
        }
        try await channel.connect(to: SocketAddress(ipAddress: "192.0.2.7", port: 4321))
        let h = Harness(channel: channel, delegate: delegate)
        #expect(try await h.replies().first?.hasPrefix("+OK") == true)
        _ = try await h.command("USER alice", until: "+OK")
        #expect(try await h.command("PASS secret-pw", until: "+OK").last?.hasPrefix("+OK") == true)
        return h
    }

    @Test func autologoutClosesWithoutUpdate() async throws {
        let h = try await Self.start(autologout: .minutes(10))
        #expect(try await h.command("DELE 1", until: "+OK").last?.hasPrefix("+OK") == true)
        await h.channel.testingEventLoop.advanceTime(by: .seconds(599))
        #expect(h.channel.isActive)
        await h.channel.testingEventLoop.advanceTime(by: .seconds(1))
        try await h.settle()
        #expect(!h.channel.isActive, "still open after autologout")
        #expect(h.delegate.maildrop.updates.withLock { $0.isEmpty }, "autologout must not enter UPDATE (RFC 1939 §3)")
        #expect(h.delegate.maildrop.released.withLock { $0 })
    }

    @Test func quitEntersUpdateWithWhatWasDeletedAndRetrieved() async throws {
        let h = try await Self.start()
        let retr = try await h.command("RETR 2", until: ".")
        #expect(retr.first?.hasPrefix("+OK") == true && retr.contains("Subject: m1"), "\(retr)")
        _ = try await h.command("DELE 1", until: "+OK")
        #expect(try await h.command("QUIT", until: "+OK").last?.hasPrefix("+OK") == true)
        try await h.settle()
        let updates = h.delegate.maildrop.updates.withLock { $0 }
        #expect(updates.count == 1)
        #expect(updates.first?.deleted == [0] && updates.first?.retrieved == [1])
        #expect(!h.channel.isActive)
    }

    /// A drain closes an idle POP3 session without UPDATE at the deadline (the client's deletions stay
    /// undone, as after a dropped connection).
    @Test func drainDeadlineClosesWithoutUpdate() async throws {
        let h = try await Self.start()
        _ = try await h.command("DELE 2", until: "+OK")
        let channel = h.channel
        try await channel.testingEventLoop.executeInContext {
            let handler = try! channel.pipeline.syncOperations.handler(type: POP3ServerConnection.self)
            handler.shutdownRequested()
            handler.shutdownDeadlinePassed()
        }
        try await h.settle()
        #expect(!h.channel.isActive)
        #expect(h.delegate.maildrop.updates.withLock { $0.isEmpty })
    }
}
