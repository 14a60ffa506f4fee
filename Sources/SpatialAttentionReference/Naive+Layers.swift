import SpatialAttention

extension Naive {
    /// Inference batch norm, `y = γ·(x − mean)/√(var + ε) + β` per channel, in Double: the twin of ``BatchNorm``.
    public static func batchNorm(_ x: ReferenceTensor, _ layer: BatchNorm) -> ReferenceTensor {
        var y = x
        let s = x.shape
        for n in 0..<s.batch {
            for c in 0..<s.channels {
                let denominator = (Double(layer.runningVariance[c]) + Double(layer.epsilon)).squareRoot()
                for h in 0..<s.height {
                    for w in 0..<s.width {
                        y[n, c, h, w] = Double(layer.weight[c]) * (x[n, c, h, w] - Double(layer.runningMean[c])) /
                            denominator + Double(layer.bias[c])
                    }
                }
            }
        }
        return y
    }

    /// Max pooling (padding never selected; NaN wins): the twin of ``MaxPool2D``.
    public static func maxPool(_ x: ReferenceTensor, window: WindowGeometry) throws -> ReferenceTensor {
        try pool(x, window: window) { values, _ in
            values.contains { $0.isNaN } ? .nan : values.max()!
        }
    }

    /// Average pooling: the sum of the taps inside the image over `kh·kw` (`countsPadding`) or over
    /// their number: the twin of ``AvgPool2D``.
    public static func averagePool(_ x: ReferenceTensor, window: WindowGeometry, countsPadding: Bool = true) throws -> ReferenceTensor {
        try pool(x, window: window) { values, taps in
            values.reduce(0, +) / Double(countsPadding ? taps : values.count)
        }
    }

    /// The mean of every channel plane, `[N, C, 1, 1]`: the twin of ``GlobalAveragePool``.
    public static func globalAveragePool(_ x: ReferenceTensor) -> ReferenceTensor {
        let s = x.shape
        var y = ReferenceTensor(shape: Shape(s.batch, s.channels, 1, 1))
        for n in 0..<s.batch {
            for c in 0..<s.channels {
                var sum = 0.0
                for h in 0..<s.height { for w in 0..<s.width { sum += x[n, c, h, w] } }
                y[n, c, 0, 0] = sum / Double(s.pixels)
            }
        }
        return y
    }

    /// `y[n, o] = bias[o] + Σ_i weight[o, i]·x[n, i]` over each image's NCHW-flattened features:
    /// the twin of ``Linear``. Output `[N, out, 1, 1]`.
    public static func linear(_ x: ReferenceTensor, _ layer: Linear) -> ReferenceTensor {
        let s = x.shape
        let features = s.channels * s.pixels
        precondition(features == layer.inputFeatures, "linear features")
        var y = ReferenceTensor(shape: Shape(s.batch, layer.outputFeatures, 1, 1))
        for n in 0..<s.batch {
            for o in 0..<layer.outputFeatures {
                var sum = Double(layer.bias?[o] ?? 0)
                for i in 0..<features {
                    sum += Double(layer.weight[o * features + i]) * x.values[n * features + i]
                }
                y[n, o, 0, 0] = sum
            }
        }
        return y
    }

    /// Applies `reduce(values inside the window, kh·kw)` to every output position.
    private static func pool(_ x: ReferenceTensor, window: WindowGeometry,
                             _ reduce: ([Double], Int) -> Double) throws -> ReferenceTensor {
        let s = x.shape
        let out = try window.outputSize(height: s.height, width: s.width)
        var y = ReferenceTensor(shape: Shape(s.batch, s.channels, out.height, out.width))
        for n in 0..<s.batch {
            for c in 0..<s.channels {
                for oy in 0..<out.height {
                    for ox in 0..<out.width {
                        var values: [Double] = []
                        for i in 0..<window.kernelHeight {
                            for j in 0..<window.kernelWidth {
                                let iy = oy * window.strideHeight - window.paddingHeight + i * window.dilationHeight
                                let ix = ox * window.strideWidth - window.paddingWidth + j * window.dilationWidth
                                if iy >= 0 && iy < s.height && ix >= 0 && ix < s.width { values.append(x[n, c, iy, ix]) }
                            }
                        }
                        y[n, c, oy, ox] = reduce(values, window.kernelHeight * window.kernelWidth)
                    }
                }
            }
        }
        return y
    }
}
