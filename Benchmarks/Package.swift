// swift-tools-version: 6.1
// Benchmarks live in their own package so the main package (and CI) never builds the benchmark
// framework. Run from this directory: `swift package benchmark`.
import PackageDescription

let package = Package(
    name: "strata-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "strata", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        // The load generator is self-contained (no strata modules), so it builds while the server
        // does not, and drives redis-server and memcached the same way it drives Strata.
        .executableTarget(
            name: "strata-load",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "Sources/strata-load",
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),
        .executableTarget(
            name: "ring-simulation",
            dependencies: [
                .product(name: "StrataCluster", package: "strata"),
                .product(name: "StrataStore", package: "strata"),
            ],
            path: "Sources/ring-simulation"
        ),
        .executableTarget(
            name: "memory-footprint",
            dependencies: [.product(name: "StrataStore", package: "strata")],
            path: "Sources/memory-footprint"
        ),
        .executableTarget(
            name: "StoreBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "StrataStore", package: "strata"),
            ],
            path: "Benchmarks/StoreBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
