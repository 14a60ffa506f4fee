import CKernels

extension Conv2D {
    /// Whether ``Algorithm/packed`` runs the AVX-512 micro-kernel in this build.
    static let packedKernelIsVectorized = ck_packed_gemm_vectorized() != 0

    /// Output planes of at least this many pixels are convolved one image at a time (im2col of one
    /// image, then its GEMM); smaller ones are im2col'ed for the whole batch and run as one GEMM, so
    /// that narrow planes (49 pixels at ResNet's last stage) still fill the micro-kernel's 32 columns.
    static let packedPerImagePixels = 1024

    /// The filters of every group packed for `ck_packed_gemm`, and the stride between groups.
    static func pack(_ weight: [Float], groups: Int, rows: Int, depth: Int) -> ([Float], Int) {
        let stride = ck_packed_weights_count(Int32(rows), Int32(depth))
        let packed = [Float](unsafeUninitializedCapacity: groups * stride) { out, count in
            weight.withUnsafeBufferPointer { w in
                for g in 0..<groups {
                    ck_pack_weights(w.baseAddress! + g * rows * depth, Int32(rows), Int32(depth), out.baseAddress! + g * stride)
                }
            }
            count = groups * stride
        }
        return (packed, stride)
    }

    /// The packed-filter GEMM: 1×1 stride-1 layers read the input in place; others im2col first.
    func runPacked(_ x: UnsafePointer<Float>, shape input: Shape, into y: UnsafeMutablePointer<Float>,
                   output: Shape, residual: UnsafePointer<Float>?, threads: Int) {
        let (N, C, K, P) = (input.batch, inputChannels, outputChannels, output.pixels)
        if isPointwise {
            packedGEMM(b: x, bImageStride: C * P, pixels: P, columns: N * P, into: y, residual: residual, threads: threads)
            return
        }
        let rows = columnRows
        if P >= Self.packedPerImagePixels || N == 1 {
            let columns = UnsafeMutablePointer<Float>.allocate(capacity: rows * P)
            defer { columns.deallocate() }
            for n in 0..<N {
                im2col(x + n * C * input.pixels, shape: input, into: columns, threads: threads)
                packedGEMM(b: columns, bImageStride: 0, pixels: P, columns: P, into: y + n * K * P,
                           residual: residual.map { $0 + n * K * P }, threads: threads)
            }
        } else {
            let columns = UnsafeMutablePointer<Float>.allocate(capacity: N * rows * P)
            defer { columns.deallocate() }
            for n in 0..<N {
                im2col(x + n * C * input.pixels, shape: input, into: columns + n * rows * P, threads: threads)
            }
            packedGEMM(b: columns, bImageStride: rows * P, pixels: P, columns: N * P, into: y, residual: residual,
                       threads: threads)
        }
    }

    /// `y = act(W · B + bias + residual)` for every group over `columns` batch columns (column `j`
    /// is pixel `j % pixels` of image `j / pixels`; B rows `pixels` apart, images `bImageStride`
    /// apart; `y` NCHW). Work splits over groups, then columns (32-wide panels), then rows.
    private func packedGEMM(b: UnsafePointer<Float>, bImageStride: Int, pixels: Int, columns: Int,
                            into y: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?, threads: Int) {
        let kPerGroup = outputChannels / groups
        let depth = columnRows / groups
        let outputImageStride = outputChannels * pixels
        // Pieces per group: whole groups when there are enough of them; otherwise split columns in
        // panels of 32 while each piece keeps ≥ 2 panels, else rows in tiles of 8.
        let workers = min(threads, max(1, groups * max(1, (columns / 64)) * max(1, kPerGroup / 8)))
        let pieces = groups >= workers ? 1 : workers
        let splitColumns = columns >= 64 * pieces
        let scratch = Int(ck_packed_gemm_workspace_count())
        let workspace = UnsafeMutablePointer<Float>.allocate(capacity: workers * scratch + 16)
        defer { workspace.deallocate() }
        // 64-byte alignment for the packed panels.
        let aligned = UnsafeMutablePointer<Float>(bitPattern: (Int(bitPattern: workspace) + 63) & ~63)!
        let items = groups * pieces
        packedWeight.withUnsafeBufferPointer { packed in
            withOptionalPointer(bias) { bias in
                // One task per worker, each with its own scratch, taking a contiguous run of items.
                Threads.forEach(workers, threads: workers) { worker in
                    for item in (items * worker / workers)..<(items * (worker + 1) / workers) {
                        let g = item / pieces, piece = item % pieces
                        var (rowBegin, rowEnd, columnBegin, columnEnd) = (0, kPerGroup, 0, columns)
                        if pieces > 1 {
                            if splitColumns {
                                let panels = (columns + 31) / 32
                                columnBegin = min(columns, panels * piece / pieces * 32)
                                columnEnd = min(columns, panels * (piece + 1) / pieces * 32)
                            } else {
                                let tiles = (kPerGroup + 7) / 8
                                rowBegin = min(kPerGroup, tiles * piece / pieces * 8)
                                rowEnd = min(kPerGroup, tiles * (piece + 1) / pieces * 8)
                            }
                        }
                        guard rowBegin < rowEnd, columnBegin < columnEnd else { continue }
                        ck_packed_gemm(packed.baseAddress! + g * packedGroupStride, Int32(kPerGroup), Int32(depth),
                                       b + g * depth * pixels, bImageStride, pixels, Int32(pixels),
                                       y + g * kPerGroup * pixels, outputImageStride, pixels,
                                       bias.map { $0 + g * kPerGroup }, residual.map { $0 + g * kPerGroup * pixels },
                                       activation.kernelCode, Int32(rowBegin), Int32(rowEnd), Int32(columnBegin),
                                       Int32(columnEnd), aligned + worker * scratch)
                    }
                }
            }
        }
    }
}
