import CKernels

/// A residual connection: `y = f(body(x) + shortcut(x))`, the shortcut the identity when empty.
///
/// Shapes: `body` and `shortcut` must map `x` to the same shape. Either layout; the addition and the
/// activation run in one pass. Models fuse the addition into the last convolution's epilogue instead
/// (``Conv2D/callAsFunction(_:residual:algorithm:threads:)``); this layer is the general form.
/// Complexity: the sum of the branches', plus one MAC per element for a ReLU/ReLU6 ``activation``.
public struct Residual: Layer {
    /// Layers applied in order on the main branch.
    public let body: [any Layer]
    /// Layers applied in order on the shortcut branch; empty for the identity.
    public let shortcut: [any Layer]
    /// Applied after the addition.
    public let activation: ActivationFunction

    public init(body: [any Layer], shortcut: [any Layer] = [], activation: ActivationFunction = .identity) {
        self.body = body
        self.shortcut = shortcut
        self.activation = activation
    }

    /// `f(a + b)` element-wise, the result in `a`'s layout.
    ///
    /// - Throws: ``ShapeError`` when the shapes differ.
    public static func add(_ a: Tensor, _ b: Tensor, activation: ActivationFunction = .identity,
                           threads: Int? = nil) throws -> Tensor {
        guard a.shape == b.shape else { throw ShapeError("residual addition of \(a.shape) and \(b.shape)") }
        var y = a
        let other = b.converted(to: a.layout)
        let count = a.shape.count
        let code = activation.kernelCode
        y.scalars.withUnsafeMutableBufferPointer { py in
            other.scalars.withUnsafeBufferPointer { pb in
                guard let dst = py.baseAddress, let src = pb.baseAddress else { return }
                let chunks = ParallelWork.chunks(elements: count, threads: threads)
                Threads.forEach(chunks, threads: chunks) { t in
                    let lo = count * t / chunks, hi = count * (t + 1) / chunks
                    ck_conv_epilogue(dst + lo, 0, dst + lo, 0, nil, nil, src + lo, 0, 1, hi - lo, code)
                }
            }
        }
        return y
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let main = try body.reduce(x) { try $1($0) }
        let side = try shortcut.reduce(x) { try $1($0) }
        return try Residual.add(main, side, activation: activation)
    }

    public func outputShape(for input: Shape) throws -> Shape {
        let main = try body.reduce(input) { try $1.outputShape(for: $0) }
        let side = try shortcut.reduce(input) { try $1.outputShape(for: $0) }
        guard main == side else { throw ShapeError("residual branches give \(main) and \(side) for input \(input)") }
        return main
    }

    public var parameterCount: Int { (body + shortcut).reduce(0) { $0 + $1.parameterCount } }

    public func multiplyAccumulates(for input: Shape) throws -> Int {
        var total = 0
        for branch in [body, shortcut] {
            var shape = input
            for layer in branch {
                total += try layer.multiplyAccumulates(for: shape)
                shape = try layer.outputShape(for: shape)
            }
        }
        let out = try outputShape(for: input)
        return total + (activation == .identity ? 0 : out.count)
    }
}
