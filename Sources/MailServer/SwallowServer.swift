import DNSClient
import IMAPCore
import IMAPServer
import Directory
import ListenerSupport
import Foundation
import Logging
import MailCore
import MailDelivery
import MailQueue
import MailStore
import NIOCore
import NIOPosix
import NIOSSL
import POP3Core
import POP3Server
import SMTPClient
import SMTPCore
import SMTPServer
import ServiceLifecycle
import UnixSignals
#if canImport(Glibc)
import Glibc
#endif

/// The composition root: opens the data directory, the directory database, TLS material and the
/// store, wires the intake to the listeners, and runs them until SIGTERM/SIGINT.
public final class SwallowServer: Sendable {
    /// The release this binary is (`swallow --version`, IMAP ID).
    public static let version = "0.2.0-dev"

    /// The configuration in force.
    public let configuration: ServerConfiguration
    /// The TLS material (fingerprint for logs).
    public let tls: TLSMaterial
    /// Addresses each listener is bound to, by listener name (`smtp`, `submission`, `submissions`,
    /// `pop3`, `pop3s`).
    public let boundAddresses: [(name: String, addresses: [SocketAddress])]
    let services: [any Service]
    /// Everything to release at the end, listeners (drained) last acquired first, the event loops last.
    let cleanup: CleanupStack

    /// A listener's bound addresses as `ip:port` text.
    public func endpoints(_ name: String) -> [String] {
        (boundAddresses.first { $0.name == name }?.addresses ?? []).map { a in
            let ip = a.ipAddress ?? "?"
            return ip.contains(":") ? "[\(ip)]:\(a.port ?? 0)" : "\(ip):\(a.port ?? 0)"
        }
    }

    /// The SMTP listener's bound addresses as `ip:port` text.
    public var smtpEndpoints: [String] { endpoints("smtp") }
    let logger: Logger
    /// The outbound queue's runner (tests drive it with `runOnce()`).
    public let queueRunner: QueueRunner

    private init(configuration: ServerConfiguration, tls: TLSMaterial, boundAddresses: [(name: String, addresses: [SocketAddress])],
                 services: [any Service], cleanup: CleanupStack, logger: Logger, queueRunner: QueueRunner) {
        self.queueRunner = queueRunner
        self.configuration = configuration
        self.tls = tls
        self.boundAddresses = boundAddresses
        self.services = services
        self.cleanup = cleanup
        self.logger = logger
    }

