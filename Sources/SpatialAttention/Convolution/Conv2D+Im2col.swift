import CKernels

extension Conv2D {
    /// Output planes of at most this many pixels make a batch run as one GEMM over all images
    /// (`[C·kh·kw, N·H'·W']` columns) instead of one GEMM per image: a narrow GEMM (`n` = 49 at
    /// ResNet's last stage) runs well below sgemm peak, and gathering the columns costs `1/K` of
    /// the GEMM's work. Larger planes already fill the GEMM and keep their columns in cache per image.
    static let batchedGEMMPixelLimit = 1024

    /// Runs the convolution on raw NCHW storage: `y` receives `[N, K, H', W']`, every element written.
    ///
    /// The caller has validated the shapes and that `algorithm` applies; `residual` (if any) has the
    /// output's shape and may not overlap `y`. Sets ``BLAS/threads`` to `threads` for the GEMMs.
    func run(_ x: UnsafePointer<Float>, shape input: Shape, into y: UnsafeMutablePointer<Float>,
             residual: UnsafePointer<Float>?, algorithm: Algorithm, threads: Int) {
        let output = try! outputShape(for: input)
        switch algorithm {
        case .depthwise:
            runDepthwise(x, shape: input, into: y, output: output, residual: residual, threads: threads)
        case .packed:
            runPacked(x, shape: input, into: y, output: output, residual: residual, threads: threads)
        case .winograd:
            runWinograd(x, shape: input, into: y, residual: residual, threads: threads)
        case .pointwise, .im2col:
            if BLAS.threads != threads { BLAS.threads = threads }
            if input.batch > 1 && output.pixels <= Self.batchedGEMMPixelLimit {
                runBatchedGEMM(x, shape: input, into: y, output: output, residual: residual,
                               pointwise: algorithm == .pointwise, threads: threads)
            } else {
                runPerImageGEMM(x, shape: input, into: y, output: output, residual: residual,
                                pointwise: algorithm == .pointwise, threads: threads)
            }
        }
    }

    /// Rows of the column matrix: `C·kh·kw`.
    var columnRows: Int { inputChannels * window.kernelHeight * window.kernelWidth }

    /// One image at a time: im2col (unless pointwise), one GEMM per group into the output, then the
    /// epilogue in place while the output is still in cache.
    private func runPerImageGEMM(_ x: UnsafePointer<Float>, shape input: Shape, into y: UnsafeMutablePointer<Float>,
                                 output: Shape, residual: UnsafePointer<Float>?, pointwise: Bool, threads: Int) {
        let (K, P, inP) = (outputChannels, output.pixels, input.pixels)
        // The column matrix from the reusable pool (a fresh buffer of a few MB would page-fault on
        // every call).
        Scratch.withFloats(pointwise ? 0 : columnRows * P) { workspace in
            for n in 0..<input.batch {
                let columns = columnMatrix(of: x + n * inputChannels * inP, shape: input, pointwise: pointwise,
                                           scratch: workspace, threads: threads)
                let out = y + n * K * P
                multiplyGroups(columns: columns, columnStride: P, width: P, into: out, outputStride: P)
                epilogue(out, outputStride: P, source: UnsafePointer(out), sourceStride: P,
                         residual: residual.map { $0 + n * K * P }, pixels: P, threads: threads)
            }
        }
    }

