import CKernels

/// Batch normalisation in inference mode: a per-channel affine map from the running statistics.
///
/// Shapes: `x` `[N, C, H, W]`, either layout; output the same. Parameters `[C]` each.
/// Reference: `y[n, c, h, w] = weight[c] · (x[n, c, h, w] − runningMean[c]) / √(runningVariance[c] + ε) + bias[c]`,
/// PyTorch's `BatchNorm2d.eval()` with `ε = 1e-5`. Matches `Naive` `batchNorm` within
/// `Tolerance` `.convolution`. A model folds it into the preceding convolution when it is built
/// (``Conv2D/folding(_:)``), so it never runs as its own pass there.
///
/// Complexity: `2·C` parameters (weight and bias; the running statistics are buffers) and one MAC
/// per output element (docs/complexity.md).
public struct BatchNorm: Layer {
    /// `γ`, `[C]`.
    public let weight: [Float]
    /// `β`, `[C]`.
    public let bias: [Float]
    /// The running mean, `[C]` (a buffer, not a parameter).
    public let runningMean: [Float]
    /// The running variance, `[C]` (a buffer, not a parameter).
    public let runningVariance: [Float]
    /// `ε`, added to the variance.
    public let epsilon: Float

    /// Creates the layer from its parameters and running statistics.
    ///
    /// - Throws: ``ShapeError`` when the four arrays do not all have the same, positive count.
    public init(weight: [Float], bias: [Float], runningMean: [Float], runningVariance: [Float],
                epsilon: Float = 1e-5) throws {
        let c = weight.count
        guard c > 0, bias.count == c, runningMean.count == c, runningVariance.count == c else {
            throw ShapeError("batch norm parameters need equal positive counts, got weight \(weight.count), " +
                             "bias \(bias.count), mean \(runningMean.count), variance \(runningVariance.count)")
        }
        self.weight = weight
        self.bias = bias
        self.runningMean = runningMean
        self.runningVariance = runningVariance
        self.epsilon = epsilon
    }

    /// `C`.
    public var channels: Int { weight.count }

    /// The affine map `y = scale · x + shift` per channel, computed in Double:
    /// `scale = γ / √(var + ε)`, `shift = β − mean · scale`.
    public var affine: (scale: [Double], shift: [Double]) {
        var scale = [Double](repeating: 0, count: channels), shift = scale
        for c in 0..<channels {
            scale[c] = Double(weight[c]) / (Double(runningVariance[c]) + Double(epsilon)).squareRoot()
            shift[c] = Double(bias[c]) - Double(runningMean[c]) * scale[c]
        }
        return (scale, shift)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try callAsFunction(x, threads: nil) }

    /// Normalises `x` on at most `threads` threads.
    ///
    /// - Throws: ``ShapeError`` when `x` does not have `C` channels.
    public func callAsFunction(_ x: Tensor, threads: Int?) throws -> Tensor {
        _ = try outputShape(for: x.shape)
        let (scale, shift) = affine
        let s = scale.map(Float.init), b = shift.map(Float.init)
        let input = x.converted(to: .nchw)
        var y = Tensor.uninitialized(shape: x.shape)
        let (N, C, P) = (x.shape.batch, channels, x.shape.pixels)
        input.scalars.withUnsafeBufferPointer { px in
            y.scalars.withUnsafeMutableBufferPointer { py in
                s.withUnsafeBufferPointer { ps in
                    b.withUnsafeBufferPointer { pb in
                        guard let src = px.baseAddress, let dst = py.baseAddress else { return }
                        let chunks = min(N * C, ParallelWork.chunks(elements: x.shape.count, threads: threads))
                        Threads.forEach(chunks, threads: chunks) { t in
                            for plane in (N * C * t / chunks)..<(N * C * (t + 1) / chunks) {
                                let c = plane % C
                                ck_conv_epilogue(dst + plane * P, 0, src + plane * P, 0, ps.baseAddress! + c,
                                                 pb.baseAddress! + c, nil, 0, 1, P, 0)
                            }
                        }
                    }
                }
            }
        }
        return y.converted(to: x.layout)
    }

    public func outputShape(for input: Shape) throws -> Shape {
        try input.validate()
        guard input.channels == channels else {
            throw ShapeError("batch norm over \(channels) channels got input \(input)")
        }
        return input
    }

    public var parameterCount: Int { 2 * channels }

    public func multiplyAccumulates(for input: Shape) throws -> Int { try outputShape(for: input).count }
}

extension Conv2D {
    /// This convolution followed by `batchNorm`, as one convolution: `W'[k] = W[k] · scale[k]`,
    /// `b'[k] = b[k] · scale[k] + shift[k]` with ``BatchNorm/affine`` (computed in Double, rounded once).
    ///
    /// The activation is kept (it applies after the normalisation). Equal to conv-then-BN within
    /// `Tolerance` `.convolution`.
    ///
    /// - Throws: ``ShapeError`` when `batchNorm` does not have `K` channels.
    public func folding(_ batchNorm: BatchNorm) throws -> Conv2D {
        guard batchNorm.channels == outputChannels else {
            throw ShapeError("cannot fold a batch norm over \(batchNorm.channels) channels into a convolution " +
                             "with K = \(outputChannels) outputs")
        }
        let (scale, shift) = batchNorm.affine
        let perFilter = weight.count / outputChannels
        let folded = [Float](unsafeUninitializedCapacity: weight.count) { out, count in
            weight.withUnsafeBufferPointer { w in
                for k in 0..<outputChannels {
                    let s = scale[k]
                    for i in (k * perFilter)..<((k + 1) * perFilter) { out[i] = Float(Double(w[i]) * s) }
                }
            }
            count = weight.count
        }
        var foldedBias = [Float](repeating: 0, count: outputChannels)
        for k in 0..<outputChannels { foldedBias[k] = Float(Double(bias?[k] ?? 0) * scale[k] + shift[k]) }
        return try Conv2D(inputChannels: inputChannels, outputChannels: outputChannels, window: window,
                          groups: groups, weight: folded, bias: foldedBias, activation: activation)
    }
}
