import CKernels

/// A fully connected layer over each image's flattened features, as PyTorch's
/// `Linear(torch.flatten(x, 1))`.
///
/// Shapes: `x` `[N, C, H, W]` with `C·H·W = inputFeatures` (flattened in NCHW order, so a `[N, C, 1, 1]`
/// pooled batch is the usual input), `weight` `[outputFeatures, inputFeatures]`, `bias`
/// `[outputFeatures]`, output `[N, outputFeatures, 1, 1]`.
/// Reference: `y[n, o] = bias[o] + Σ_i weight[o, i] · x[n, i]`: one GEMM `X·Wᵀ` over the batch.
/// Matches `Naive` `linear` within `Tolerance` `.convolution`.
/// Complexity: `out·in + out` parameters (with bias), `N·out·in` MACs.
public struct Linear: Layer {
    /// `in`, the features of one image.
    public let inputFeatures: Int
    /// `out`.
    public let outputFeatures: Int
    /// `[out, in]` row-major.
    public let weight: [Float]
    /// `[out]`, or nil.
    public let bias: [Float]?

    /// Creates the layer from its weights.
    ///
    /// - Throws: ``ShapeError`` when a count is not positive or the arrays do not match it.
    public init(inputFeatures: Int, outputFeatures: Int, weight: [Float], bias: [Float]? = nil) throws {
        guard inputFeatures > 0, outputFeatures > 0 else {
            throw ShapeError("linear layer \(inputFeatures)→\(outputFeatures) needs positive feature counts")
        }
        guard weight.count == inputFeatures * outputFeatures else {
            throw ShapeError("linear weight [\(outputFeatures), \(inputFeatures)] needs " +
                             "\(inputFeatures * outputFeatures) values, got \(weight.count)")
        }
        if let bias, bias.count != outputFeatures {
            throw ShapeError("linear bias needs \(outputFeatures) values, got \(bias.count)")
        }
        self.inputFeatures = inputFeatures
        self.outputFeatures = outputFeatures
        self.weight = weight
        self.bias = bias
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try callAsFunction(x, threads: nil) }

    /// Applies the layer with OpenBLAS on `threads` threads.
    ///
    /// - Throws: ``ShapeError`` when `C·H·W` of `x` is not ``inputFeatures``.
    public func callAsFunction(_ x: Tensor, threads: Int?) throws -> Tensor {
        let out = try outputShape(for: x.shape)
        let input = x.converted(to: .nchw)
        let t = Threads.resolve(threads)
        if BLAS.threads != t { BLAS.threads = t }
        var y = Tensor.uninitialized(shape: out)
        let (N, I, O) = (x.shape.batch, inputFeatures, outputFeatures)
        input.scalars.withUnsafeBufferPointer { px in
            weight.withUnsafeBufferPointer { pw in
                y.scalars.withUnsafeMutableBufferPointer { py in
                    guard N > 0, let dst = py.baseAddress else { return }
                    if let bias {
                        for n in 0..<N { (dst + n * O).update(from: bias, count: O) }
                    }
                    if N == 1 {
                        // One image: a matrix-vector product streams the weights once (sgemm would
                        // pack them first).
                        // y starts as the bias or zeros (never relying on beta = 0 to ignore NaN garbage).
                        if bias == nil { dst.update(repeating: 0, count: O) }
                        Threads.releaseCores()
                        ck_sgemv(Int32(O), Int32(I), 1, pw.baseAddress!, Int32(I), px.baseAddress!, 1, dst)
                    } else {
                        GEMM.multiply(m: N, n: O, k: I, a: px.baseAddress!, lda: I,
                                      b: pw.baseAddress!, ldb: I, transposeB: true,
                                      beta: bias == nil ? 0 : 1, c: dst, ldc: O)
                    }
                }
            }
        }
        return y.converted(to: x.layout)
    }

    public func outputShape(for input: Shape) throws -> Shape {
        try input.validate()
        guard input.channels * input.pixels == inputFeatures else {
            throw ShapeError("linear layer expects C·H·W = \(inputFeatures) features per image, got input \(input)")
        }
        return Shape(input.batch, outputFeatures, 1, 1)
    }

    public var parameterCount: Int { weight.count + (bias?.count ?? 0) }

    public func multiplyAccumulates(for input: Shape) throws -> Int {
        try outputShape(for: input).batch * inputFeatures * outputFeatures
    }
}
