import Directory
import ListenerSupport
import Logging
import MailCore
import MailStore
import NIOCore
import NIOPosix
import NIOSSL
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
    /// The configuration in force.
    public let configuration: ServerConfiguration
    /// The TLS material (fingerprint for logs).
    public let tls: TLSMaterial
    /// Addresses the SMTP listener is bound to.
    public let smtpAddresses: [SocketAddress]
    let listeners: [SMTPListener]

    /// The SMTP listener's bound addresses as `ip:port` text.
    public var smtpEndpoints: [String] {
        smtpAddresses.map { a in
            let ip = a.ipAddress ?? "?"
            return ip.contains(":") ? "[\(ip)]:\(a.port ?? 0)" : "\(ip):\(a.port ?? 0)"
        }
    }
    let directory: SQLiteDirectory
    let group: MultiThreadedEventLoopGroup
    let threadPool: NIOThreadPool
    let logger: Logger

    private init(configuration: ServerConfiguration, tls: TLSMaterial, smtpAddresses: [SocketAddress], listeners: [SMTPListener],
                 directory: SQLiteDirectory, group: MultiThreadedEventLoopGroup, threadPool: NIOThreadPool, logger: Logger) {
        self.configuration = configuration
        self.tls = tls
        self.smtpAddresses = smtpAddresses
        self.listeners = listeners
        self.directory = directory
        self.group = group
        self.threadPool = threadPool
        self.logger = logger
    }

    /// Prepares the data directory and binds every listener. Throws ``ConfigurationError`` for
    /// problems the operator must fix (unreadable certificate, port in use, unwritable data dir).
    public static func start(configuration c: ServerConfiguration, logger: Logger) async throws -> SwallowServer {
        try c.validate()
        let layout = DataLayout(root: c.dataDirectory)
        try layout.prepare()
        let tls = try TLSMaterial.load(configuration: c.tls, tlsDirectory: layout.tls, hostname: c.hostname)
        if tls.generated {
            logger.notice("generated a self-signed certificate", metadata: ["path": "\(tls.certificatePath)"])
        }
        logger.info("TLS certificate", metadata: ["sha256": "\(tls.fingerprint)", "path": "\(tls.certificatePath)"])

        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let threadPool = NIOThreadPool(numberOfThreads: 16)
        threadPool.start()
        let directory: SQLiteDirectory
        do {
            directory = try await SQLiteDirectory.open(
                path: layout.database,
                policy: DirectoryPolicy(domains: Set(c.domains), recipientDelimiter: c.recipientDelimiter, postmaster: c.postmaster),
                threadPool: threadPool, eventLoop: group.any())
        } catch {
            try? await group.shutdownGracefully()
            try? await threadPool.shutdownGracefully()
            throw ConfigurationError(key: "data_dir", line: nil, message: "cannot open \(layout.database): \(error)")
        }
        let intake = Intake(directory: directory, store: MaildirStore(root: layout.mail, hostname: c.hostname), hostname: c.hostname,
                            spoolDirectory: layout.spool, threadPool: threadPool, logger: logger, firstDomain: c.domains[0],
                            relayNetworks: c.smtp.relayNetworks.compactMap(CIDR.parse))
        let registry = ConnectionRegistry(limits: .init(total: c.smtp.maxConnections, perIP: c.smtp.maxConnectionsPerIP))
        let machine = SMTPServerStateMachine.Configuration(
            hostname: c.hostname, maximumMessageSize: c.limits.maxMessageSize, maximumRecipients: c.limits.maxRecipients,
            maximumErrors: c.smtp.maxErrors, startTLSAvailable: true)
        let addresses = c.smtp.listen.compactMap(ListenAddress.parse).map { (host: $0.host, port: $0.port) }
        let smtp = SMTPListener(
            configuration: .init(name: "smtp", addresses: addresses, machine: machine, tls: tls.context,
                                 commandTimeout: .seconds(Int64(c.smtp.commandTimeout)), dataTimeout: .seconds(Int64(c.smtp.dataTimeout)),
                                 shutdownGrace: .seconds(Int64(c.smtp.shutdownGrace))),
            delegate: intake, registry: registry, group: group, logger: logger)
        let bound: [SocketAddress]
        do {
            bound = try await smtp.bind()
        } catch {
            try? await directory.close()
            try? await group.shutdownGracefully()
            try? await threadPool.shutdownGracefully()
            throw ConfigurationError(key: "smtp.listen", line: nil, message: "cannot listen on \(c.smtp.listen.joined(separator: ", ")): \(error)")
        }
        return SwallowServer(configuration: c, tls: tls, smtpAddresses: bound, listeners: [smtp], directory: directory,
                             group: group, threadPool: threadPool, logger: logger)
    }

    /// Serves until SIGTERM or SIGINT, then drains and releases everything.
    public func run() async throws {
        let group = ServiceGroup(configuration: .init(
            services: listeners.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        await close()
    }

    /// Stops accepting, drains sessions and releases resources (for tests and embedding).
    public func shutdown() async {
        for l in listeners { await l.drain() }
        await close()
    }

    private func close() async {
        try? await directory.close()
        try? await group.shutdownGracefully()
        try? await threadPool.shutdownGracefully()
        logger.info("stopped")
    }
}

/// The on-disk layout under `data_dir` (ARCHITECTURE.md §4).
public struct DataLayout: Sendable {
    /// `data_dir`.
    public let root: String
    /// `swallow.sqlite`.
    public var database: String { root + "/swallow.sqlite" }
    /// `mail/`, one Maildir per mailbox below `<domain>/<local>/`.
    public var mail: String { root + "/mail" }
    /// `tls/`.
    public var tls: String { root + "/tls" }
    /// `spool/`: content of large messages while it arrives (never acknowledged yet).
    public var spool: String { root + "/spool" }

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
                let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name != "." && name != ".." { unlink(spool + "/" + name) }
            }
        }
    }
}
