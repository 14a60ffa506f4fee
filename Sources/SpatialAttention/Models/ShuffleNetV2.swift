import CKernels

/// ShuffleNetV2 1.0× in torchvision's layout, optionally with SPSA after the BN of the depthwise
/// convolution of every unit's main branch (not the shortcut branch; 002 A.2: 2, 4, 8 heads by stage).
///
/// Names: `conv1.{0,1}` (stem), `stage{2,3,4}.{i}.branch1.{0,1,2,3}` (downsampling unit's shortcut
/// branch: depthwise, BN, 1×1, BN), `.branch2.{0,1,3,4,5,6}` (1×1, BN, depthwise, BN, 1×1, BN),
/// `conv5.{0,1}`, `fc`. 2,278,604 parameters.
public enum ShuffleNetV2 {
    /// Units per stage.
    public static let repeats = [4, 8, 4]
    /// Output channels of the stem, the three stages and conv5.
    public static let channels = [24, 116, 232, 464, 1024]
    /// SPSA heads per stage.
    public static let heads = [2, 4, 8]

    static func stages(spsa: Bool, classes: Int = 1000, source: inout ParameterSource) throws -> [any ModelStage] {
        var stages: [any ModelStage] = [
            ConvStage(unit: try ConvUnit(convolution: "conv1.0", norm: "conv1.1", activationName: "conv1.2",
                                         inputChannels: 3, outputChannels: channels[0],
                                         window: WindowGeometry(kernel: 3, stride: 2, padding: 1), activation: .relu,
                                         source: &source)),
            PoolStage(name: "maxpool", pool: MaxPool2D(window: WindowGeometry(kernel: 3, stride: 2, padding: 1))),
        ]
        var input = channels[0]
        for (s, count) in repeats.enumerated() {
            for i in 0..<count {
                stages.append(try ShuffleUnit(name: "stage\(s + 2).\(i)", inputChannels: input, outputChannels: channels[s + 1],
                                              stride: i == 0 ? 2 : 1, spsaHeads: spsa ? heads[s] : nil, source: &source))
                input = channels[s + 1]
            }
        }
        stages.append(ConvStage(unit: try ConvUnit(convolution: "conv5.0", norm: "conv5.1", activationName: "conv5.2",
                                                   inputChannels: input, outputChannels: channels[4],
                                                   window: WindowGeometry(kernel: 1), activation: .relu, source: &source)))
        stages.append(try ClassifierHead(name: "fc", poolName: "mean", features: channels[4], classes: classes, source: &source))
        return stages
    }
}

/// A ShuffleNetV2 unit. Stride 1: split the channels in halves `x₁, x₂`, `out = shuffle(x₁ ‖ branch2(x₂))`.
/// Stride 2: `out = shuffle(branch1(x) ‖ branch2(x))`. `shuffle` interleaves the two halves
/// (torchvision's `channel_shuffle` with 2 groups); concatenation and shuffle are one copy.
struct ShuffleUnit: ModelStage {
    let name: String
    let branch1: [ConvUnit]
    let branch2: [ConvUnit]
    let stride: Int

    init(name: String, inputChannels: Int, outputChannels: Int, stride: Int, spsaHeads: Int?,
         source: inout ParameterSource) throws {
        let half = outputChannels / 2
        self.name = name
        self.stride = stride
        let b1 = "\(name).branch1", b2 = "\(name).branch2"
        if stride > 1 {
            branch1 = [
                try ConvUnit(convolution: "\(b1).0", norm: "\(b1).1", inputChannels: inputChannels, outputChannels: inputChannels,
                             window: WindowGeometry(kernel: 3, stride: stride, padding: 1), groups: inputChannels,
                             activation: .identity, source: &source),
                try ConvUnit(convolution: "\(b1).2", norm: "\(b1).3", activationName: "\(b1).4", inputChannels: inputChannels,
                             outputChannels: half, window: WindowGeometry(kernel: 1), activation: .relu, source: &source),
            ]
        } else {
            branch1 = []
        }
        let branchInput = stride > 1 ? inputChannels : half
        branch2 = [
            try ConvUnit(convolution: "\(b2).0", norm: "\(b2).1", activationName: "\(b2).2", inputChannels: branchInput,
                         outputChannels: half, window: WindowGeometry(kernel: 1), activation: .relu, source: &source),
            try ConvUnit(convolution: "\(b2).3", norm: "\(b2).4", spsaName: "\(b2).spsa", inputChannels: half,
                         outputChannels: half, window: WindowGeometry(kernel: 3, stride: stride, padding: 1), groups: half,
                         activation: .identity, spsaHeads: spsaHeads, source: &source),
            try ConvUnit(convolution: "\(b2).5", norm: "\(b2).6", activationName: "\(b2).7", inputChannels: half,
                         outputChannels: half, window: WindowGeometry(kernel: 1), activation: .relu, source: &source),
        ]
    }

