// swift-tools-version: 6.1
// libFuzzer targets for the pure protocol cores, kept out of the main package so that its builds stay
// lean. Build and run them with `scripts/fuzz` (it passes `--sanitize=fuzzer`); without the sanitizer
// each target links to an empty program that does nothing.
import PackageDescription

let targets = ["FuzzSMTPCommand", "FuzzSMTPReply", "FuzzPOP3", "FuzzDNS", "FuzzMIME", "FuzzAddress", "FuzzIMAPCommand", "FuzzDKIM", "FuzzSPF"]

let package = Package(
    name: "SwallowFuzz",
    platforms: [.macOS(.v15)],
    products: targets.map { .executable(name: $0, targets: [$0]) },
    dependencies: [
        .package(name: "Swallow", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
    ],
    targets: [
        .target(name: "FuzzSupport", path: "Targets/FuzzSupport"),
    ] + targets.map { name in
        .executableTarget(
            name: name,
            dependencies: [
                "FuzzSupport",
                .product(name: "MailCore", package: "Swallow"),
                .product(name: "SMTPCore", package: "Swallow"),
                .product(name: "POP3Core", package: "Swallow"),
                .product(name: "IMAPCore", package: "Swallow"),
                .product(name: "DNSCore", package: "Swallow"),
                .product(name: "MIME", package: "Swallow"),
                .product(name: "MailAuth", package: "Swallow"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Targets/\(name)"
        )
    }
)
