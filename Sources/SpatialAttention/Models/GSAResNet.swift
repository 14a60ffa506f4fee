/// A ResNet whose 3×3 convolutions are replaced by attention modules: GSA-ResNet (003 §4 "Model") and
/// SASA-ResNet (004 §3).
///
/// Shapes: `x` `[N, 3, H, W]` (224×224 for the papers' figures), either layout; output
/// `[N, 1000, 1, 1]` logits in `x`'s layout.
///
/// Built from the ResNet pieces (the conv stem and max pool, the 1×1 convolution units with BN folded,
/// the shortcut, the classifier), with each bottleneck's `conv2`/`bn2` replaced by
/// `module → [2×2 average pool, stride 2, in the first block of stages 2–4] → bn2 → ReLU`:
/// - GSA (8 heads, K, Q, V with as many channels as the block's width, `L` = the module's input side at
///   `inputSize`, so every module is global); 003 §4: pooling "immediately after the first GSA module"
///   of stages 2–4, BN after every module;
/// - SASA (`k = 7`, 8 heads, the same pooling, 004's "spatial downsampling ... 2×2 average pooling with
///   stride 2"); the conv stem of 003 Table 3's SASA-ResNet-50 row.
///
/// Depths: 26 `[1, 2, 4, 1]`, 38 `[2, 3, 5, 2]` (004: one block fewer per stage than ResNet-50), 50
/// `[3, 4, 6, 3]`, 101 `[3, 4, 23, 3]`. Parameter names follow torchvision's (`layer1.0.conv1`, …),
/// the modules' names are in docs/gsa.md and docs/sasa.md. Complexity in the papers' convention
/// (docs/gsa.md compares it with 003 Tables 3 and 6).
public struct AttentionResNet: Layer {
    /// Which module replaces the 3×3 convolutions.
    public enum Kind: String, Sendable, CaseIterable {
        /// GSA modules (003): GSA-ResNet.
        case gsa
        /// SASA layers (004): SASA-ResNet.
        case sasa
    }

    /// The module kind.
    public let kind: Kind
    /// 26, 38, 50 or 101.
    public let depth: Int
    /// The input side the modules' extents `L` are sized for (224).
    public let inputSize: Int
    /// The parameters and BN buffers by name, as PyTorch shapes them.
    public let parameters: [String: ParameterTensor]
    /// ``parameters``' names in definition order.
    public let parameterNames: [String]
    let stages: [any ModelStage]

