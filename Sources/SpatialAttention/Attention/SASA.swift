/// Stand-alone self-attention (SASA, Ramachandran et al. 2019; paper 004): local `k×k` multi-head
/// attention with 2-D relative position embeddings.
///
/// Shapes: `x` `[N, C, H, W]` in either layout; output `[N, valueChannels, H, W]` in the same layout
/// (stride 1; SASA-ResNet downsamples with 2×2 average pooling after the layer).
///
/// Reference, per pixel `(i, j)` and head `h` (`dk = keyChannels/heads`, `dv = valueChannels/heads`):
/// `q = W_Q·x_ij`, `k_ab = W_K·x_ab`, `v_ab = W_V·x_ab` (1×1, no bias), for `(a, b)` in the `k×k`
/// window centred on `(i, j)`:
///
///     logit_ab = Σ_c q_c·(k_ab,c + r_ab,c),   r_ab = [r^row_{a−i} ; r^col_{b−j}]
///     y_ij = Σ_ab softmax_ab(logit)·v_ab
///
/// The dot product sums over the head's `dk` channels (a popular PyTorch port multiplies channel-wise
/// and never sums). `r^row` and `r^col` have `dk/2` channels each and are shared across heads (004
/// §2.3: "each with dimension ½ d_out", per head). No `1/√dk` scale (004 Eq. 3).
///
/// ``Boundary`` decides what the window sees outside the image: by default those neighbours are
/// excluded from the softmax; `.zeroPadded` reproduces the PyTorch ports that zero-pad the input
/// before the key/value convolutions (keys and values 0 there, but `q·r` still enters the softmax).
/// Memory is `O(input + output)`: no `k²`-fold unfold. Matches `Naive` `sasa` within `Tolerance.sasa`.
public struct SASA: Layer {
    /// What the attention window sees beyond the image border.
    public enum Boundary: String, Sendable, CaseIterable {
        /// Neighbours outside the image take no part in the softmax (the default).
        case excluded
        /// The input is zero-padded: keys and values are 0 outside, the logit there is `q·r_ab`.
        case zeroPadded
    }

    /// `C`, the input channels.
    public let channels: Int
    /// The number of heads (default 8).
    public let heads: Int
    /// Query and key channels over all heads.
    public let keyChannels: Int
    /// Value channels over all heads: the output channels.
    public let valueChannels: Int
    /// `k`, the window side (odd; default 7).
    public let kernelSize: Int
    /// The border behaviour.
    public let boundary: Boundary
    /// `W_Q`, `W_K` `[keyChannels, channels]`; `W_V` `[valueChannels, channels]`.
    public let queryWeight: [Float], keyWeight: [Float], valueWeight: [Float]
    /// `r^row` `[k, dk/2]`: row `a − i + (k−1)/2` for the row offset `a − i`. Shared across heads.
    public let rowEmbedding: [Float]
    /// `r^col` `[k, dk/2]`: row `b − j + (k−1)/2` for the column offset `b − j`. Shared across heads.
    public let columnEmbedding: [Float]

    let projection: [Float]

    /// `dk`.
    public var keyChannelsPerHead: Int { keyChannels / heads }
    /// `dv`.
    public var valueChannelsPerHead: Int { valueChannels / heads }

    /// Creates a layer with seeded random weights: projections normal with σ = 1/√C, embeddings normal
    /// with σ = 1/√dk. `keyChannels` and `valueChannels` default to `channels`.
    ///
    /// - Throws: ``ShapeError`` when a channel count is not a positive multiple of `heads`, `dk` is odd, or
    ///   `kernelSize` is not odd and positive.
    public init(channels: Int, heads: Int = 8, keyChannels: Int? = nil, valueChannels: Int? = nil,
                kernelSize: Int = 7, boundary: Boundary = .excluded, seed: UInt64) throws {
        let dkTotal = keyChannels ?? channels, dvTotal = valueChannels ?? channels
        try SASA.validate(channels: channels, heads: heads, keyChannels: dkTotal, valueChannels: dvTotal,
                          kernelSize: kernelSize)
        var g = SeededGenerator(seed: seed)
        func normal(_ count: Int, _ sigma: Float) -> [Float] {
            let d = RandomDistribution.normal(mean: 0, standardDeviation: sigma)
            return (0..<count).map { _ in d.sample(using: &g) }
        }
        let sigma = 1 / Float(channels).squareRoot(), dk = dkTotal / heads
        let q = normal(dkTotal * channels, sigma), k = normal(dkTotal * channels, sigma)
        let v = normal(dvTotal * channels, sigma)
        let rows = normal(kernelSize * dk / 2, 1 / Float(dk).squareRoot())
        let cols = normal(kernelSize * dk / 2, 1 / Float(dk).squareRoot())
        try self.init(channels: channels, heads: heads, kernelSize: kernelSize, boundary: boundary,
                      queryWeight: q, keyWeight: k, valueWeight: v, rowEmbedding: rows, columnEmbedding: cols)
    }

