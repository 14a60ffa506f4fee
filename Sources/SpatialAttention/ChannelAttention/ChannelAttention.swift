import CKernels
import Foundation

/// A channel attention module: one weight in `(0, 1)` per image and channel, multiplied into the input.
///
/// Shapes: `x` `[N, C, H, W]`, ``scales(for:threads:)`` `N·C` values (row `n`, column `c`), output
/// `y[n, c, h, w] = s[n, c] · x[n, c, h, w]`. In a ResNet block the module sits on the residual branch
/// before the addition (its papers' position), and the model fuses the scaling, the addition and
/// the ReLU into one pass.
public protocol ChannelAttention: Layer {
    /// `C`, the channels the module was built for.
    var channels: Int { get }

    /// The weights `s[n, c]`, `N·C` values in `(0, 1)`.
    ///
    /// - Throws: ``ShapeError`` when `x` does not have ``channels`` channels or has no pixels.
    func scales(for x: Tensor, threads: Int?) throws -> [Float]
}

extension ChannelAttention {
    /// `y = s ⊙ x` with `s` from ``scales(for:threads:)``, in `x`'s layout.
    ///
    /// - Throws: ``ShapeError`` when `x` does not fit the module.
    public func callAsFunction(_ x: Tensor, threads: Int?) throws -> Tensor {
        let s = try scales(for: x, threads: threads)
        let input = x.converted(to: .nchw)
        var y = Tensor.uninitialized(shape: x.shape)
        let (planes, P) = (x.shape.batch * x.shape.channels, x.shape.pixels)
        input.scalars.withUnsafeBufferPointer { px in
            y.scalars.withUnsafeMutableBufferPointer { py in
                s.withUnsafeBufferPointer { ps in
                    guard let src = px.baseAddress, let dst = py.baseAddress else { return }
                    // Rows are planes: one scale per row.
                    ck_conv_epilogue(dst, P, src, P, ps.baseAddress!, nil, nil, 0, Int32(planes), P, 0)
                }
            }
        }
        return y.converted(to: x.layout)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try callAsFunction(x, threads: nil) }

    public func outputShape(for input: Shape) throws -> Shape {
        try input.validate()
        guard input.channels == channels, input.pixels > 0 else {
            throw ShapeError("channel attention over \(channels) channels got input \(input)")
        }
        return input
    }

    /// The per-image channel means `[N·C]` of an NCHW-convertible `x`.
    func channelMeans(_ x: Tensor, threads: Int?) throws -> [Float] {
        _ = try outputShape(for: x.shape)
        let input = x.converted(to: .nchw)
        let planes = x.shape.batch * x.shape.channels
        var means = [Float](repeating: 0, count: planes)
        input.scalars.withUnsafeBufferPointer { px in
            means.withUnsafeMutableBufferPointer { pm in
                guard let src = px.baseAddress, let dst = pm.baseAddress else { return }
                GlobalAveragePool.means(src, planes: planes, pixels: x.shape.pixels, into: dst, threads: threads)
            }
        }
        return means
    }
}

/// `1 / (1 + e^{−x})`, through glibc's `expf`.
@inline(__always)
func sigmoid(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
