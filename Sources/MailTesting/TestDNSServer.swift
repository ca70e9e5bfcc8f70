import DNSCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A small authoritative DNS server on 127.0.0.1 for tests, UDP and TCP on the same port, serving a
/// zone given as Swift values and able to misbehave on demand (``TestDNSFault``).
///
/// ```swift
/// let dns = try await TestDNSServer.start(zone: [
///     .mx("example.test", 10, "mx1.example.test"),
///     .a("mx1.example.test", "127.0.0.1"),
/// ])
/// defer { Task { await dns.stop() } }
/// let resolver = StubResolver(configuration: try .init(nameservers: [dns.address]))
/// ```
public final class TestDNSServer: Sendable {
    /// How a query reached the server.
    public enum Transport: Sendable, Hashable { case udp, tcp }

    /// A query the server received.
    public struct LoggedQuery: Sendable, Hashable {
        public var question: DNSQuestion
        public var transport: Transport
        /// Whether the query carried an EDNS OPT record (RFC 6891).
        public var hasEDNS: Bool = false
    }

    struct State {
        var zone: TestDNSZone
        var faults: [DNSName: TestDNSFault] = [:]
        var typeFaults: [DNSQuestion: TestDNSFault] = [:]
        var globalFault: TestDNSFault?
        var log: [LoggedQuery] = []

        func fault(for bytes: [UInt8]) -> TestDNSFault? {
            guard let query = try? DNSMessageParser.parse(bytes), let q = query.questions.first else { return globalFault }
            return typeFaults[DNSQuestion(name: q.name, type: q.type)] ?? faults[q.name] ?? globalFault
        }
    }

    /// The port, the same for UDP and TCP.
    public let port: Int
    private let state: NIOLockedValueBox<State>
    private let udp: any Channel
    private let forger: any Channel
    private let tcp: any Channel

    private init(port: Int, state: NIOLockedValueBox<State>, udp: any Channel, forger: any Channel, tcp: any Channel) {
        self.port = port
        self.state = state
        self.udp = udp
        self.forger = forger
        self.tcp = tcp
    }

    /// `127.0.0.1:port`, the form ``StubResolver/Configuration`` and `[dns] nameservers` take.
    public var address: String { "127.0.0.1:\(port)" }