    func forward(_ x: Tensor, threads: Int) throws -> Tensor {
        let left: Tensor, right: Tensor
        if stride > 1 {
            left = try branch1.reduce(x) { try $1.forward($0, threads: threads) }
            right = try branch2.reduce(x) { try $1.forward($0, threads: threads) }
        } else {
            let (first, second) = try x.splitChannelHalves()
            left = first
            right = try branch2.reduce(second) { try $1.forward($0, threads: threads) }
        }
        return try Tensor.interleavingChannels(left, right)
    }

    func outputShape(for input: Shape) throws -> Shape {
        var shape = stride > 1 ? input : Shape(input.batch, input.channels / 2, input.height, input.width)
        shape = try branch2.reduce(shape) { try $1.outputShape(for: $0) }
        return Shape(shape.batch, 2 * shape.channels, shape.height, shape.width)
    }

    func records(for input: Shape) throws -> [LayerRecord] {
        var rows: [LayerRecord] = []
        var shape = input
        for unit in branch1 { rows += try unit.records(for: shape); shape = try unit.outputShape(for: shape) }
        shape = stride > 1 ? input : Shape(input.batch, input.channels / 2, input.height, input.width)
        for unit in branch2 { rows += try unit.records(for: shape); shape = try unit.outputShape(for: shape) }
        rows.append(LayerRecord(name: "\(name).shuffle", kind: "Concat + ChannelShuffle 2", outputShape: try outputShape(for: input),
                                parameterCount: 0, multiplyAccumulates: 0))
        return rows
    }
}

extension Tensor {
    /// The first and second halves of the channels of an NCHW tensor (torchvision's `x.chunk(2, dim=1)`).
    func splitChannelHalves() throws -> (Tensor, Tensor) {
        guard layout == .nchw, shape.channels % 2 == 0 else {
            throw ShapeError("channel split needs an NCHW tensor with even C, got \(shape) \(layout)")
        }
        let half = Shape(shape.batch, shape.channels / 2, shape.height, shape.width)
        let plane = half.channels * half.pixels
        var first = Tensor.uninitialized(shape: half), second = Tensor.uninitialized(shape: half)
        scalars.withUnsafeBufferPointer { src in
            first.scalars.withUnsafeMutableBufferPointer { a in
                second.scalars.withUnsafeMutableBufferPointer { b in
                    for n in 0..<shape.batch {
                        (a.baseAddress! + n * plane).update(from: src.baseAddress! + 2 * n * plane, count: plane)
                        (b.baseAddress! + n * plane).update(from: src.baseAddress! + (2 * n + 1) * plane, count: plane)
                    }
                }
            }
        }
        return (first, second)
    }

    /// `shuffle(a ‖ b)` for two NCHW tensors of equal shape: output channel `2i` is `a`'s channel `i`,
    /// `2i + 1` is `b`'s (concatenation then `channel_shuffle` with 2 groups).
    static func interleavingChannels(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        guard a.shape == b.shape, a.layout == .nchw, b.layout == .nchw else {
            throw ShapeError("channel interleave needs two NCHW tensors of one shape, got \(a.shape) and \(b.shape)")
        }
        let s = a.shape
        var y = Tensor.uninitialized(shape: Shape(s.batch, 2 * s.channels, s.height, s.width))
        let P = s.pixels
        a.scalars.withUnsafeBufferPointer { pa in
            b.scalars.withUnsafeBufferPointer { pb in
                y.scalars.withUnsafeMutableBufferPointer { py in
                    for n in 0..<s.batch {
                        for c in 0..<s.channels {
                            let source = (n * s.channels + c) * P
                            (py.baseAddress! + (n * 2 * s.channels + 2 * c) * P).update(from: pa.baseAddress! + source, count: P)
                            (py.baseAddress! + (n * 2 * s.channels + 2 * c + 1) * P).update(from: pb.baseAddress! + source, count: P)
                        }
                    }
                }
            }
        }
        return y
    }
}
