import ArgumentParser

/// `spatial-bench`: reproduces the papers' tables and measures the kernels against the ceilings
/// measured in the same run. `make bench` runs `spatial-bench all` on built-in defaults.
@main
struct SpatialBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spatial-bench",
        abstract: "Benchmarks for SpatialAttention: kernels against measured ceilings, papers' tables, scaling.",
        subcommands: [AttentionBenchmark.self, ScalingBenchmark.self]
    )
}
