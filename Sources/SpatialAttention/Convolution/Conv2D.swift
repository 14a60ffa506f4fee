/// A 2-D convolution (cross-correlation, as in PyTorch) with bias and a fused activation, for inference.
///
/// Shapes: `x` `[N, C, H, W]`, `weight` `[K, C/groups, kh, kw]` (PyTorch's order), `bias` `[K]`,
/// output `[N, K, H', W']` with `H' = ⌊(H + 2·pad − dilation·(kh − 1) − 1) / stride⌋ + 1`
/// (``WindowGeometry/outputSize(height:width:)``).
///
/// Reference: `y[n, k, oy, ox] = f(bias[k] + Σ_{c ∈ group(k)} Σ_{i, j} weight[k, c − g·C/G, i, j] ·
/// x[n, c, oy·sh − ph + i·dh, ox·sw − pw + j·dw] + residual[n, k, oy, ox])`, zero outside the image,
/// `f` the ``activation``. Matches `Naive` `conv2d` within `Tolerance` `.convolution`.
///
/// The work runs on one of the ``Algorithm`` kernels (``preferredAlgorithm(for:)`` by default): a 1×1
/// stride-1 convolution is one GEMM over the input with no im2col; other dense or grouped
/// convolutions are im2col + GEMM; depthwise convolutions use a direct kernel. The bias, an optional
/// residual and the activation are applied in one pass over the GEMM's output. Computation is in
/// NCHW; an NHWC input is converted, and the output is returned in the input's layout.
/// NaN and infinity propagate as IEEE arithmetic makes them (ReLU keeps NaN).
public struct Conv2D: Layer {
    /// `C`, the input channels.
    public let inputChannels: Int
    /// `K`, the output channels.
    public let outputChannels: Int
    /// Kernel, stride, padding and dilation.
    public let window: WindowGeometry
    /// Channel groups `G`: `C` and `K` are multiples of `G`; group `g` maps input channels
    /// `g·C/G ..< (g+1)·C/G` to output channels `g·K/G ..< (g+1)·K/G`.
    public let groups: Int
    /// The filters, `[K, C/G, kh, kw]` row-major.
    public let weight: [Float]
    /// The bias `[K]`, or nil for none.
    public let bias: [Float]?
    /// The activation applied in the epilogue, after the bias and the residual.
    public let activation: ActivationFunction
    /// The filters of each group packed for ``Algorithm/packed`` (empty for a depthwise layer):
    /// group `g` at `g·packedGroupStride`.
    let packedWeight: [Float]
    let packedGroupStride: Int
    /// The Winograd-transformed filters for ``Algorithm/winograd`` (empty where it does not apply).
    let winogradWeight: [Float]

    /// The kernels a convolution can run on. Tests and the benchmark loop over `allCases`.
    public enum Algorithm: String, Sendable, CaseIterable, CustomStringConvertible {
        /// 1×1, stride 1, no padding: one GEMM per group straight over the input (no im2col).
        case pointwise
        /// Any convolution: im2col per image, then one GEMM per group.
        case im2col
        /// Depthwise (`G = C = K`): a direct sliding-window kernel, one filter per channel.
        case depthwise
        /// The package's own GEMM (`ck_packed_gemm`) on filters packed when the layer is built, with
        /// bias, residual and activation applied as the output is stored; the input is read directly
        /// (1×1 stride 1) or through im2col. AVX-512 micro-kernel; a portable scalar one elsewhere.
        case packed
        /// Winograd F(2×2, 3×3) for 3×3, stride-1, dilation-1 dense layers: 16 GEMMs on filters
        /// transformed when the layer is built, 2.25× fewer multiplications (`ck_winograd_conv`).
        case winograd

        public var description: String { rawValue }
    }

    /// Creates a convolution from its filters.
    ///
    /// - Throws: ``ShapeError`` when a count is not positive, `C` or `K` is not a multiple of
    ///   `groups`, the window is invalid, `weight` is not `K·C/G·kh·kw` values or `bias` not `K`.
    public init(inputChannels: Int, outputChannels: Int, window: WindowGeometry, groups: Int = 1,
                weight: [Float], bias: [Float]? = nil, activation: ActivationFunction = .identity) throws {
        try self.init(inputChannels: inputChannels, outputChannels: outputChannels, window: window, groups: groups,
                      weight: weight, bias: bias, activation: activation, packing: true)
    }