    /// Blocks per stage for each depth.
    public static let blocks: [Int: [Int]] = [26: [1, 2, 4, 1], 38: [2, 3, 5, 2], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3]]

    /// Builds the network with seeded random weights.
    ///
    /// - Throws: ``ShapeError`` when `depth` is not 26, 38, 50 or 101, or `inputSize` is below 32.
    public init(_ kind: Kind, depth: Int, inputSize: Int = 224, seed: UInt64) throws {
        var source = ParameterSource(seed: seed)
        try self.init(kind, depth: depth, inputSize: inputSize, source: &source)
    }

    /// Builds the network from named parameters.
    ///
    /// - Throws: ``ShapeError`` for a bad depth or input size; ``ParameterError`` naming every missing,
    ///   mis-shaped and (when `strict`) unexpected name.
    public init(_ kind: Kind, depth: Int, inputSize: Int = 224, parameters: [String: ParameterTensor],
                strict: Bool = true) throws {
        var source = ParameterSource(parameters: parameters)
        try self.init(kind, depth: depth, inputSize: inputSize, source: &source)
        try source.validate(model: "\(kind.rawValue)-resnet\(depth)", strict: strict)
    }

    private init(_ kind: Kind, depth: Int, inputSize: Int, source: inout ParameterSource) throws {
        guard let blocks = AttentionResNet.blocks[depth] else {
            throw ShapeError("attention ResNet depth \(depth) is not one of \(AttentionResNet.blocks.keys.sorted())")
        }
        guard inputSize >= 32 else { throw ShapeError("attention ResNet input size \(inputSize) must be ≥ 32") }
        var stages: [any ModelStage] = [
            ConvStage(unit: try ConvUnit(convolution: "conv1", norm: "bn1", activationName: "relu", inputChannels: 3,
                                         outputChannels: 64, window: WindowGeometry(kernel: 7, stride: 2, padding: 3),
                                         activation: .relu, source: &source)),
            PoolStage(name: "maxpool", pool: MaxPool2D(window: WindowGeometry(kernel: 3, stride: 2, padding: 1))),
        ]
        let configuration = ResNet.Configuration(blocks: blocks)
        var channels = 64, side = ((inputSize + 1) / 2 + 1) / 2
        for (s, count) in blocks.enumerated() {
            for i in 0..<count {
                let stride = s > 0 && i == 0 ? 2 : 1
                stages.append(try AttentionBottleneck(kind: kind, name: "layer\(s + 1).\(i)", stage: s,
                                                      inputChannels: channels, side: side, stride: stride,
                                                      configuration: configuration, source: &source))
                channels = configuration.outputChannels(stage: s)
                side = stride == 2 ? side / 2 : side
            }
        }
        stages.append(try ClassifierHead(name: "fc", features: channels, classes: configuration.classes, source: &source))
        self.kind = kind
        self.depth = depth
        self.inputSize = inputSize
        self.stages = stages
        self.parameters = source.collected
        self.parameterNames = source.order
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try callAsFunction(x, threads: nil) }

    /// Runs the network (NCHW inside; OpenBLAS's threads for GEMMs, ours for the other passes).
    ///
    /// - Throws: ``ShapeError`` when `x` does not have 3 channels or is too small for the strides.
    public func callAsFunction(_ x: Tensor, threads: Int?) throws -> Tensor {
        _ = try outputShape(for: x.shape)
        let t = Threads.resolve(threads)
        var y = x.converted(to: .nchw)
        for stage in stages { y = try stage.forward(y, threads: t) }
        return y.converted(to: x.layout)
    }

    public func outputShape(for input: Shape) throws -> Shape {
        guard input.channels == 3 else {
            throw ShapeError("\(kind.rawValue)-resnet\(depth) expects 3 input channels, got input \(input)")
        }
        return try stages.reduce(input) { try $1.outputShape(for: $0) }
    }

    /// The layers in execution order with their output shapes, parameters and MACs for `input`.
    ///
    /// - Throws: ``ShapeError`` as ``outputShape(for:)``.
    public func layerTable(for input: Shape) throws -> [LayerRecord] {
        _ = try outputShape(for: input)
        var rows: [LayerRecord] = [], shape = input
        for stage in stages {
            rows += try stage.records(for: shape)
            shape = try stage.outputShape(for: shape)
        }
        return rows
    }

    /// Parameters (torchvision convention: weights, biases, BN weight and bias; running statistics are
    /// buffers), the attention modules' projections, embeddings and internal BN included.
    public var parameterCount: Int {
        (try? layerTable(for: Shape(1, 3, inputSize, inputSize)))?.reduce(0) { $0 + $1.parameterCount } ?? 0
    }

    /// MACs in the papers' convention (docs/gsa.md): convolutions, fc, the modules' own counts, one per
    /// BN and ReLU output element.
    public func multiplyAccumulates(for input: Shape) throws -> Int {
        try layerTable(for: input).reduce(0) { $0 + $1.multiplyAccumulates }
    }
}

/// A bottleneck with an attention module in place of the 3×3 convolution:
/// `ReLU(conv₃(ReLU(bn₂(pool?(module(ReLU(bn₁(conv₁ x))))))) + shortcut(x))`.
struct AttentionBottleneck: ModelStage {
    let name: String
    let conv1: ConvUnit, conv3: ConvUnit
    let downsample: ConvUnit?
    let module: AttentionModuleUnit
    let pool: AvgPool2D?
    let norm: BatchNorm

    init(kind: AttentionResNet.Kind, name: String, stage: Int, inputChannels: Int, side: Int, stride: Int,
         configuration: ResNet.Configuration, source: inout ParameterSource) throws {
        let width = configuration.width(stage: stage), output = configuration.outputChannels(stage: stage)
        self.name = name
        conv1 = try ConvUnit(convolution: "\(name).conv1", norm: "\(name).bn1", activationName: "\(name).relu",
                             inputChannels: inputChannels, outputChannels: width, window: WindowGeometry(kernel: 1),
                             activation: .relu, source: &source)
        switch kind {
        case .gsa: module = try .gsa(block: name, channels: width, extent: side, source: &source)
        case .sasa: module = try .sasa(block: name, channels: width, source: &source)
        }
        pool = stride == 2 ? AvgPool2D(window: WindowGeometry(kernel: 2, stride: 2)) : nil
        norm = try BatchNorm(weight: source.take("\(name).bn2.weight", shape: [width], .uniform(0.5, 1.0)),
                             bias: source.take("\(name).bn2.bias", shape: [width], .uniform(-0.1, 0.1)),
                             runningMean: source.take("\(name).bn2.running_mean", shape: [width], .uniform(-0.1, 0.1)),
                             runningVariance: source.take("\(name).bn2.running_var", shape: [width], .uniform(0.5, 1.5)))
        // The last BN's weights are drawn small so that a seeded network's activations stay near unit scale.
        conv3 = try ConvUnit(convolution: "\(name).conv3", norm: "\(name).bn3", activationName: "\(name).relu",
                             inputChannels: width, outputChannels: output, window: WindowGeometry(kernel: 1),
                             activation: .relu, normScale: (0.1, 0.3), source: &source)
        downsample = stride != 1 || inputChannels != output
            ? try ConvUnit(convolution: "\(name).downsample.0", norm: "\(name).downsample.1",
                           inputChannels: inputChannels, outputChannels: output,
                           window: WindowGeometry(kernel: 1, stride: stride), activation: .identity,
                           normScale: (0.5, 1.0), source: &source)
            : nil
    }

