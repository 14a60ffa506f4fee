import CKernels

extension Conv2D {
    /// Whether ``Algorithm/packed`` runs the AVX-512 micro-kernel in this build.
    static let packedKernelIsVectorized = ck_packed_gemm_vectorized() != 0

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

    /// The packed-filter GEMM over the whole batch at once: 1×1 stride-1 layers read the input
    /// in place; others pack their im2col panels straight from the images (`ck_packed_conv`), so
    /// no im2col matrix is ever written.
    func runPacked(_ x: UnsafePointer<Float>, shape input: Shape, into y: UnsafeMutablePointer<Float>,
                   output: Shape, residual: UnsafePointer<Float>?, threads: Int) {
        packedGEMM(x, input: input, pixels: output.pixels, columns: input.batch * output.pixels, into: y,
                   residual: residual, threads: threads)
    }

    /// `y = act(W · B + bias + residual)` for every group over `columns` batch columns (column `j`
    /// is output pixel `j % pixels` of image `j / pixels`; B the input itself for a pointwise layer,
    /// its im2col otherwise; `y` NCHW). Work splits over groups, then columns (32-wide panels), then rows.
    private func packedGEMM(_ x: UnsafePointer<Float>, input: Shape, pixels: Int, columns: Int,
                            into y: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?, threads: Int) {
        let cPerGroup = inputChannels / groups
        let imageStride = inputChannels * input.pixels
        let w = window
        let kPerGroup = outputChannels / groups
        let depth = columnRows / groups
        let outputImageStride = outputChannels * pixels
        // Pieces per group: whole groups when there are enough of them; otherwise split columns in
        // panels of 32 while each piece keeps ≥ 2 panels, else rows in panels of 16.
        let workers = min(threads, max(1, groups * max(1, (columns / 64)) * max(1, kPerGroup / 8)))
        let pieces = groups >= workers ? 1 : workers
        let splitColumns = columns >= 64 * pieces
        let scratch = Int(ck_packed_gemm_workspace_count())
        let items = groups * pieces
        // Per-worker scratch from the reusable pool (64-byte aligned; a fresh 1 MiB buffer a call
        // would page-fault each time).
        Scratch.withFloats(workers * scratch) { workspace in
            packedWeight.withUnsafeBufferPointer { packed in
                withOptionalPointer(bias) { bias in
                    // One task per worker, each with its own scratch, taking a contiguous run of items.
                    Threads.forEach(workers, threads: workers) { worker in
                        for item in Threads.block(worker, of: workers, count: items) {
                            let g = item / pieces, piece = item % pieces
                            var (rowBegin, rowEnd, columnBegin, columnEnd) = (0, kPerGroup, 0, columns)
                            if pieces > 1 {
                                if splitColumns {
                                    let panels = (columns + 31) / 32
                                    columnBegin = min(columns, panels * piece / pieces * 32)
                                    columnEnd = min(columns, panels * (piece + 1) / pieces * 32)
                                } else {
                                    // Whole 16-row panels of the packed filters (the channels-in-lanes
                                    // path of ck_packed_gemm starts at a panel).
                                    let panels = (kPerGroup + 15) / 16
                                    rowBegin = min(kPerGroup, panels * piece / pieces * 16)
                                    rowEnd = min(kPerGroup, panels * (piece + 1) / pieces * 16)
                                }
                            }
                            guard rowBegin < rowEnd, columnBegin < columnEnd else { continue }
                            let a = packed.baseAddress! + g * packedGroupStride
                            let source = x + g * cPerGroup * input.pixels
                            let out = y + g * kPerGroup * pixels
                            let shortcut = residual.map { $0 + g * kPerGroup * pixels }
                            let b = bias.map { $0 + g * kPerGroup }
                            if isPointwise {
                                ck_packed_gemm(a, Int32(kPerGroup), Int32(depth), source, imageStride, pixels, Int32(pixels),
                                               out, outputImageStride, pixels, b, shortcut, activation.kernelCode,
                                               Int32(rowBegin), Int32(rowEnd), Int32(columnBegin), Int32(columnEnd),
                                               workspace + worker * scratch)
                            } else {
                                ck_packed_conv(a, Int32(kPerGroup), source, imageStride, Int32(cPerGroup),
                                               Int32(input.height), Int32(input.width), Int32(w.kernelHeight),
                                               Int32(w.kernelWidth), Int32(w.paddingHeight), Int32(w.paddingWidth),
                                               Int32(w.strideHeight), Int32(w.strideWidth), Int32(w.dilationHeight),
                                               Int32(w.dilationWidth), out, outputImageStride, pixels, b, shortcut,
                                               activation.kernelCode, Int32(rowBegin), Int32(rowEnd), Int32(columnBegin),
                                               Int32(columnEnd), workspace + worker * scratch)
                            }
                        }
                    }
                }
            }
        }
    }
}
