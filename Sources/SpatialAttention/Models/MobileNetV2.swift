/// MobileNetV2 (width 1.0) in torchvision's layout, optionally with SPSA after the BN of every
/// depthwise convolution (002 A.2, Table 9: 1, 1, 2, 3, 4, 8, 15 heads by sequence).
///
/// Names: `features.0.{0,1}` (stem convolution and BN), `features.{1…17}.conv.*` (inverted
/// residuals: `conv.0.{0,1}` expansion, `conv.1.{0,1}` depthwise, `conv.2` projection, `conv.3` its BN;
/// without expansion `conv.0.*` is the depthwise, `conv.1`/`conv.2` the projection and BN),
/// `features.18.{0,1}` (1×1 to 1280), `classifier.1` (fc). 3,504,872 parameters.
public enum MobileNetV2 {
    /// `(t, c, n, s, h)` per sequence: expansion, output channels, repeats, first stride, SPSA heads.
    public static let sequences: [(expansion: Int, channels: Int, repeats: Int, stride: Int, heads: Int)] = [
        (1, 16, 1, 1, 1), (6, 24, 2, 2, 1), (6, 32, 3, 2, 2), (6, 64, 4, 2, 3),
        (6, 96, 3, 1, 4), (6, 160, 3, 2, 8), (6, 320, 1, 1, 15),
    ]

    static func stages(spsa: Bool, classes: Int = 1000, source: inout ParameterSource) throws -> [any ModelStage] {
        var stages: [any ModelStage] = [
            ConvStage(unit: try ConvUnit(convolution: "features.0.0", norm: "features.0.1", activationName: "features.0.2",
                                         inputChannels: 3, outputChannels: 32,
                                         window: WindowGeometry(kernel: 3, stride: 2, padding: 1), activation: .relu6,
                                         source: &source)),
        ]
        var channels = 32
        var index = 1
        for sequence in sequences {
            for i in 0..<sequence.repeats {
                stages.append(try InvertedResidual(name: "features.\(index)", inputChannels: channels,
                                                   outputChannels: sequence.channels, stride: i == 0 ? sequence.stride : 1,
                                                   expansion: sequence.expansion, spsaHeads: spsa ? sequence.heads : nil,
                                                   source: &source))
                channels = sequence.channels
                index += 1
            }
        }
        stages.append(ConvStage(unit: try ConvUnit(convolution: "features.\(index).0", norm: "features.\(index).1",
                                                   activationName: "features.\(index).2", inputChannels: channels,
                                                   outputChannels: 1280, window: WindowGeometry(kernel: 1),
                                                   activation: .relu6, source: &source)))
        stages.append(try ClassifierHead(name: "classifier.1", poolName: "features.pool", features: 1280, classes: classes,
                                         source: &source))
        return stages
    }
}

/// MobileNetV2's inverted residual: 1×1 expansion (ReLU6), 3×3 depthwise (ReLU6, SPSA after its BN),
/// 1×1 linear projection, plus the input when the shape is kept (stride 1, same channels), added
/// in the projection's epilogue.
struct InvertedResidual: ModelStage {
    let expand: ConvUnit?
    let depthwise: ConvUnit
    let project: ConvUnit
    let usesResidual: Bool
    let name: String

    init(name: String, inputChannels: Int, outputChannels: Int, stride: Int, expansion: Int, spsaHeads: Int?,
         source: inout ParameterSource) throws {
        let hidden = inputChannels * expansion
        self.name = name
        var next = 0
        if expansion != 1 {
            expand = try ConvUnit(convolution: "\(name).conv.0.0", norm: "\(name).conv.0.1", activationName: "\(name).conv.0.2",
                                  inputChannels: inputChannels, outputChannels: hidden, window: WindowGeometry(kernel: 1),
                                  activation: .relu6, source: &source)
            next = 1
        } else {
            expand = nil
        }
        depthwise = try ConvUnit(convolution: "\(name).conv.\(next).0", norm: "\(name).conv.\(next).1",
                                 spsaName: "\(name).conv.\(next).spsa", activationName: "\(name).conv.\(next).2",
                                 inputChannels: hidden, outputChannels: hidden,
                                 window: WindowGeometry(kernel: 3, stride: stride, padding: 1), groups: hidden,
                                 activation: .relu6, spsaHeads: spsaHeads, source: &source)
        usesResidual = stride == 1 && inputChannels == outputChannels
        project = try ConvUnit(convolution: "\(name).conv.\(next + 1)", norm: "\(name).conv.\(next + 2)",
                               inputChannels: hidden, outputChannels: outputChannels, window: WindowGeometry(kernel: 1),
                               activation: .identity, normScale: usesResidual ? (0.1, 0.3) : (0.5, 1.0), source: &source)
    }

    func forward(_ x: Tensor, threads: Int) throws -> Tensor {
        let e = try expand?.forward(x, threads: threads) ?? x
        let d = try depthwise.forward(e, threads: threads)
        return try project.forward(d, residual: usesResidual ? x : nil, threads: threads)
    }

    func outputShape(for input: Shape) throws -> Shape {
        let e = try expand?.outputShape(for: input) ?? input
        return try project.outputShape(for: try depthwise.outputShape(for: e))
    }

    func records(for input: Shape) throws -> [LayerRecord] {
        let e = try expand?.outputShape(for: input) ?? input
        let d = try depthwise.outputShape(for: e)
        var rows = try (expand?.records(for: input) ?? []) + depthwise.records(for: e) + project.records(for: d)
        if usesResidual {
            rows.append(LayerRecord(name: "\(name).add", kind: "Add", outputShape: try project.outputShape(for: d),
                                    parameterCount: 0, multiplyAccumulates: 0))
        }
        return rows
    }
}
