/// Squeeze-and-excitation (Hu et al., 2018), without biases: `s = σ(W₂ · ReLU(W₁ · GAP(x)))`.
///
/// Shapes: `x` `[N, C, H, W]`; `W₁` (`fc1`) `[C/r, C]`, `W₂` (`fc2`) `[C, C/r]` row-major (a PyTorch
/// `Linear` weight each); output `s ⊙ x` (``ChannelAttention``).
/// Reference: `z = mean_{h,w} x[n, :, h, w]`, `s = σ(W₂ · max(W₁ z, 0))`. Matches `Naive`
/// `squeezeExcitation` within `Tolerance` `.convolution`.
/// Complexity: `2·C²/r` parameters (reduction 16 on ResNet-50: +2,514,944); `2·C²/r` MACs per image,
/// one per hidden ReLU element and one per element for the scaling `s ⊙ x`, which reproduces the
/// papers' SE columns (4.12 G on ResNet-50; docs/complexity.md).
public struct SqueezeExcitation: ChannelAttention {
    public let channels: Int
    /// `C/r`, the bottleneck width.
    public let hiddenChannels: Int
    /// `W₁`, `[C/r, C]`.
    public let reduceWeight: [Float]
    /// `W₂`, `[C, C/r]`.
    public let expandWeight: [Float]

    /// Creates the module from its two weight matrices.
    ///
    /// - Throws: ``ShapeError`` when a count is not positive or an array does not match `[C/r, C]`, `[C, C/r]`.
    public init(channels: Int, hiddenChannels: Int, reduceWeight: [Float], expandWeight: [Float]) throws {
        guard channels > 0, hiddenChannels > 0 else {
            throw ShapeError("squeeze-excitation needs positive channel counts, got \(channels) and \(hiddenChannels)")
        }
        guard reduceWeight.count == channels * hiddenChannels, expandWeight.count == channels * hiddenChannels else {
            throw ShapeError("squeeze-excitation weights must be [\(hiddenChannels), \(channels)] and " +
                             "[\(channels), \(hiddenChannels)], got \(reduceWeight.count) and \(expandWeight.count) values")
        }
        self.channels = channels
        self.hiddenChannels = hiddenChannels
        self.reduceWeight = reduceWeight
        self.expandWeight = expandWeight
    }

    public func scales(for x: Tensor, threads: Int?) throws -> [Float] {
        let z = try channelMeans(x, threads: threads)
        let N = x.shape.batch
        let t = Threads.resolve(threads)
        if BLAS.threads != t { BLAS.threads = t }
        var hidden = try GEMM.multiply(z, reduceWeight, m: N, n: hiddenChannels, k: channels, transposeB: true)
        for i in hidden.indices where hidden[i] < 0 { hidden[i] = 0 }
        var s = try GEMM.multiply(hidden, expandWeight, m: N, n: channels, k: hiddenChannels, transposeB: true)
        for i in s.indices { s[i] = sigmoid(s[i]) }
        return s
    }

    public var parameterCount: Int { reduceWeight.count + expandWeight.count }

    public func multiplyAccumulates(for input: Shape) throws -> Int {
        _ = try outputShape(for: input)
        return input.batch * (2 * channels * hiddenChannels + hiddenChannels) + input.count
    }
}