    func forward(_ x: Tensor, threads: Int) throws -> Tensor {
        let shortcut = try downsample?.forward(x, threads: threads) ?? x
        var t = try module.forward(try conv1.forward(x, threads: threads), threads: threads)
        if let pool { t = try pool(t, threads: threads) }
        t = try norm(t, threads: threads)
        Activation.relu.applyInPlace(&t, threads: threads)
        return try conv3.forward(t, residual: shortcut, threads: threads)
    }

    func outputShape(for input: Shape) throws -> Shape {
        var s = try module.outputShape(for: try conv1.outputShape(for: input))
        if let pool { s = try pool.outputShape(for: s) }
        return try conv3.outputShape(for: s)
    }

    func records(for input: Shape) throws -> [LayerRecord] {
        let s1 = try conv1.outputShape(for: input)
        var rows = try conv1.records(for: input)
        var s2 = try module.outputShape(for: s1)
        rows.append(LayerRecord(name: module.name, kind: module.kind, outputShape: s2,
                                parameterCount: module.parameterCount,
                                multiplyAccumulates: try module.multiplyAccumulates(for: s1)))
        if let pool {
            s2 = try pool.outputShape(for: s2)
            rows.append(LayerRecord(name: "\(name).pool", kind: "AvgPool2d 2×2 /2", outputShape: s2, parameterCount: 0,
                                    multiplyAccumulates: try pool.multiplyAccumulates(for: s2)))
        }
        rows.append(LayerRecord(name: "\(name).bn2", kind: "BatchNorm2d", outputShape: s2,
                                parameterCount: norm.parameterCount, multiplyAccumulates: try norm.multiplyAccumulates(for: s2)))
        rows.append(conv1.activationRecord(s2))
        rows += try conv3.records(for: s2, includeActivation: false)
        let out = try conv3.outputShape(for: s2)
        if let downsample { rows += try downsample.records(for: input) }
        rows.append(LayerRecord(name: "\(name).add", kind: "Add + ReLU", outputShape: out, parameterCount: 0,
                                multiplyAccumulates: out.count))
        return rows
    }
}

/// The attention module of one block, with its record name and kind.
struct AttentionModuleUnit: Sendable {
    enum Module: Sendable { case gsa(GSA), sasa(SASA) }
    let module: Module
    let name: String
    let kind: String

    func forward(_ x: Tensor, threads: Int) throws -> Tensor {
        switch module {
        case let .gsa(g): return try g(x, threads: threads)
        case let .sasa(s): return try s(x, threads: threads)
        }
    }

    func outputShape(for input: Shape) throws -> Shape {
        switch module {
        case let .gsa(g): return try g.outputShape(for: input)
        case let .sasa(s): return try s.outputShape(for: input)
        }
    }

    var parameterCount: Int {
        switch module {
        case let .gsa(g): return g.parameterCount
        case let .sasa(s): return s.parameterCount
        }
    }

    func multiplyAccumulates(for input: Shape) throws -> Int {
        switch module {
        case let .gsa(g): return try g.multiplyAccumulates(for: input)
        case let .sasa(s): return try s.multiplyAccumulates(for: input)
        }
    }

    /// A GSA module over `channels` (8 heads, `dk = dv = channels/8`, `L = extent`) with parameters
    /// `block.gsa.qkv.weight` `[3·channels, channels, 1, 1]` (query, key, value rows in that order),
    /// `block.gsa.rel_rows` / `rel_columns` `[2L − 1, dk]` (vertical / horizontal offsets: the column /
    /// row passes) and `block.gsa.norm.*` `[channels]`, taken by the loader of
    /// ``GSA/init(parameters:prefix:heads:extent:components:strict:)``.
    static func gsa(block: String, channels C: Int, extent: Int, source: inout ParameterSource) throws -> AttentionModuleUnit {
        let name = "\(block).gsa"
        let gsa = try GSA.load(prefix: name + ".", channels: C, innerChannels: C, heads: 8, extent: extent,
                               components: .all, source: &source)
        return AttentionModuleUnit(module: .gsa(gsa), name: name, kind: "GSA 8 heads L=\(extent)")
    }
}