    /// Creates a layer from explicit weights (row-major; names and shapes in docs/sasa.md).
    ///
    /// - Throws: ``ShapeError`` naming the array whose size does not fit.
    public init(channels: Int, heads: Int, kernelSize: Int = 7, boundary: Boundary = .excluded,
                queryWeight: [Float], keyWeight: [Float], valueWeight: [Float],
                rowEmbedding: [Float], columnEmbedding: [Float]) throws {
        guard channels > 0, queryWeight.count % channels == 0, valueWeight.count % channels == 0,
              keyWeight.count == queryWeight.count else {
            throw ShapeError("SASA weights query [\(queryWeight.count)], key [\(keyWeight.count)], value " +
                             "[\(valueWeight.count)] must be [dk·heads, \(channels)] twice and [dv·heads, \(channels)]")
        }
        let dkTotal = queryWeight.count / channels, dvTotal = valueWeight.count / channels
        try SASA.validate(channels: channels, heads: heads, keyChannels: dkTotal, valueChannels: dvTotal,
                          kernelSize: kernelSize)
        let half = dkTotal / heads / 2
        for (array, name) in [(rowEmbedding, "row embedding"), (columnEmbedding, "column embedding")]
        where array.count != kernelSize * half {
            throw ShapeError("SASA \(name) has \(array.count) elements, expected [\(kernelSize), \(half)]")
        }
        self.channels = channels
        self.heads = heads
        self.keyChannels = dkTotal
        self.valueChannels = dvTotal
        self.kernelSize = kernelSize
        self.boundary = boundary
        self.queryWeight = queryWeight
        self.keyWeight = keyWeight
        self.valueWeight = valueWeight
        self.rowEmbedding = rowEmbedding
        self.columnEmbedding = columnEmbedding
        self.projection = queryWeight + keyWeight + valueWeight
    }

    static func validate(channels: Int, heads: Int, keyChannels: Int, valueChannels: Int, kernelSize: Int) throws {
        guard channels > 0, heads > 0, keyChannels > 0, valueChannels > 0,
              keyChannels % heads == 0, valueChannels % heads == 0 else {
            throw ShapeError("SASA needs channels \(channels), key channels \(keyChannels) and value channels " +
                             "\(valueChannels) positive, the latter two multiples of heads \(heads)")
        }
        guard (keyChannels / heads) % 2 == 0 else {
            throw ShapeError("SASA key channels per head \(keyChannels / heads) must be even (row and column " +
                             "embeddings take half each)")
        }
        guard kernelSize > 0, kernelSize % 2 == 1 else {
            throw ShapeError("SASA kernel size \(kernelSize) must be odd and positive")
        }
    }

    // MARK: - Layer

    public func outputShape(for input: Shape) throws -> Shape {
        guard input.channels == channels else {
            throw ShapeError("SASA expects \(channels) input channels, got input \(input)")
        }
        return Shape(input.batch, valueChannels, input.height, input.width)
    }

    /// Projections and the two embeddings.
    public var parameterCount: Int { projection.count + rowEmbedding.count + columnEmbedding.count }

    /// Projections `P·C·(2·keyChannels + valueChannels)`; per pixel and head `k²·dk` for `q·k_ab`, `k·dk`
    /// for `q·r` (the row and column terms, `k` offsets each of `dk/2` channels) and `k²·dv` for the
    /// weighted sum, over the whole window (border neighbours included, as the padded kernel computes them).
    public func multiplyAccumulates(for input: Shape) throws -> Int {
        _ = try outputShape(for: input)
        let P = input.pixels, k = kernelSize
        let perImage = P * channels * (2 * keyChannels + valueChannels)
            + P * (k * k * keyChannels + k * keyChannels + k * k * valueChannels)
        return input.batch * perImage
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try callAsFunction(x, threads: nil) }
}
