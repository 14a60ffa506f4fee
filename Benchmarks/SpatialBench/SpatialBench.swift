import ArgumentParser
import SpatialAttention

/// `spatial-bench`: reproduces the papers' tables and measures the kernels against the ceilings
/// measured in the same run. `make bench` runs `spatial-bench all` on built-in defaults.
@main
struct SpatialBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spatial-bench",
        abstract: "Benchmarks for SpatialAttention: kernels against measured ceilings, papers' tables, scaling.",
        subcommands: [AllBenchmarks.self, SPSABenchmark.self, TablesBenchmark.self, ConvBenchmark.self,
                      AttentionBenchmark.self, ScalingBenchmark.self, ThreadsBenchmark.self]
    )

    /// Restarts with OpenBLAS's AVX-512 kernels where OpenBLAS left them unused, then runs the command.
    static func main() {
        BLAS.restartWithRecommendedCoreIfNeeded(program: "spatial-bench")
        main(nil)
    }
}

/// `spatial-bench all`: every benchmark of the main job, each on its built-in defaults.
struct AllBenchmarks: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "all",
        abstract: "Run every benchmark on its built-in defaults (what `make bench` runs)."
    )

    /// The benchmarks of the main job, in order.
    static let mainJob: [ParsableCommand.Type] = [ThreadsBenchmark.self, SPSABenchmark.self, ConvBenchmark.self,
                                                  TablesBenchmark.self, AttentionBenchmark.self, ScalingBenchmark.self]

    func run() throws {
        for command in Self.mainJob {
            print("\n== spatial-bench \(command.configuration.commandName ?? "") ==\n")
            var instance = try command.parseAsRoot([])
            try instance.run()
        }
    }
}
