import CKernels

/// Max pooling over sliding windows, as PyTorch's `MaxPool2d` (floor mode).
///
/// Shapes: `x` `[N, C, H, W]`, output `[N, C, H', W']` with `H'` from
/// ``WindowGeometry/outputSize(height:width:)``; either layout in, the same layout out.
/// Reference: `y[n, c, oy, ox] = max_{i, j} x[n, c, oy·sh − ph + i·dh, ox·sw − pw + j·dw]` over taps
/// inside the image (padding is −∞, never selected). A NaN in a window gives NaN. Matches `Naive`
/// `maxPool` exactly. No parameters, no MACs.
public struct MaxPool2D: Layer {
    /// The pooling window.
    public let window: WindowGeometry

    /// Creates the layer; ResNet's stem uses `WindowGeometry(kernel: 3, stride: 2, padding: 1)`.
    public init(window: WindowGeometry) { self.window = window }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try callAsFunction(x, threads: nil) }

    /// Pools `x` on at most `threads` threads (split over `N·C` planes).
    ///
    /// - Throws: ``ShapeError`` when the window does not fit, or its padding exceeds half the kernel
    ///   (a window entirely in the padding would have no maximum).
    public func callAsFunction(_ x: Tensor, threads: Int?) throws -> Tensor {
        let out = try outputShape(for: x.shape)
        // ck_max_pool: horizontal maxima of every row (through de-interleaved rows when strided), then
        // vertical maxima; its workspace is per plane, on the calling thread's stack or heap.
        return poolPlanes(x, output: out, threads: threads) { src, dst, H, W, _, _ in
            let count = Int(ck_max_pool_workspace_count(Int32(H), Int32(W), Int32(window.kernelWidth),
                                                        Int32(window.paddingWidth), Int32(window.strideWidth),
                                                        Int32(window.dilationWidth)))
            withUnsafeTemporaryAllocation(of: Float.self, capacity: count) { workspace in
                ck_max_pool(src, 1, Int32(H), Int32(W), Int32(window.kernelHeight), Int32(window.kernelWidth),
                            Int32(window.paddingHeight), Int32(window.paddingWidth), Int32(window.strideHeight),
                            Int32(window.strideWidth), Int32(window.dilationHeight), Int32(window.dilationWidth),
                            workspace.baseAddress!, dst)
            }
        }
    }

    public func outputShape(for input: Shape) throws -> Shape {
        try input.validate()
        guard 2 * window.paddingHeight <= window.kernelHeight, 2 * window.paddingWidth <= window.kernelWidth else {
            throw ShapeError("max pool padding must be at most half the kernel, got \(window) for input \(input)")
        }
        let size = try window.outputSize(height: input.height, width: input.width)
        return Shape(input.batch, input.channels, size.height, size.width)
    }

    public var parameterCount: Int { 0 }
    public func multiplyAccumulates(for input: Shape) throws -> Int { _ = try outputShape(for: input); return 0 }
}

/// Average pooling over sliding windows, as PyTorch's `AvgPool2d` (floor mode).
///
/// Shapes as ``MaxPool2D``. Reference: `y = (1/D) Σ_{taps inside the image} x`, with `D = kh·kw` when
/// ``countsPadding`` is true (PyTorch's default `count_include_pad=True`) or the number of taps inside
/// the image otherwise. Matches `Naive` `averagePool` within `Tolerance` `.convolution`.
/// No parameters, no MACs (docs/complexity.md).
public struct AvgPool2D: Layer {
    /// The pooling window (dilation must be 1).
    public let window: WindowGeometry
    /// Whether padded taps count in the divisor.
    public let countsPadding: Bool

    public init(window: WindowGeometry, countsPadding: Bool = true) {
        self.window = window
        self.countsPadding = countsPadding
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try callAsFunction(x, threads: nil) }

    /// Pools `x` on at most `threads` threads.
    ///
    /// - Throws: ``ShapeError`` when the window does not fit, has dilation ≠ 1, or padding over half the kernel.
    public func callAsFunction(_ x: Tensor, threads: Int?) throws -> Tensor {
        let out = try outputShape(for: x.shape)
        return poolPlanes(x, output: out, threads: threads) { src, dst, H, W, OH, OW in
            for oy in 0..<OH {
                for ox in 0..<OW {
                    var sum: Float = 0
                    var inside = 0
                    for i in 0..<window.kernelHeight {
                        let y = oy * window.strideHeight - window.paddingHeight + i
                        guard y >= 0 && y < H else { continue }
                        for j in 0..<window.kernelWidth {
                            let xx = ox * window.strideWidth - window.paddingWidth + j
                            guard xx >= 0 && xx < W else { continue }
                            sum += src[y * W + xx]
                            inside += 1
                        }
                    }
                    let divisor = countsPadding ? window.kernelHeight * window.kernelWidth : inside
                    dst[oy * OW + ox] = sum / Float(divisor)
                }
            }
        }
    }

