import Logging
import MailCore
import NIOCore
import NIOPosix
import SMTPClient
#if canImport(Glibc)
import Glibc
#endif

/// Delivers to remote hosts over SMTP (RFC 5321 §5): MX hosts by preference (equal preferences
/// shuffled), implicit MX, null MX → immediate failure, next host on connection failure or 4xx,
/// opportunistic STARTTLS, one transaction per destination domain carrying all its recipients.
/// Routes (like Postfix's transport maps) and a smarthost (relayhost) bypass MX lookup.
public struct SMTPDeliveryAgent: Sendable {
    /// A fixed next hop.
    public struct Relay: Hashable, Sendable {
        public var host: String
        public var port: Int
        /// Require STARTTLS with certificate verification (for smarthosts).
        public var requireTLS: Bool
        /// Credentials for AUTH at the smarthost.
        public var user: String?
        public var password: String?
        public init(host: String, port: Int, requireTLS: Bool = false, user: String? = nil, password: String? = nil) {
            self.host = host
            self.port = port
            self.requireTLS = requireTLS
            self.user = user
            self.password = password
        }
    }

    /// Settings.
    public struct Configuration: Sendable {
        /// Our EHLO name.
        public var heloName: String
        /// Port used to reach MX hosts (25; tests point it at a local peer).
        public var smtpPort: Int = 25
        /// Every domain goes through this host, when set.
        public var smarthost: Relay?
        /// Per-domain next hops (lower-case domain → relay).
        public var routes: [String: Relay] = [:]
        /// Timeouts for each connection.
        public var timeouts = SMTPClientConfiguration.Timeouts()
        /// Most MX hosts tried per attempt.
        public var maximumHosts = 5
        /// Simultaneous deliveries to one destination domain.
        public var destinationConcurrency = 20
        /// Reuse connections to the same next hop for later messages.
        public var reuseConnections = true

        public init(heloName: String) { self.heloName = heloName }
    }

    /// What happened to each recipient of a destination.
    public enum RecipientResult: Hashable, Sendable {
        case delivered(String)
        case failed(status: String, diagnostic: String, remoteMTA: String?)
        case deferred(status: String, diagnostic: String)
    }

    let configuration: Configuration
    let resolver: any MailExchangerResolver
    let logger: Logger
    let cache: ConnectionCache<SMTPClient>
    let limiter: DestinationLimiter

    public init(configuration: Configuration, resolver: any MailExchangerResolver, logger: Logger) {
        self.configuration = configuration
        self.resolver = resolver
        self.logger = logger
        self.limiter = DestinationLimiter(limit: configuration.destinationConcurrency)
        // Every delivery slot of a destination may keep its connection for the next message.
        self.cache = ConnectionCache(maximumPerKey: max(4, configuration.destinationConcurrency))
    }

    /// Delivers `message` (any line ends) from `sender` to `recipients` that share `domain`.
    public func deliver(_ message: ByteBuffer, from sender: String, to recipients: [String], domain: String,
                        queueID: String) async -> [String: RecipientResult] {
        let key = domain.lowercased()
        await cache.sweep()
        await limiter.acquire(key)
        let results = await deliverLimited(message, from: sender, to: recipients, domain: domain, queueID: queueID)
        await limiter.release(key)
        return results
    }

