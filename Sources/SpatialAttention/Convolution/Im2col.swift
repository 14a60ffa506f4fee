import CKernels

/// The geometry of a 2-D sliding window: kernel, stride, padding, dilation.
public struct WindowGeometry: Hashable, Sendable {
    public var kernelHeight: Int, kernelWidth: Int
    public var strideHeight: Int, strideWidth: Int
    public var paddingHeight: Int, paddingWidth: Int
    public var dilationHeight: Int, dilationWidth: Int

    /// A square window: `kernel×kernel`, the same stride, padding and dilation on both axes.
    public init(kernel: Int, stride: Int = 1, padding: Int = 0, dilation: Int = 1) {
        self.init(kernelHeight: kernel, kernelWidth: kernel, strideHeight: stride, strideWidth: stride,
                  paddingHeight: padding, paddingWidth: padding, dilationHeight: dilation, dilationWidth: dilation)
    }

    public init(kernelHeight: Int, kernelWidth: Int, strideHeight: Int = 1, strideWidth: Int = 1,
                paddingHeight: Int = 0, paddingWidth: Int = 0, dilationHeight: Int = 1, dilationWidth: Int = 1) {
        self.kernelHeight = kernelHeight; self.kernelWidth = kernelWidth
        self.strideHeight = strideHeight; self.strideWidth = strideWidth
        self.paddingHeight = paddingHeight; self.paddingWidth = paddingWidth
        self.dilationHeight = dilationHeight; self.dilationWidth = dilationWidth
    }

    /// The output size `(H', W')` for an input of `height×width`:
    /// `H' = ⌊(H + 2·pad − dilation·(k − 1) − 1) / stride⌋ + 1`.
    ///
    /// - Throws: ``ShapeError`` when a parameter is out of range or the window does not fit.
    public func outputSize(height: Int, width: Int) throws -> (height: Int, width: Int) {
        guard kernelHeight > 0, kernelWidth > 0, strideHeight > 0, strideWidth > 0,
              dilationHeight > 0, dilationWidth > 0, paddingHeight >= 0, paddingWidth >= 0 else {
            throw ShapeError("window \(self) needs kernel, stride, dilation ≥ 1 and padding ≥ 0")
        }
        let spanH = dilationHeight * (kernelHeight - 1) + 1
        let spanW = dilationWidth * (kernelWidth - 1) + 1
        guard height + 2 * paddingHeight >= spanH, width + 2 * paddingWidth >= spanW else {
            throw ShapeError("window \(self) does not fit an input of \(height)×\(width)")
        }
        return ((height + 2 * paddingHeight - spanH) / strideHeight + 1,
                (width + 2 * paddingWidth - spanW) / strideWidth + 1)
    }
}

extension WindowGeometry: CustomStringConvertible {
    public var description: String {
        "kernel \(kernelHeight)×\(kernelWidth) stride \(strideHeight)×\(strideWidth) " +
        "padding \(paddingHeight)×\(paddingWidth) dilation \(dilationHeight)×\(dilationWidth)"
    }
}

/// im2col for one CHW image: the `(C·kh·kw) × (H'·W')` matrix whose row `(c, i, j)` holds the input
/// values that kernel tap `(i, j)` of channel `c` sees at each output position (0 in the padding).
///
/// A convolution is then `weights[K, C·kh·kw] · columns`, one sgemm. Matches `Naive` `im2col`
/// exactly (it only copies).
public enum Im2col {
    /// Writes the column matrix of `image` (`channels×height×width`, CHW) into `columns`, which must
    /// hold `channels·kh·kw·H'·W'` floats.
    public static func columns(
        of image: UnsafePointer<Float>, channels: Int, height: Int, width: Int,
        window: WindowGeometry, into columns: UnsafeMutablePointer<Float>
    ) {
        ck_im2col(image, Int32(channels), Int32(height), Int32(width),
                  Int32(window.kernelHeight), Int32(window.kernelWidth),
                  Int32(window.paddingHeight), Int32(window.paddingWidth),
                  Int32(window.strideHeight), Int32(window.strideWidth),
                  Int32(window.dilationHeight), Int32(window.dilationWidth), columns)
    }

    /// The column matrix of image `n` of an NCHW tensor, as an array.
    ///
    /// - Throws: ``ShapeError`` when the tensor is not NCHW, `n` is out of range or the window does not fit.
    public static func columns(of x: Tensor, image n: Int, window: WindowGeometry) throws -> [Float] {
        guard x.layout == .nchw else { throw ShapeError("im2col needs an NCHW tensor, got \(x.shape) \(x.layout)") }
        guard (0..<x.shape.batch).contains(n) else { throw ShapeError("image \(n) out of range for \(x.shape)") }
        let out = try window.outputSize(height: x.shape.height, width: x.shape.width)
        let rows = x.shape.channels * window.kernelHeight * window.kernelWidth
        var result = [Float](repeating: .nan, count: rows * out.height * out.width)
        let stride = x.shape.channels * x.shape.pixels
        x.scalars.withUnsafeBufferPointer { src in
            result.withUnsafeMutableBufferPointer { dst in
                columns(of: src.baseAddress! + n * stride, channels: x.shape.channels,
                        height: x.shape.height, width: x.shape.width, window: window, into: dst.baseAddress!)
            }
        }
        return result
    }
}
