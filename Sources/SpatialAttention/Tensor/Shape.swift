/// The logical shape of an image batch: `N` images, `C` channels, `H` rows, `W` columns.
///
/// A shape is independent of the memory ``Layout``: `[N, C, H, W]` names the same logical element
/// whether the tensor is stored as NCHW or NHWC.
public struct Shape: Hashable, Sendable, CustomStringConvertible {
    /// `N`, the number of images.
    public var batch: Int
    /// `C`, the number of channels.
    public var channels: Int
    /// `H`, the number of rows.
    public var height: Int
    /// `W`, the number of columns.
    public var width: Int

    /// Creates the shape `[N, C, H, W]`. Validation happens where a shape is used (``Tensor``).
    public init(_ batch: Int, _ channels: Int, _ height: Int, _ width: Int) {
        self.batch = batch
        self.channels = channels
        self.height = height
        self.width = width
    }

    /// `H·W`, the number of pixels of one image.
    public var pixels: Int { height * width }
    /// `N·C·H·W`, the number of elements.
    public var count: Int { batch * channels * height * width }
    /// `[N, C, H, W]` as an array.
    public var dimensions: [Int] { [batch, channels, height, width] }
    /// True when any dimension is zero.
    public var isEmpty: Bool { count == 0 }

    public var description: String { "[\(batch), \(channels), \(height), \(width)]" }

    /// Throws ``ShapeError`` when a dimension is negative or the element count overflows `Int`.
    public func validate() throws {
        guard batch >= 0, channels >= 0, height >= 0, width >= 0 else {
            throw ShapeError("shape \(self) has a negative dimension")
        }
        var total = 1
        for d in dimensions {
            let (product, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow else { throw ShapeError("shape \(self) has more elements than Int can count") }
            total = product
        }
    }
}

/// A shape that a layer or kernel cannot accept. The message names the offending shape.
public struct ShapeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What is wrong, with the shapes involved.
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { "ShapeError: \(message)" }
}
