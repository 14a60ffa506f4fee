/// A 4-D batch of images: Float32 values in contiguous storage, shape `[N, C, H, W]`, laid out as
/// ``Layout/nchw`` or ``Layout/nhwc``.
///
/// `Tensor` is a value type with copy-on-write storage. Subscripts and ``init(shape:layout:generator:)``
/// take logical indices `(n, c, h, w)` whatever the layout; ``scalars`` is the storage in memory order.
public struct Tensor: Sendable, Equatable {
    /// The logical shape `[N, C, H, W]`.
    public let shape: Shape
    /// The memory order of ``scalars``.
    public let layout: Layout
    /// The elements in memory order; `scalars.count == shape.count`.
    public var scalars: [Float]

    /// Creates a tensor over `scalars` given in `layout` order.
    ///
    /// - Throws: ``ShapeError`` when a dimension is negative or `scalars.count` is not `N·C·H·W`.
    public init(shape: Shape, layout: Layout = .nchw, scalars: [Float]) throws {
        try shape.validate()
        guard scalars.count == shape.count else {
            throw ShapeError("shape \(shape) needs \(shape.count) elements, got \(scalars.count)")
        }
        self.shape = shape
        self.layout = layout
        self.scalars = scalars
    }

    /// Creates a tensor with every element equal to `value`.
    ///
    /// - Throws: ``ShapeError`` when a dimension is negative.
    public init(shape: Shape, layout: Layout = .nchw, repeating value: Float) throws {
        try shape.validate()
        self.shape = shape
        self.layout = layout
        self.scalars = [Float](repeating: value, count: shape.count)
    }

    /// Creates a tensor whose element at logical index `(n, c, h, w)` is `generator(n, c, h, w)`.
    ///
    /// - Throws: ``ShapeError`` when a dimension is negative.
    public init(shape: Shape, layout: Layout = .nchw, generator: (Int, Int, Int, Int) throws -> Float) throws {
        try shape.validate()
        self.shape = shape
        self.layout = layout
        var values = [Float](repeating: 0, count: shape.count)
        let s = layout.strides(for: shape)
        for n in 0..<shape.batch {
            for c in 0..<shape.channels {
                for h in 0..<shape.height {
                    for w in 0..<shape.width {
                        values[n * s.n + c * s.c + h * s.h + w * s.w] = try generator(n, c, h, w)
                    }
                }
            }
        }
        self.scalars = values
    }

    /// A tensor of independent samples of `distribution`, drawn from a ``SeededGenerator`` seeded
    /// with `seed`: the same seed gives the same tensor on every machine.
    ///
    /// - Throws: ``ShapeError`` when a dimension is negative.
    public static func random(
        shape: Shape, layout: Layout = .nchw, seed: UInt64,
        distribution: RandomDistribution = .normal(mean: 0, standardDeviation: 1)
    ) throws -> Tensor {
        var generator = SeededGenerator(seed: seed)
        return try random(shape: shape, layout: layout, distribution: distribution, using: &generator)
    }

    /// A tensor of independent samples of `distribution` drawn from `generator`, in memory order.
    public static func random<G: RandomNumberGenerator>(
        shape: Shape, layout: Layout = .nchw, distribution: RandomDistribution, using generator: inout G
    ) throws -> Tensor {
        try shape.validate()
        var values = [Float](repeating: 0, count: shape.count)
        for i in values.indices { values[i] = distribution.sample(using: &generator) }
        return try Tensor(shape: shape, layout: layout, scalars: values)
    }

    /// The storage offset of logical element `(n, c, h, w)`.
    @inlinable
    public func offset(_ n: Int, _ c: Int, _ h: Int, _ w: Int) -> Int {
        let s = layout.strides(for: shape)
        return n * s.n + c * s.c + h * s.h + w * s.w
    }

    /// The element at logical index `(n, c, h, w)`, whatever the layout.
    @inlinable
    public subscript(_ n: Int, _ c: Int, _ h: Int, _ w: Int) -> Float {
        get { scalars[offset(n, c, h, w)] }
        set { scalars[offset(n, c, h, w)] = newValue }
    }

    /// The same logical tensor stored in `layout` (a copy when the layout differs).
    public func converted(to layout: Layout) -> Tensor {
        guard layout != self.layout else { return self }
        var values = [Float](repeating: 0, count: shape.count)
        let (N, C, P) = (shape.batch, shape.channels, shape.pixels)
        scalars.withUnsafeBufferPointer { src in
            values.withUnsafeMutableBufferPointer { dst in
                for n in 0..<N {
                    let base = n * C * P
                    // A blocked transpose of the C×P matrix of image n: 32×32 blocks stay in L1.
                    for c0 in stride(from: 0, to: C, by: 32) {
                        for p0 in stride(from: 0, to: P, by: 32) {
                            for c in c0..<min(c0 + 32, C) {
                                for p in p0..<min(p0 + 32, P) {
                                    if layout == .nhwc {
                                        dst[base + p * C + c] = src[base + c * P + p]
                                    } else {
                                        dst[base + c * P + p] = src[base + p * C + c]
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return Tensor(unchecked: shape, layout: layout, scalars: values)
    }

    /// The same logical tensor as an array in NCHW order.
    public var nchwScalars: [Float] { converted(to: .nchw).scalars }

    /// Creates a tensor without validation, for kernels that built `scalars` for `shape` themselves.
    @usableFromInline
    init(unchecked shape: Shape, layout: Layout, scalars: [Float]) {
        self.shape = shape
        self.layout = layout
        self.scalars = scalars
    }

    /// A tensor of the same shape and layout filled with NaN: a destination whose every element a
    /// kernel must write.
    public func nanFilledLike() -> Tensor {
        Tensor(unchecked: shape, layout: layout, scalars: [Float](repeating: .nan, count: shape.count))
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor(\(shape), \(layout))" }
}
