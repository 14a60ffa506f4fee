/// A classification network with seeded or given weights: a value you call on a batch.
///
/// Shapes: `x` `[N, 3, H, W]` (224×224 for the papers' figures; any size the strides fit), either
/// layout; output `[N, classes, 1, 1]` logits in `x`'s layout.
///
/// The model keeps its parameters under torchvision's names (``parameters``, unfolded: BN weight,
/// bias and running statistics separately) and runs an executable form built from them once, with
/// every BN folded into its convolution and ReLU, residual additions and channel scaling fused into
/// convolution epilogues. ``layerTable(for:)`` lists its layers with parameters and MACs in the
/// papers' convention (docs/complexity.md). Matches the composition of `Naive` kernels
/// (`Naive.resnet`, `Naive.mobileNetV2`, `Naive.shuffleNetV2`) within the tests' `Tolerance.network`.
public struct Model: Layer {
    /// The registry name.
    public let name: ModelName
    /// The parameters and BN buffers by torchvision name, as PyTorch shapes them.
    public let parameters: [String: ParameterTensor]
    /// ``parameters``' names in definition order (torchvision's `state_dict` order).
    public let parameterNames: [String]
    let stages: [any ModelStage]

    /// Builds `name` from named parameters (a torchvision `state_dict` converted to
    /// ``ParameterTensor``s), folding every BN into its convolution.
    ///
    /// - Parameters:
    ///   - name: a model name of the registry, e.g. `"resnet50+spsa"`.
    ///   - parameters: the named tensors, torchvision names (docs/models.md).
    ///   - strict: when true, a name the model does not have is an error; when false it is
    ///     ignored. `*.num_batches_tracked` is always ignored.
    /// - Throws: ``ParameterError`` naming every missing, mis-shaped and (when `strict`) unexpected name.
    public init(name: ModelName, parameters: [String: ParameterTensor], strict: Bool = true) throws {
        var source = ParameterSource(parameters: parameters)
        let stages = try Self.stages(name, source: &source)
        try source.validate(model: name.description, strict: strict)
        self.init(name: name, stages: stages, source: source)
    }

    /// Builds `name` with seeded random weights (Kaiming-uniform convolutions, BN statistics near the
    /// identity): the same seed gives the same model on every machine.
    public init(name: ModelName, seed: UInt64) {
        var source = ParameterSource(seed: seed)
        // Random parameters always have the shapes the builder asks for, so the build cannot fail.
        let stages = try! Self.stages(name, source: &source)
        self.init(name: name, stages: stages, source: source)
    }

    /// A model of zeros that only describes its layers (no folding, no packed filters).
    init(describing name: ModelName) {
        var source = ParameterSource(describing: ())
        let stages = try! Self.stages(name, source: &source)
        self.init(name: name, stages: stages, source: source)
    }

    private init(name: ModelName, stages: [any ModelStage], source: ParameterSource) {
        self.name = name
        self.stages = stages
        self.parameters = source.collected
        self.parameterNames = source.order
    }

    private static func stages(_ name: ModelName, source: inout ParameterSource) throws -> [any ModelStage] {
        let variant = ResNet.Variant(spsa: name.spsa, channelAttention: name.channelAttention)
        switch name.backbone {
        case .resnet50: return try ResNet.stages(.resnet50, variant: variant, source: &source)
        case .resnet101: return try ResNet.stages(.resnet101, variant: variant, source: &source)
        case .resnet152: return try ResNet.stages(.resnet152, variant: variant, source: &source)
        case .resnext50: return try ResNet.stages(.resnext50, variant: variant, source: &source)
        case .mobilenetv2: return try MobileNetV2.stages(spsa: name.spsa, source: &source)
        case .shufflenetv2: return try ShuffleNetV2.stages(spsa: name.spsa, source: &source)
        }
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try callAsFunction(x, threads: nil) }

    /// Runs the network: OpenBLAS on `threads` threads for the GEMMs, the package's threads for the
    /// other passes, never both at once.
    ///
    /// Sets ``BLAS/threads`` (a process-wide setting) to `threads`.
    /// - Throws: ``ShapeError`` when `x` does not have 3 channels or is too small for the strides.
    public func callAsFunction(_ x: Tensor, threads: Int?) throws -> Tensor {
        _ = try outputShape(for: x.shape)
        let t = Threads.resolve(threads)
        var y = x.converted(to: .nchw)
        for stage in stages { y = try stage.forward(y, threads: t) }
        return y.converted(to: x.layout)
    }

    /// - Throws: ``ShapeError`` when `input` does not have 3 channels or is too small for the strides.
    public func outputShape(for input: Shape) throws -> Shape {
        guard input.channels == 3 else { throw ShapeError("\(name) expects 3 input channels, got input \(input)") }
        return try stages.reduce(input) { try $1.outputShape(for: $0) }
    }

    /// The layers in execution order with their output shapes, parameters and MACs for `input`.
    ///
    /// The parameters sum to ``parameterCount`` and the MACs to ``multiplyAccumulates(for:)``.
    /// - Throws: ``ShapeError`` as ``outputShape(for:)``.
    public func layerTable(for input: Shape) throws -> [LayerRecord] {
        _ = try outputShape(for: input)
        var rows: [LayerRecord] = []
        var shape = input
        for stage in stages {
            rows += try stage.records(for: shape)
            shape = try stage.outputShape(for: shape)
        }
        return rows
    }

    /// Parameters in torchvision's convention: convolution and fc weights, fc bias, BN weight and
    /// bias (running statistics are buffers), SE and ECA weights. ResNet-50: 25,557,032.
    public var parameterCount: Int {
        // Every model of the registry accepts 224×224; the count does not depend on the input.
        (try? layerTable(for: Shape(1, 3, 224, 224)))?.reduce(0) { $0 + $1.parameterCount } ?? 0
    }

    /// MACs in the papers' convention (convolutions, fc, one per BN and per ReLU output element;
    /// docs/complexity.md). ResNet-50 on `[1, 3, 224, 224]`: 4,109,906,944 (the papers' 4.11 G).
    public func multiplyAccumulates(for input: Shape) throws -> Int {
        try layerTable(for: input).reduce(0) { $0 + $1.multiplyAccumulates }
    }
}

extension ModelName {
    /// The model's layers with output shapes, parameters and MACs for `input`, computed from the
    /// architecture alone (no weights are drawn, folded or packed): the same rows as
    /// ``Model/layerTable(for:)``.
    ///
    /// - Throws: ``ShapeError`` when `input` does not have 3 channels or is too small for the strides.
    public func layerTable(for input: Shape) throws -> [LayerRecord] {
        try Model(describing: self).layerTable(for: input)
    }

    /// Parameters and MACs of the model for `input` (``Complexity``), from the architecture alone.
    ///
    /// - Throws: ``ShapeError`` as ``layerTable(for:)``.
    public func complexity(for input: Shape) throws -> Complexity {
        Complexity(records: try layerTable(for: input))
    }
}

/// The registry: every model by name, with seeded weights.
public enum Models {
    /// The registry names (``ModelName/allCases``).
    public static var names: [String] { ModelName.allCases.map(\.description) }

    /// The model called `name` with weights seeded by `seed`.
    ///
    /// - Throws: ``ModelNameError`` listing the valid names when `name` is unknown.
    public static func make(name: String, seed: UInt64 = 0) throws -> Model {
        Model(name: try ModelName(name), seed: seed)
    }
}
