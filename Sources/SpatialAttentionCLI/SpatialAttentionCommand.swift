import ArgumentParser

/// `spatial-attention`: apply the package's modules to NumPy files from the command line.
@main
struct SpatialAttentionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spatial-attention",
        abstract: "Apply SpatialAttention modules to .npy tensors.",
        subcommands: []
    )
}
