/// The ResNet family in torchvision's layout (v1.5: the stride of a downsampling block is on its
/// 3×3 convolution), with ResNeXt's grouped 3×3 convolutions and the attention variants of
/// ``ResNet/Variant``.
///
/// Parameter names are torchvision's: `conv1`, `bn1`, `layer{1…4}.{i}.conv{1,2,3}`, `.bn{1,2,3}`,
/// `.downsample.0` (1×1 convolution) and `.downsample.1` (its BN), `fc`; the modules we add are
/// `layer{s}.{i}.se.fc1` / `.se.fc2` (SE) and `layer{s}.{i}.eca.conv` (ECA). docs/models.md lists them.
public enum ResNet {
    /// The depth-defining numbers of a bottleneck ResNet or ResNeXt.
    public struct Configuration: Sendable, Equatable {
        /// Blocks per stage: `[3, 4, 6, 3]` for ResNet-50.
        public var blocks: [Int]
        /// Groups of the 3×3 convolutions (32 for ResNeXt-50 32×4d).
        public var groups: Int
        /// Channels per group at stage 1's width of 64 (4 for ResNeXt-50 32×4d).
        public var widthPerGroup: Int
        /// Classifier outputs.
        public var classes: Int

        public init(blocks: [Int], groups: Int = 1, widthPerGroup: Int = 64, classes: Int = 1000) {
            self.blocks = blocks
            self.groups = groups
            self.widthPerGroup = widthPerGroup
            self.classes = classes
        }

        /// ResNet-50: `[3, 4, 6, 3]`.
        public static let resnet50 = Configuration(blocks: [3, 4, 6, 3])
        /// ResNet-101: `[3, 4, 23, 3]`.
        public static let resnet101 = Configuration(blocks: [3, 4, 23, 3])
        /// ResNet-152: `[3, 8, 36, 3]`.
        public static let resnet152 = Configuration(blocks: [3, 8, 36, 3])
        /// ResNeXt-50 32×4d.
        public static let resnext50 = Configuration(blocks: [3, 4, 6, 3], groups: 32, widthPerGroup: 4)

        /// Output channels of stage `s` (0-based): `64·2ˢ·4`.
        public func outputChannels(stage s: Int) -> Int { (64 << s) * 4 }

        /// Channels of the 3×3 convolution of stage `s`: `64·2ˢ·widthPerGroup/64·groups`.
        public func width(stage s: Int) -> Int { (64 << s) * widthPerGroup / 64 * groups }
    }

    /// Builds the stages of a ResNet from `source`.
    static func stages(_ configuration: Configuration, variant: Variant, source: inout ParameterSource) throws -> [any ModelStage] {
        var stages: [any ModelStage] = [
            ConvStage(unit: try ConvUnit(convolution: "conv1", norm: "bn1", activationName: "relu", inputChannels: 3,
                                         outputChannels: 64, window: WindowGeometry(kernel: 7, stride: 2, padding: 3),
                                         activation: .relu, source: &source)),
            PoolStage(name: "maxpool", pool: MaxPool2D(window: WindowGeometry(kernel: 3, stride: 2, padding: 1))),
        ]
        var channels = 64
        for (s, count) in configuration.blocks.enumerated() {
            for i in 0..<count {
                let block = try Bottleneck(name: "layer\(s + 1).\(i)", stage: s, inputChannels: channels,
                                           stride: s > 0 && i == 0 ? 2 : 1, configuration: configuration,
                                           variant: variant, source: &source)
                stages.append(block)
                channels = configuration.outputChannels(stage: s)
            }
        }
        stages.append(try ClassifierHead(name: "fc", features: channels, classes: configuration.classes, source: &source))
        return stages
    }
}