    /// Prepares the data directory and binds every listener. Throws ``ConfigurationError`` for
    /// problems the operator must fix (unreadable certificate, port in use, unwritable data dir).
    /// Whatever was acquired before a failure is released (in reverse order) before the error is
    /// thrown.
    public static func start(configuration c: ServerConfiguration, logger: Logger) async throws -> SwallowServer {
        try c.validate()
        let layout = DataLayout(root: c.dataDirectory)
        try layout.prepare()
        let tls = try TLSMaterial.load(configuration: c.tls, tlsDirectory: layout.tls, hostname: c.hostname)
        if tls.generated {
            logger.notice("generated a self-signed certificate", metadata: ["path": "\(tls.certificatePath)"])
        }
        logger.info("TLS certificate", metadata: ["sha256": "\(tls.fingerprint)", "path": "\(tls.certificatePath)"])

        let cleanup = CleanupStack()
        return try await cleanup.releasingOnError {
            let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
            cleanup.push { try? await group.shutdownGracefully() }
            let threadPool = NIOThreadPool(numberOfThreads: 16)
            threadPool.start()
            cleanup.push { try? await threadPool.shutdownGracefully() }
            let directory: SQLiteDirectory
            do {
                directory = try await SQLiteDirectory.open(
                    path: layout.database,
                    policy: DirectoryPolicy(domains: Set(c.domains), recipientDelimiter: c.recipientDelimiter, postmaster: c.postmaster),
                    threadPool: threadPool, eventLoop: group.any())
            } catch {
                throw ConfigurationError(key: "data_dir", line: nil, message: "cannot open \(layout.database): \(error)")
            }
            cleanup.push { try? await directory.close() }
            var store = MaildirStore(root: layout.mail, hostname: c.hostname)
            // Deliveries and POP3 deletions wake the IMAP sessions that watch the folder.
            let hub = MailboxEventHub()
            let changes = FolderChanges()
            store.changed = { path in changes.service?.folderChangedOnDisk(path) }
            let spool: Spool
            do { spool = try Spool(root: layout.queue) } catch {
                throw ConfigurationError(key: "data_dir", line: nil, message: "cannot open the queue in \(layout.queue): \(error)")
            }
            let resolver = try makeResolver(c.dns, group: group)
            let outbound = OutboundQueue(spool: spool)
            let authenticator: Authenticator
            do {
                authenticator = try Authenticator(directory: directory, threadPool: threadPool, policy: .init(c.auth))
            } catch {
                throw ConfigurationError(key: "", line: nil, message: "cannot hash passwords with libcrypt: \(error)")
            }
            let quota = QuotaService(directory: directory, store: store, threadPool: threadPool, permanent: c.limits.overQuotaPermanent)
            let srsSecret: String
            do { srsSecret = try layout.srsSecret(create: true)! } catch {
                throw ConfigurationError(key: "data_dir", line: nil, message: "\(error)")
            }
            let reports = c.dmarc.reports && c.smtp.checkAuthentication ? DMARCReports(settings: .init(
                interval: Int64(c.dmarc.reportInterval), maximumReportsPerDay: c.dmarc.maxReportsPerDay,
                sender: c.dmarc.reportSender.isEmpty ? "dmarc-reports@\(c.domains[0])" : c.dmarc.reportSender,
                organization: c.hostname, directory: layout.dmarc), logger: logger) : nil
            let intake = Intake(configuration: c, layout: layout, directory: directory, store: store, queue: outbound,
                                authenticator: authenticator, quota: quota, threadPool: threadPool, logger: logger,
                                resolver: MailAuthDNS(resolver: resolver), srsSecret: srsSecret, reports: reports)
            let remote = SMTPDeliveryAgent(configuration: try deliveryConfiguration(c), resolver: DNSAdapter(dns: resolver), logger: logger)
            let runner = QueueRunner(
                spool: spool,
                agent: RoutingAgent(directory: directory, store: store, remote: remote, forwarding: intake.forwarding,
                                    requeue: { sender, recipients, content in
                                        _ = try outbound.inject(sender: sender, recipients: recipients, message: Array(content.readableBytesView))
                                    }, threadPool: threadPool, logger: logger),
                configuration: .init(c, threadPool: threadPool), logger: logger,
                inject: { sender, recipients, message in
                    try outbound.inject(sender: sender, recipients: recipients, message: message,
                                        headers: intake.dkimSignatures(generated: message))
                })
            outbound.attach(runner)
            // Before any listener accepts: recovery clears queue/tmp/, where the intake prepares entries.
            runner.recover()
            let maildrops = MaildropService(authenticator: authenticator, store: store, threadPool: threadPool)
            let imapService = IMAPService(authenticator: authenticator, store: store, threadPool: threadPool, hub: hub, quota: quota,
                                          maxSessionsPerUser: c.imap.maxConnectionsPerUser)
            changes.service = imapService
            let imapRegistry = ConnectionRegistry(limits: .init(total: c.smtp.maxConnections, perIP: c.smtp.maxConnectionsPerIP))
            let smtpRegistry = ConnectionRegistry(limits: .init(total: c.smtp.maxConnections, perIP: c.smtp.maxConnectionsPerIP))
            let pop3Registry = ConnectionRegistry(limits: .init(total: c.smtp.maxConnections, perIP: c.smtp.maxConnectionsPerIP))
            let grace = TimeAmount.seconds(Int64(c.smtp.shutdownGrace))
            func addresses(_ list: [String]) -> [(host: String, port: Int)] {
                list.compactMap(ListenAddress.parse).map { (host: $0.host, port: $0.port) }
            }
            var bound: [(name: String, addresses: [SocketAddress])] = []
            var services: [any Service] = [runner]
            DKIMActivation.bootstrap(store: intake.dkimKeys, configuration: c, logger: logger)
            services.append(DKIMActivation(store: intake.dkimKeys, domains: c.domains, resolver: MailAuthDNS(resolver: resolver), logger: logger))
            if let reports {
                services.append(DMARCReporter(reports: reports, resolver: MailAuthDNS(resolver: resolver), queue: { sender, recipients, message in
                    _ = try outbound.inject(sender: sender, recipients: recipients, message: message,
                                            headers: intake.dkimSignatures(generated: message))
                }, logger: logger))
            }
            if !c.imap.listen.isEmpty || !c.imaps.listen.isEmpty {
                services.append(FolderWatcher(hub: hub, threadPool: threadPool, interval: .seconds(c.imap.pollInterval)))
            }
            // Port 25 (MX; AUTH only with smtp.auth), 587 (STARTTLS, AUTH required), 465 (implicit TLS).
            let smtpListeners: [(name: String, list: [String], implicit: Bool, submission: Bool)] = [
                ("smtp", c.smtp.listen, false, false), ("submission", c.submission.listen, false, true),
                ("submissions", c.submissions.listen, true, true),
            ]
            for l in smtpListeners where !l.list.isEmpty {
                var machine = SMTPServerStateMachine.Configuration(
                    hostname: c.hostname, maximumMessageSize: c.limits.maxMessageSize, maximumRecipients: c.limits.maxRecipients,
                    maximumErrors: c.smtp.maxErrors, startTLSAvailable: !l.implicit)
                if l.submission || c.smtp.auth { machine.authMechanisms = c.submission.authMechanisms }
                machine.requireAuthentication = l.submission
                machine.maximumHops = c.limits.maxHops
                let listener = SMTPListener(
                    configuration: .init(name: l.name, addresses: addresses(l.list), machine: machine, tls: tls.context,
                                         implicitTLS: l.implicit, commandTimeout: .seconds(Int64(c.smtp.commandTimeout)),
                                         dataTimeout: .seconds(Int64(c.smtp.dataTimeout)), shutdownGrace: grace),
                    delegate: intake, registry: smtpRegistry, group: group, logger: logger)
                bound.append((l.name, try await listen("\(l.name).listen", l.list) { try await listener.bind() }))
                // Drained when the server stops (a second drain after the service group's finds nothing).
                cleanup.push { await listener.drain() }
                services.append(listener)
            }
            for (name, list, implicit) in [("pop3", c.pop3.listen, false), ("pop3s", c.pop3s.listen, true)] where !list.isEmpty {
                let pop3 = POP3Listener(
                    configuration: .init(name: name, addresses: addresses(list),
                                         machine: .init(hostname: c.hostname, tlsAvailable: true,
                                                        allowPlaintextAuthentication: c.pop3.allowPlaintextAuth),
                                         tls: tls.context, implicitTLS: implicit, autologout: .seconds(Int64(c.pop3.autologout)),
                                         shutdownGrace: grace),
                    delegate: maildrops, registry: pop3Registry, group: group, logger: logger)
                bound.append((name, try await listen("\(name).listen", list) { try await pop3.bind() }))
                cleanup.push { await pop3.drain() }
                services.append(pop3)
            }
            for (name, list, implicit) in [("imap", c.imap.listen, false), ("imaps", c.imaps.listen, true)] where !list.isEmpty {
                let imap = IMAPListener(
                    configuration: .init(name: name, addresses: addresses(list),
                                         machine: .init(hostname: c.hostname, tlsAvailable: true,
                                                        allowPlaintextAuthentication: c.imap.allowPlaintextAuth,
                                                        appendLimit: c.imap.maxLiteral, compressionAvailable: true,
                                                        serverID: [.init(name: "name", value: "Swallow"),
                                                                   .init(name: "version", value: SwallowServer.version)]),
                                         parser: .init(maxCommandSize: c.imap.maxCommandSize, maxAppendSize: c.imap.maxLiteral),
                                         tls: tls.context, implicitTLS: implicit, autologout: .seconds(Int64(c.imap.autologout)),
                                         loginTimeout: .seconds(Int64(c.imap.loginTimeout)), shutdownGrace: grace),
                    delegate: imapService, registry: imapRegistry, group: group, logger: logger)
                bound.append((name, try await listen("\(name).listen", list) { try await imap.bind() }))
                cleanup.push { await imap.drain() }
                services.append(imap)
            }
            return SwallowServer(configuration: c, tls: tls, boundAddresses: bound, services: services, cleanup: cleanup,
                                 logger: logger, queueRunner: runner)
        }
    }

