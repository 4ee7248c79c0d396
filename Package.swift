// swift-tools-version: 6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "strata",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "StrataStore", targets: ["StrataStore"]),
        .library(name: "RESP", targets: ["RESP"]),
        .library(name: "StrataCollections", targets: ["StrataCollections"]),
        .library(name: "StrataCluster", targets: ["StrataCluster"]),
        .executable(name: "strata", targets: ["strata"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // No traits: Strata uses neither its swift-configuration support nor its full-Foundation
        // forms, and SwiftPM 6.3 orders the defines of two or more traits differently from one
        // build plan to the next, which made many builds recompile Hummingbird.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLMDB",
            pkgConfig: "lmdb",
            providers: [.apt(["liblmdb-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .systemLibrary(
            name: "CLua",
            pkgConfig: "lua5.1",
            providers: [.apt(["liblua5.1-0-dev", "lua-cjson-dev", "lua-bitop-dev"])]
        ),
        // Redis' scripting glue in C: everything that can raise a Lua error stays on this side.
        .target(
            name: "CStrataLua", dependencies: ["CLua"],
            // Redis' scripts may use cjson and bit: Debian's lua-cjson-dev and lua-bitop-dev.
            linkerSettings: [.linkedLibrary("lua5.1-cjson"), .linkedLibrary("lua5.1-bitop")]
        ),
        .target(
            name: "StrataScript",
            dependencies: ["CStrataLua", "CLua"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "StrataScriptTests",
            dependencies: ["StrataScript"],
            swiftSettings: strictSettings
        ),
        // The few libc calls the Glibc module does not export (thread names, malloc_trim, CPU affinity).
        .target(name: "CStrataSystem"),
        .target(
            name: "StrataStore",
            dependencies: [
                "CLMDB",
                "CZlib",
                "CStrataSystem",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strictSettings
        ),
        // Hashes, lists, sets and sorted sets as values: no server, no store, only swift-collections.
        .target(
            name: "StrataCollections",
            dependencies: [.product(name: "DequeModule", package: "swift-collections")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "StrataCollectionsTests",
            dependencies: ["StrataCollections"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "RESP",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "StrataCluster",
            dependencies: [
                "StrataStore",
                "RESP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "StrataClusterTests",
            dependencies: ["StrataCluster", "StrataStore"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "StrataServer",
            dependencies: [
                "CStrataSystem",
                "StrataCollections",
                "StrataScript",
                "StrataStore",
                "StrataCluster",
                "RESP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "strata",
            dependencies: [
                "StrataServer",
                "StrataStore",
                "StrataCluster",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "StrataServerTests",
            dependencies: [
                "StrataServer",
                "StrataStore",
                "StrataCluster",
                "RESP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "RESPTests",
            dependencies: [
                "RESP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "strata-store-writer",
            dependencies: ["StrataStore"],
            path: "Tests/StoreWriterHelper",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "StrataStoreTests",
            dependencies: ["StrataStore", "CStrataSystem", "strata-store-writer"],
            swiftSettings: strictSettings
        ),
    ]
)
