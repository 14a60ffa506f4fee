import ArgumentParser
import SpatialAttention

/// `spatial-attention spsa` (also `apply spsa`): SPSA of a 4-D `.npy` tensor.
struct SPSACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spsa",
        abstract: "Apply simple parameter-free self-attention (SPSA) to a 4-D .npy tensor.",
        discussion: """
        The input is a 4-D float32 .npy array (float64 and float16 are converted to float32), C order, \
        [N, C, H, W] by default or [N, H, W, C] with --layout nhwc; the output is float32 in the same \
        layout. out = (1 − σ(corr(x[p], k)))^α · x per head, k the global average pool of the head's \
        channels; where a pixel's or the key's channel vector is constant, A = 0.5^α.
        """
    )

    @OptionGroup var files: TensorFileOptions

    @Option(help: "Exponent α ≥ 0 of the attention map (a negative value must be written --alpha=-1).")
    var alpha: Float = 2

    @Option(help: "Channels in each head (default 64). Excludes --heads.")
    var channelsPerHead: Int?

    @Option(help: "Number of heads. Excludes --channels-per-head.")
    var heads: Int?

    @Flag(help: "Use σ(corr)^α instead of the paper's reverse (1 − σ(corr))^α.")
    var noReverse = false

    @Option(help: "Similarity: correlation (the paper's) or cosine (no centring).")
    var similarity: SPSA.Similarity = .correlation

    func validate() throws {
        if channelsPerHead != nil && heads != nil {
            throw ValidationError("give at most one of --channels-per-head and --heads")
        }
    }

    func run() throws {
        try reportingErrors {
            let module: SPSA
            if let heads {
                module = SPSA(alpha: alpha, heads: heads, reverse: !noReverse, similarity: similarity)
            } else {
                module = SPSA(alpha: alpha, channelsPerHead: channelsPerHead ?? 64, reverse: !noReverse,
                              similarity: similarity)
            }
            try files.map { try module($0, threads: files.threads) }
        }
    }
}

extension SPSA.Similarity: ExpressibleByArgument {}