    /// The DNS client: `[dns] nameservers`, or those of /etc/resolv.conf.
    static func makeResolver(_ dns: ServerConfiguration.DNS, group: MultiThreadedEventLoopGroup) throws -> StubResolver {
        if dns.nameservers.isEmpty {
            // Without /etc/resolv.conf the server still runs; remote deliveries defer (temporary DNS
            // failure) until nameservers are configured.
            return (try? StubResolver.system(group: group))
                ?? StubResolver(configuration: .init(nameservers: [] as [SocketAddress]), group: group)
        }
        do {
            return StubResolver(configuration: try .init(nameservers: dns.nameservers), group: group)
        } catch {
            throw ConfigurationError(key: "dns.nameservers", line: nil, message: "\(error) (give IP addresses, e.g. 127.0.0.1:53)")
        }
    }

    /// Delivery settings from `[delivery]` and `[[routes]]`.
    static func deliveryConfiguration(_ c: ServerConfiguration) throws -> SMTPDeliveryAgent.Configuration {
        var d = SMTPDeliveryAgent.Configuration(heloName: c.hostname)
        d.smtpPort = c.delivery.smtpPort
        d.destinationConcurrency = c.delivery.destinationConcurrency
        d.timeouts.connect = .seconds(Int64(c.delivery.connectTimeout))
        d.timeouts.greeting = .seconds(Int64(c.delivery.commandTimeout))
        d.timeouts.command = .seconds(Int64(c.delivery.commandTimeout))
        d.timeouts.dataInitiation = .seconds(Int64(c.delivery.dataInitTimeout))
        d.timeouts.dataBlock = .seconds(Int64(c.delivery.dataBlockTimeout))
        d.timeouts.dataTermination = .seconds(Int64(c.delivery.dataDoneTimeout))
        if let sh = c.delivery.smarthost, let a = ListenAddress.parse(sh) {
            var password: String?
            if let file = c.delivery.smarthostPasswordFile {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw ConfigurationError(key: "delivery.smarthost_password_file", line: nil, message: "cannot read \(file)")
                }
                password = text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init)
            }
            d.smarthost = .init(host: a.host, port: a.port, requireTLS: c.delivery.smarthostRequireTLS,
                                user: c.delivery.smarthostUser, password: password)
        }
        for r in c.routes {
            if let a = ListenAddress.parse(r.via) { d.routes[r.domain] = .init(host: a.host, port: a.port) }
        }
        return d
    }

    private static func listen(_ key: String, _ list: [String], _ bind: () async throws -> [SocketAddress]) async throws -> [SocketAddress] {
        do {
            return try await bind()
        } catch {
            throw ConfigurationError(key: key, line: nil, message: "cannot listen on \(list.joined(separator: ", ")): \(describe(error))")
        }
    }

    /// A system call's failure as the system's sentence and errno (NIO's own description repeats the
    /// call's signature and leaves a stray parenthesis).
    static func describe(_ error: any Error) -> String {
        guard let io = error as? IOError else { return "\(error)" }
        return "\(String(cString: strerror(io.errnoCode))) (errno \(io.errnoCode))"
    }

    /// Serves until SIGTERM or SIGINT, then drains and releases everything; SIGHUP reloads the TLS
    /// certificate.
    public func run() async throws {
        try await run(until: UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup))
    }

    /// Reads the TLS certificate and key again (SIGHUP): new handshakes use them, established sessions
    /// keep theirs, and a pair that does not load is logged and the old one stays in use.
    public func reloadTLS() {
        do {
            let fingerprint = try tls.reload()
            logger.notice("TLS certificate reloaded", metadata: ["sha256": "\(fingerprint)", "path": "\(tls.certificatePath)"])
        } catch {
            logger.error("TLS certificate not reloaded; the previous one stays in use", metadata: ["error": "\(error)"])
        }
    }

    /// Serves until `signals` yields SIGTERM or SIGINT (trapped by the caller *before* `start`, so that
    /// a signal arriving while the server starts is not lost or fatal), then drains and releases.
    /// SIGHUP, when trapped, reloads the TLS certificate.
    public func run(until signals: UnixSignalsSequence) async throws {
        let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) }, logger: logger))
        try await withThrowingTaskGroup(of: Bool.self) { tasks in
            tasks.addTask {
                try await group.run()
                return true
            }
            tasks.addTask {
                for await signal in signals {
                    if signal == .sighup {
                        self.reloadTLS()
                        continue
                    }
                    await group.triggerGracefulShutdown()
                    break
                }
                return false
            }
            // Wait for the services (not for the signal task, which ends as soon as it has asked for
            // the shutdown: cancelling then would cut the drain short).
            while let servicesDone = try await tasks.next() {
                if servicesDone {
                    tasks.cancelAll()
                    break
                }
            }
        }
        await close()
    }

    /// Stops accepting, drains sessions and releases resources (for tests and embedding).
    public func shutdown() async {
        await close()
    }

    /// Drains the listeners (again, after a service group's shutdown: then it finds nothing), then
    /// closes the directory, the thread pool and the event loops.
    private func close() async {
        await cleanup.unwind()
        logger.info("stopped")
    }
}