    private func deliverLimited(_ message: ByteBuffer, from sender: String, to recipients: [String], domain: String,
                                queueID: String) async -> [String: RecipientResult] {
        var hops: [(host: String, port: Int, relay: Relay?)] = []
        if let relay = configuration.routes[domain.lowercased()] ?? configuration.smarthost {
            hops = [(relay.host, relay.port, relay)]
        } else {
            switch await resolver.mailExchangers(for: domain) {
            case .nullMX:
                return all(recipients, .failed(status: "5.1.10", diagnostic: "\(domain) does not accept mail (null MX, RFC 7505)", remoteMTA: nil))
            case .noSuchDomain:
                return all(recipients, .failed(status: "5.1.2", diagnostic: "domain \(domain) does not exist", remoteMTA: nil))
            case .permanentFailure(let why):
                return all(recipients, .failed(status: "5.4.4", diagnostic: "DNS lookup of \(domain) cannot succeed: \(why)", remoteMTA: nil))
            case .temporaryFailure(let why):
                return all(recipients, .deferred(status: "4.4.3", diagnostic: "DNS lookup of \(domain) failed: \(why)"))
            case .noMX:
                hops = [(domain, configuration.smtpPort, nil)]
            case .exchangers(let records):
                hops = Self.order(records).prefix(configuration.maximumHosts).map { ($0.host, configuration.smtpPort, nil) }
            }
        }
        var remaining = recipients
        var results: [String: RecipientResult] = [:]
        var lastError = "no usable host for \(domain)"
        /// The last host tried refused us for good at HELO/EHLO (Postfix bounces then too).
        var lastRefusal: (reply: SMTPReply, host: String)?
        for hop in hops where !remaining.isEmpty {
            let addresses: [String]
            if CIDR.parseIP(hop.host) != nil {
                addresses = [hop.host]
            } else {
                do {
                    addresses = try await resolver.addresses(for: hop.host)
                } catch {
                    lastError = "cannot resolve \(hop.host): \(error)"
                    continue
                }
            }
            if addresses.isEmpty { lastError = "\(hop.host) has no address"; continue }
            for address in addresses where !remaining.isEmpty {
                switch await attempt(message, from: sender, to: remaining, host: hop.host, address: address, port: hop.port,
                                     relay: hop.relay, queueID: queueID) {
                case .done(let r):
                    for (rcpt, result) in r { results[rcpt] = result }
                    remaining = []
                case .tryNext(let why, let refusal):
                    lastError = why
                    lastRefusal = refusal.map { ($0, hop.host) }
                }
            }
        }
        if let refusal = lastRefusal {
            for r in remaining {
                results[r] = .failed(status: Self.status(refusal.reply), diagnostic: Self.text(refusal.reply), remoteMTA: refusal.host)
            }
            return results
        }
        for r in remaining { results[r] = .deferred(status: "4.4.1", diagnostic: lastError) }
        return results
    }

    /// Opportunistic TLS that failed: like Postfix at `smtp_tls_security_level = may`, the same host is
    /// tried once more without STARTTLS, so a host with broken TLS still gets its mail (in plaintext,
    /// as it would from a server without STARTTLS).
    private func plaintextRetry(_ config: SMTPClientConfiguration, host: String, address: String, port: Int,
                                error: SMTPClientError, queueID: String) async -> SMTPClient? {
        var plain = config
        plain.security = .plain
        logger.notice("TLS with \(host) [\(address)]:\(port) failed (\(error)); retrying without TLS", metadata: ["id": "\(queueID)"])
        return try? await SMTPClient.connect(plain)
    }

    enum Attempt {
        case done([String: RecipientResult])
        /// Try the next address or host; `refusal` is a permanent answer to HELO/EHLO.
        case tryNext(String, refusal: SMTPReply?)
    }

    private func attempt(_ message: ByteBuffer, from sender: String, to recipients: [String], host: String, address: String,
                         port: Int, relay: Relay?, queueID: String) async -> Attempt {
        var config = SMTPClientConfiguration(host: address, port: port, security: relay?.requireTLS == true ? .startTLS : .startTLSIfAvailable)
        config.serverName = host
        config.heloName = configuration.heloName
        config.timeouts = configuration.timeouts
        // MTA-to-MTA TLS is opportunistic without verification (as Postfix's "may"); a smarthost that
        // requires TLS is verified. DANE and MTA-STS come later.
        config.certificateVerification = relay?.requireTLS == true ? .systemTrustStore : .insecureNoVerification
        if let relay, let user = relay.user, let password = relay.password {
            config.authentication = .password(user: user, password: password)
        }
        let cacheKey = "\(address)|\(port)|\(host)|\(relay?.user ?? "")"
        var reused = false
        let client: SMTPClient
        if configuration.reuseConnections, let cached = await cache.checkOut(cacheKey) {
            client = cached
            reused = true
        } else {
            do {
                client = try await SMTPClient.connect(config)
            } catch {
                if error.kind == .refused, let reply = error.reply, reply.isPermanent, relay != nil {
                    return .done(all(recipients, .failed(status: Self.status(reply), diagnostic: Self.text(reply), remoteMTA: host)))
                }
                // STARTTLS was accepted but TLS did not come up (handshake error, or the server closed
                // or stalled during it): the client reports all of these as `.tls`.
                if config.security == .startTLSIfAvailable, case .tls = error.kind,
                   let plain = await plaintextRetry(config, host: host, address: address, port: port, error: error, queueID: queueID) {
                    client = plain
                } else {
                    logger.info("cannot use \(host) [\(address)]:\(port): \(error)", metadata: ["id": "\(queueID)"])
                    let helloRefused = error.kind == .refused && (error.command == "HELO" || error.command == "EHLO")
                        && error.reply?.isPermanent == true
                    return .tryNext("\(host) [\(address)]: \(error)", refusal: helloRefused ? error.reply : nil)
                }
            }
        }
        let (outcome, keep) = await transact(client, reused: reused, message, from: sender, to: recipients, host: host,
                                             address: address, port: port, relay: relay, queueID: queueID)
        if keep && configuration.reuseConnections {
            // Back in the cache before the next delivery to this host looks for one (a check-in left to
            // a detached task made concurrent deliveries miss it and open new connections).
            await cache.checkIn(cacheKey, client)
        } else {
            Task { await client.quit() }
        }
        return outcome
    }

