/// Loading and saving a model's parameters as safetensors under PyTorch `state_dict` names.
///
/// A PyTorch user exports a trained network with
/// `safetensors.torch.save_file(model.state_dict(), "w.safetensors")` and loads it here with
/// `Model(name:weightsFile:strict:)`: names are torchvision's (`conv1.weight`,
/// `bn1.{weight,bias,running_mean,running_var}`, `layer1.0.conv1.weight`,
/// `layer1.0.downsample.{0,1}.*`, `fc.{weight,bias}`; SE, ECA and the other added modules as
/// docs/models.md lists them), every BN is folded into its convolution as the model is built, and
/// `*.num_batches_tracked` (a training counter) is ignored. Dtypes F32, F16, BF16 and F64 are
/// converted to Float32 (docs/io.md).
extension Model {
    /// Builds `name` from the safetensors file at `path`.
    ///
    /// - Parameters:
    ///   - name: a model name of the registry, e.g. `"resnet50+spsa"`.
    ///   - path: the safetensors file, with torchvision state_dict names.
    ///   - strict: when true (PyTorch's default) a tensor the model does not have is an error;
    ///     when false it is ignored. Missing and mis-shaped tensors are always errors.
    /// - Throws: ``FileFormatError`` when the file is missing or malformed; ``ParameterError``
    ///   listing every missing, mis-shaped and (when `strict`) unexpected name at once.
    public init(name: ModelName, weightsFile path: String, strict: Bool = true) throws {
        let file = try Safetensors(contentsOf: path)
        try self.init(name: name, parameters: file.tensors.mapValues(ParameterTensor.init), strict: strict)
    }

    /// Writes the model's parameters and BN buffers (unfolded, as ``parameters`` holds them) to
    /// `path` as F32 safetensors under torchvision's names, atomically. Reading the file back with
    /// ``init(name:weightsFile:strict:)`` gives the same model; PyTorch's `load_state_dict` reads
    /// it too (BN's `num_batches_tracked`, absent here, is filled in by PyTorch).
    ///
    /// `metadata` goes into the file's `__metadata__`, with `format: pt` and `model: <name>` unless given.
    ///
    /// - Throws: ``FileFormatError`` with ``FileFormatError/Problem/writeFailed(reason:)``.
    public func writeWeights(to path: String, metadata: [String: String] = [:]) throws {
        // "format": "pt" is what `safetensors.torch.save_file` writes; tools key on it.
        let info = metadata.merging(["format": "pt", "model": name.description]) { given, _ in given }
        try Safetensors(tensors: parameters.mapValues(NDArray.init), metadata: info).write(to: path)
    }
}

extension ParameterTensor {
    /// The parameter holding `array`'s shape and values.
    public init(_ array: NDArray) {
        self.init(unchecked: array.shape, values: array.values)
    }
}

extension NDArray {
    /// The array holding `parameter`'s shape and values.
    public init(_ parameter: ParameterTensor) {
        self.init(unchecked: parameter.shape, values: parameter.values)
    }
}
