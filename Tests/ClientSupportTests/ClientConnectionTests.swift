import ClientSupport
import NIOCore
import NIOPosix
import NIOSSL
import Testing

/// Writes its greeting when the connection is up.
private final class Greeter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let greeting: String
    init(_ greeting: String) { self.greeting = greeting }

    func channelActive(context: ChannelHandlerContext) {
        if !greeting.isEmpty { context.writeAndFlush(NIOAny(ByteBuffer(string: greeting)), promise: nil) }
        context.fireChannelActive()
    }
}

/// A listener on 127.0.0.1 that writes `greeting` to each connection.
private func listener(greeting: String) async throws -> any Channel {
    try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .childChannelInitializer { child in
            child.eventLoop.makeCompletedFuture { try child.pipeline.syncOperations.addHandler(Greeter(greeting)) }
        }
        .bind(host: "127.0.0.1", port: 0).get()
}

@Suite struct ClientConnectionTests {
    @Test func connectsWithNoDelayAndHandsOverWhatTheServerSends() async throws {
        let server = try await listener(greeting: "hello")
        let port = try #require(server.localAddress?.port)
        let connection = try await ClientConnection<LineHandler>.connect(
            host: "127.0.0.1", port: port, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, connectTimeout: .seconds(5),
            verification: nil, serverName: nil, implicitTLS: false, makeHandler: { LineHandler() })
        #expect(connection.tls == nil)
        #expect(try await connection.next(timeout: .seconds(5), command: "greeting") == "hello")
        #expect(try await connection.channel.getOption(.tcpOption(.tcp_nodelay)).get() != 0)
        await connection.close()
        await #expect(throws: TestError(kind: "closed", command: "NOOP")) {
            try await connection.next(timeout: .seconds(5), command: "NOOP")
        }
        try await server.close()
    }

    @Test func implicitTLSIsInThePipeline() async throws {
        let server = try await listener(greeting: "")
        let port = try #require(server.localAddress?.port)
        let connection = try await ClientConnection<LineHandler>.connect(
            host: "127.0.0.1", port: port, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, connectTimeout: .seconds(5),
            verification: .insecureNoVerification, serverName: "localhost", implicitTLS: true, makeHandler: { LineHandler() })
        #expect(connection.tls?.serverHostname == "localhost")
        try await connection.channel.pipeline.containsHandler(type: NIOSSLClientHandler.self).get()
        try await connection.channel.pipeline.containsHandler(type: LineHandler.self).get()
        await connection.close()
        try await server.close()
    }

    @Test func aTLSContextThatCannotBeBuiltIsAPermanentTLSFailure() async {
        await #expect(throws: TestError(kind: "tls", isPermanent: true)) {
            // Never connects: the context is built first.
            try await ClientConnection<LineHandler>.connect(
                host: "192.0.2.1", port: 25, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, connectTimeout: .seconds(5),
                verification: .customCA(pemFile: "/nonexistent/swallow-ca.pem"), serverName: nil, implicitTLS: false,
                makeHandler: { LineHandler() })
        }
    }

    @Test func aRefusedConnectionIsAConnectFailure() async throws {
        let server = try await listener(greeting: "")
        let port = try #require(server.localAddress?.port)
        try await server.close()  // nothing listens there now
        await #expect(throws: TestError(kind: "connect")) {
            try await ClientConnection<LineHandler>.connect(
                host: "127.0.0.1", port: port, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, connectTimeout: .seconds(5),
                verification: nil, serverName: nil, implicitTLS: false, makeHandler: { LineHandler() })
        }
    }
}