    public func outputShape(for input: Shape) throws -> Shape {
        try input.validate()
        guard window.dilationHeight == 1, window.dilationWidth == 1 else {
            throw ShapeError("average pool has no dilation, got \(window) for input \(input)")
        }
        guard 2 * window.paddingHeight <= window.kernelHeight, 2 * window.paddingWidth <= window.kernelWidth else {
            throw ShapeError("average pool padding must be at most half the kernel, got \(window) for input \(input)")
        }
        let size = try window.outputSize(height: input.height, width: input.width)
        return Shape(input.batch, input.channels, size.height, size.width)
    }

    public var parameterCount: Int { 0 }
    public func multiplyAccumulates(for input: Shape) throws -> Int { _ = try outputShape(for: input); return 0 }
}

/// Global average pooling: the mean of every channel plane.
///
/// Shapes: `x` `[N, C, H, W]` with `H·W ≥ 1`, output `[N, C, 1, 1]` in the input's layout.
/// Reference: `y[n, c] = (1/(H·W)) Σ_{h, w} x[n, c, h, w]`, summed in Float with 8 partial sums.
/// Matches `Naive` `globalAveragePool` within `Tolerance` `.convolution`. No parameters, no MACs.
public struct GlobalAveragePool: Layer {
    public init() {}

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try callAsFunction(x, threads: nil) }

    /// Averages `x`'s planes on at most `threads` threads.
    ///
    /// - Throws: ``ShapeError`` when `x` has no pixels.
    public func callAsFunction(_ x: Tensor, threads: Int?) throws -> Tensor {
        let out = try outputShape(for: x.shape)
        let input = x.converted(to: .nchw)
        var y = Tensor.uninitialized(shape: out)
        let P = x.shape.pixels
        input.scalars.withUnsafeBufferPointer { px in
            y.scalars.withUnsafeMutableBufferPointer { py in
                guard let src = px.baseAddress, let dst = py.baseAddress else { return }
                Self.means(src, planes: out.count, pixels: P, into: dst, threads: threads)
            }
        }
        return y.converted(to: x.layout)
    }

    /// `dst[i] = mean(src[i·pixels ..< (i+1)·pixels])` for every plane `i`.
    static func means(_ src: UnsafePointer<Float>, planes: Int, pixels: Int, into dst: UnsafeMutablePointer<Float>,
                      threads: Int?) {
        let chunks = min(planes, ParallelWork.chunks(elements: planes * pixels, threads: threads))
        Threads.forEach(chunks, threads: chunks) { t in
            for i in (planes * t / chunks)..<(planes * (t + 1) / chunks) {
                let plane = src + i * pixels
                var partial = SIMD8<Float>()
                var p = 0
                while p + 8 <= pixels {
                    partial += UnsafeRawPointer(plane + p).loadUnaligned(as: SIMD8<Float>.self)
                    p += 8
                }
                var tail: Float = 0
                while p < pixels { tail += plane[p]; p += 1 }
                // A tree, not `sum()`: SIMD.sum() is an ordered scalar reduction (TOOLCHAIN.md).
                let quad = partial.lowHalf + partial.highHalf
                let pair = quad.lowHalf + quad.highHalf
                dst[i] = (pair.x + pair.y + tail) / Float(pixels)
            }
        }
    }

    public func outputShape(for input: Shape) throws -> Shape {
        try input.validate()
        guard input.pixels > 0 else { throw ShapeError("global average pool needs at least one pixel, got \(input)") }
        return Shape(input.batch, input.channels, 1, 1)
    }

    public var parameterCount: Int { 0 }
    public func multiplyAccumulates(for input: Shape) throws -> Int { _ = try outputShape(for: input); return 0 }
}

/// Applies `body(source plane, destination plane, H, W, H', W')` to every `(n, c)` plane of `x`
/// (computed in NCHW), split over at most `threads` threads; returns the result in `x`'s layout.
private func poolPlanes(
    _ x: Tensor, output: Shape, threads: Int?,
    _ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int, Int, Int) -> Void
) -> Tensor {
    let input = x.converted(to: .nchw)
    var y = Tensor.uninitialized(shape: output)
    let planes = output.batch * output.channels
    let (H, W, OH, OW) = (x.shape.height, x.shape.width, output.height, output.width)
    input.scalars.withUnsafeBufferPointer { px in
        y.scalars.withUnsafeMutableBufferPointer { py in
            guard let src = px.baseAddress, let dst = py.baseAddress else { return }
            let chunks = min(planes, ParallelWork.chunks(elements: x.shape.count, threads: threads))
            Threads.forEach(chunks, threads: chunks) { t in
                for plane in (planes * t / chunks)..<(planes * (t + 1) / chunks) {
                    body(src + plane * H * W, dst + plane * OH * OW, H, W, OH, OW)
                }
            }
        }
    }
    return y.converted(to: x.layout)
}
