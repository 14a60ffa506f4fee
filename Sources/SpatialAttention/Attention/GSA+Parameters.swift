/// Loading a GSA module by PyTorch-style names: the names of GSA-ResNet's modules (docs/gsa.md).
extension GSA {
    /// Creates a module from named tensors under `prefix`, with GSA-ResNet's names (docs/gsa.md).
    ///
    /// Tensors, `d` the query, key and value channels over all heads (`d = C` in GSA-ResNet) and
    /// `dk = d/heads`:
    /// - `qkv.weight` `[3d, C, 1, 1]`: the query, key and value rows in that order (the layout of
    ///   lucidrains' `to_qkv`); without ``Components/content``, `[2d, C, 1, 1]`, query and value;
    /// - `rel_rows` `[2L − 1, dk]`: `R_c`, the column pass's embedding (with ``Components/column``);
    /// - `rel_columns` `[2L − 1, dk]`: `R_r`, the row pass's embedding (with ``Components/row``);
    /// - `norm.weight`, `norm.bias`, `norm.running_mean`, `norm.running_var` `[d]`: the BN between the
    ///   two passes (with both).
    ///
    /// `C` and `d` are read from `qkv.weight`'s shape, `L` from the embeddings' unless `extent` is
    /// given; every other shape is then checked. ``AttentionResNet`` takes its modules' tensors with
    /// the same loader.
    ///
    /// - Parameters:
    ///   - parameters: named tensors, e.g. a whole model's `state_dict`; names outside `prefix` are ignored.
    ///   - prefix: prepended to every name, e.g. `layer1.0.gsa.`.
    ///   - heads: the number of heads (default 8, GSA-ResNet's).
    ///   - extent: `L`; nil reads it from the embeddings' `2L − 1` rows (1 with content attention only).
    ///   - components: the attention layers the module has (default all).
    ///   - strict: when true, a tensor under `prefix` that the module does not have is an error.
    /// - Throws: ``ParameterError`` naming every missing, mis-shaped and (when `strict`) unexpected
    ///   tensor; ``ShapeError`` when `heads` does not divide `d`, `extent < 1`, or `components` is empty.
    public init(parameters: [String: ParameterTensor], prefix: String = "", heads: Int = 8, extent: Int? = nil,
                components: Components = .all, strict: Bool = true) throws {
        guard !components.isEmpty else { throw ShapeError("GSA needs at least one component") }
        let names = ModuleParameters(module: "GSA", parameters: parameters, prefix: prefix)
        let required = GSA.parameterNames(components: components)
        let blocks = components.contains(.content) ? 3 : 2
        let qkv = try names.shape(of: "qkv.weight", expected: "[\(blocks)·d, C, 1, 1]", required: required) {
            $0.count == 4 && $0[0] > 0 && $0[0] % blocks == 0 && $0[1] > 0 && $0[2] == 1 && $0[3] == 1
        }
        var L = extent ?? 1
        if extent == nil, let embedding = required.first(where: { $0.hasPrefix("rel_") }) {
            let shape = try names.shape(of: embedding, expected: "[2L − 1, dk]", required: required) {
                $0.count == 2 && $0[0] % 2 == 1
            }
            L = (shape[0] + 1) / 2
        }
        self = try names.load(strict: strict) { source in
            try GSA.load(prefix: prefix, channels: qkv[1], innerChannels: qkv[0] / blocks, heads: heads,
                         extent: L, components: components, source: &source)
        }
    }

    /// The tensor names (without a prefix) of a module with `components`, in state-dict order.
    static func parameterNames(components: Components) -> [String] {
        var names = ["qkv.weight"]
        if components.contains(.column) { names.append("rel_rows") }
        if components.contains(.row) { names.append("rel_columns") }
        if components.isSuperset(of: .positional) {
            names += ["norm.weight", "norm.bias", "norm.running_mean", "norm.running_var"]
        }
        return names
    }

    /// Takes a module's tensors from `source` by the names of ``init(parameters:prefix:heads:extent:components:strict:)``
    /// and the shapes its sizes give, in that order. When the source is seeded: Kaiming-uniform
    /// projections with the query rows scaled by ``seededQueryScale(extent:)``, embeddings uniform on
    /// `±√(3/dk)` (variance `1/dk`), BN weight `U(0.5, 1)`, bias and mean `U(−0.1, 0.1)`, variance
    /// `U(0.5, 1.5)`.
    ///
    /// - Throws: ``ShapeError`` when the sizes do not make a module.
    static func load(prefix: String, channels C: Int, innerChannels d: Int, heads: Int, extent: Int,
                     components: Components, source: inout ParameterSource) throws -> GSA {
        try validate(channels: C, heads: heads, keyChannels: d, valueChannels: d, extent: extent, components: components)
        let dk = d / heads, rows = 2 * extent - 1, content = components.contains(.content)
        let qkv = source.take(prefix + "qkv.weight", shape: [(content ? 3 : 2) * d, C, 1, 1],
                              .kaimingScaledPrefix(fanIn: C, count: d * C, scale: seededQueryScale(extent: extent)))
        let bound = (3 / Float(dk)).squareRoot()
        let rc = components.contains(.column)
            ? source.take(prefix + "rel_rows", shape: [rows, dk], .uniform(-bound, bound)) : []
        let rr = components.contains(.row)
            ? source.take(prefix + "rel_columns", shape: [rows, dk], .uniform(-bound, bound)) : []
        let norm = components.isSuperset(of: .positional) ? try Normalization(
            weight: source.take(prefix + "norm.weight", shape: [d], .uniform(0.5, 1.0)),
            bias: source.take(prefix + "norm.bias", shape: [d], .uniform(-0.1, 0.1)),
            runningMean: source.take(prefix + "norm.running_mean", shape: [d], .uniform(-0.1, 0.1)),
            runningVariance: source.take(prefix + "norm.running_var", shape: [d], .uniform(0.5, 1.5))) : nil
        let block = d * C
        return try GSA(channels: C, heads: heads, extent: extent, components: components,
                       queryWeight: Array(qkv[0..<block]),
                       keyWeight: content ? Array(qkv[block..<(2 * block)]) : [],
                       valueWeight: Array(qkv[((content ? 2 : 1) * block)...]),
                       columnEmbedding: rc, rowEmbedding: rr, normalization: norm)
    }

    /// The factor on a seeded module's query rows: `1/(2·√(2√2·L))`.
    ///
    /// GSA has no softmax over its positional weights, so its output is bilinear in queries and values
    /// and the row pass is cubic in the input: with plain Kaiming queries (`σ_q ≈ √2·σ_x`) the column
    /// output is about `2√L·σ_x²` and the row output `2√2·L·σ_x³`, and a seeded GSA-ResNet squared its
    /// activations' scale block after block until it overflowed (every logit NaN at 224×224). With the
    /// query rows scaled by `s`, the row output is `2√2·L·s²·σ_x³ = σ_x³/4`: activations near unit
    /// scale shrink instead of growing. Seeded GSA-ResNet-26 (32×32), -50 and -101 (224×224) then give
    /// logits of largest magnitude 1.2–1.5 (with `s` twice as large, GSA-ResNet-101 reached 2e15).
    /// Trained weights are loaded as they are; this only shapes the seeded networks used for timing
    /// and tests.
    static func seededQueryScale(extent L: Int) -> Float {
        0.5 / (2 * Float(2).squareRoot() * Float(max(1, L))).squareRoot()
    }
}
