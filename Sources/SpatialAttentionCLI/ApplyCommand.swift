import ArgumentParser
import SpatialAttention

/// `spatial-attention apply <module>`: one module on a 4-D `.npy` tensor, its parameters from a
/// safetensors file.
struct ApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Apply one module to a 4-D .npy tensor, with parameters from a safetensors file.",
        discussion: """
        Parameters are looked up by their PyTorch names under --prefix, so a module can be taken \
        from a whole model's state_dict: `apply se --weights resnet50_se.safetensors --prefix \
        layer1.0.se.` reads layer1.0.se.fc1.weight and layer1.0.se.fc2.weight.
        """,
        subcommands: [SPSACommand.self, ApplyGSA.self, ApplySASA.self, ApplyAttention.self, ApplySE.self,
                      ApplyECA.self, ApplyConvolution.self]
    )
}

/// Where a module's parameters come from.
struct ParameterOptions: ParsableArguments {
    @Option(help: "Safetensors file holding the module's parameters.")
    var weights: String

    @Option(help: "Prefix of the parameter names in the file (e.g. layer1.0.se.).")
    var prefix: String = ""

    func open() throws -> ParameterFile { try ParameterFile(path: weights, prefix: prefix) }
}

/// `apply se`: squeeze-and-excitation without biases, `fc1.weight` `[C/r, C]`, `fc2.weight` `[C, C/r]`.
struct ApplySE: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "se",
        abstract: "Squeeze-and-excitation: x · σ(W₂ · ReLU(W₁ · GAP(x))); fc1.weight [C/r, C], fc2.weight [C, C/r].")

    @OptionGroup var files: TensorFileOptions
    @OptionGroup var parameters: ParameterOptions

    func run() throws {
        try reportingErrors {
            let file = try parameters.open()
            let reduce = try file.tensor("fc1.weight")!, expand = try file.tensor("fc2.weight")!
            guard reduce.shape.count == 2, expand.shape == [reduce.shape[1], reduce.shape[0]] else {
                throw ShapeError("\(file.path): SE weights must be [C/r, C] and [C, C/r], got \(reduce.shape) and \(expand.shape)")
            }
            let module = try SqueezeExcitation(channels: reduce.shape[1], hiddenChannels: reduce.shape[0],
                                               reduceWeight: reduce.values, expandWeight: expand.values)
            try files.map { try module($0, threads: files.threads) }
        }
    }
}

/// `apply eca`: efficient channel attention, `conv.weight` `[1, 1, k]`.
struct ApplyECA: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eca",
        abstract: "Efficient channel attention: x · σ(w ⋆ GAP(x)) across channels; conv.weight [1, 1, k], k odd.")

    @OptionGroup var files: TensorFileOptions
    @OptionGroup var parameters: ParameterOptions

    func run() throws {
        try reportingErrors {
            let weight = try parameters.open().tensor("conv.weight")!
            guard weight.shape.count == 3, weight.shape[0] == 1, weight.shape[1] == 1 else {
                throw ShapeError("\(parameters.weights): ECA weight must be [1, 1, k], got \(weight.shape)")
            }
            try files.map { x in
                try EfficientChannelAttention(channels: x.shape.channels, weight: weight.values)(x, threads: files.threads)
            }
        }
    }
}

/// `apply conv`: a 2-D convolution, `weight` `[K, C/groups, R, S]` and optional `bias` `[K]`.
struct ApplyConvolution: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conv",
        abstract: "2-D convolution (PyTorch Conv2d): weight [K, C/groups, R, S], optional bias [K].")

    @OptionGroup var files: TensorFileOptions
    @OptionGroup var parameters: ParameterOptions

    @Option(help: "Stride.") var stride: Int = 1
    @Option(help: "Zero padding on each side.") var padding: Int = 0
    @Option(help: "Dilation.") var dilation: Int = 1
    @Option(help: "Channel groups.") var groups: Int = 1

    func run() throws {
        try reportingErrors {
            let file = try parameters.open()
            let weight = try file.tensor("weight")!
            let bias = try file.tensor("bias", required: false)
            guard weight.shape.count == 4 else {
                throw ShapeError("\(file.path): convolution weight must be [K, C/groups, R, S], got \(weight.shape)")
            }
            let window = WindowGeometry(kernelHeight: weight.shape[2], kernelWidth: weight.shape[3],
                                        strideHeight: stride, strideWidth: stride, paddingHeight: padding,
                                        paddingWidth: padding, dilationHeight: dilation, dilationWidth: dilation)
            let module = try Conv2D(inputChannels: weight.shape[1] * groups, outputChannels: weight.shape[0],
                                    window: window, groups: groups, weight: weight.values, bias: bias?.values)
            try files.map { try module($0, threads: files.threads) }
        }
    }
}
