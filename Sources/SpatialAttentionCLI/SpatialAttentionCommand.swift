import ArgumentParser
import SpatialAttention

/// `spatial-attention`: apply the package's modules to NumPy files from the command line.
@main
struct SpatialAttentionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spatial-attention",
        abstract: "Apply SpatialAttention modules to .npy tensors.",
        discussion: """
        Errors (a missing or malformed file, an unsupported dtype, a shape the module cannot take) are \
        printed on stderr and exit with status 1; usage errors exit with status 64. An output file is \
        written to a temporary file in the same folder and renamed into place only on success, so a \
        failed run leaves no output behind.
        """,
        subcommands: [SPSACommand.self, ApplyCommand.self, ClassifyCommand.self, InfoCommand.self, InspectCommand.self]
    )

    /// Restarts with OpenBLAS's AVX-512 kernels where OpenBLAS left them unused, then runs the command.
    static func main() {
        BLAS.restartWithRecommendedCoreIfNeeded(program: "spatial-attention")
        main(nil)
    }
}
