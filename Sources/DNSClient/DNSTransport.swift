import DNSCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One question to one server over UDP (RFC 1035 §4.2.1) or TCP (RFC 1035 §4.2.2, RFC 7766).
///
/// Anti-spoofing (RFC 5452 §9.1): a fresh random 16-bit ID and a fresh socket on a random source
/// port per query; a UDP answer is accepted only from the server's address and port, with our ID,
/// QR set, opcode QUERY and our exact question echoed. Anything else is ignored and we keep
/// waiting until the timeout.
struct DNSTransport: Sendable {
    let group: any EventLoopGroup

    private static func randomID() -> UInt16 { UInt16.random(in: .min ... .max) }

    private func isAnswer(_ message: DNSMessage, id: UInt16, to question: DNSQuestion) -> Bool {
        message.header.id == id && message.header.isResponse && message.header.opcode == 0
            && message.questions.count == 1 && message.questions[0] == question
    }

    /// Asks `server` over UDP; falls back to TCP when the answer is truncated (RFC 1035 §4.2.1,
    /// RFC 7766 §5), and retries without EDNS when the server answers FORMERR to an OPT record
    /// (RFC 6891 §6.2.2).
    func ask(_ question: DNSQuestion, server: SocketAddress, timeout: Duration, udpPayloadSize: UInt16?) async throws(DNSResolverError) -> DNSMessage {
        var response = try await udp(question, server: server, timeout: timeout, udpPayloadSize: udpPayloadSize)
        if response.header.responseCode == .formatError && udpPayloadSize != nil && response.edns == nil {
            response = try await udp(question, server: server, timeout: timeout, udpPayloadSize: nil)
        }
        if response.header.isTruncated {
            response = try await tcp(question, server: server, timeout: timeout)
            // A TCP answer cannot be truncated; one that says so is not an answer (reading it as
            // "no records" would, for MX, fall back to the domain's A record: the wrong host).
            if response.header.isTruncated { throw .malformedResponse }
        }
        return response
    }

    /// A datagram socket on a random local port of the server's address family.
    private func bindRandomPort(for server: SocketAddress) async throws -> NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>> {
        let host = server.protocol == .inet6 ? "::" : "0.0.0.0"
        var lastError: (any Error)?
        // Pick the port ourselves (RFC 5452 §9.2) rather than rely on the kernel; 0 as the last resort.
        for port in [Int.random(in: 1024...65_535), Int.random(in: 1024...65_535), Int.random(in: 1024...65_535), 0] {
            do {
                return try await DatagramBootstrap(group: group).bind(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(
                            wrappingChannelSynchronously: channel)
                    }
                }
            } catch {
                lastError = error
            }
        }
        throw lastError ?? DNSResolverError.network("cannot bind a UDP socket")
    }

    func udp(_ question: DNSQuestion, server: SocketAddress, timeout: Duration, udpPayloadSize: UInt16?) async throws(DNSResolverError) -> DNSMessage {
        let id = Self.randomID()
        let query = DNSMessageEncoder.encode(.query(id: id, name: question.name, type: question.type, udpPayloadSize: udpPayloadSize))
        let sawMalformed = NIOLockedValueBox(false)
        let channel: NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>
        do {
            channel = try await bindRandomPort(for: server)
        } catch {
            throw .network("\(error)")
        }
        do {
            return try await withTimeout(timeout, channel: channel.channel) {
                try await channel.executeThenClose { inbound, outbound in
                    try await outbound.write(AddressedEnvelope(remoteAddress: server, data: ByteBuffer(bytes: query)))
                    for try await envelope in inbound {
                        guard envelope.remoteAddress == server else { continue }
                        let bytes = Array(envelope.data.readableBytesView)
                        guard DNSMessageParser.peekID(bytes) == id else { continue }
                        guard let message = try? DNSMessageParser.parse(bytes) else {
                            sawMalformed.withLockedValue { $0 = true }
                            continue
                        }
                        guard isAnswer(message, id: id, to: question) else { continue }
                        return message
                    }
                    throw DNSResolverError.timeout
                }
            }
        } catch let error as DNSResolverError {
            if error == .timeout && sawMalformed.withLockedValue({ $0 }) { throw .malformedResponse }
            throw error
        } catch {
            throw .network("\(error)")
        }
    }

    func tcp(_ question: DNSQuestion, server: SocketAddress, timeout: Duration) async throws(DNSResolverError) -> DNSMessage {
        let id = Self.randomID()
        let query = DNSMessageEncoder.encode(.query(id: id, name: question.name, type: question.type, udpPayloadSize: nil))
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000
                                              + timeout.components.attoseconds / 1_000_000_000))
                .connect(to: server) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw .network("\(error)")
        }
        do {
            return try await withTimeout(timeout, channel: channel.channel) {
                try await channel.executeThenClose { inbound, outbound in
                    var out = ByteBuffer()
                    out.writeInteger(UInt16(query.count))
                    out.writeBytes(query)
                    try await outbound.write(out)
                    var received = ByteBuffer()
                    for try await chunk in inbound {
                        var chunk = chunk
                        received.writeBuffer(&chunk)
                        guard let length = received.getInteger(at: received.readerIndex, as: UInt16.self),
                              received.readableBytes >= 2 + Int(length),
                              let bytes = received.getBytes(at: received.readerIndex + 2, length: Int(length)) else { continue }
                        guard let message = try? DNSMessageParser.parse(bytes), isAnswer(message, id: id, to: question) else {
                            throw DNSResolverError.malformedResponse
                        }
                        return message
                    }
                    throw DNSResolverError.network("connection closed before the answer")
                }
            }
        } catch let error as DNSResolverError {
            throw error
        } catch {
            throw .network("\(error)")
        }
    }
}

/// Runs `body`, closing `channel` and throwing ``DNSResolverError/timeout`` after `timeout`.
private func withTimeout<T: Sendable>(_ timeout: Duration, channel: any Channel,
                                      _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let timedOut = NIOLockedValueBox(false)
    do {
        return try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: timeout)
                timedOut.withLockedValue { $0 = true }
                channel.close(promise: nil)
                throw DNSResolverError.timeout
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    } catch {
        if timedOut.withLockedValue({ $0 }), !(error is DNSResolverError) || (error as? DNSResolverError)?.isTemporary == true {
            throw DNSResolverError.timeout
        }
        throw error
    }
}
