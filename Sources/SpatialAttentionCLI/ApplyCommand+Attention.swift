import ArgumentParser
import SpatialAttention

// `apply gsa`, `apply sasa`, `apply attention`: the attention modules with parameters, loaded by the
// library's `init(parameters:prefix:…)` (the loaders GSA-ResNet and SASA-ResNet use), which read the
// module's sizes from its tensors and name every missing or mis-shaped one. As for the other `apply`
// subcommands, tensors of the file that the module does not have are ignored.

/// `apply gsa`: global self-attention (003) with GSA-ResNet's tensor names (docs/gsa.md).
struct ApplyGSA: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gsa",
        abstract: "Global self-attention (GSA): content plus axial positional attention (003).",
        discussion: """
        Tensors (GSA-ResNet's names, d = query/key/value channels, dk = d/heads): qkv.weight [3d, C, 1, 1] \
        (query, key, value rows; [2d, C, 1, 1] without content), rel_rows [2L−1, dk] (column pass), \
        rel_columns [2L−1, dk] (row pass), norm.{weight,bias,running_mean,running_var} [d] (the BN \
        between the passes). The output has d channels.
        """
    )

    @OptionGroup var files: TensorFileOptions
    @OptionGroup var parameters: ParameterOptions

    @Option(help: "Number of heads.")
    var heads: Int = 8

    @Option(help: "Extent L: the positional passes see offsets |δ| ≤ L − 1 (default: from the embeddings' 2L − 1 rows).")
    var extent: Int?

    @Option(help: "Attention layers: all, or content, column, row, positional joined by '+'.")
    var components: GSA.Components = .all

    func run() throws {
        try reportingErrors {
            let module = try parameters.open().module {
                try GSA(parameters: $0, prefix: $1, heads: heads, extent: extent, components: components, strict: false)
            }
            try files.map { try module($0, threads: files.threads) }
        }
    }
}

/// `apply sasa`: stand-alone self-attention (004) with SASA-ResNet's tensor names (docs/sasa.md).
struct ApplySASA: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sasa",
        abstract: "Stand-alone self-attention (SASA): local k×k multi-head attention with relative embeddings (004).",
        discussion: """
        Tensors (SASA-ResNet's names, dk and dv per head): query_conv.weight, key_conv.weight \
        [heads·dk, C, 1, 1], value_conv.weight [heads·dv, C, 1, 1], rel_h and rel_w [k, dk/2] (row and \
        column offsets, shared across heads). The output has heads·dv channels.
        """
    )

    @OptionGroup var files: TensorFileOptions
    @OptionGroup var parameters: ParameterOptions

    @Option(help: "Number of heads.")
    var heads: Int = 8

    @Option(help: "Window side k (odd).")
    var kernelSize: Int = 7

    @Option(help: "Neighbours beyond the border: excluded (from the softmax) or zeroPadded (keys and values 0).")
    var boundary: SASA.Boundary = .excluded

    func run() throws {
        try reportingErrors {
            let module = try parameters.open().module {
                try SASA(parameters: $0, prefix: $1, heads: heads, kernelSize: kernelSize, boundary: boundary, strict: false)
            }
            try files.map { try module($0, threads: files.threads) }
        }
    }
}

/// `apply attention`: full softmax self-attention, the non-local block (docs/attention.md).
struct ApplyAttention: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "Full self-attention / non-local block: softmax(scale·QKᵀ)·V, output projection, residual.",
        discussion: """
        Tensors (the names of PyTorch's NONLocalBlock2D): theta.weight, phi.weight [dk, C, 1, 1] (query, \
        key), g.weight [dv, C, 1, 1] (value), each with an optional bias; W.0.weight [C, dv, 1, 1] with \
        an optional W.0.bias [C] (the output projection), and optionally W.1.{weight,bias,running_mean, \
        running_var} [C], the BN after it, folded in on load. NONLocalBlock2D does not scale its \
        logits: give --scale 1 for its checkpoints.
        """
    )

    @OptionGroup var files: TensorFileOptions
    @OptionGroup var parameters: ParameterOptions

    @Option(help: "Number of heads.")
    var heads: Int = 1

    @Option(help: "Logit scale (default 1/√(dk/heads)).")
    var scale: Float?

    @Flag(help: "No output projection W.0: the output has dv channels.")
    var noOutputProjection = false

    @Flag(help: "Do not add the input to the output.")
    var noResidual = false

    func run() throws {
        try reportingErrors {
            let module = try parameters.open().module {
                try NonLocal(parameters: $0, prefix: $1, heads: heads, scale: scale,
                             outputProjection: !noOutputProjection, residual: !noResidual, strict: false)
            }
            try files.map { try module($0, threads: files.threads) }
        }
    }
}

extension SASA.Boundary: ExpressibleByArgument {}

extension GSA.Components: ExpressibleByArgument {
    /// `all`, or `content`, `column`, `row`, `positional` (column and row) joined by `+`.
    public init?(argument: String) {
        var components: GSA.Components = []
        for name in argument.split(separator: "+") {
            switch name {
            case "all": components.formUnion(.all)
            case "content": components.insert(.content)
            case "column": components.insert(.column)
            case "row": components.insert(.row)
            case "positional": components.formUnion(.positional)
            default: return nil
            }
        }
        guard !components.isEmpty else { return nil }
        self = components
    }

    public var defaultValueDescription: String { self == .all ? "all" : description }
}
