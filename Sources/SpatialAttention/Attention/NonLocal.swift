/// Full (global, all-pairs) self-attention: the `O(N²)` baseline of 002 Eq. (1)–(2) and the non-local
/// block of Wang et al. (2018).
///
/// Shapes: `x` `[N, C, H, W]` in either layout; output `[N, C', H, W]` in the same layout, with
/// `C' = channels` when there is an output projection, `valueChannels` otherwise.
///
/// Reference, per image with `P = H·W` pixels and per head (`dk = keyChannels/heads`, `dv = valueChannels/heads`):
/// `Q = X·W_Qᵀ + b_Q`, `K = X·W_Kᵀ + b_K`, `V = X·W_Vᵀ + b_V` (1×1 convolutions),
/// `A = softmax_rows(scale·Q·Kᵀ)` (`P×P`), `O = A·V`; then, optionally, `Z = O·W_Oᵀ + b_O` (the
/// non-local block's `W_z`) and `Z + X` (residual).
///
/// The defaults are the non-local block's embedded-Gaussian form: `keyChannels = valueChannels = C/2`,
/// one head, an output projection back to `C`, a residual; `scale = 1/√dk` (set `scale: 1` for 002
/// Eq. 1 exactly). The `P×P` matrix is never held: queries are taken ``queryBlock`` at a time, keys
/// ``keyBlock`` at a time, with an online softmax (running max and sum, NonLocal+Kernel.swift), so
/// memory is `O(P·(C + dk + dv))`. Matches `Naive` `attention` within `Tolerance.attention`.
public struct NonLocal: Layer {
    /// `C`, the input channels.
    public let channels: Int
    /// The number of heads.
    public let heads: Int
    /// Query and key channels over all heads.
    public let keyChannels: Int
    /// Value channels over all heads.
    public let valueChannels: Int
    /// The logit scale (default `1/√dk`).
    public let scale: Float
    /// Whether the input is added to the output (needs `C' = C`).
    public let residual: Bool
    /// `W_Q` `[keyChannels, channels]`, `W_K` likewise, `W_V` `[valueChannels, channels]`.
    public let queryWeight: [Float], keyWeight: [Float], valueWeight: [Float]
    /// Projection biases (`[keyChannels]`, `[keyChannels]`, `[valueChannels]`); empty for none.
    public let queryBias: [Float], keyBias: [Float], valueBias: [Float]
    /// `W_O` `[channels, valueChannels]` and `b_O` `[channels]`; both empty without an output projection.
    public let outputWeight: [Float], outputBias: [Float]
    /// Queries per block (default 256). Results do not depend on it.
    public var queryBlock = 256
    /// Keys per block of the online softmax (default 1024). Results depend on it only through rounding.
    public var keyBlock = 1024

    // Derived: [W_Q; W_K; W_V] stacked, and the biases in the same order (empty when all are absent).
    let projection: [Float]
    let projectionBias: [Float]

    /// `dk`.
    public var keyChannelsPerHead: Int { keyChannels / heads }
    /// `dv`.
    public var valueChannelsPerHead: Int { valueChannels / heads }
    /// `C'`, the output channels.
    public var outputChannels: Int { outputWeight.isEmpty ? valueChannels : channels }

    /// Creates a block with seeded random weights (normal, σ = 1/√fan-in; biases zero except `b_O`, normal
    /// with σ = 0.1) in the non-local block's configuration unless told otherwise.
    ///
    /// - Throws: ``ShapeError`` when a channel count is not a positive multiple of `heads`, or a residual is
    ///   asked for with `C' ≠ C`.
    public init(channels: Int, heads: Int = 1, keyChannels: Int? = nil, valueChannels: Int? = nil,
                outputProjection: Bool = true, residual: Bool = true, scale: Float? = nil, seed: UInt64) throws {
        let dkTotal = keyChannels ?? max(1, channels / 2), dvTotal = valueChannels ?? max(1, channels / 2)
        guard channels > 0, heads > 0, dkTotal % heads == 0, dvTotal % heads == 0 else {
            throw ShapeError("NonLocal needs channels \(channels) > 0 and key/value channels \(dkTotal)/\(dvTotal) " +
                             "multiples of heads \(heads)")
        }
        var g = SeededGenerator(seed: seed)
        func normal(_ count: Int, _ sigma: Float) -> [Float] {
            let d = RandomDistribution.normal(mean: 0, standardDeviation: sigma)
            return (0..<count).map { _ in d.sample(using: &g) }
        }
        let sigma = 1 / Float(channels).squareRoot()
        let q = normal(dkTotal * channels, sigma), k = normal(dkTotal * channels, sigma)
        let v = normal(dvTotal * channels, sigma)
        let o = outputProjection ? normal(channels * dvTotal, 1 / Float(dvTotal).squareRoot()) : []
        let b = outputProjection ? normal(channels, 0.1) : []
        try self.init(channels: channels, heads: heads,
                      scale: scale ?? 1 / Float(dkTotal / heads).squareRoot(), residual: residual,
                      queryWeight: q, keyWeight: k, valueWeight: v, outputWeight: o, outputBias: b)
    }

