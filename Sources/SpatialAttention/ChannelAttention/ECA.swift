/// Efficient channel attention (Wang et al., 2020): a 1-D convolution across the pooled channels,
/// no bias, then a sigmoid: `s = σ(w ⋆ GAP(x))`.
///
/// Shapes: `x` `[N, C, H, W]`, `weight` `[k]` (PyTorch's `Conv1d(1, 1, k)` weight `[1, 1, k]`), `k` odd;
/// output `s ⊙ x` (``ChannelAttention``).
/// Reference: `z = mean_{h,w} x[n, :, h, w]`, `s[n, c] = σ(Σ_{j<k} w[j] · z[n, c + j − (k−1)/2])`,
/// zero outside `0..<C`. Matches `Naive` `efficientChannelAttention` within `Tolerance` `.convolution`.
/// Complexity: `k` parameters (3, 5, 5, 7 by stage: +80 on ResNet-50); `C·k` MACs per image plus one
/// per element for the scaling `s ⊙ x` (the papers' 4.12 G on ResNet-50; docs/complexity.md).
public struct EfficientChannelAttention: ChannelAttention {
    public let channels: Int
    /// The 1-D filter, `k` taps.
    public let weight: [Float]

    /// Creates the module for `channels` channels from its filter.
    ///
    /// - Throws: ``ShapeError`` when `channels` is not positive or the filter length is not odd.
    public init(channels: Int, weight: [Float]) throws {
        guard channels > 0, weight.count % 2 == 1 else {
            throw ShapeError("efficient channel attention needs C > 0 and an odd kernel, got C = \(channels), k = \(weight.count)")
        }
        self.channels = channels
        self.weight = weight
    }

    /// `k`.
    public var kernelSize: Int { weight.count }

    public func scales(for x: Tensor, threads: Int?) throws -> [Float] {
        let z = try channelMeans(x, threads: threads)
        let (N, C, k) = (x.shape.batch, channels, weight.count)
        let half = (k - 1) / 2
        var s = [Float](repeating: 0, count: N * C)
        for n in 0..<N {
            for c in 0..<C {
                var sum: Float = 0
                for j in 0..<k {
                    let source = c + j - half
                    if source >= 0 && source < C { sum += weight[j] * z[n * C + source] }
                }
                s[n * C + c] = sigmoid(sum)
            }
        }
        return s
    }

    public var parameterCount: Int { weight.count }

    public func multiplyAccumulates(for input: Shape) throws -> Int {
        _ = try outputShape(for: input)
        return input.batch * channels * weight.count + input.count
    }
}
