// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "Swallow",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "swallow", targets: ["swallow"]),
        .library(name: "MailCore", targets: ["MailCore"]),
        .library(name: "SMTPCore", targets: ["SMTPCore"]),
        .library(name: "SMTPServer", targets: ["SMTPServer"]),
        .library(name: "MIME", targets: ["MIME"]),
        .library(name: "SMTPClient", targets: ["SMTPClient"]),
        .library(name: "POP3Client", targets: ["POP3Client"]),
        .library(name: "DNSClient", targets: ["DNSClient"]),
        .library(name: "DNSCore", targets: ["DNSCore"]),
        .library(name: "POP3Core", targets: ["POP3Core"]),
        .library(name: "IMAPCore", targets: ["IMAPCore"]),
        .library(name: "MailAuth", targets: ["MailAuth"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
    ],
    targets: [
        // Shared mail vocabulary: addresses, enhanced status codes, queue IDs. Pure.
        .target(
            name: "MailCore",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // SMTP grammar, parser and server state machine. Pure (sans-I/O).
        .target(
            name: "SMTPCore",
            dependencies: ["MailCore", "SASL", .product(name: "NIOCore", package: "swift-nio")],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // SASL mechanisms: client PLAIN, LOGIN, XOAUTH2, SCRAM-SHA-256; server PLAIN, LOGIN, SCRAM-SHA-256
        // (one machine, SASLServer, for every server). Pure.
        .target(
            name: "SASL",
            dependencies: [
                "MailCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // Message authentication: DKIM signing and verification (RFC 6376, 8301, 8463). Pure: the
        // caller looks key records up.
        .target(
            name: "MailAuth",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // What every protocol listener shares: binding, connection limits, graceful drain, and the
        // connection lifecycle (ConnectionLifecycle, ServerConnection).
        .target(
            name: "ListenerSupport",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // POP3 grammar, line parser, message encoder and server state machine. Pure (sans-I/O).
        .target(
            name: "POP3Core",
            dependencies: ["MailCore", "SASL", .product(name: "NIOCore", package: "swift-nio")],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // IMAP grammar (commands, responses), parser, encoder, message data (ENVELOPE, BODYSTRUCTURE,
        // sections, search) and the server session machine. Pure (sans-I/O).
        .target(
            name: "IMAPCore",
            dependencies: ["MailCore", "SASL", "MIME", .product(name: "NIOCore", package: "swift-nio")],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // MIME builder and parser: RFC 5322/2045-2047/2183/2231 messages. Pure.
        .target(
            name: "MIME",
            dependencies: ["MailCore", .product(name: "NIOCore", package: "swift-nio")],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // The NIO adapter: listener, per-connection handler, TLS upgrade.
        .target(
            name: "SMTPServer",
            dependencies: [
                "SMTPCore", "ListenerSupport", "MailCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // The POP3 NIO adapter.
        .target(
            name: "POP3Server",
            dependencies: [
                "POP3Core", "ListenerSupport", "MailCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // The IMAP NIO adapter.
        .target(
            name: "IMAPServer",
            dependencies: [
                "IMAPCore", "ListenerSupport", "MailCore", "SASL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // What the SMTP and POP3 clients share: TLS settings, connecting, the handler's queue, errors
        // and STARTTLS/STLS upgrade.
        .target(
            name: "ClientSupport",
            dependencies: [
                "MailCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // The SMTP client library (NIO adapter over SMTPCore's client side).
        .target(
            name: "SMTPClient",
            dependencies: [
                "SMTPCore", "SASL", "MailCore", "ClientSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // The POP3 client library.
        .target(
            name: "POP3Client",
            dependencies: [
                "POP3Core", "MailCore", "ClientSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // The durable outbound queue: spool, runner, retry policy, DSNs.
        .target(
            name: "MailQueue",
            dependencies: [
                "MailCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // Delivery agents: SMTP to MX hosts (and relays).
        .target(
            name: "MailDelivery",
            dependencies: [
                "SMTPClient", "MailCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // DNS messages: RFC 1035 encoder and hardened parser. Pure (sans-I/O).
        .target(
            name: "DNSCore",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // The DNS stub resolver on NIO: UDP with TCP fallback, retries, TTL cache, CNAME chasing.
        .target(
            name: "DNSClient",
            dependencies: [
                "DNSCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // Maildir++ storage with fsync-before-acknowledge.
        .target(
            name: "MailStore",
            dependencies: ["MailCore", "CSwallowSystem", .product(name: "NIOCore", package: "swift-nio")],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        .systemLibrary(name: "CCrypt", path: "Sources/CCrypt"),
        // preadv2(RWF_NOWAIT), which Swift's Glibc module does not import.
        .systemLibrary(name: "CSwallowSystem", path: "Sources/CSwallowSystem"),
        // Users, aliases and password hashes in SQLite.
        .target(
            name: "Directory",
            dependencies: [
                "MailCore", "CCrypt",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        // Composition root: configuration, TLS material, intake, services.
        .target(
            name: "MailServer",
            dependencies: [
                "SMTPServer", "SMTPClient", "POP3Server", "POP3Core", "IMAPServer", "IMAPCore", "MailStore", "Directory", "MailCore", "SMTPCore", "ListenerSupport",
                "MailQueue", "MailDelivery", "DNSClient", "SASL", "MIME", "MailAuth",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        .target(
            name: "SwallowCLI",
            dependencies: [
                "MailServer", "Directory", "MailCore", "MailStore", "SMTPClient", "SMTPCore", "POP3Client", "MIME", "MailQueue", "SASL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(name: "swallow", dependencies: ["SwallowCLI"], swiftSettings: strict),
        // Test support: transcript runner, a raw line client.
        .target(
            name: "MailTesting",
            dependencies: [
                "SMTPCore", "MailCore", "DNSCore", "SASL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "MailCoreTests", dependencies: ["MailCore"], swiftSettings: strict),
        .testTarget(
            name: "MailAuthTests",
            dependencies: ["MailAuth", .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "CryptoExtras", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SMTPCoreTests",
            dependencies: ["SMTPCore", "MailTesting"],
            resources: [.copy("Transcripts")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "POP3CoreTests",
            dependencies: ["POP3Core", "MailTesting", "MailCore", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "IMAPCoreTests",
            dependencies: ["IMAPCore", "MailTesting", "MailCore", "MIME", "SASL", .product(name: "NIOCore", package: "swift-nio")],
            resources: [.copy("Transcripts")],
            swiftSettings: strict
        ),
        .testTarget(name: "MIMETests", dependencies: ["MIME", "MailCore", .product(name: "NIOCore", package: "swift-nio")], swiftSettings: strict),
        .testTarget(
            name: "DNSCoreTests",
            dependencies: ["DNSCore", "MailTesting", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "DNSClientTests",
            dependencies: [
                "DNSClient", "DNSCore", "MailTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "MailQueueTests",
            dependencies: ["MailQueue", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .testTarget(name: "ListenerSupportTests", dependencies: ["ListenerSupport"], swiftSettings: strict),
        .testTarget(
            name: "ClientSupportTests",
            dependencies: [
                "ClientSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "SASLTests", dependencies: ["SASL", "MailCore"], swiftSettings: strict),
        .testTarget(name: "MailStoreTests", dependencies: ["MailStore"], swiftSettings: strict),
        .testTarget(
            name: "SMTPServerTests",
            dependencies: [
                "SMTPServer", "SMTPCore", "ListenerSupport", "MailCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "POP3ServerTests",
            dependencies: [
                "POP3Server", "POP3Core", "ListenerSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "MailDeliveryTests", dependencies: ["MailDelivery", "MailCore", "MailTesting"], swiftSettings: strict),
        .testTarget(name: "DirectoryTests", dependencies: ["Directory", .product(name: "SQLiteNIO", package: "sqlite-nio")],
                    swiftSettings: strict),
        .testTarget(
            name: "MailServerTests",
            dependencies: [
                "MailServer", "MailTesting", "SMTPServer", "SMTPCore", "Directory", "MailStore", "ListenerSupport",
                "SMTPClient", "POP3Client", "POP3Core", "MailCore", "MIME", "MailQueue", "SASL",
                "DNSClient", "DNSCore", "MailAuth",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
    ]
)
