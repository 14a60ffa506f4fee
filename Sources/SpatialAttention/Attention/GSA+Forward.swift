/// The GSA forward pass: per image, the content-only path (GSA+Content.swift), the fused channel-major
/// path (GSA+Fused.swift) or the sgemm-per-line path (here and GSA+Positional.swift).
extension GSA {
    /// Applies the module with `threads` workers for our kernels (softmax, the fused positional passes,
    /// BN, copies); the GEMMs run on OpenBLAS's own threads (``BLAS/threads``), never at the same time.
    ///
    /// Shapes: `x` `[N, channels, H, W]`, NCHW or NHWC; the result has `valueChannels` channels and
    /// `x`'s layout. An empty input gives an empty output. NaN or ±∞ in `x` propagate to the pixels
    /// whose outputs depend on them (with content attention, every pixel of the image).
    ///
    /// - Throws: ``ShapeError`` when `x` does not have `channels` channels.
    public func callAsFunction(_ x: Tensor, threads: Int?) throws -> Tensor {
        let outShape = try outputShape(for: x.shape)
        let threads = Threads.resolve(threads)
        guard !outShape.isEmpty else {
            return try Tensor(shape: outShape, layout: x.layout, repeating: 0)
        }
        let (N, C, P) = (x.shape.batch, channels, x.shape.pixels)
        let geometry = Geometry(height: x.shape.height, width: x.shape.width, layout: x.layout)
        // Every output element is written: by the content GEMMs (beta = 0), or by the first positional write.
        let out = x.scalars.withUnsafeBufferPointer { px in
            uninitializedFloats(outShape.count) { po in
                for n in 0..<N {
                    let image = px.baseAddress! + n * C * P
                    let output = po + n * valueChannels * P
                    if components == .content {
                        contentOnly(image: image, geometry: geometry, output: output, threads: threads)
                    } else if positionalKernel == .fused {
                        forwardFused(image: image, geometry: geometry, output: output, threads: threads)
                    } else {
                        forwardProjected(image: image, geometry: geometry, output: output, threads: threads)
                    }
                }
            }
        }
        return try Tensor(shape: outShape, layout: x.layout, scalars: out)
    }

    /// One image's spatial size and the layout of its input and output matrices.
    struct Geometry {
        let height: Int, width: Int, layout: Layout
        var pixels: Int { height * width }
    }

    /// The per-head column blocks of the projected matrix `[pixels, heads·block]`:
    /// `q` at `h·block`, `k` at `h·block + dk` (with content), `v` at `h·block + valueOffset`.
    struct ProjectedLayout {
        let block: Int, keyOffset: Int, valueOffset: Int
        var rowStride: Int { heads * block }
        let heads: Int
    }

    var projectedLayout: ProjectedLayout {
        let dk = keyChannelsPerHead, dv = valueChannelsPerHead
        let hasKey = components.contains(.content)
        return ProjectedLayout(block: dk + (hasKey ? dk : 0) + dv, keyOffset: dk,
                               valueOffset: dk + (hasKey ? dk : 0), heads: heads)
    }

    /// The ``PositionalKernel/gemm`` path: `[Q|K|V]` per pixel by one GEMM, content (if any) into the
    /// output, then the positional passes added to it.
    func forwardProjected(image: UnsafePointer<Float>, geometry: Geometry, output: UnsafeMutablePointer<Float>,
                          threads: Int) {
        let P = geometry.pixels, layout = projectedLayout
        Scratch.withFloats(P * layout.rowStride) { qkv in
            // [P, heads·block] = Xᵀ·Wᵀ: one GEMM for all three projections and all heads (m = P rows).
            projection.withUnsafeBufferPointer { pw in
                GEMM.multiply(m: P, n: layout.rowStride, k: channels,
                              a: image, lda: geometry.layout == .nchw ? P : channels,
                              transposeA: geometry.layout == .nchw,
                              b: pw.baseAddress!, ldb: channels, transposeB: true,
                              c: qkv, ldc: layout.rowStride)
            }
            if components.contains(.content) {
                content(projected: qkv, layout: layout, geometry: geometry, output: output, threads: threads)
            }
            positional(projected: qkv, layout: layout, geometry: geometry, output: output,
                       accumulate: components.contains(.content), threads: threads)
        }
    }
}
