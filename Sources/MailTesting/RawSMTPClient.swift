import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// A deliberately dumb SMTP client for tests: sends exactly the bytes it is given (so tests can
/// pipeline, inject and smuggle) and reads whole replies. It can switch to TLS mid-connection.
public final class RawSMTPClient: Sendable {
    private let channel: any Channel
    let inbox: Inbox

    final class Inbox: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let bytes = NIOLockedValueBox<[UInt8]>([])
        let closed = NIOLockedValueBox(false)
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let b = unwrapInboundIn(data)
            bytes.withLockedValue { $0.append(contentsOf: b.readableBytesView) }
        }
        func channelInactive(context: ChannelHandlerContext) {
            closed.withLockedValue { $0 = true }
        }
        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }

    private init(channel: any Channel, inbox: Inbox) {
        self.channel = channel
        self.inbox = inbox
    }

    /// Connects to `host:port`, optionally with implicit TLS.
    public static func connect(host: String, port: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                               implicitTLS: Bool = false) async throws -> RawSMTPClient {
        let inbox = Inbox()
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    if implicitTLS {
                        try ch.pipeline.syncOperations.addHandler(try makeTLSHandler())
                    }
                    try ch.pipeline.syncOperations.addHandler(inbox)
                }
            }
            .connect(host: host, port: port).get()
        return RawSMTPClient(channel: channel, inbox: inbox)
    }

    static func makeTLSHandler() throws -> NIOSSLClientHandler {
        var config = TLSConfiguration.makeClientConfiguration()
        config.certificateVerification = .none
        return try NIOSSLClientHandler(context: try NIOSSLContext(configuration: config), serverHostname: nil)
    }

    /// Sends `text` as is (write `\r\n` yourself).
    public func send(_ text: String) async throws {
        try await send(Array(text.utf8))
    }

    /// Sends raw bytes in one write.
    public func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// Reads one complete reply (all its lines, without CRLF); throws on timeout or close.
    public func readReply(timeout: Duration = .seconds(10)) async throws -> [String] {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            if let reply = inbox.bytes.withLockedValue({ Self.takeReply(&$0) }) { return reply }
            if inbox.closed.withLockedValue({ $0 }) { throw ClientError.closed }
            if clock.now > deadline { throw ClientError.timeout }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Reads replies until the connection closes; returns them (for "server closes after 421").
    public func readUntilClosed(timeout: Duration = .seconds(10)) async throws -> [[String]] {
        var out: [[String]] = []
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            if let reply = inbox.bytes.withLockedValue({ Self.takeReply(&$0) }) { out.append(reply); continue }
            if inbox.closed.withLockedValue({ $0 }) { return out }
            if clock.now > deadline { throw ClientError.timeout }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// `true` once the server has closed the connection.
    public var isClosed: Bool { inbox.closed.withLockedValue { $0 } }

    /// Sends a command and returns the first line of its reply.
    public func command(_ line: String) async throws -> String {
        try await send(line + "\r\n")
        return try await readReply().last ?? ""
    }

    /// Inserts a TLS client handler now (after the server's 220 to STARTTLS) and waits for the handshake.
    public func startTLS() async throws {
        try await channel.eventLoop.submit {
            try self.channel.pipeline.syncOperations.addHandler(try Self.makeTLSHandler(), position: .first)
        }.get()
    }

    /// Closes the connection.
    public func close() async {
        try? await channel.close()
    }

    static func takeReply(_ bytes: inout [UInt8]) -> [String]? {
        var lines: [String] = []
        var start = 0
        var i = 0
        while i + 1 < bytes.count {
            if bytes[i] == 0x0D && bytes[i + 1] == 0x0A {
                let line = String(decoding: bytes[start..<i], as: UTF8.self)
                lines.append(line)
                start = i + 2
                i += 2
                let u = Array(line.utf8)
                if u.count >= 4 && u[3] == UInt8(ascii: "-") { continue }
                bytes.removeFirst(start)
                return lines
            }
            i += 1
        }
        return nil
    }

    /// Client failures.
    public enum ClientError: Error {
        case timeout
        case closed
    }
}