/// The on-disk layout under `data_dir` (ARCHITECTURE.md §4).
public struct DataLayout: Sendable {
    /// `data_dir`.
    public let root: String
    /// The directory database's file name.
    public static let databaseName = "swallow.sqlite"
    /// `swallow.sqlite`.
    public var database: String { root + "/" + Self.databaseName }
    /// `mail/`, one Maildir per mailbox below `<domain>/<local>/`.
    public var mail: String { root + "/mail" }
    /// `tls/`.
    public var tls: String { root + "/tls" }
    /// `spool/`: content of large messages while it arrives (never acknowledged yet).
    public var spool: String { root + "/spool" }
    /// `queue/`: the outbound queue (see MailQueue).
    public var queue: String { root + "/queue" }
    /// `dkim/`: the domains' DKIM keys (see ``DKIMKeyStore``).
    public var dkim: String { root + "/dkim" }
    /// `dmarc/`: DMARC aggregate report counts by period (see ``DMARCReports``).
    public var dmarc: String { root + "/dmarc" }

    /// Creates a layout for `root`.
    public init(root: String) { self.root = root }

    /// Creates the directories and, at server start, clears the spool (its files were never
    /// acknowledged).
    public func prepare(clearSpool: Bool = true) throws {
        for dir in [root, mail, tls, spool] {
            if mkdir(dir, 0o700) != 0 && errno != EEXIST {
                throw ConfigurationError(key: "data_dir", line: nil, message: "cannot create \(dir): \(String(cString: strerror(errno)))")
            }
        }
        if clearSpool, let d = opendir(spool) {
            defer { closedir(d) }
            while let e = readdir(d) {
                let name = directoryEntryName(e)
                if name != "." && name != ".." { unlink(spool + "/" + name) }
            }
        }
    }
}
