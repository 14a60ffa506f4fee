import SpatialAttention

/// The correctness oracle: a naive twin of every fast kernel, written straight from the papers'
/// equations or code as nested loops with numbered passes and Double accumulation.
///
/// Tests and the benchmark compare the library against `Naive`; the library never calls it.
/// Each twin takes the same argument labels as its fast kernel and returns a ``ReferenceTensor``
/// (Double values, logical NCHW order).
public enum Naive {}

/// A Double-precision result of a ``Naive`` kernel: shape `[N, C, H, W]`, values in NCHW order.
public struct ReferenceTensor: Sendable, Equatable {
    public let shape: Shape
    public var values: [Double]

    public init(shape: Shape, values: [Double]) {
        precondition(values.count == shape.count, "ReferenceTensor \(shape) needs \(shape.count) values")
        self.shape = shape
        self.values = values
    }

    public init(shape: Shape, repeating value: Double = .nan) {
        self.shape = shape
        self.values = [Double](repeating: value, count: shape.count)
    }

    /// The logical NCHW index of `(n, c, h, w)`.
    @inlinable
    public func index(_ n: Int, _ c: Int, _ h: Int, _ w: Int) -> Int {
        ((n * shape.channels + c) * shape.height + h) * shape.width + w
    }

    @inlinable
    public subscript(_ n: Int, _ c: Int, _ h: Int, _ w: Int) -> Double {
        get { values[index(n, c, h, w)] }
        set { values[index(n, c, h, w)] = newValue }
    }

    /// The tensor's values widened to Double, in logical NCHW order.
    public init(_ tensor: Tensor) {
        let nchw = tensor.converted(to: .nchw)
        self.init(shape: tensor.shape, values: nchw.scalars.map(Double.init))
    }
}
