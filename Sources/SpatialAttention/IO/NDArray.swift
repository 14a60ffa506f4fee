/// An n-dimensional Float32 array in C (row-major) order: what ``NPY`` and ``Safetensors`` read and
/// write when the data is not an image batch (weights, logits, vectors).
///
/// `values.count` is the product of `shape` (1 for a rank-0 scalar).
public struct NDArray: Equatable, Sendable, CustomStringConvertible {
    /// The dimensions, slowest first (`[]` for a scalar).
    public let shape: [Int]
    /// The elements in C order.
    public var values: [Float]

    /// Creates an array over `values` in C order.
    ///
    /// - Throws: ``ShapeError`` when a dimension is negative, the product overflows, or
    ///   `values.count` differs from the product of `shape`.
    public init(shape: [Int], values: [Float]) throws {
        guard let count = NDArray.elementCount(shape) else {
            throw ShapeError("array shape \(shape) has a negative dimension or more elements than Int can count")
        }
        guard count == values.count else {
            throw ShapeError("array shape \(shape) needs \(count) elements, got \(values.count)")
        }
        self.shape = shape
        self.values = values
    }

    /// Creates an array without validation, for readers that checked the shape themselves.
    init(unchecked shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }

    /// The array holding `tensor`'s storage: shape `[N, C, H, W]` for an NCHW tensor and
    /// `[N, H, W, C]` for an NHWC one, so the values are `tensor.scalars` unchanged.
    public init(_ tensor: Tensor) {
        let s = tensor.shape
        shape = tensor.layout == .nchw ? [s.batch, s.channels, s.height, s.width]
                                       : [s.batch, s.height, s.width, s.channels]
        values = tensor.scalars
    }

    public var description: String { "NDArray(\(shape))" }

    /// The product of `shape`, or nil when a dimension is negative or the product overflows.
    static func elementCount(_ shape: [Int]) -> Int? {
        var total = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (product, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow else { return nil }
            total = product
        }
        return total
    }
}

extension Tensor {
    /// The image batch stored in `array`, read as `layout` without copying or reordering values.
    ///
    /// Rank decides the mapping (dimensions of the array, slowest first):
    /// - rank 4: `[N, C, H, W]` for `.nchw`, `[N, H, W, C]` for `.nhwc`;
    /// - rank 3: one image, `[C, H, W]` or `[H, W, C]`, so `N = 1`;
    /// - rank 2: `[N, C]` with `H = W = 1` (features, logits);
    /// - rank 1: `[C]` with `N = H = W = 1`.
    ///
    /// - Throws: ``ShapeError`` naming the shape when the rank is 0 or above 4.
    public init(_ array: NDArray, layout: Layout = .nchw) throws {
        let d = array.shape
        let shape: Shape
        switch (d.count, layout) {
        case (4, .nchw): shape = Shape(d[0], d[1], d[2], d[3])
        case (4, .nhwc): shape = Shape(d[0], d[3], d[1], d[2])
        case (3, .nchw): shape = Shape(1, d[0], d[1], d[2])
        case (3, .nhwc): shape = Shape(1, d[2], d[0], d[1])
        case (2, _): shape = Shape(d[0], d[1], 1, 1)
        case (1, _): shape = Shape(1, d[0], 1, 1)
        default:
            throw ShapeError("an array of shape \(d) (rank \(d.count)) is not an image batch: a tensor needs rank 1 to 4")
        }
        try self.init(shape: shape, layout: layout, scalars: array.values)
    }
}

// MARK: - Scalar conversions

/// Bit-exact conversions from the storage types the readers accept to Float32.
enum ScalarConversion {
    /// IEEE binary16 to Float32 (exact: every half value is a float value), subnormals, ±∞ and NaN
    /// included.
    @inline(__always)
    static func float(fromHalfBits h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x03FF)
        if exponent == 0x1F {
            // ±∞ or NaN (the payload moves to the top of the float mantissa).
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        if exponent == 0 {
            // ±0 or a subnormal: mantissa · 2⁻²⁴, exact in Float32.
            let magnitude = Float(mantissa) * 0x1p-24
            return sign != 0 ? -magnitude : magnitude
        }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }

    /// bfloat16 to Float32: the upper half of a float's bits (exact).
    @inline(__always)
    static func float(fromBFloatBits b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }
}