    /// Creates a block from explicit weights (row-major; names and shapes in docs/attention.md).
    ///
    /// - Throws: ``ShapeError`` naming the array whose size does not fit.
    public init(channels: Int, heads: Int, scale: Float, residual: Bool,
                queryWeight: [Float], keyWeight: [Float], valueWeight: [Float],
                queryBias: [Float] = [], keyBias: [Float] = [], valueBias: [Float] = [],
                outputWeight: [Float] = [], outputBias: [Float] = []) throws {
        guard channels > 0, heads > 0, queryWeight.count % channels == 0, valueWeight.count % channels == 0,
              keyWeight.count == queryWeight.count else {
            throw ShapeError("NonLocal weights query [\(queryWeight.count)], key [\(keyWeight.count)], value " +
                             "[\(valueWeight.count)] must be [dk·heads, \(channels)] twice and [dv·heads, \(channels)]")
        }
        let dkTotal = queryWeight.count / channels, dvTotal = valueWeight.count / channels
        guard dkTotal > 0, dvTotal > 0, dkTotal % heads == 0, dvTotal % heads == 0 else {
            throw ShapeError("NonLocal key channels \(dkTotal) and value channels \(dvTotal) must be positive " +
                             "multiples of heads \(heads)")
        }
        for (array, name, count) in [(queryBias, "query bias", dkTotal), (keyBias, "key bias", dkTotal),
                                     (valueBias, "value bias", dvTotal)] where !array.isEmpty && array.count != count {
            throw ShapeError("NonLocal \(name) has \(array.count) elements, expected [\(count)] or none")
        }
        guard outputWeight.isEmpty ? outputBias.isEmpty
                : (outputWeight.count == channels * dvTotal && outputBias.count == channels) else {
            throw ShapeError("NonLocal output weight [\(outputWeight.count)] and bias [\(outputBias.count)] must be " +
                             "[\(channels), \(dvTotal)] and [\(channels)], or both empty")
        }
        let outChannels = outputWeight.isEmpty ? dvTotal : channels
        guard !residual || outChannels == channels else {
            throw ShapeError("NonLocal residual needs \(channels) output channels, got \(outChannels) " +
                             "(no output projection)")
        }
        self.channels = channels
        self.heads = heads
        self.keyChannels = dkTotal
        self.valueChannels = dvTotal
        self.scale = scale
        self.residual = residual
        self.queryWeight = queryWeight
        self.keyWeight = keyWeight
        self.valueWeight = valueWeight
        self.queryBias = queryBias
        self.keyBias = keyBias
        self.valueBias = valueBias
        self.outputWeight = outputWeight
        self.outputBias = outputBias
        self.projection = queryWeight + keyWeight + valueWeight
        let anyBias = !(queryBias.isEmpty && keyBias.isEmpty && valueBias.isEmpty)
        func orZeros(_ b: [Float], _ n: Int) -> [Float] { b.isEmpty ? [Float](repeating: 0, count: n) : b }
        self.projectionBias = anyBias
            ? orZeros(queryBias, dkTotal) + orZeros(keyBias, dkTotal) + orZeros(valueBias, dvTotal) : []
    }

    // MARK: - Layer

    public func outputShape(for input: Shape) throws -> Shape {
        guard input.channels == channels else {
            throw ShapeError("NonLocal expects \(channels) input channels, got input \(input)")
        }
        return Shape(input.batch, outputChannels, input.height, input.width)
    }

    /// All weights and biases.
    public var parameterCount: Int {
        projection.count + queryBias.count + keyBias.count + valueBias.count + outputWeight.count + outputBias.count
    }

    /// Projections `P·C·(2·keyChannels + valueChannels)`, logits `P²·keyChannels`, weighted sums
    /// `P²·valueChannels`, output projection `P·valueChannels·C`. Softmax, bias and residual count zero.
    public func multiplyAccumulates(for input: Shape) throws -> Int {
        _ = try outputShape(for: input)
        let P = input.pixels
        let perImage = P * channels * (2 * keyChannels + valueChannels) + P * P * (keyChannels + valueChannels)
            + (outputWeight.isEmpty ? 0 : P * valueChannels * channels)
        return input.batch * perImage
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try callAsFunction(x, threads: nil) }
}
