// swift-tools-version: 6.1
// Micro benchmarks (ordo-one/benchmark), kept out of the main package so that its builds stay lean.
//   cd Benchmarks/Micro && swift package --disable-sandbox benchmark
import PackageDescription

let package = Package(
    name: "SwallowMicroBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Swallow", path: "../.."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "SwallowMicro",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "SMTPCore", package: "Swallow"),
                .product(name: "MIME", package: "Swallow"),
                .product(name: "DNSCore", package: "Swallow"),
                .product(name: "MailCore", package: "Swallow"),
                .product(name: "MailAuth", package: "Swallow"),
            ],
            path: "Benchmarks/SwallowMicro",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
