/// One named parameter or buffer of a model: its shape in PyTorch's order and its values, row-major.
///
/// Names follow torchvision's `state_dict` (`conv1.weight`, `layer1.0.bn1.running_mean`, `fc.bias`);
/// docs/models.md lists them for every model, with the names chosen for SE and ECA.
public struct ParameterTensor: Sendable, Equatable {
    /// The dimensions, e.g. `[64, 3, 7, 7]` for a convolution weight.
    public let shape: [Int]
    /// `shape.reduce(1, *)` values, row-major.
    public let values: [Float]

    /// Creates a parameter.
    ///
    /// - Throws: ``ShapeError`` when a dimension is negative or `values.count` is not the product of `shape`.
    public init(shape: [Int], values: [Float]) throws {
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == values.count else {
            throw ShapeError("parameter of shape \(shape) needs \(shape.reduce(1, *)) values, got \(values.count)")
        }
        self.shape = shape
        self.values = values
    }

    init(unchecked shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }
}

/// Named parameters that do not fit a model: every missing, unexpected and mis-shaped name at once.
public struct ParameterError: Error, Sendable, CustomStringConvertible {
    /// The model the parameters were for.
    public let model: String
    /// Names the model needs that were not given.
    public let missing: [String]
    /// Names given that the model does not have (reported only when strict).
    public let unexpected: [String]
    /// Names whose shape differs: `"name: expected [..], got [..]"`.
    public let misshaped: [String]

    public var description: String {
        var lines = ["parameters do not fit \(model):"]
        if !missing.isEmpty { lines.append("missing (\(missing.count)): " + missing.joined(separator: ", ")) }
        if !unexpected.isEmpty { lines.append("unexpected (\(unexpected.count)): " + unexpected.joined(separator: ", ")) }
        if !misshaped.isEmpty { lines.append("mis-shaped (\(misshaped.count)): " + misshaped.joined(separator: "; ")) }
        return lines.joined(separator: "\n")
    }
}

/// Where a model builder gets its parameters: seeded random values, or a caller's named tensors.
///
/// The builder asks for each parameter by name and shape in definition order; the source records
/// what it handed out (``collected``, the model's named parameters) and, for named tensors, every
/// missing or mis-shaped name, so that one build reports all problems together.
struct ParameterSource {
    /// How a random parameter is drawn.
    enum Initializer {
        /// Kaiming uniform for a ReLU network: `U(−b, b)`, `b = √(6 / fanIn)` (variance `2 / fanIn`).
        case kaiming(fanIn: Int)
        /// `U(lower, upper)`.
        case uniform(Float, Float)
        /// Kaiming uniform with its first `count` values (a tensor's leading rows) multiplied by `scale`.
        case kaimingScaledPrefix(fanIn: Int, count: Int, scale: Float)
    }

    private let provided: [String: ParameterTensor]?
    private var generator: SeededGenerator
    /// True for a source of zeros that only describes a model's shapes (no packing, no folding).
    let describing: Bool
    /// Every parameter handed out, by name.
    private(set) var collected: [String: ParameterTensor] = [:]
    /// The names in the order the builder asked for them.
    private(set) var order: [String] = []
    private(set) var missing: [String] = []
    private(set) var misshaped: [String] = []

    /// A source of seeded random parameters.
    init(seed: UInt64) {
        provided = nil
        generator = SeededGenerator(seed: seed)
        describing = false
    }

    /// A source reading `parameters`.
    init(parameters: [String: ParameterTensor]) {
        provided = parameters
        generator = SeededGenerator(seed: 0)
        describing = false
    }

    /// A source of zeros for a model that only describes its layers.
    init(describing: Void) {
        provided = nil
        generator = SeededGenerator(seed: 0)
        self.describing = true
    }

    /// The values of parameter `name` of `shape`. For a missing or mis-shaped name, records the
    /// problem and returns zeros so that the build can go on and find the others.
    mutating func take(_ name: String, shape: [Int], _ initializer: Initializer) -> [Float] {
        let count = shape.reduce(1, *)
        order.append(name)
        if describing { return [Float](repeating: 0, count: count) }
        if let provided {
            guard let tensor = provided[name] else {
                missing.append(name)
                return [Float](repeating: 0, count: count)
            }
            guard tensor.shape == shape else {
                misshaped.append("\(name): expected \(shape), got \(tensor.shape)")
                return [Float](repeating: 0, count: count)
            }
            collected[name] = tensor
            return tensor.values
        }
        let (lower, upper): (Float, Float)
        switch initializer {
        case let .kaiming(fanIn), let .kaimingScaledPrefix(fanIn, _, _):
            let bound = (6 / Float(max(1, fanIn))).squareRoot()
            (lower, upper) = (-bound, bound)
        case let .uniform(a, b):
            (lower, upper) = (a, b)
        }
        var (prefix, prefixScale): (Int, Float) = (0, 1)
        if case let .kaimingScaledPrefix(_, scaledCount, scale) = initializer {
            (prefix, prefixScale) = (min(scaledCount, count), scale)
        }
        // Two 24-bit uniforms per 64-bit draw: seeding ResNet-152's 60M values takes ~0.2 s.
        let values = [Float](unsafeUninitializedCapacity: count) { out, initialized in
            var i = 0
            while i < count {
                let bits = generator.next()
                out[i] = lower + (upper - lower) * Float(bits >> 40) * 0x1p-24
                if i + 1 < count { out[i + 1] = lower + (upper - lower) * Float((bits >> 8) & 0xFF_FFFF) * 0x1p-24 }
                i += 2
            }
            for j in 0..<prefix { out[j] *= prefixScale }
            initialized = count
        }
        collected[name] = ParameterTensor(unchecked: shape, values: values)
        return values
    }

    /// Whether the caller's tensors include `name` (always false for seeded and describing sources).
    func provides(_ name: String) -> Bool { provided?[name] != nil }

    /// The values of the optional tensor `name` of `shape` when the caller's tensors include it (a
    /// mis-shaped one is recorded as ``take(_:shape:_:)`` records it); nil when they do not, and always
    /// for seeded and describing sources, which build modules without their optional tensors.
    mutating func takeIfProvided(_ name: String, shape: [Int]) -> [Float]? {
        guard provides(name) else { return nil }
        return take(name, shape: shape, .uniform(0, 0))
    }

    /// Throws ``ParameterError`` when a name was missing or mis-shaped, or (when `strict`) a provided
    /// name was never asked for. `*.num_batches_tracked` (a BN counter, unused at inference) is
    /// always ignored.
    func validate(model: String, strict: Bool) throws {
        var unexpected: [String] = []
        if strict, let provided {
            let known = Set(order)
            unexpected = provided.keys.filter { !known.contains($0) && !$0.hasSuffix("num_batches_tracked") }.sorted()
        }
        guard missing.isEmpty, misshaped.isEmpty, unexpected.isEmpty else {
            throw ParameterError(model: model, missing: missing, unexpected: unexpected, misshaped: misshaped)
        }
    }
}
