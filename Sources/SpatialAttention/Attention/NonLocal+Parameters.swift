/// Loading full self-attention by PyTorch-style names: those of the common `NONLocalBlock2D`
/// (embedded Gaussian) implementation (docs/attention.md).
extension NonLocal {
    /// Creates a block from named tensors under `prefix`, with the names of the common PyTorch
    /// `NONLocalBlock2D` (docs/attention.md).
    ///
    /// Tensors, `dk` and `dv` the key and value channels over all heads (head-major rows):
    /// - `theta.weight` `[dk, C, 1, 1]` (`W_Q`), `phi.weight` `[dk, C, 1, 1]` (`W_K`), `g.weight`
    ///   `[dv, C, 1, 1]` (`W_V`), each with an optional bias, `theta.bias` `[dk]`, `phi.bias` `[dk]`,
    ///   `g.bias` `[dv]`;
    /// - with `outputProjection`: `W.0.weight` `[C, dv, 1, 1]` (`W_O`) with an optional `W.0.bias` `[C]`,
    ///   and optionally the BN after it, `W.1.weight`, `W.1.bias`, `W.1.running_mean`, `W.1.running_var`
    ///   `[C]` (all four or none; ε = 1e-5), folded into `W_O` and `b_O` in Double on load.
    ///
    /// `C`, `dk` and `dv` are read from `theta.weight`'s and `g.weight`'s shapes; every other shape is
    /// then checked. `NONLocalBlock2D` takes `softmax(θ·φᵀ)` unscaled: pass `scale: 1` for its
    /// checkpoints; its `sub_sample` max pooling of `φ` and `g` is not modelled.
    ///
    /// - Parameters:
    ///   - parameters: named tensors, e.g. a whole model's `state_dict`; names outside `prefix` are ignored.
    ///   - prefix: prepended to every name, e.g. `layer3.5.nl.`.
    ///   - heads: the number of heads (default 1).
    ///   - scale: the logit scale (default `1/√(dk/heads)`).
    ///   - outputProjection: whether the block has `W.0` (default true); without it the output has `dv` channels.
    ///   - residual: whether the input is added to the output (default true; needs `C` output channels).
    ///   - strict: when true, a tensor under `prefix` that the block does not have is an error.
    /// - Throws: ``ParameterError`` naming every missing, mis-shaped and (when `strict`) unexpected
    ///   tensor; ``ShapeError`` when `heads` does not divide `dk` and `dv`, or a residual is asked for
    ///   with `dv ≠ C` output channels.
    public init(parameters: [String: ParameterTensor], prefix: String = "", heads: Int = 1, scale: Float? = nil,
                outputProjection: Bool = true, residual: Bool = true, strict: Bool = true) throws {
        let names = ModuleParameters(module: "NonLocal", parameters: parameters, prefix: prefix)
        let required = ["theta.weight", "phi.weight", "g.weight"] + (outputProjection ? ["W.0.weight"] : [])
        func projection(_ name: String) throws -> [Int] { try names.projectionShape(of: name, required: required) }
        let query = try projection("theta.weight"), value = try projection("g.weight")
        self = try names.load(strict: strict) { source in
            try NonLocal.load(prefix: prefix, channels: query[1], keyChannels: query[0], valueChannels: value[0],
                              heads: heads, scale: scale, outputProjection: outputProjection, residual: residual,
                              source: &source)
        }
    }

    /// Takes a block's tensors from `source` by the names of
    /// ``init(parameters:prefix:heads:scale:outputProjection:residual:strict:)`` and the shapes its
    /// sizes give (Kaiming-uniform weights and no optional tensor when the source is seeded).
    ///
    /// - Throws: ``ShapeError`` when the sizes do not make a block.
    static func load(prefix: String, channels C: Int, keyChannels dk: Int, valueChannels dv: Int, heads: Int,
                     scale: Float?, outputProjection: Bool, residual: Bool,
                     source: inout ParameterSource) throws -> NonLocal {
        guard heads > 0, dk % heads == 0, dv % heads == 0 else {
            throw ShapeError("NonLocal key channels \(dk) and value channels \(dv) must be multiples of heads \(heads)")
        }
        func projection(_ name: String, _ rows: Int) -> (weight: [Float], bias: [Float]) {
            (source.take(prefix + name + ".weight", shape: [rows, C, 1, 1], .kaiming(fanIn: C)),
             source.takeIfProvided(prefix + name + ".bias", shape: [rows]) ?? [])
        }
        let (q, k, v) = (projection("theta", dk), projection("phi", dk), projection("g", dv))
        var outputWeight: [Float] = [], outputBias: [Float] = []
        if outputProjection {
            outputWeight = source.take(prefix + "W.0.weight", shape: [C, dv, 1, 1], .kaiming(fanIn: dv))
            outputBias = source.takeIfProvided(prefix + "W.0.bias", shape: [C]) ?? [Float](repeating: 0, count: C)
            let bn = ["weight", "bias", "running_mean", "running_var"].map { prefix + "W.1." + $0 }
            if bn.contains(where: { source.provides($0) }) {
                // All four or none: take() records the absent ones as missing.
                let values = bn.map { source.take($0, shape: [C], .uniform(1, 1)) }
                let norm = try BatchNorm(weight: values[0], bias: values[1], runningMean: values[2],
                                         runningVariance: values[3])
                let (s, shift) = norm.affine
                for c in 0..<C {
                    for j in (c * dv)..<((c + 1) * dv) { outputWeight[j] = Float(Double(outputWeight[j]) * s[c]) }
                    outputBias[c] = Float(Double(outputBias[c]) * s[c] + shift[c])
                }
            }
        }
        return try NonLocal(channels: C, heads: heads, scale: scale ?? 1 / Float(dk / heads).squareRoot(),
                            residual: residual, queryWeight: q.weight, keyWeight: k.weight, valueWeight: v.weight,
                            queryBias: q.bias, keyBias: k.bias, valueBias: v.bias,
                            outputWeight: outputWeight, outputBias: outputBias)
    }
}