/// A bottleneck block: 1×1 → 3×3 (stride, groups) → 1×1, each with its BN folded, and a shortcut
/// (identity, or a strided 1×1 convolution with BN when the shape changes).
///
/// `out = ReLU(CA(BN₃(conv₃(ReLU(SPSA(BN₂(conv₂(ReLU(BN₁(conv₁ x))))))))) + shortcut(x))`, SPSA and the
/// channel attention `CA` optional. Without `CA` the addition and ReLU run in conv₃'s epilogue;
/// with it, one pass applies the channel scales, the addition and the ReLU.
struct Bottleneck: ModelStage {
    let name: String
    let conv1: ConvUnit, conv2: ConvUnit, conv3: ConvUnit
    let downsample: ConvUnit?
    let attention: (any ChannelAttention)?
    let attentionName: String

    init(name: String, stage: Int, inputChannels: Int, stride: Int, configuration: ResNet.Configuration,
         variant: ResNet.Variant, source: inout ParameterSource) throws {
        let width = configuration.width(stage: stage)
        let output = configuration.outputChannels(stage: stage)
        self.name = name
        conv1 = try ConvUnit(convolution: "\(name).conv1", norm: "\(name).bn1", activationName: "\(name).relu",
                             inputChannels: inputChannels, outputChannels: width, window: WindowGeometry(kernel: 1),
                             activation: .relu, source: &source)
        conv2 = try ConvUnit(convolution: "\(name).conv2", norm: "\(name).bn2", spsaName: "\(name).spsa",
                             activationName: "\(name).relu", inputChannels: width, outputChannels: width,
                             window: WindowGeometry(kernel: 3, stride: stride, padding: 1), groups: configuration.groups,
                             activation: .relu, spsaHeads: variant.spsa ? width / 64 : nil, source: &source)
        // The last BN's weights are drawn small so that a seeded network's activations stay near unit scale.
        let (attention, attentionName) = try variant.channelAttention(block: name, stage: stage, channels: output, source: &source)
        self.attention = attention
        self.attentionName = attentionName
        conv3 = try ConvUnit(convolution: "\(name).conv3", norm: "\(name).bn3", activationName: "\(name).relu",
                             inputChannels: width, outputChannels: output, window: WindowGeometry(kernel: 1),
                             activation: attention == nil ? .relu : .identity, normScale: (0.1, 0.3), source: &source)
        if stride != 1 || inputChannels != output {
            downsample = try ConvUnit(convolution: "\(name).downsample.0", norm: "\(name).downsample.1",
                                      inputChannels: inputChannels, outputChannels: output,
                                      window: WindowGeometry(kernel: 1, stride: stride), activation: .identity,
                                      normScale: (0.5, 1.0), source: &source)
        } else {
            downsample = nil
        }
    }

    func forward(_ x: Tensor, threads: Int) throws -> Tensor {
        let shortcut = try downsample?.forward(x, threads: threads) ?? x
        let t = try conv2.forward(try conv1.forward(x, threads: threads), threads: threads)
        guard let attention else {
            return try conv3.forward(t, residual: shortcut, threads: threads)
        }
        var u = try conv3.forward(t, threads: threads)
        let scales = try attention.scales(for: u, threads: threads)
        scaleAddActivate(&u, scales: scales, shortcut: shortcut, activation: .relu, threads: threads)
        return u
    }

    func outputShape(for input: Shape) throws -> Shape {
        try conv3.outputShape(for: try conv2.outputShape(for: try conv1.outputShape(for: input)))
    }

    func records(for input: Shape) throws -> [LayerRecord] {
        let s1 = try conv1.outputShape(for: input), s2 = try conv2.outputShape(for: s1)
        var rows = try conv1.records(for: input) + conv2.records(for: s1) + conv3.records(for: s2, includeActivation: false)
        let out = try conv3.outputShape(for: s2)
        if let attention {
            rows.append(LayerRecord(name: attentionName, kind: attention is SqueezeExcitation ? "SE r=16" :
                                        "ECA k=\((attention as? EfficientChannelAttention)?.kernelSize ?? 0)",
                                    outputShape: out, parameterCount: attention.parameterCount,
                                    multiplyAccumulates: try attention.multiplyAccumulates(for: out)))
        }
        if let downsample { rows += try downsample.records(for: input) }
        rows.append(LayerRecord(name: "\(name).add", kind: "Add + ReLU", outputShape: out, parameterCount: 0,
                                multiplyAccumulates: out.count))
        return rows
    }
}
