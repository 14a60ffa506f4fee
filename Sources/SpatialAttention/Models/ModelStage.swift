import CKernels

/// One row of a model's layer table: a layer as torchvision names it, what it is, its output shape,
/// its parameters (torchvision convention) and its multiply-accumulates (docs/complexity.md).
public struct LayerRecord: Sendable, Equatable, CustomStringConvertible {
    /// The torchvision module name, e.g. `layer1.0.conv2`; `…spsa` and `…se` for the modules we add.
    public let name: String
    /// What the layer is, e.g. `Conv2d 3×3 /2`, `BatchNorm2d (folded)`, `SPSA 4 heads`.
    public let kind: String
    /// The output shape for the table's input.
    public let outputShape: Shape
    /// Learned parameters of this layer alone.
    public let parameterCount: Int
    /// Multiply-accumulates of this layer for the table's input (all images of the batch).
    public let multiplyAccumulates: Int

    public init(name: String, kind: String, outputShape: Shape, parameterCount: Int, multiplyAccumulates: Int) {
        self.name = name
        self.kind = kind
        self.outputShape = outputShape
        self.parameterCount = parameterCount
        self.multiplyAccumulates = multiplyAccumulates
    }

    public var description: String {
        "\(name)  \(kind)  \(outputShape)  params \(parameterCount)  MACs \(multiplyAccumulates)"
    }
}

/// A piece of a model's executable form (stem, block, head): it runs on NCHW batches and
/// describes itself as layer records.
protocol ModelStage: Sendable {
    /// The stage applied to an NCHW batch.
    func forward(_ x: Tensor, threads: Int) throws -> Tensor
    /// The output shape for `input`.
    func outputShape(for input: Shape) throws -> Shape
    /// The stage's layers, in execution order.
    func records(for input: Shape) throws -> [LayerRecord]
}

/// A convolution with its batch norm folded in, optionally SPSA after the BN (position #2 of 002
/// Table 1), then the activation.
///
/// Without SPSA the activation (and a residual) run in the convolution's epilogue; with SPSA the
/// convolution writes the normalised output, SPSA scales it in place, and the activation follows.
struct ConvUnit: Sendable {
    /// Module names: the convolution, its BN, the SPSA and the activation records.
    let convolutionName: String, normName: String, spsaName: String, activationName: String
    /// The folded convolution (weights scaled by the BN, bias from the BN).
    let convolution: Conv2D
    /// SPSA with α = 2 and ``spsaHeads`` heads, or nil.
    let spsa: SPSA?
    let spsaHeads: Int
    let activation: ActivationFunction

    /// Takes `convolutionName.weight` `[K, C/G, kh, kw]` and the BN's `weight`, `bias`,
    /// `running_mean`, `running_var` `[K]` from `source` and folds them.
    ///
    /// `normScale` is the range of the random BN weights: blocks whose output is added to a
    /// shortcut draw small ones so that seeded networks keep activations near unit scale.
    init(convolution convolutionName: String, norm normName: String, spsaName: String = "", activationName: String = "",
         inputChannels: Int, outputChannels: Int, window: WindowGeometry, groups: Int = 1,
         activation: ActivationFunction, spsaHeads: Int? = nil, normScale: (Float, Float) = (0.5, 1.0),
         source: inout ParameterSource) throws {
        let perGroup = inputChannels / groups
        let fanIn = perGroup * window.kernelHeight * window.kernelWidth
        let weight = source.take("\(convolutionName).weight",
                                 shape: [outputChannels, perGroup, window.kernelHeight, window.kernelWidth],
                                 .kaiming(fanIn: fanIn))
        let K = outputChannels
        let gamma = source.take("\(normName).weight", shape: [K], .uniform(normScale.0, normScale.1))
        let beta = source.take("\(normName).bias", shape: [K], .uniform(-0.1, 0.1))
        let mean = source.take("\(normName).running_mean", shape: [K], .uniform(-0.1, 0.1))
        let variance = source.take("\(normName).running_var", shape: [K], .uniform(0.5, 1.5))
        let fused = spsaHeads == nil ? activation : ActivationFunction.identity
        if source.describing {
            // Shapes only: no fold, no packed copies.
            self.convolution = try Conv2D(inputChannels: inputChannels, outputChannels: K, window: window, groups: groups,
                                          weight: weight, bias: beta, activation: fused, packing: false)
        } else {
            let plain = try Conv2D(inputChannels: inputChannels, outputChannels: K, window: window, groups: groups,
                                   weight: weight, activation: fused)
            // A missing or mis-shaped name comes back as zeros (a finite fold: ε keeps 1/√var finite);
            // the build throws once every name has been checked.
            let norm = try BatchNorm(weight: gamma, bias: beta, runningMean: mean, runningVariance: variance)
            self.convolution = try plain.folding(norm)
        }
        self.convolutionName = convolutionName
        self.normName = normName
        self.spsaName = spsaName
        self.activationName = activationName
        self.spsa = spsaHeads.map { SPSA(alpha: 2, heads: $0) }
        self.spsaHeads = spsaHeads ?? 0
        self.activation = activation
    }

