/// The global self-attention (GSA) module of Shen et al., "Global Self-Attention Networks for Image
/// Recognition" (paper 003): content attention plus axial positional attention, `Y = Yᶜ + Yʷ`.
///
/// Shapes: `x` `[N, C, H, W]` in either layout; output `[N, valueChannels, H, W]` in the same layout.
/// `keyChannels` and `valueChannels` are split into `heads` equal groups, `dk = keyChannels/heads`,
/// `dv = valueChannels/heads`.
///
/// Reference (003 Appendix B, per head, `x, i` rows, `y, j` columns):
/// - `K = X·W_Kᵀ`, `Q = X·W_Qᵀ`, `V = X·W_Vᵀ` (1×1 convolutions, no bias);
/// - content: `K̂ = softmax of K over the H·W positions` per key channel, `C = K̂ᵀ·V` (`dk×dv`),
///   `Yᶜ = Q·C` (no query normalisation, 003 §3.1.1);
/// - column: `Yᴴ[x,y] = Σ_i (q[x,y]·R_c[i−x+L−1])·v[i,y]`, offsets with `|i−x| > L−1` contribute nothing;
/// - BN (inference affine) on `Yᴴ`, then row: `Yʷ[x,y] = Σ_j (q[x,y]·R_r[j−y+L−1])·BN(Yᴴ)[x,j]`;
/// - `Y = Yᶜ + Yʷ`. There is no softmax in positional attention (003 Eq. 2, Appendix B Eq. 7).
///
/// ``Components`` selects the ablations of 003 Tables 2 and 4. Without `.column` the row pass takes `V`
/// as its values; BN sits between the column and row passes and exists only when both do.
/// Matches `Naive` `gsa` (SpatialAttentionReference) within `Tolerance.gsa`.
/// Weight names and shapes for loading are in docs/gsa.md.
public struct GSA: Layer {
    /// Which of the three attention layers the module has (003 Table 4).
    public struct Components: OptionSet, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }

        /// Content attention `Q·(K̂ᵀ·V)`.
        public static let content = Components(rawValue: 1)
        /// Column-only positional attention (vertical offsets, embedding `R_c`).
        public static let column = Components(rawValue: 2)
        /// Row-only positional attention (horizontal offsets, embedding `R_r`).
        public static let row = Components(rawValue: 4)
        /// Column then row: the positional attention layer.
        public static let positional: Components = [.column, .row]
        /// The full module (the default).
        public static let all: Components = [.content, .column, .row]

        public var description: String {
            let names = [(Components.content, "content"), (.column, "column"), (.row, "row")]
            return names.filter { contains($0.0) }.map(\.1).joined(separator: "+")
        }
    }

    /// Batch normalisation in inference form: `y = (x − mean)/√(var + ε)·weight + bias` per channel.
    public struct Normalization: Sendable, Equatable {
        public var weight: [Float]
        public var bias: [Float]
        public var runningMean: [Float]
        public var runningVariance: [Float]
        public var epsilon: Float

        /// Creates the statistics and affine parameters of `weight.count` channels.
        ///
        /// - Throws: ``ShapeError`` when the four arrays differ in length.
        public init(weight: [Float], bias: [Float], runningMean: [Float], runningVariance: [Float],
                    epsilon: Float = 1e-5) throws {
            let n = weight.count
            guard bias.count == n, runningMean.count == n, runningVariance.count == n else {
                throw ShapeError("batch norm arrays [\(weight.count)], [\(bias.count)], [\(runningMean.count)], " +
                                 "[\(runningVariance.count)] must have one length")
            }
            self.weight = weight
            self.bias = bias
            self.runningMean = runningMean
            self.runningVariance = runningVariance
            self.epsilon = epsilon
        }

        /// Seeded parameters for `channels` channels: weight and variance uniform on [0.5, 1.5),
        /// bias and mean normal with σ = 0.1.
        public static func seeded(channels: Int, seed: UInt64) -> Normalization {
            var g = SeededGenerator(seed: seed)
            let uniform = RandomDistribution.uniform(lower: 0.5, upper: 1.5)
            let normal = RandomDistribution.normal(mean: 0, standardDeviation: 0.1)
            let w = (0..<channels).map { _ in uniform.sample(using: &g) }
            let b = (0..<channels).map { _ in normal.sample(using: &g) }
            let m = (0..<channels).map { _ in normal.sample(using: &g) }
            let v = (0..<channels).map { _ in uniform.sample(using: &g) }
            return try! Normalization(weight: w, bias: b, runningMean: m, runningVariance: v)
        }

        /// `(scale, shift)` with `y = x·scale + shift`, computed in Double and rounded once.
        public var affine: (scale: [Float], shift: [Float]) {
            var scale = [Float](repeating: 0, count: weight.count), shift = scale
            for c in weight.indices {
                let s = Double(weight[c]) / (Double(runningVariance[c]) + Double(epsilon)).squareRoot()
                scale[c] = Float(s)
                shift[c] = Float(Double(bias[c]) - Double(runningMean[c]) * s)
            }
            return (scale, shift)
        }
    }

    /// `C`, the input channels.
    public let channels: Int
    /// The number of heads.
    public let heads: Int
    /// Key (and query) channels over all heads, `heads·dk`.
    public let keyChannels: Int
    /// Value channels over all heads, `heads·dv`: the output channels.
    public let valueChannels: Int
    /// `L`: the positional layers attend to offsets `|δ| ≤ L − 1`; the embeddings have `2L − 1` rows.
    public let extent: Int
    /// The attention layers present.
    public let components: Components
    /// `W_Q`, `[keyChannels, channels]`, head-major rows.
    public let queryWeight: [Float]
    /// `W_K`, `[keyChannels, channels]`; empty without `.content`.
    public let keyWeight: [Float]
    /// `W_V`, `[valueChannels, channels]`.
    public let valueWeight: [Float]
    /// `R_c`, `[2L − 1, dk]`, row `δ + L − 1` for the vertical offset `δ`; empty without `.column`.
    public let columnEmbedding: [Float]
    /// `R_r`, `[2L − 1, dk]`, row `δ + L − 1` for the horizontal offset `δ`; empty without `.row`.
    public let rowEmbedding: [Float]
    /// The BN between the column and row passes (`valueChannels` channels); nil unless both exist.
    public let normalization: Normalization?

    /// How the positional passes compute their two products per column (row) and head.
    public enum PositionalKernel: String, CaseIterable, Sendable {
        /// Fused SIMD micro-kernels on L1-resident copies, parallel over lines (GSA+LineKernel.swift).
        case fused
        /// One sgemm for the shift logits `Q·Rᵀ` per line, a gather by leading dimension, one sgemm per
        /// line and head for the weighted sums (GSA+Positional.swift).
        case gemm
    }

    /// The positional kernel (default ``PositionalKernel/fused``). Both give the same values up to rounding.
    public var positionalKernel: PositionalKernel = .fused

    // Derived at initialisation: the stacked projection of the positional path and the BN affine.
    let projection: [Float]
    /// `[W_Q; W_K; W_V]` in head-major rows: the projection of the fused (channel-major) path.
    let planarProjection: [Float]
    let normalizationScale: [Float]
    let normalizationShift: [Float]

    /// `dk`, the key channels of one head.
    public var keyChannelsPerHead: Int { keyChannels / heads }
    /// `dv`, the value channels of one head.
    public var valueChannelsPerHead: Int { valueChannels / heads }

    /// Creates a module with seeded random weights: projections normal with σ = 1/√C, embeddings normal
    /// with σ = 1/√dk, BN by ``Normalization/seeded(channels:seed:)``.
    ///
    /// `keyChannels` and `valueChannels` default to `channels` (003 §4: "the number of channels for K, Q,
    /// V ... the same as the corresponding input features"); `extent` is `L`, usually `max(H, W)` of the
    /// input the module will see (global positional attention).
    ///
    /// - Throws: ``ShapeError`` when a channel count is not a positive multiple of `heads`, or `extent < 1`.
    public init(channels: Int, heads: Int = 8, keyChannels: Int? = nil, valueChannels: Int? = nil,
                extent: Int, components: Components = .all, seed: UInt64) throws {
        let dkTotal = keyChannels ?? channels, dvTotal = valueChannels ?? channels
        try GSA.validate(channels: channels, heads: heads, keyChannels: dkTotal, valueChannels: dvTotal,
                         extent: extent, components: components)
        var g = SeededGenerator(seed: seed)
        func normal(_ count: Int, _ sigma: Float) -> [Float] {
            let d = RandomDistribution.normal(mean: 0, standardDeviation: sigma)
            return (0..<count).map { _ in d.sample(using: &g) }
        }
        let sigma = 1 / Float(channels).squareRoot(), dk = dkTotal / heads
        let q = normal(dkTotal * channels, sigma)
        let k = components.contains(.content) ? normal(dkTotal * channels, sigma) : []
        let v = normal(dvTotal * channels, sigma)
        let rows = 2 * extent - 1, eSigma = 1 / Float(dk).squareRoot()
        let rc = components.contains(.column) ? normal(rows * dk, eSigma) : []
        let rr = components.contains(.row) ? normal(rows * dk, eSigma) : []
        let bn = components.isSuperset(of: .positional)
            ? Normalization.seeded(channels: dvTotal, seed: seed &+ 0x5EED) : nil
        try self.init(channels: channels, heads: heads, extent: extent, components: components,
                      queryWeight: q, keyWeight: k, valueWeight: v,
                      columnEmbedding: rc, rowEmbedding: rr, normalization: bn)
    }

    /// Creates a module from explicit weights (row-major, the shapes of docs/gsa.md).
    ///
    /// `keyChannels = queryWeight.count / channels`, `valueChannels = valueWeight.count / channels`.
    /// Arrays of components not in `components` must be empty (`normalization` nil).
    ///
    /// - Throws: ``ShapeError`` naming the array whose size does not fit.
    public init(channels: Int, heads: Int, extent: Int, components: Components = .all,
                queryWeight: [Float], keyWeight: [Float], valueWeight: [Float],
                columnEmbedding: [Float], rowEmbedding: [Float], normalization: Normalization?) throws {
        guard channels > 0, queryWeight.count % channels == 0, valueWeight.count % channels == 0 else {
            throw ShapeError("GSA query weight [\(queryWeight.count)] and value weight [\(valueWeight.count)] " +
                             "must be [d, \(channels)] for channels \(channels)")
        }
        let dkTotal = queryWeight.count / channels, dvTotal = valueWeight.count / channels
        try GSA.validate(channels: channels, heads: heads, keyChannels: dkTotal, valueChannels: dvTotal,
                         extent: extent, components: components)
        let dk = dkTotal / heads, rows = 2 * extent - 1
        func check(_ array: [Float], _ name: String, _ present: Bool, _ shape: String, _ count: Int) throws {
            let expected = present ? count : 0
            guard array.count == expected else {
                throw ShapeError("GSA \(name) has \(array.count) elements, expected " +
                                 (present ? "\(shape) = \(count)" : "none without that component"))
            }
        }
        try check(keyWeight, "key weight", components.contains(.content), "[\(dkTotal), \(channels)]", dkTotal * channels)
        try check(columnEmbedding, "column embedding", components.contains(.column), "[\(rows), \(dk)]", rows * dk)
        try check(rowEmbedding, "row embedding", components.contains(.row), "[\(rows), \(dk)]", rows * dk)
        let needsNorm = components.isSuperset(of: .positional)
        if needsNorm != (normalization != nil) || (normalization.map { $0.weight.count != dvTotal } ?? false) {
            throw ShapeError("GSA normalization must have [\(dvTotal)] channels with both column and row " +
                             "components and be nil otherwise; got \(normalization.map { "[\($0.weight.count)]" } ?? "nil")")
        }
        self.channels = channels
        self.heads = heads
        self.keyChannels = dkTotal
        self.valueChannels = dvTotal
        self.extent = extent
        self.components = components
        self.queryWeight = queryWeight
        self.keyWeight = keyWeight
        self.valueWeight = valueWeight
        self.columnEmbedding = columnEmbedding
        self.rowEmbedding = rowEmbedding
        self.normalization = normalization
        let affine = normalization?.affine
        self.normalizationScale = affine?.scale ?? []
        self.normalizationShift = affine?.shift ?? []
        self.planarProjection = queryWeight + keyWeight + valueWeight
        self.projection = components == .content ? [] : GSA.stackedProjection(
            query: queryWeight, key: keyWeight, value: valueWeight, heads: heads, channels: channels,
            dk: dk, dv: dvTotal / heads)
    }

    static func validate(channels: Int, heads: Int, keyChannels: Int, valueChannels: Int,
                         extent: Int, components: Components) throws {
        guard channels > 0, heads > 0, keyChannels > 0, valueChannels > 0,
              keyChannels % heads == 0, valueChannels % heads == 0 else {
            throw ShapeError("GSA needs channels \(channels), key channels \(keyChannels) and value channels " +
                             "\(valueChannels) positive, the latter two multiples of heads \(heads)")
        }
        guard extent >= 1 else { throw ShapeError("GSA extent L = \(extent) must be ≥ 1") }
        guard !components.isEmpty else { throw ShapeError("GSA needs at least one component") }
    }

    /// Rows of `[W_Q; W_K; W_V]` regrouped per head: `(q_h, k_h, v_h)` blocks, so that in the projected
    /// `[pixels, heads·block]` matrix the query rows of one image row form a single strided matrix.
    static func stackedProjection(query: [Float], key: [Float], value: [Float], heads: Int,
                                  channels: Int, dk: Int, dv: Int) -> [Float] {
        var rows: [Float] = []
        rows.reserveCapacity((query.count + key.count + value.count))
        for h in 0..<heads {
            rows += query[(h * dk * channels)..<((h + 1) * dk * channels)]
            if !key.isEmpty { rows += key[(h * dk * channels)..<((h + 1) * dk * channels)] }
            rows += value[(h * dv * channels)..<((h + 1) * dv * channels)]
        }
        return rows
    }

    // MARK: - Layer

    public func outputShape(for input: Shape) throws -> Shape {
        guard input.channels == channels else {
            throw ShapeError("GSA expects \(channels) input channels, got input \(input)")
        }
        return Shape(input.batch, valueChannels, input.height, input.width)
    }

    /// Projections `W_Q`, `W_K`, `W_V`, the two embeddings and the BN's weight and bias.
    public var parameterCount: Int {
        queryWeight.count + keyWeight.count + valueWeight.count + columnEmbedding.count + rowEmbedding.count
            + (normalization.map { 2 * $0.weight.count } ?? 0)
    }

    /// MACs of the reference computation (docs/gsa.md): projections `P·C·(keyChannels + valueChannels)`
    /// plus `P·C·keyChannels` for the keys with content; content `2·P·dk·dv` per head (`K̂ᵀ·V` and
    /// `Q·C`); the column pass `P·H·(dk + dv)` per head and the row pass `P·W·(dk + dv)` per head (the
    /// logits `q·R` and the weighted sums over a whole column or row, as the GEMMs compute them; offsets
    /// beyond `L − 1` are multiplied by zero rows); BN one per output element. Softmax and sums count zero.
    public func multiplyAccumulates(for input: Shape) throws -> Int {
        let out = try outputShape(for: input)
        let (P, dk, dv) = (input.pixels, keyChannelsPerHead, valueChannelsPerHead)
        var perImage = P * channels * (keyChannels + valueChannels)
        if components.contains(.content) { perImage += P * channels * keyChannels + 2 * P * dk * dv * heads }
        if components.contains(.column) { perImage += P * input.height * (dk + dv) * heads }
        if components.contains(.row) { perImage += P * input.width * (dk + dv) * heads }
        if normalization != nil { perImage += out.pixels * valueChannels }
        return input.batch * perImage
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try callAsFunction(x, threads: nil) }
}
