/// Simple parameter-free self-attention (SPSA, GSCA): `out = (1 − σ(corr(x[p], k)))^α ∘ x`, `k` = GAP(x).
///
/// Shapes: `x` `[N, C, H, W]` in either layout, `out` the same shape and layout. Heads split `C` into
/// groups of `channelsPerHead` consecutive channels; each group has its own key and attention map.
/// For image `n` and head `g` (channels `c ∈ g·cph ..< (g+1)·cph`):
///
/// ```
/// k_c  = mean_{h,w} x[n,c,h,w]                       (global average pool)
/// kc   = k − mean_c(k)
/// xc_p = x[n,·,p] − mean_c(x[n,·,p])                 (per pixel p)
/// corr = Σ_c xc_p·kc / (‖xc_p‖·‖kc‖)                 (Pearson correlation, 001 Eq. 1)
/// A_p  = (1 − σ(corr))^α   (reverse, default)   or   σ(corr)^α   (no reverse)
/// out[n,c,p] = A_p · x[n,c,p]
/// ```
///
/// With ``Similarity/cosine`` nothing is centred (`kc = k`, `xc = x`): the ablation of 002 Table 10.
///
/// Matches `Naive` `spsa(_:alpha:channelsPerHead:reverse:similarity:)` (a transcription of 001 A.1)
/// within `Tolerance.spsa`, in both layouts, for any thread count.
///
/// Degenerate and non-finite input:
/// - where a pixel's channel vector within a head is constant (`‖xc‖ = 0`: common after ReLU, and
///   always with one channel per head), or the head's key is constant (`‖kc‖ = 0`), `corr` is 0 and
///   `A = 0.5^α`, never NaN (the paper's code divides 0 by 0 there). For ``Similarity/cosine`` the
///   degenerate vectors are the all-zero ones.
/// - a NaN or ±Inf anywhere in a head's input makes that head's key NaN, so the whole head's output is
///   NaN (with α = 0, `A = 1` and the output is the input, as `NaN ** 0 = 1` in PyTorch).
/// - moments are accumulated in Float32 with shifted sums (robust to a large common offset such as
///   `x + 1000`); inputs beyond about `1e18` in magnitude overflow the squared norms.
public struct SPSA: Layer, Hashable {
    /// How channels are compared with the key.
    public enum Similarity: String, CaseIterable, Sendable {
        /// Pearson correlation (centred cosine): the paper's choice.
        case correlation
        /// Cosine similarity without centring: the ablation.
        case cosine
    }

    /// How `C` is split into heads.
    public enum HeadSplit: Hashable, Sendable {
        /// A fixed number of channels per head (002 §4.2: 64); heads = C / channelsPerHead.
        case channelsPerHead(Int)
        /// A fixed number of heads; channelsPerHead = C / heads.
        case heads(Int)
    }

    /// The exponent α ≥ 0 of the attention map (002: 2). α = 1 and α = 2 have fast paths.
    public var alpha: Float
    /// How channels are grouped into heads.
    public var headSplit: HeadSplit
    /// True for `A = (1 − σ(corr))^α` (the paper's reverse operation), false for `σ(corr)^α`.
    public var reverse: Bool
    /// Correlation (default) or cosine similarity.
    public var similarity: Similarity

    /// SPSA with `channelsPerHead` channels in each head (default 64, 002 §4.2).
    public init(alpha: Float = 2, channelsPerHead: Int = 64, reverse: Bool = true,
                similarity: Similarity = .correlation) {
        self.alpha = alpha
        self.headSplit = .channelsPerHead(channelsPerHead)
        self.reverse = reverse
        self.similarity = similarity
    }

    /// SPSA with a fixed number of heads.
    public init(alpha: Float = 2, heads: Int, reverse: Bool = true, similarity: Similarity = .correlation) {
        self.alpha = alpha
        self.headSplit = .heads(heads)
        self.reverse = reverse
        self.similarity = similarity
    }

    /// The number of heads for `channels` channels.
    ///
    /// - Throws: ``ShapeError`` when the channels do not split evenly; ``ArgumentError`` when the
    ///   head size or count is below 1.
    public func heads(forChannels channels: Int) throws -> Int {
        switch headSplit {
        case let .channelsPerHead(cph):
            guard cph >= 1 else { throw ArgumentError("SPSA channelsPerHead must be ≥ 1, got \(cph)") }
            guard channels % cph == 0 else {
                throw ShapeError("SPSA: C = \(channels) is not a multiple of channelsPerHead = \(cph)")
            }
            return channels / cph
        case let .heads(h):
            guard h >= 1 else { throw ArgumentError("SPSA heads must be ≥ 1, got \(h)") }
            guard channels % h == 0 else {
                throw ShapeError("SPSA: C = \(channels) is not a multiple of heads = \(h)")
            }
            return h
        }
    }

