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
    ],
    targets: [
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
