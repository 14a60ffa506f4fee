/// The memory order of a 4-D image tensor.
public enum Layout: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Channels-first, `[N, C, H, W]` with `W` fastest: PyTorch's default. A channel plane is contiguous.
    case nchw
    /// Channels-last, `[N, H, W, C]` with `C` fastest. A pixel's channel vector is contiguous.
    case nhwc

    public var description: String { rawValue }

    /// Element strides `(n, c, h, w)` of a tensor of `shape` stored in this layout.
    public func strides(for shape: Shape) -> (n: Int, c: Int, h: Int, w: Int) {
        switch self {
        case .nchw:
            return (shape.channels * shape.height * shape.width, shape.height * shape.width, shape.width, 1)
        case .nhwc:
            return (shape.height * shape.width * shape.channels, 1, shape.width * shape.channels, shape.channels)
        }
    }
}