    /// `act(SPSA?(BN(conv(x))) + residual)`; a residual is only fused without SPSA.
    func forward(_ x: Tensor, residual: Tensor? = nil, threads: Int) throws -> Tensor {
        guard residual == nil || spsa == nil else {
            throw ShapeError("\(convolutionName): a residual is fused only into a convolution without SPSA")
        }
        var y = Tensor.uninitialized(shape: try convolution.outputShape(for: x.shape))
        try convolution.apply(x, into: &y, residual: residual, threads: threads)
        if let spsa {
            try spsa.applyInPlace(&y, threads: threads)
            Activation(activation).applyInPlace(&y, threads: threads)
        }
        return y
    }

    func outputShape(for input: Shape) throws -> Shape { try convolution.outputShape(for: input) }

    /// Records: the convolution, its BN, SPSA (if any) and the activation (unless it is the
    /// identity or `includeActivation` is false, for a block that records its ReLU after an addition).
    func records(for input: Shape, includeActivation: Bool = true) throws -> [LayerRecord] {
        let out = try outputShape(for: input)
        let w = convolution.window
        var kind = "Conv2d \(w.kernelHeight)×\(w.kernelWidth)"
        if w.strideHeight > 1 { kind += " /\(w.strideHeight)" }
        if convolution.isDepthwise { kind += " depthwise" } else if convolution.groups > 1 { kind += " g\(convolution.groups)" }
        var rows = [
            LayerRecord(name: convolutionName, kind: kind, outputShape: out, parameterCount: convolution.weight.count,
                        multiplyAccumulates: try convolution.multiplyAccumulates(for: input)),
            LayerRecord(name: normName, kind: "BatchNorm2d (folded)", outputShape: out,
                        parameterCount: 2 * convolution.outputChannels, multiplyAccumulates: out.count),
        ]
        if let spsa {
            rows.append(LayerRecord(name: spsaName, kind: "SPSA α=2 \(spsaHeads)×\(out.channels / max(1, spsaHeads))",
                                    outputShape: try spsa.outputShape(for: out), parameterCount: spsa.parameterCount,
                                    multiplyAccumulates: try spsa.multiplyAccumulates(for: out)))
        }
        if includeActivation && activation != .identity {
            rows.append(activationRecord(out))
        }
        return rows
    }

    func activationRecord(_ shape: Shape) -> LayerRecord {
        LayerRecord(name: activationName, kind: activation == .relu ? "ReLU" : "ReLU6", outputShape: shape,
                    parameterCount: 0, multiplyAccumulates: activation == .identity ? 0 : shape.count)
    }
}

