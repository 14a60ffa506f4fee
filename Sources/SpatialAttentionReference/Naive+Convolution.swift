import SpatialAttention

extension Naive {
    /// Direct 2-D convolution (cross-correlation) in Double, the twin of ``Conv2D``:
    ///
    /// `y[n, k, oy, ox] = f(bias[k] + Σ_{c ∈ group(k)} Σ_{i, j} weight[k, c − g·C/G, i, j] ·
    /// x[n, c, oy·sh − ph + i·dh, ox·sw − pw + j·dw] + residual[n, k, oy, ox])`, zero outside the image.
    ///
    /// `weight` is `[K, C/G, kh, kw]`, `bias` `[K]` or nil, `residual` the output's shape or nil.
    public static func conv2d(
        _ x: ReferenceTensor, weight: [Float], bias: [Float]?, outputChannels: Int,
        window: WindowGeometry, groups: Int = 1, activation: ActivationFunction = .identity,
        residual: ReferenceTensor? = nil
    ) throws -> ReferenceTensor {
        let (N, C, H, W) = (x.shape.batch, x.shape.channels, x.shape.height, x.shape.width)
        let K = outputChannels
        let (kh, kw) = (window.kernelHeight, window.kernelWidth)
        let out = try window.outputSize(height: H, width: W)
        let cPerGroup = C / groups, kPerGroup = K / groups
        precondition(weight.count == K * cPerGroup * kh * kw, "weight count")
        var y = ReferenceTensor(shape: Shape(N, K, out.height, out.width))
        // Pass 1: the window sums, accumulated tap by tap over the output plane (the same sum as the
        // formula, in an order that keeps the Double loops fast enough for whole-network tests).
        let (OH, OW) = (out.height, out.width)
        var ys = y.values
        // Buffer pointers only to keep Swift's copy-on-write check out of the innermost loop.
        x.values.withUnsafeBufferPointer { xs in
            ys.withUnsafeMutableBufferPointer { ys in
                for n in 0..<N {
                    for k in 0..<K {
                        let g = k / kPerGroup
                        let plane = (n * K + k) * OH * OW
                        for p in 0..<(OH * OW) { ys[plane + p] = Double(bias?[k] ?? 0) }
                        for cg in 0..<cPerGroup {
                            let c = g * cPerGroup + cg
                            let source = (n * C + c) * H * W
                            for i in 0..<kh {
                                for j in 0..<kw {
                                    let w = Double(weight[((k * cPerGroup + cg) * kh + i) * kw + j])
                                    // Output columns whose tap column ix = ox·sw + dx lies inside the image.
                                    let dx = j * window.dilationWidth - window.paddingWidth
                                    var lower = 0, upper = OW
                                    while lower < OW && lower * window.strideWidth + dx < 0 { lower += 1 }
                                    while upper > lower && (upper - 1) * window.strideWidth + dx >= W { upper -= 1 }
                                    for oy in 0..<OH {
                                        let iy = oy * window.strideHeight - window.paddingHeight + i * window.dilationHeight
                                        if iy < 0 || iy >= H { continue }
                                        for ox in lower..<upper {
                                            ys[plane + oy * OW + ox] += w * xs[source + iy * W + ox * window.strideWidth + dx]
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        y.values = ys
        // Pass 2: residual and activation.
        if let residual { y = add(y, residual) }
        return self.activation(y, activation)
    }

    /// ``conv2d(_:weight:bias:outputChannels:window:groups:activation:residual:)`` with the
    /// parameters stored in `layer` (its weights, bias, window, groups and activation).
    public static func conv2d(_ x: ReferenceTensor, _ layer: Conv2D, residual: ReferenceTensor? = nil) throws -> ReferenceTensor {
        try conv2d(x, weight: layer.weight, bias: layer.bias, outputChannels: layer.outputChannels,
                   window: layer.window, groups: layer.groups, activation: layer.activation, residual: residual)
    }

    /// `f(x)` element-wise: identity, `x < 0 ? 0 : x`, or that clamped at 6 (NaN stays NaN).
    public static func activation(_ x: ReferenceTensor, _ function: ActivationFunction) -> ReferenceTensor {
        var y = x
        for i in y.values.indices {
            let v = y.values[i]
            switch function {
            case .identity: break
            case .relu: y.values[i] = v < 0 ? 0 : v
            case .relu6: y.values[i] = v < 0 ? 0 : (v > 6 ? 6 : v)
            }
        }
        return y
    }

    /// `a + b` element-wise (shapes must match).
    public static func add(_ a: ReferenceTensor, _ b: ReferenceTensor) -> ReferenceTensor {
        precondition(a.shape == b.shape, "add \(a.shape) + \(b.shape)")
        var y = a
        for i in y.values.indices { y.values[i] += b.values[i] }
        return y
    }
}

extension Tolerance {
    /// Convolutions, BN, pooling, linear layers against Double: one Float32 rounding per product and
    /// a Float32 sum of `k = C·kh·kw ≤ 4608` terms of unit-scale data (Kaiming weights keep outputs
    /// O(1)) accumulates ~`√k · 2⁻²⁴ ≈ 4e-6` relative to the terms; 1e-4 covers it with margin, and
    /// BN folding adds one rounding of the scaled weights.
    public static let convolution = Tolerance(absolute: 1e-4, relative: 1e-4)
}