    /// One transaction on `client`; also says whether the session can be reused.
    private func transact(_ client: SMTPClient, reused: Bool, _ message: ByteBuffer, from sender: String, to recipients: [String],
                          host: String, address: String, port: Int, relay: Relay?, queueID: String) async -> (Attempt, keep: Bool) {
        var keep = false
        let tls = client.isEncrypted
        do {
            var byPath: [ForwardPath: String] = [:]
            var paths: [SMTPClientTransaction.Recipient] = []
            var out: [String: RecipientResult] = [:]
            for r in recipients {
                guard case .success(let a) = EmailAddress.parse(r, allowUTF8: true) else {
                    out[r] = .failed(status: "5.1.3", diagnostic: "invalid recipient address", remoteMTA: nil)
                    continue
                }
                byPath[.mailbox(a)] = r
                paths.append(.init(.mailbox(a)))
            }
            let reverse: ReversePath = sender.isEmpty ? .null
                : (try? EmailAddress.parse(sender, allowUTF8: true).get()).map { .mailbox($0) } ?? .null
            let result = try await client.send(message, from: reverse, to: paths)
            let replyText = Self.text(result.reply)
            for a in result.acceptedRecipients {
                if let original = byPath[a] { out[original] = .delivered("\(host) [\(address)]\(tls ? " TLS" : ""): \(replyText)") }
            }
            for refused in result.refusedRecipients {
                guard let original = byPath[refused.path] else { continue }
                out[original] = refused.reply.isPermanent
                    ? .failed(status: Self.status(refused.reply), diagnostic: Self.text(refused.reply), remoteMTA: host)
                    : .deferred(status: Self.status(refused.reply), diagnostic: Self.text(refused.reply))
            }
            for r in recipients where out[r] == nil { out[r] = .deferred(status: "4.4.0", diagnostic: "\(host) gave no reply for this recipient") }
            return (.done(out), true)
        } catch {
            if reused && (error.kind == .connectionClosed || error.kind == .timeout || error.kind == .malformedReply) {
                // The cached connection went stale while idle: try once more on a fresh one.
                var fresh = configuration
                fresh.reuseConnections = false
                let retry = SMTPDeliveryAgent(configuration: fresh, resolver: resolver, logger: logger)
                return (await retry.attempt(message, from: sender, to: recipients, host: host, address: address, port: port,
                                            relay: relay, queueID: queueID), false)
            }
            if error.kind == .refused { keep = true }  // the session is still usable (RSET comes first)
            if error.kind == .refused, let reply = error.reply {
                if reply.isPermanent {
                    // RCPT-level refusals of every recipient, or a 5xx to MAIL/DATA: final.
                    return (.done(all(recipients, .failed(status: Self.status(reply), diagnostic: Self.text(reply), remoteMTA: host))), keep)
                }
                return (.tryNext("\(host) [\(address)]: \(Self.text(reply))", refusal: nil), keep)
            }
            if case .messageNotSendable(let why) = error.kind {
                return (.done(all(recipients, .failed(status: "5.6.0", diagnostic: why, remoteMTA: host))), keep)
            }
            return (.tryNext("\(host) [\(address)]: \(error)", refusal: nil), keep)
        }
    }

    static func order(_ records: [MXRecord]) -> [MXRecord] {
        Dictionary(grouping: records, by: \.preference).sorted { $0.key < $1.key }.flatMap { $0.value.shuffled() }
    }

    static func status(_ reply: SMTPReply) -> String {
        reply.enhancedCode.map(\.description) ?? (reply.isPermanent ? "5.0.0" : "4.0.0")
    }

    static func text(_ reply: SMTPReply) -> String {
        "\(reply.code)\(reply.enhancedCode.map { " \($0)" } ?? "") \(reply.lines.joined(separator: " "))"
    }

    private func all(_ recipients: [String], _ r: RecipientResult) -> [String: RecipientResult] {
        Dictionary(uniqueKeysWithValues: recipients.map { ($0, r) })
    }
}
