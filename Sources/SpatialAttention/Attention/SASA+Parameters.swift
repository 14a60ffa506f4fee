/// Loading a SASA layer by PyTorch-style names: the names of SASA-ResNet's layers (docs/sasa.md).
extension SASA {
    /// Creates a layer from named tensors under `prefix`, with SASA-ResNet's names (docs/sasa.md).
    ///
    /// Tensors, `dk` and `dv` the key and value channels of one head:
    /// - `query_conv.weight`, `key_conv.weight` `[heads·dk, C, 1, 1]`, `value_conv.weight`
    ///   `[heads·dv, C, 1, 1]` (the names of the common PyTorch port; head-major rows);
    /// - `rel_h` `[k, dk/2]`, the row-offset embedding (row `a − i + (k−1)/2`), and `rel_w` `[k, dk/2]`,
    ///   the column-offset embedding, shared across heads.
    ///
    /// `C`, `heads·dk` and `heads·dv` are read from `query_conv.weight`'s and `value_conv.weight`'s
    /// shapes; every other shape is then checked. ``AttentionResNet`` takes its layers' tensors with
    /// the same loader.
    ///
    /// - Parameters:
    ///   - parameters: named tensors, e.g. a whole model's `state_dict`; names outside `prefix` are ignored.
    ///   - prefix: prepended to every name, e.g. `layer1.0.sasa.`.
    ///   - heads: the number of heads (default 8).
    ///   - kernelSize: `k`, the window side (odd; default 7).
    ///   - boundary: what the window sees beyond the border (default ``Boundary/excluded``).
    ///   - strict: when true, a tensor under `prefix` that the layer does not have is an error.
    /// - Throws: ``ParameterError`` naming every missing, mis-shaped and (when `strict`) unexpected
    ///   tensor; ``ShapeError`` when `heads` does not divide the key or value channels, `dk` is odd, or
    ///   `kernelSize` is not odd and positive.
    public init(parameters: [String: ParameterTensor], prefix: String = "", heads: Int = 8, kernelSize: Int = 7,
                boundary: Boundary = .excluded, strict: Bool = true) throws {
        let names = ModuleParameters(module: "SASA", parameters: parameters, prefix: prefix)
        let required = ["query_conv.weight", "key_conv.weight", "value_conv.weight", "rel_h", "rel_w"]
        func projection(_ name: String) throws -> [Int] { try names.projectionShape(of: name, required: required) }
        let query = try projection("query_conv.weight"), value = try projection("value_conv.weight")
        self = try names.load(strict: strict) { source in
            try SASA.load(prefix: prefix, channels: query[1], keyChannels: query[0], valueChannels: value[0],
                          heads: heads, kernelSize: kernelSize, boundary: boundary, source: &source)
        }
    }

    /// Takes a layer's tensors from `source` by the names of ``init(parameters:prefix:heads:kernelSize:boundary:strict:)``
    /// and the shapes its sizes give, in that order: Kaiming-uniform projections and embeddings uniform
    /// on `±√(3/dk)` (variance `1/dk`) when the source is seeded.
    ///
    /// - Throws: ``ShapeError`` when the sizes do not make a layer.
    static func load(prefix: String, channels C: Int, keyChannels: Int, valueChannels: Int, heads: Int,
                     kernelSize k: Int, boundary: Boundary, source: inout ParameterSource) throws -> SASA {
        try validate(channels: C, heads: heads, keyChannels: keyChannels, valueChannels: valueChannels, kernelSize: k)
        let half = keyChannels / heads / 2
        let q = source.take(prefix + "query_conv.weight", shape: [keyChannels, C, 1, 1], .kaiming(fanIn: C))
        let key = source.take(prefix + "key_conv.weight", shape: [keyChannels, C, 1, 1], .kaiming(fanIn: C))
        let v = source.take(prefix + "value_conv.weight", shape: [valueChannels, C, 1, 1], .kaiming(fanIn: C))
        let bound = (3 / Float(2 * half)).squareRoot()
        let rows = source.take(prefix + "rel_h", shape: [k, half], .uniform(-bound, bound))
        let columns = source.take(prefix + "rel_w", shape: [k, half], .uniform(-bound, bound))
        return try SASA(channels: C, heads: heads, kernelSize: k, boundary: boundary, queryWeight: q, keyWeight: key,
                        valueWeight: v, rowEmbedding: rows, columnEmbedding: columns)
    }
}
