// swift-tools-version: 6.1
// A program that embeds Strata's store, as a user's would: it depends on the Strata package and
// uses only the `StrataStore` product (so it builds none of the server's dependencies).
// Build and run from this directory: `swift run`.
import PackageDescription

let package = Package(
    name: "EmbeddedStore",
    platforms: [.macOS(.v15)],
    dependencies: [
        // A user would write `.package(url: "https://github.com/.../strata.git", from: "0.1.0")`.
        .package(name: "strata", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "EmbeddedStore",
            dependencies: [.product(name: "StrataStore", package: "strata")]
        ),
    ]
)
