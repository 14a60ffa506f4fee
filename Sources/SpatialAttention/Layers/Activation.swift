import CKernels

/// An element-wise activation function, applied on its own or fused into a convolution's epilogue.
public enum ActivationFunction: String, Sendable, CaseIterable, CustomStringConvertible {
    /// `f(x) = x`.
    case identity
    /// `f(x) = max(x, 0)`.
    case relu
    /// `f(x) = min(max(x, 0), 6)` (MobileNetV2).
    case relu6

    public var description: String { rawValue }

    /// The function applied to one value. NaN stays NaN, as in PyTorch.
    @inlinable
    public func callAsFunction(_ x: Float) -> Float {
        switch self {
        case .identity: return x
        case .relu: return x < 0 ? 0 : x
        case .relu6: return x < 0 ? 0 : (x > 6 ? 6 : x)
        }
    }

    /// The code the C epilogue takes (`ck_conv_epilogue`): 0 identity, 1 ReLU, 2 ReLU6.
    @usableFromInline
    var kernelCode: Int32 {
        switch self {
        case .identity: return 0
        case .relu: return 1
        case .relu6: return 2
        }
    }
}

/// An activation layer: ``ActivationFunction`` applied to every element.
///
/// Shapes: any `[N, C, H, W]`, either layout; the output has the input's shape and layout.
/// Reference: `y = f(x)` element-wise; matches `Naive` `activation` exactly.
/// Complexity: no parameters; one MAC per output element for ReLU and ReLU6 (the papers'
/// convention, docs/complexity.md), none for the identity.
public struct Activation: Layer {
    /// The function applied.
    public let function: ActivationFunction

    /// Creates the layer applying `function`.
    public init(_ function: ActivationFunction) { self.function = function }

    /// `max(x, 0)`.
    public static let relu = Activation(.relu)
    /// `min(max(x, 0), 6)`.
    public static let relu6 = Activation(.relu6)

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try callAsFunction(x, threads: nil) }

    /// Applies the function on at most `threads` of the package's threads.
    ///
    /// - Throws: never for a valid tensor (kept throwing for the ``Layer`` protocol).
    public func callAsFunction(_ x: Tensor, threads: Int?) throws -> Tensor {
        var y = x
        applyInPlace(&y, threads: threads)
        return y
    }

    /// Applies the function to `x` in place.
    public func applyInPlace(_ x: inout Tensor, threads: Int? = nil) {
        guard function != .identity else { return }
        let count = x.scalars.count
        let code = function.kernelCode
        x.scalars.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            let chunks = ParallelWork.chunks(elements: count, threads: threads)
            Threads.forEach(chunks, threads: chunks) { i in
                let lower = count * i / chunks, upper = count * (i + 1) / chunks
                ck_conv_epilogue(base + lower, 0, base + lower, 0, nil, nil, nil, 0, 1, upper - lower, code)
            }
        }
    }

    public func outputShape(for input: Shape) throws -> Shape {
        try input.validate()
        return input
    }

    public var parameterCount: Int { 0 }

    public func multiplyAccumulates(for input: Shape) throws -> Int {
        function == .identity ? 0 : try outputShape(for: input).count
    }
}