/// Global average pooling then a fully connected layer (`fc` / `classifier.1`).
struct ClassifierHead: ModelStage {
    let poolName: String
    let linearName: String
    let linear: Linear

    init(name: String, poolName: String = "avgpool", features: Int, classes: Int, source: inout ParameterSource) throws {
        let bound = 1 / Float(features).squareRoot()
        let weight = source.take("\(name).weight", shape: [classes, features], .uniform(-bound, bound))
        let bias = source.take("\(name).bias", shape: [classes], .uniform(-bound, bound))
        linear = try Linear(inputFeatures: features, outputFeatures: classes, weight: weight, bias: bias)
        linearName = name
        self.poolName = poolName
    }

    func forward(_ x: Tensor, threads: Int) throws -> Tensor {
        try linear(try GlobalAveragePool()(x, threads: threads), threads: threads)
    }

    func outputShape(for input: Shape) throws -> Shape {
        try linear.outputShape(for: try GlobalAveragePool().outputShape(for: input))
    }

    func records(for input: Shape) throws -> [LayerRecord] {
        let pooled = try GlobalAveragePool().outputShape(for: input)
        return [
            LayerRecord(name: poolName, kind: "AdaptiveAvgPool2d 1×1", outputShape: pooled, parameterCount: 0,
                        multiplyAccumulates: 0),
            LayerRecord(name: linearName, kind: "Linear", outputShape: try linear.outputShape(for: pooled),
                        parameterCount: linear.parameterCount, multiplyAccumulates: try linear.multiplyAccumulates(for: pooled)),
        ]
    }
}

/// A max pool as a stage (ResNet's and ShuffleNetV2's stem).
struct PoolStage: ModelStage {
    let name: String
    let pool: MaxPool2D

    func forward(_ x: Tensor, threads: Int) throws -> Tensor { try pool(x, threads: threads) }
    func outputShape(for input: Shape) throws -> Shape { try pool.outputShape(for: input) }
    func records(for input: Shape) throws -> [LayerRecord] {
        let w = pool.window
        return [LayerRecord(name: name, kind: "MaxPool2d \(w.kernelHeight)×\(w.kernelWidth) /\(w.strideHeight)",
                            outputShape: try outputShape(for: input), parameterCount: 0, multiplyAccumulates: 0)]
    }
}

/// A single convolution unit as a stage (stems and final 1×1 convolutions).
struct ConvStage: ModelStage {
    let unit: ConvUnit
    func forward(_ x: Tensor, threads: Int) throws -> Tensor { try unit.forward(x, threads: threads) }
    func outputShape(for input: Shape) throws -> Shape { try unit.outputShape(for: input) }
    func records(for input: Shape) throws -> [LayerRecord] { try unit.records(for: input) }
}

/// `out = act(u ⊙ s + shortcut)` in place in `u`: the channel attention's scaling, the residual
/// addition and the ReLU of a block in one pass (`s` has one value per `(n, c)` plane).
func scaleAddActivate(_ u: inout Tensor, scales s: [Float], shortcut: Tensor, activation: ActivationFunction,
                      threads: Int) {
    let planes = u.shape.batch * u.shape.channels
    let P = u.shape.pixels
    let code = activation.kernelCode
    u.scalars.withUnsafeMutableBufferPointer { pu in
        shortcut.scalars.withUnsafeBufferPointer { pr in
            s.withUnsafeBufferPointer { ps in
                guard let dst = pu.baseAddress, let res = pr.baseAddress, let scale = ps.baseAddress else { return }
                let chunks = min(planes, ParallelWork.chunks(elements: planes * P, threads: threads))
                Threads.forEach(chunks, threads: chunks) { t in
                    let p0 = planes * t / chunks, p1 = planes * (t + 1) / chunks
                    ck_conv_epilogue(dst + p0 * P, P, dst + p0 * P, P, scale + p0, nil, res + p0 * P, P,
                                     Int32(p1 - p0), P, code)
                }
            }
        }
    }
}