    /// Applies SPSA: a new tensor of the same shape and layout as `x`.
    ///
    /// - Throws: ``ShapeError`` when `x` is empty or `C` does not split into heads;
    ///   ``ArgumentError`` when α is negative or not finite.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try callAsFunction(x, threads: nil)
    }

    /// Applies SPSA on at most `threads` threads (`nil`: ``Threads/defaultCount``).
    public func callAsFunction(_ x: Tensor, threads: Int?) throws -> Tensor {
        // The kernel writes every element (the tests fill outputs with NaN to check it), so the
        // output is not zeroed first: that would be one more full write of the tensor.
        var output = Tensor.uninitialized(shape: x.shape, layout: x.layout)
        try apply(to: x, into: &output, threads: threads)
        return output
    }

    /// Writes SPSA of `x` into `output`, which must have the shape and layout of `x`.
    ///
    /// - Throws: as ``callAsFunction(_:)``, and ``ShapeError`` when `output` does not match `x`.
    public func apply(to x: Tensor, into output: inout Tensor, threads: Int? = nil) throws {
        guard output.shape == x.shape, output.layout == x.layout else {
            throw ShapeError("SPSA output \(output.shape) \(output.layout) does not match input \(x.shape) \(x.layout)")
        }
        let plan = try makePlan(for: x.shape, layout: x.layout)
        x.scalars.withUnsafeBufferPointer { src in
            output.scalars.withUnsafeMutableBufferPointer { dst in
                plan.run(source: src.baseAddress!, destination: dst.baseAddress!, threads: Threads.resolve(threads))
            }
        }
    }

    /// Applies SPSA in place (inference: no second buffer).
    ///
    /// - Throws: as ``callAsFunction(_:)``.
    public func applyInPlace(_ x: inout Tensor, threads: Int? = nil) throws {
        let plan = try makePlan(for: x.shape, layout: x.layout)
        x.scalars.withUnsafeMutableBufferPointer { buffer in
            let p = buffer.baseAddress!
            plan.run(source: UnsafePointer(p), destination: p, threads: Threads.resolve(threads))
        }
    }

    public func outputShape(for input: Shape) throws -> Shape {
        _ = try makePlan(for: input, layout: .nchw)
        return input
    }

    /// SPSA has no learned parameters.
    public var parameterCount: Int { 0 }

    /// Zero in the papers' convention (001 Table 1 lists ResNet-50 and ResNet-50 + SPSA at the same
    /// 4.11 G): SPSA's `O(HW·C)` element-wise work is not a multiply-accumulate of a conv or fc layer.
    /// ``arithmeticOperations(for:)`` gives its real operation count.
    public func multiplyAccumulates(for input: Shape) throws -> Int {
        _ = try outputShape(for: input)
        return 0
    }

    /// The floating-point operations of one call: per element the key sum (1), the moment passes (5)
    /// and the scaling (1), about `7·N·C·H·W`, plus a per-pixel term for σ and the power.
    public func arithmeticOperations(for input: Shape) throws -> Int {
        _ = try outputShape(for: input)
        return 7 * input.count + 20 * input.batch * (try heads(forChannels: input.channels)) * input.pixels
    }

    func makePlan(for shape: Shape, layout: Layout) throws -> SPSAPlan {
        try shape.validate()
        guard !shape.isEmpty else { throw ShapeError("SPSA needs a non-empty tensor, got \(shape)") }
        guard alpha.isFinite, alpha >= 0 else { throw ArgumentError("SPSA alpha must be finite and ≥ 0, got \(alpha)") }
        let heads = try heads(forChannels: shape.channels)
        return SPSAPlan(shape: shape, layout: layout, heads: heads, alpha: alpha, reverse: reverse,
                        centered: similarity == .correlation)
    }
}

/// SPSA with the given options applied to `x`; see ``SPSA``.
///
/// - Throws: as ``SPSA/callAsFunction(_:)``.
public func spsa(_ x: Tensor, alpha: Float = 2, channelsPerHead: Int = 64, reverse: Bool = true,
                 similarity: SPSA.Similarity = .correlation, threads: Int? = nil) throws -> Tensor {
    try SPSA(alpha: alpha, channelsPerHead: channelsPerHead, reverse: reverse, similarity: similarity)(x, threads: threads)
}