    /// Starts a server on 127.0.0.1 with a free port.
    /// - Parameters:
    ///   - zone: the records served; every other name is NXDOMAIN.
    ///   - faults: misbehaviours per name (exact owner name, case-insensitive).
    ///   - negativeTTL: the SOA TTL/MINIMUM in NXDOMAIN and NODATA answers.
    public static func start(zone: [TestDNSRecord], faults: [String: TestDNSFault] = [:], negativeTTL: UInt32 = 60,
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> TestDNSServer {
        var initial = State(zone: TestDNSZone(zone, negativeTTL: negativeTTL))
        for (name, fault) in faults { initial.faults[try DNSName(name)] = fault }
        let state = NIOLockedValueBox(initial)
        let forgerBox = NIOLockedValueBox<(any Channel)?>(nil)
        let forger = try await DatagramBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        forgerBox.withLockedValue { $0 = forger }
        var lastError: (any Error)?
        for _ in 0..<20 {
            let udp = try await DatagramBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(UDPHandler(state: state, forger: forger))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            let port = udp.localAddress?.port ?? 0
            do {
                let tcp = try await ServerBootstrap(group: group)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LengthPrefixedDecoder()))
                            try channel.pipeline.syncOperations.addHandler(TCPHandler(state: state))
                        }
                    }
                    .bind(host: "127.0.0.1", port: port).get()
                return TestDNSServer(port: port, state: state, udp: udp, forger: forger, tcp: tcp)
            } catch {
                lastError = error
                try? await udp.close()
            }
        }
        try? await forger.close()
        throw lastError ?? ChannelError.ioOnClosedChannel
    }

    /// Stops both listeners.
    public func stop() async {
        try? await udp.close()
        try? await tcp.close()
        try? await forger.close()
    }

    /// Makes `name` misbehave (or behave again with `nil`).
    public func setFault(_ fault: TestDNSFault?, for name: String) {
        let key = try! DNSName(name)
        state.withLockedValue { $0.faults[key] = fault }
    }

    /// Makes queries for `name` and `type` only misbehave (or behave again with `nil`); this wins
    /// over a fault for the whole name.
    public func setFault(_ fault: TestDNSFault?, for name: String, type: DNSRecordType) {
        let key = DNSQuestion(name: try! DNSName(name), type: type)
        state.withLockedValue { $0.typeFaults[key] = fault }
    }

    /// Drops every fault (per name, per name and type, and global).
    public func clearFaults() {
        state.withLockedValue {
            $0.faults = [:]
            $0.typeFaults = [:]
            $0.globalFault = nil
        }
    }

    /// Makes every name without its own fault misbehave (or behave again with `nil`).
    public func setFault(_ fault: TestDNSFault?) {
        state.withLockedValue { $0.globalFault = fault }
    }

    /// Replaces the zone.
    public func setZone(_ zone: [TestDNSRecord], negativeTTL: UInt32 = 60) {
        state.withLockedValue { $0.zone = TestDNSZone(zone, negativeTTL: negativeTTL) }
    }

    /// Every query received so far, in order.
    public var queries: [LoggedQuery] { state.withLockedValue { $0.log } }

    /// How many queries have been received (UDP and TCP).
    public var queryCount: Int { state.withLockedValue { $0.log.count } }

    private static func logAndPlan(_ state: NIOLockedValueBox<State>, _ bytes: [UInt8], _ transport: Transport) -> [TestDNSReply] {
        state.withLockedValue { s in
            if let query = try? DNSMessageParser.parse(bytes), let q = query.questions.first {
                s.log.append(LoggedQuery(question: q, transport: transport, hasEDNS: query.edns != nil))
            }
            return s.zone.replies(to: bytes, overTCP: transport == .tcp, fault: s.fault(for: bytes))
        }
    }

    final class UDPHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        typealias OutboundOut = AddressedEnvelope<ByteBuffer>
        let state: NIOLockedValueBox<State>
        let forger: any Channel

        init(state: NIOLockedValueBox<State>, forger: any Channel) {
            self.state = state
            self.forger = forger
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            let client = envelope.remoteAddress
            let channel = context.channel
            for reply in TestDNSServer.logAndPlan(state, Array(envelope.data.readableBytesView), .udp) {
                let out = AddressedEnvelope(remoteAddress: client, data: ByteBuffer(bytes: reply.bytes))
                let via = reply.fromOtherPort ? forger : channel
                if reply.delayMilliseconds > 0 {
                    channel.eventLoop.scheduleTask(in: .milliseconds(reply.delayMilliseconds)) {
                        via.writeAndFlush(out, promise: nil)
                    }
                } else {
                    via.writeAndFlush(out, promise: nil)
                }
            }
        }
    }

    final class TCPHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let state: NIOLockedValueBox<State>

        init(state: NIOLockedValueBox<State>) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let message = unwrapInboundIn(data)
            for reply in TestDNSServer.logAndPlan(state, Array(message.readableBytesView), .tcp) {
                var out = context.channel.allocator.buffer(capacity: reply.bytes.count + 2)
                out.writeInteger(UInt16(reply.bytes.count))
                out.writeBytes(reply.bytes)
                context.writeAndFlush(wrapOutboundOut(out), promise: nil)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }

    /// RFC 1035 §4.2.2: each TCP message is preceded by a two-octet length.
    struct LengthPrefixedDecoder: ByteToMessageDecoder {
        typealias InboundOut = ByteBuffer

        mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
            guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
                  buffer.readableBytes >= 2 + Int(length) else { return .needMoreData }
            buffer.moveReaderIndex(forwardBy: 2)
            context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
            return .continue
        }
    }
}