    /// `packing: false` skips the packed and Winograd filter copies: a layer that only describes
    /// itself (``ModelName/layerTable(for:)``) and runs, if ever, on the OpenBLAS kernels.
    init(inputChannels: Int, outputChannels: Int, window: WindowGeometry, groups: Int,
         weight: [Float], bias: [Float]?, activation: ActivationFunction, packing: Bool) throws {
        guard inputChannels > 0, outputChannels > 0, groups > 0 else {
            throw ShapeError("convolution \(inputChannels)→\(outputChannels) channels in \(groups) groups: all must be ≥ 1")
        }
        guard inputChannels % groups == 0, outputChannels % groups == 0 else {
            throw ShapeError("convolution \(inputChannels)→\(outputChannels) channels: both must be multiples of groups = \(groups)")
        }
        guard window.kernelHeight > 0, window.kernelWidth > 0, window.strideHeight > 0, window.strideWidth > 0,
              window.dilationHeight > 0, window.dilationWidth > 0, window.paddingHeight >= 0, window.paddingWidth >= 0 else {
            throw ShapeError("convolution window \(window) needs kernel, stride, dilation ≥ 1 and padding ≥ 0")
        }
        let expected = outputChannels * (inputChannels / groups) * window.kernelHeight * window.kernelWidth
        guard weight.count == expected else {
            throw ShapeError("convolution weight [\(outputChannels), \(inputChannels / groups), \(window.kernelHeight), " +
                             "\(window.kernelWidth)] needs \(expected) values, got \(weight.count)")
        }
        if let bias, bias.count != outputChannels {
            throw ShapeError("convolution bias needs K = \(outputChannels) values, got \(bias.count)")
        }
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.window = window
        self.groups = groups
        self.weight = weight
        self.bias = bias
        self.activation = activation
        let depthwise = groups == inputChannels && groups == outputChannels
        let (packed, stride) = depthwise || !packing ? ([], 0) :
            Self.pack(weight, groups: groups, rows: outputChannels / groups,
                      depth: inputChannels / groups * window.kernelHeight * window.kernelWidth)
        self.packedWeight = packed
        self.packedGroupStride = stride
        self.winogradWeight = packing && Self.winogradApplies(window: window, groups: groups)
            ? Self.winogradPack(weight, outputChannels: outputChannels, inputChannels: inputChannels) : []
    }

    /// A convolution with seeded Kaiming-normal filters (`std = √(2 / fan-in)`) and, when `bias`
    /// is true, a bias uniform in `[−0.1, 0.1)`: reproducible from `seed` on every machine.
    ///
    /// - Throws: ``ShapeError`` as ``init(inputChannels:outputChannels:window:groups:weight:bias:activation:)``.
    public static func random(inputChannels: Int, outputChannels: Int, window: WindowGeometry, groups: Int = 1,
                              bias: Bool = false, activation: ActivationFunction = .identity,
                              seed: UInt64) throws -> Conv2D {
        guard inputChannels > 0, groups > 0, inputChannels % groups == 0 else {
            throw ShapeError("convolution \(inputChannels) channels: must be a positive multiple of groups = \(groups)")
        }
        var generator = SeededGenerator(seed: seed)
        let fanIn = inputChannels / groups * window.kernelHeight * window.kernelWidth
        let count = max(0, outputChannels * fanIn)
        let normal = RandomDistribution.normal(mean: 0, standardDeviation: (2 / Float(max(1, fanIn))).squareRoot())
        let w = (0..<count).map { _ in normal.sample(using: &generator) }
        let uniform = RandomDistribution.uniform(lower: -0.1, upper: 0.1)
        let b: [Float]? = bias ? (0..<max(0, outputChannels)).map { _ in uniform.sample(using: &generator) } : nil
        return try Conv2D(inputChannels: inputChannels, outputChannels: outputChannels, window: window,
                          groups: groups, weight: w, bias: b, activation: activation)
    }

    /// The same convolution with another fused activation.
    public func with(activation: ActivationFunction) -> Conv2D {
        try! Conv2D(inputChannels: inputChannels, outputChannels: outputChannels, window: window, groups: groups,
                    weight: weight, bias: bias, activation: activation)
    }

    /// True for a depthwise convolution: one filter per channel (`G = C = K`).
    public var isDepthwise: Bool { groups == inputChannels && groups == outputChannels }

    /// True when ``Algorithm/pointwise`` applies: 1×1 kernel, stride 1, no padding.
    public var isPointwise: Bool {
        window.kernelHeight == 1 && window.kernelWidth == 1 && window.strideHeight == 1 && window.strideWidth == 1 &&
            window.paddingHeight == 0 && window.paddingWidth == 0
    }

    /// Whether `algorithm` can compute this convolution.
    public func supports(_ algorithm: Algorithm) -> Bool {
        switch algorithm {
        case .pointwise: return isPointwise
        case .im2col: return true
        case .depthwise: return isDepthwise
        case .packed: return !isDepthwise && !packedWeight.isEmpty
        case .winograd: return Self.winogradApplies(window: window, groups: groups) && !winogradWeight.isEmpty
        }
    }

    /// The kernel the layer runs by default: depthwise for a depthwise layer; where the packed
    /// micro-kernel is vectorised (AVX-512 builds) Winograd for 3×3 stride-1 layers and the packed
    /// GEMM for the others; else OpenBLAS (pointwise, im2col).
    public var preferredAlgorithm: Algorithm {
        if isDepthwise { return .depthwise }
        if Self.packedKernelIsVectorized && supports(.packed) { return supports(.winograd) ? .winograd : .packed }
        return isPointwise ? .pointwise : .im2col
    }

