/// The named tensors of one module under a prefix, for the modules' `init(parameters:prefix:…)`
/// loaders (``GSA``, ``SASA``, ``NonLocal``).
///
/// A loader reads the module's sizes from the shapes of one or two tensors (``shape(of:expected:required:where:)``),
/// then takes every tensor by name and shape from a ``ParameterSource`` over these tensors
/// (``load(strict:_:)``), exactly as the model builders take them, so that one load reports every
/// missing, mis-shaped and unexpected name at once, under the full names (prefix included).
struct ModuleParameters {
    /// What the errors call the module: `GSA`, or `GSA under 'layer1.0.gsa.'`.
    let module: String
    /// Prepended to every name, e.g. `layer1.0.gsa.`.
    let prefix: String
    /// The given tensors whose names start with ``prefix``, under their full names.
    let tensors: [String: ParameterTensor]

    /// The tensors of `parameters` under `prefix` (a module taken from a whole model's `state_dict`).
    init(module: String, parameters: [String: ParameterTensor], prefix: String) {
        self.module = prefix.isEmpty ? module : "\(module) under '\(prefix)'"
        self.prefix = prefix
        tensors = parameters.filter { $0.key.hasPrefix(prefix) }
    }

    /// The shape `[d, C, 1, 1]` of a 1×1 projection's weight `name`, checked as ``shape(of:expected:required:where:)``.
    func projectionShape(of name: String, required: [String]) throws -> [Int] {
        try shape(of: name, expected: "[d, C, 1, 1]", required: required) {
            $0.count == 4 && $0[0] > 0 && $0[1] > 0 && $0[2] == 1 && $0[3] == 1
        }
    }

    /// The shape of the tensor `prefix + name`, from which the loader reads sizes.
    ///
    /// - Parameters:
    ///   - expected: the shape pattern for the message, e.g. `[3·d, C, 1, 1]`.
    ///   - required: every tensor the module needs (without the prefix): when `name` is absent, the
    ///     error lists all of them that are absent.
    ///   - isValid: whether a shape has the pattern.
    /// - Throws: ``ParameterError`` when the tensor is absent or `isValid` refuses its shape.
    func shape(of name: String, expected: String, required: [String], where isValid: ([Int]) -> Bool) throws -> [Int] {
        guard let tensor = tensors[prefix + name] else {
            let missing = required.map { prefix + $0 }.filter { tensors[$0] == nil }
            throw ParameterError(model: module, missing: missing, unexpected: [], misshaped: [])
        }
        guard isValid(tensor.shape) else {
            throw ParameterError(model: module, missing: [], unexpected: [],
                                 misshaped: ["\(prefix + name): expected \(expected), got \(tensor.shape)"])
        }
        return tensor.shape
    }

    /// Builds the module with `build` from a source over ``tensors``.
    ///
    /// - Throws: what `build` throws; then ``ParameterError`` naming every missing, mis-shaped and
    ///   (when `strict`) unexpected tensor under the prefix.
    func load<Module>(strict: Bool, _ build: (inout ParameterSource) throws -> Module) throws -> Module {
        var source = ParameterSource(parameters: tensors)
        let built = try build(&source)
        try source.validate(model: module, strict: strict)
        return built
    }
}