    /// All images in one GEMM per group: columns `[C·kh·kw, N·P]`, GEMM output `[K, N·P]`, and an
    /// epilogue that scatters back to NCHW while it applies bias, residual and activation.
    private func runBatchedGEMM(_ x: UnsafePointer<Float>, shape input: Shape, into y: UnsafeMutablePointer<Float>,
                                output: Shape, residual: UnsafePointer<Float>?, pointwise: Bool, threads: Int) {
        let (N, K, P, inP) = (input.batch, outputChannels, output.pixels, input.pixels)
        let width = N * P
        let rows = columnRows
        // Three buffers carved from one pooled allocation, each starting on a 64-byte boundary.
        func padded(_ count: Int) -> Int { (count + 15) & ~15 }
        let scratchCount = pointwise ? 0 : rows * P
        Scratch.withFloats(padded(rows * width) + padded(K * width) + scratchCount) { buffer in
            let columns = buffer, product = buffer + padded(rows * width), scratch = product + padded(K * width)
            for n in 0..<N {
                let source = columnMatrix(of: x + n * inputChannels * inP, shape: input, pointwise: pointwise,
                                          scratch: scratch, threads: threads)
                // Copy the image's P-wide rows into column block n of the batch matrix.
                let chunks = ParallelWork.chunks(elements: rows * P, threads: threads)
                Threads.forEach(chunks, threads: chunks) { t in
                    for r in (rows * t / chunks)..<(rows * (t + 1) / chunks) {
                        (columns + r * width + n * P).update(from: source + r * P, count: P)
                    }
                }
            }
            multiplyGroups(columns: columns, columnStride: width, width: width, into: product, outputStride: width)
            for n in 0..<N {
                epilogue(y + n * K * P, outputStride: P, source: product + n * P, sourceStride: width,
                         residual: residual.map { $0 + n * K * P }, pixels: P, threads: threads)
            }
        }
    }

    /// One image's GEMM operand `[C·kh·kw, H'·W']`: the image itself for a pointwise layer, else its
    /// im2col written into `scratch`.
    private func columnMatrix(of image: UnsafePointer<Float>, shape input: Shape, pointwise: Bool,
                              scratch: UnsafeMutablePointer<Float>, threads: Int) -> UnsafePointer<Float> {
        if pointwise { return image }
        im2col(image, shape: input, into: scratch, threads: threads)
        return UnsafePointer(scratch)
    }

    /// `out[g·K/G ..< (g+1)·K/G, 0..<width] = W_g · columns_g` for every group.
    private func multiplyGroups(columns: UnsafePointer<Float>, columnStride: Int, width: Int,
                                into out: UnsafeMutablePointer<Float>, outputStride: Int) {
        let kPerGroup = outputChannels / groups
        let depth = columnRows / groups
        weight.withUnsafeBufferPointer { w in
            for g in 0..<groups {
                GEMM.multiply(m: kPerGroup, n: width, k: depth,
                              a: w.baseAddress! + g * kPerGroup * depth, lda: depth,
                              b: columns + g * depth * columnStride, ldb: columnStride,
                              c: out + g * kPerGroup * outputStride, ldc: outputStride)
            }
        }
    }

    /// im2col of one CHW image into `columns` (`[C·kh·kw, H'·W']`), split over channels.
    func im2col(_ image: UnsafePointer<Float>, shape input: Shape, into columns: UnsafeMutablePointer<Float>,
                threads: Int) {
        let output = try! outputShape(for: input)
        let taps = window.kernelHeight * window.kernelWidth
        let C = inputChannels
        let chunks = min(C, ParallelWork.chunks(elements: columnRows * output.pixels, threads: threads))
        Threads.forEach(chunks, threads: chunks) { t in
            let c0 = C * t / chunks, c1 = C * (t + 1) / chunks
            Im2col.columns(of: image + c0 * input.pixels, channels: c1 - c0, height: input.height,
                           width: input.width, window: window, into: columns + c0 * taps * output.pixels)
        }
    }

    /// `out = f(source + bias + residual)` over one image's `K × pixels` output, split over channels.
    func epilogue(_ out: UnsafeMutablePointer<Float>, outputStride: Int, source: UnsafePointer<Float>,
                  sourceStride: Int, residual: UnsafePointer<Float>?, pixels: Int, threads: Int) {
        let K = outputChannels
        let code = activation.kernelCode
        guard bias != nil || residual != nil || activation != .identity || UnsafePointer(out) != source else { return }
        withOptionalPointer(bias) { b in
            let chunks = min(K, ParallelWork.chunks(elements: K * pixels, threads: threads))
            Threads.forEach(chunks, threads: chunks) { t in
                let k0 = K * t / chunks, k1 = K * (t + 1) / chunks
                ck_conv_epilogue(out + k0 * outputStride, outputStride, source + k0 * sourceStride, sourceStride,
                                 nil, b.map { $0 + k0 }, residual.map { $0 + k0 * outputStride }, outputStride,
                                 Int32(k1 - k0), pixels, code)
            }
        }
    }
}
