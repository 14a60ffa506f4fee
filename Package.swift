// swift-tools-version:6.1
import Foundation
import PackageDescription

// MARK: - Build settings
//
// Swift's default x86-64 target is SSE-only (see docs/design.md): SIMD16 becomes four xmm registers
// and `addingProduct` becomes calls into libm. `make bench` / `make test` pass
// `-Xswiftc -target-cpu -Xswiftc native -Xcc -march=native` on the command line, which keeps this
// manifest free of unconditional `unsafeFlags` so that the package stays usable as a versioned
// dependency. Setting SPATIAL_ATTENTION_NATIVE=1 in the environment does the same from the manifest
// (for root-package or path-dependency use only: SwiftPM rejects unsafeFlags in versioned dependencies).
let native = ProcessInfo.processInfo.environment["SPATIAL_ATTENTION_NATIVE"] == "1"
let nativeSwift: [SwiftSetting] = native
    ? [.unsafeFlags(["-target-cpu", "native"]), .define("SPATIAL_ATTENTION_FMA")] : []
let nativeC: [CSetting] = native ? [.unsafeFlags(["-march=native"])] : []

// MARK: - Public API

let package = Package(
    name: "SpatialAttention",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SpatialAttention", targets: ["SpatialAttention"]),
        .library(name: "SpatialAttentionReference", targets: ["SpatialAttentionReference"]),
        .executable(name: "spatial-bench", targets: ["SpatialBench"]),
        .executable(name: "spatial-attention", targets: ["SpatialAttentionCLI"]),
        .executable(name: "spatial-fuzz", targets: ["SpatialFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // `swift package generate-documentation --target SpatialAttention` (DocC); build-time only.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // MARK: - Implementation details
        .target(
            name: "CKernels",
            cSettings: nativeC,
            linkerSettings: [.linkedLibrary("openblas"), .linkedLibrary("lapacke"), .linkedLibrary("m")]
        ),
        .target(
            name: "SpatialAttention",
            dependencies: ["CKernels"],
            swiftSettings: nativeSwift
        ),
        .target(
            name: "SpatialAttentionReference",
            dependencies: ["SpatialAttention"],
            swiftSettings: nativeSwift
        ),
        .target(
            name: "TestSupport",
            dependencies: ["SpatialAttention", "SpatialAttentionReference"],
            swiftSettings: nativeSwift
        ),
        .executableTarget(
            name: "SpatialBench",
            dependencies: [
                "SpatialAttention", "SpatialAttentionReference", "CKernels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/SpatialBench",
            swiftSettings: nativeSwift
        ),
        .executableTarget(
            name: "SpatialAttentionCLI",
            dependencies: [
                "SpatialAttention",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: nativeSwift
        ),
        // Fuzzing of the file readers: seed corpus, mutator and invariants (FuzzSupport), shared by
        // the test suite and the `spatial-fuzz` driver (seeded mutations, or libFuzzer via `make fuzz`).
        .target(
            name: "FuzzSupport",
            dependencies: ["SpatialAttention"],
            path: "Fuzz/FuzzSupport"
        ),
        .executableTarget(
            name: "SpatialFuzz",
            dependencies: ["FuzzSupport"],
            path: "Fuzz/SpatialFuzz"
        ),
        // MARK: - Tests
        .testTarget(
            name: "SpatialAttentionTests",
            dependencies: ["SpatialAttention", "SpatialAttentionReference", "TestSupport", "FuzzSupport"],
            swiftSettings: nativeSwift
        ),
    ]
)
