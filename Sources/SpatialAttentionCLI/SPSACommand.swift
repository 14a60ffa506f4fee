import ArgumentParser
import SpatialAttention

/// `spatial-attention spsa`: SPSA of a 4-D `.npy` tensor.
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

    @Option(help: "Input .npy file (4-D).")
    var input: String

    @Option(help: "Output .npy file (float32, same shape and layout as the input).")
    var output: String

    @Option(help: "Exponent α ≥ 0 of the attention map.")
    var alpha: Float = 2

    @Option(help: "Channels in each head (default 64). Excludes --heads.")
    var channelsPerHead: Int?

    @Option(help: "Number of heads. Excludes --channels-per-head.")
    var heads: Int?

    @Flag(help: "Use σ(corr)^α instead of the paper's reverse (1 − σ(corr))^α.")
    var noReverse = false

    @Option(help: "Similarity: correlation (the paper's) or cosine (no centring).")
    var similarity: SPSA.Similarity = .correlation

    @Option(help: "Memory order of the .npy arrays: nchw ([N, C, H, W]) or nhwc ([N, H, W, C]).")
    var layout: Layout = .nchw

    @Option(help: "Worker threads (default: SPATIAL_ATTENTION_THREADS or the processor count).")
    var threads: Int?

    func validate() throws {
        if channelsPerHead != nil && heads != nil {
            throw ValidationError("give at most one of --channels-per-head and --heads")
        }
    }

    func run() throws {
        try reportingErrors {
            let x = try readImageBatch(input, layout: layout)
            let module: SPSA
            if let heads {
                module = SPSA(alpha: alpha, heads: heads, reverse: !noReverse, similarity: similarity)
            } else {
                module = SPSA(alpha: alpha, channelsPerHead: channelsPerHead ?? 64, reverse: !noReverse,
                              similarity: similarity)
            }
            let y: Tensor
            do {
                y = try module(x, threads: threads)
            } catch let error as ShapeError {
                throw ShapeError("\(input) (shape \(x.shape)): \(error.message)")
            }
            try NPY.write(y, to: output)
        }
    }
}

extension SPSA.Similarity: ExpressibleByArgument {}
