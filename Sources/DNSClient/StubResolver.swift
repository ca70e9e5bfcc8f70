import DNSCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A stub resolver (RFC 1123 §6.1.3.1): sends recursive queries to the configured nameservers
/// over UDP, falls back to TCP on truncation, retries over the server list, caches answers for
/// their TTL (negative answers per RFC 2308) and follows CNAME chains.
///
/// Answers are untrusted: see ``DNSTransport`` for the anti-spoofing checks and
/// ``DNSMessageParser`` for the parser's limits. No DNSSEC validation.
public final class StubResolver: DNSResolver, Sendable {
    /// The configuration in use.
    public let configuration: Configuration
    private let transport: DNSTransport
    private let now: @Sendable () -> Duration
    private let cache: NIOLockedValueBox<DNSCache>

    /// Creates a resolver.
    /// - Parameters:
    ///   - configuration: nameservers, timeouts, limits.
    ///   - group: the event loops for the sockets.
    ///   - clock: the clock cache expiry is measured with (inject a manual clock in tests);
    ///     network timeouts always use real time.
    public init(configuration: Configuration,
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                clock: any Clock<Duration> = ContinuousClock()) {
        self.configuration = configuration
        self.transport = DNSTransport(group: group)
        self.now = Self.elapsed(since: clock)
        self.cache = NIOLockedValueBox(DNSCache(capacity: configuration.cacheCapacity))
    }