    /// Output planes of at most this many pixels run a Winograd layer on the packed GEMM instead:
    /// Winograd's 2×2 tiles cover a 7×7 plane as 8×8 (30% more work), while the packed GEMM's
    /// 7-column tiles fit it exactly. Measured on `[1, 512, 7, 7]` 512→512: packed 0.70–0.79× the
    /// time of Winograd; on 14×14 and larger planes Winograd was the faster (docs/benchmarks.md).
    static let winogradMinimumPlane = 65

    /// The kernel the layer runs by default on `input`: ``preferredAlgorithm``, except that a
    /// Winograd layer runs on the packed GEMM when its output plane has fewer than
    /// `winogradMinimumPlane` (65) pixels.
    public func preferredAlgorithm(for input: Shape) -> Algorithm {
        let algorithm = preferredAlgorithm
        guard algorithm == .winograd, let size = try? window.outputSize(height: input.height, width: input.width),
              size.height * size.width < Self.winogradMinimumPlane else { return algorithm }
        return .packed
    }

    // MARK: Layer

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try callAsFunction(x, residual: nil, algorithm: nil, threads: nil)
    }

    /// Convolves `x`, adds the bias and `residual`, and applies the activation, in one pass over the
    /// GEMM output.
    ///
    /// - Parameters:
    ///   - x: `[N, C, H, W]`, NCHW.
    ///   - residual: `[N, K, H', W']`, added before the activation (a ResNet shortcut), or nil.
    ///   - algorithm: the kernel to run, or nil for ``preferredAlgorithm(for:)``.
    ///   - threads: OpenBLAS threads for the GEMMs and the package's threads for the other passes
    ///     (never both at once); nil for ``Threads/defaultCount``.
    /// - Throws: ``ShapeError`` when `x` does not have `C` channels, the window does not fit,
    ///   `residual` is not the output's shape, or `algorithm` does not apply to this convolution.
    public func callAsFunction(_ x: Tensor, residual: Tensor? = nil, algorithm: Algorithm? = nil,
                               threads: Int? = nil) throws -> Tensor {
        let outShape = try outputShape(for: x.shape)
        var y = Tensor.uninitialized(shape: outShape)
        try apply(x, into: &y, residual: residual, algorithm: algorithm, threads: threads)
        return y.converted(to: x.layout)
    }

    /// Convolves `x` into the NCHW tensor `output`, overwriting every element (the caller may fill it
    /// with NaN first to check that), as ``callAsFunction(_:residual:algorithm:threads:)``.
    ///
    /// - Throws: ``ShapeError`` as ``callAsFunction(_:residual:algorithm:threads:)``, or when `output`
    ///   is not NCHW with the output's shape.
    public func apply(_ x: Tensor, into output: inout Tensor, residual: Tensor? = nil, algorithm: Algorithm? = nil,
                      threads: Int? = nil) throws {
        let outShape = try outputShape(for: x.shape)
        let algorithm = algorithm ?? preferredAlgorithm(for: x.shape)
        guard supports(algorithm) else {
            throw ShapeError("convolution \(inputChannels)→\(outputChannels), \(window), groups \(groups) " +
                             "cannot run on the \(algorithm) kernel")
        }
        guard output.shape == outShape, output.layout == .nchw else {
            throw ShapeError("convolution output must be NCHW \(outShape), got \(output.shape) \(output.layout)")
        }
        if let residual, residual.shape != outShape {
            throw ShapeError("residual \(residual.shape) differs from the convolution output \(outShape)")
        }
        if outShape.isEmpty { return }
        let input = x.converted(to: .nchw)
        let shortcut = residual?.converted(to: .nchw)
        input.scalars.withUnsafeBufferPointer { px in
            output.scalars.withUnsafeMutableBufferPointer { py in
                withOptionalPointer(shortcut?.scalars) { pr in
                    run(px.baseAddress!, shape: input.shape, into: py.baseAddress!, residual: pr,
                        algorithm: algorithm, threads: Threads.resolve(threads))
                }
            }
        }
    }

    /// - Throws: ``ShapeError`` when `input` does not have `C` channels or the window does not fit.
    public func outputShape(for input: Shape) throws -> Shape {
        try input.validate()
        guard input.channels == inputChannels else {
            throw ShapeError("convolution expects \(inputChannels) input channels, got input \(input)")
        }
        let size = try window.outputSize(height: input.height, width: input.width)
        return Shape(input.batch, outputChannels, size.height, size.width)
    }

    /// `K·(C/G)·kh·kw` weights plus `K` for the bias.
    public var parameterCount: Int { weight.count + (bias?.count ?? 0) }

    /// `N·K·H'·W'·(C/G)·kh·kw`: the bias and the activation are not counted here (a model counts the
    /// BN and ReLU it folded, docs/complexity.md).
    public func multiplyAccumulates(for input: Shape) throws -> Int {
        let out = try outputShape(for: input)
        return out.count * (inputChannels / groups) * window.kernelHeight * window.kernelWidth
    }
}

/// Calls `body` with a pointer to `array`'s storage, or nil when `array` is nil.
@inline(__always)
func withOptionalPointer<R>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) throws -> R) rethrows -> R {
    guard let array else { return try body(nil) }
    return try array.withUnsafeBufferPointer { try body($0.baseAddress) }
}