    /// A resolver using the nameservers and options of `/etc/resolv.conf` (or `path`).
    /// - Throws: when the file cannot be read.
    public static func system(path: String = "/etc/resolv.conf",
                              group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws -> StubResolver {
        let text = try readFile(path)
        return StubResolver(configuration: .resolvConf(text), group: group)
    }

    private static func elapsed<C: Clock<Duration>>(since clock: C) -> @Sendable () -> Duration {
        let origin = clock.now
        return { origin.duration(to: clock.now) }
    }

    private static func readFile(_ path: String) throws -> String {
        guard let handle = fopen(path, "r") else { throw DNSResolverError.network("cannot read \(path)") }
        defer { fclose(handle) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let n = fread(&chunk, 1, chunk.count, handle)
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Drops every cached answer.
    public func flushCache() {
        cache.withLockedValue { $0.removeAll() }
    }

    /// The number of answers currently cached (expired ones included until they are next touched).
    public var cachedAnswerCount: Int { cache.withLockedValue { $0.entries.count } }

    // MARK: - DNSResolver

    public func mx(_ domain: String) async throws -> MXResult {
        let answer = try await lookup(domain, type: .mx)
        if answer.responseCode == .nameError { return .nxdomain }
        var records: [(index: Int, record: MXRecord)] = []
        var sawNull = false
        for (index, record) in answer.records.enumerated() {
            guard case .mx(let preference, let exchange) = record.data else { continue }
            if exchange.isRoot {
                sawNull = true
            } else {
                records.append((index, MXRecord(preference: preference, exchange: exchange.description)))
            }
        }
        // RFC 7505 §3: a null MX is the only MX; a "." among real MXs is ignored as a misconfiguration.
        if records.isEmpty { return sawNull ? .nullMX : .noRecords }
        records.sort { ($0.record.preference, $0.index) < ($1.record.preference, $1.index) }
        return .records(records.map(\.record))
    }

    public func addresses(_ host: String) async throws -> [IPAddress] {
        if let literal = IPAddress(host) { return [literal] }
        async let v4 = lookupResult(host, type: .a)
        async let v6 = lookupResult(host, type: .aaaa)
        let (a, aaaa) = await (v4, v6)
        var out: [IPAddress] = []
        if case .success(let answer) = a {
            for r in answer.records { if case .a(let ip) = r.data { out.append(.v4(ip)) } }
        }
        if case .success(let answer) = aaaa {
            for r in answer.records { if case .aaaa(let ip) = r.data { out.append(.v6(ip)) } }
        }
        // One family failing temporarily is fine when the other gave addresses.
        if out.isEmpty {
            if case .failure(let error) = a { throw error }
            if case .failure(let error) = aaaa { throw error }
        }
        return out
    }

    public func txt(_ name: String) async throws -> [String] {
        try await lookup(name, type: .txt).records.compactMap { r in
            guard case .txt(let strings) = r.data else { return nil }
            return String(decoding: strings.joined(), as: UTF8.self)
        }
    }

    public func tlsa(_ name: String) async throws -> [TLSAData] {
        try await lookup(name, type: .tlsa).records.compactMap { r in
            if case .tlsa(let data) = r.data { data } else { nil }
        }
    }

    // MARK: - Lookups

    private func lookupResult(_ name: String, type: DNSRecordType) async -> Result<DNSAnswer, DNSResolverError> {
        do {
            return .success(try await lookup(name, type: type))
        } catch {
            return .failure(error)
        }
    }

    /// Looks up `name`/`type`, following CNAMEs (RFC 1034 §3.6.2, §5.3.3).
    /// - Returns: the records of `type` at the end of the chain, with NOERROR (possibly none: NODATA)
    ///   or NXDOMAIN.
    /// - Throws: ``DNSResolverError``.
    public func lookup(_ name: String, type: DNSRecordType) async throws(DNSResolverError) -> DNSAnswer {
        let start: DNSName
        do {
            start = try DNSName(name)
        } catch {
            throw .invalidName(name)
        }
        return try await lookup(start, type: type)
    }

    /// Looks up `name`/`type`, following CNAMEs; see ``lookup(_:type:)``.
    public func lookup(_ name: DNSName, type: DNSRecordType) async throws(DNSResolverError) -> DNSAnswer {
        var current = name
        var seen: Set<DNSName> = [name]
        var hops = 0
        while true {
            let answer = try await cachedQuery(DNSQuestion(name: current, type: type))
            // Walk the chain as far as this answer carries it.
            var target = current
            while true {
                let data = answer.answers.filter { $0.name == target && $0.type == type }
                if !data.isEmpty { return DNSAnswer(responseCode: .noError, records: data, canonicalName: target) }
                guard type != .cname,
                      let alias = answer.answers.lazy.compactMap({ r -> DNSName? in
                          if r.name == target, case .cname(let next) = r.data { next } else { nil }
                      }).first else { break }
                hops += 1
                guard hops <= configuration.maxCNAMEChain else { throw .cnameChainTooLong(name.description) }
                guard seen.insert(alias).inserted else { throw .cnameLoop(alias.description) }
                target = alias
            }
            // NXDOMAIN/NODATA for the end of the chain, or no chain at all.
            if target == current || answer.responseCode == .nameError || answer.hasSOA {
                return DNSAnswer(responseCode: answer.responseCode, records: [], canonicalName: target)
            }
            // The chain leaves this answer without data or a negative proof: ask for the target.
            current = target
        }
    }

    private func cachedQuery(_ question: DNSQuestion) async throws(DNSResolverError) -> CachedAnswer {
        let key = DNSCache.Key(name: question.name, type: question.type)
        if let hit = cache.withLockedValue({ $0.lookup(key, now: now()) }) { return hit }
        let message = try await exchange(question)
        let answer = CachedAnswer(
            responseCode: message.header.responseCode,
            answers: message.answers,
            hasSOA: message.authorities.contains { $0.type == .soa })
        let ttl = DNSCache.ttl(of: message, question: question, maxTTL: configuration.maxTTL,
                               maxNegativeTTL: configuration.maxNegativeTTL)
        let time = now()
        cache.withLockedValue { $0.store(answer, for: key, ttl: ttl, now: time) }
        return answer
    }

    /// Asks the servers in turn, `attempts` rounds (RFC 1035 §7.2, RFC 1536 §1); returns the first
    /// NOERROR or NXDOMAIN answer. SERVFAIL, REFUSED and other codes move on to the next server.
    private func exchange(_ question: DNSQuestion) async throws(DNSResolverError) -> DNSMessage {
        var lastError = DNSResolverError.noNameservers
        for _ in 0..<configuration.attempts {
            for server in configuration.nameservers {
                do {
                    let response = try await transport.ask(question, server: server, timeout: configuration.timeout,
                                                           udpPayloadSize: configuration.udpPayloadSize)
                    let rcode = response.header.responseCode
                    if rcode == .noError || rcode == .nameError { return response }
                    lastError = .serverFailure(rcode)
                } catch {
                    lastError = error
                }
                if Task.isCancelled { throw lastError }
            }
        }
        throw lastError
    }
}

/// The result of ``StubResolver/lookup(_:type:)-(String,_)``.
public struct DNSAnswer: Hashable, Sendable {
    /// NOERROR (records may be empty: NODATA) or NXDOMAIN.
    public var responseCode: DNSResponseCode
    /// The records of the asked type owned by ``canonicalName``.
    public var records: [DNSRecord]
    /// The name at the end of the CNAME chain (the asked name when there is none).
    public var canonicalName: DNSName

    public init(responseCode: DNSResponseCode, records: [DNSRecord], canonicalName: DNSName) {
        self.responseCode = responseCode
        self.records = records
        self.canonicalName = canonicalName
    }
}

extension IPAddress {
    /// The socket address for this IP and `port` (e.g. 25 for SMTP).
    public func socketAddress(port: Int) throws -> SocketAddress {
        try SocketAddress(ipAddress: description, port: port)
    }
}
