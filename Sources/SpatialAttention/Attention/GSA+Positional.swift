/// GSA axial positional attention (003 Eq. 2, Appendix B Eq. 5–7): column pass, BN, row pass, by GEMMs.
///
/// Appendix B re-indexes `R` through a one-hot tensor `I[x, i, r]`; here the re-indexing is a pointer
/// offset. For a fixed output row `x`, the column pass needs `R_c[i − x + L − 1]` for `i = 0..<H`:
/// consecutive rows of `R_c`, i.e. a `[H, dk]` slice starting at row `L − 1 − x`. Rows outside
/// `0..<2L−1` (offsets beyond `L − 1`) must contribute nothing, so `R_c` is copied once per call into a
/// buffer with `max(0, H − L)` zero rows on both sides. Then:
///
/// 1. logits, one GEMM per image row `x` for all columns and heads: `S[(y,h), x, i] = q[x,y,h]·R_c[i−x+L−1]`
///    (`m = W·heads`: the queries of one image row are one strided matrix in the `[P, heads·block]`
///    projection, `n = H`, `k = dk`);
/// 2. values, one GEMM per column `y` and head: `Yᴴ[x, y, h] = Σ_i S[(y,h), x, i]·v[i, y, h]`
///    (`m = H`, `n = dv`, `k = H`).
///
/// The row pass is the same with the roles of `x` and `y` swapped, on a copy of `Q` with the image
/// transposed (`[y, x, heads·dk]`, so that one image column's queries are one strided matrix) and with
/// `BN(Yᴴ)` (or `V` without a column pass) as values. Its value GEMMs write the output directly, as
/// `[dv, W]` blocks of the NCHW channel planes or `[W, dv]` blocks of NHWC rows.
///
/// The logits buffer holds `heads·H·H` floats per image column (`heads·W·W` per image row); columns
/// (rows) are processed in blocks that keep it under ``GSA/logitsWorkspace`` floats (at least one column
/// or row), so memory stays `O(H·W·channels)` plus that bound.
extension GSA {
    func positional(projected qkv: UnsafeMutablePointer<Float>, layout: ProjectedLayout, geometry: Geometry,
                    output: UnsafeMutablePointer<Float>, accumulate: Bool, threads: Int) {
        let (H, W, P) = (geometry.height, geometry.width, geometry.pixels)
        let (dk, dv, ld) = (keyChannelsPerHead, valueChannelsPerHead, layout.rowStride)
        let hasColumn = components.contains(.column), hasRow = components.contains(.row)
        // Image columns per block of the column pass, image rows per block of the row pass.
        let columnBlock = max(1, min(W, logitsWorkspace / (heads * H * H)))
        let rowBlock = max(1, min(H, logitsWorkspace / (heads * W * W)))
        var logits = [Float](repeating: 0, count: max(hasColumn ? columnBlock * heads * H * H : 0,
                                                      hasRow ? rowBlock * heads * W * W : 0))
        // Yᴴ in [x, y, heads·dv] order (the row pass reads one image row of it as a [W, dv] matrix).
        var columnOutput = [Float](repeating: 0, count: hasColumn ? P * valueChannels : 0)
        logits.withUnsafeMutableBufferPointer { ps in
        columnOutput.withUnsafeMutableBufferPointer { py in
            let s = ps.baseAddress!
            if hasColumn {
                let yh = py.baseAddress!
                let (padded, start) = GSA.paddedEmbedding(columnEmbedding, extent: extent, length: H, dk: dk)
                padded.withUnsafeBufferPointer { pr in
                    let r = pr.baseAddress!
                    for y0 in stride(from: 0, to: W, by: columnBlock) {
                        let nb = min(columnBlock, W - y0)
                        for x in 0..<H {
                            // rows (y, h) of one image row's queries: stride `block` floats (ld = heads·block).
                            GEMM.multiply(m: nb * heads, n: H, k: dk, a: qkv + (x * W + y0) * ld, lda: layout.block,
                                          b: r + (start - x) * dk, ldb: dk, transposeB: true,
                                          c: s + x * H, ldc: H * H)
                        }
                        for yy in 0..<nb {
                            for h in 0..<heads {
                                let y = y0 + yy
                                GEMM.multiply(m: H, n: dv, k: H, a: s + (yy * heads + h) * H * H, lda: H,
                                              b: qkv + y * ld + h * layout.block + layout.valueOffset, ldb: W * ld,
                                              c: yh + y * valueChannels + h * dv, ldc: W * valueChannels)
                            }
                        }
                    }
                }
                if hasRow {
                    normalize(yh, pixels: P, threads: threads)
                } else {
                    GSA.store(yh, pixels: P, channels: valueChannels, into: output, layout: geometry.layout,
                              accumulate: accumulate, threads: threads)
                }
            }
            guard hasRow else { return }
            // Q with the image transposed: [y, x, heads·dk].
            var transposed = [Float](repeating: 0, count: P * keyChannels)
            transposed.withUnsafeMutableBufferPointer { pt in
                let qt = pt.baseAddress!
                Threads.forEach(W, threads: threads) { y in
                    for x in 0..<H {
                        for h in 0..<heads {
                            (qt + (y * H + x) * keyChannels + h * dk)
                                .update(from: qkv + (x * W + y) * ld + h * layout.block, count: dk)
                        }
                    }
                }
                let values = hasColumn ? UnsafePointer(py.baseAddress!) : UnsafePointer(qkv + layout.valueOffset)
                let valueStride = hasColumn ? valueChannels : ld
                let headStride = hasColumn ? dv : layout.block
                let (padded, start) = GSA.paddedEmbedding(rowEmbedding, extent: extent, length: W, dk: dk)
                padded.withUnsafeBufferPointer { pr in
                    let r = pr.baseAddress!
                    for x0 in stride(from: 0, to: H, by: rowBlock) {
                        let nb = min(rowBlock, H - x0)
                        for y in 0..<W {
                            GEMM.multiply(m: nb * heads, n: W, k: dk, a: qt + (y * H + x0) * keyChannels, lda: dk,
                                          b: r + (start - y) * dk, ldb: dk, transposeB: true,
                                          c: s + y * W, ldc: W * W)
                        }
                        for xx in 0..<nb {
                            for h in 0..<heads {
                                let x = x0 + xx
                                let a = s + (xx * heads + h) * W * W
                                let v = values + x * W * valueStride + h * headStride
                                let beta: Float = accumulate ? 1 : 0
                                if geometry.layout == .nchw {
                                    // [dv, W] block of the channel planes: Vᵀ·Sᵀ.
                                    GEMM.multiply(m: dv, n: W, k: W, a: v, lda: valueStride, transposeA: true,
                                                  b: a, ldb: W, transposeB: true, beta: beta,
                                                  c: output + h * dv * P + x * W, ldc: P)
                                } else {
                                    GEMM.multiply(m: W, n: dv, k: W, a: a, lda: W, b: v, ldb: valueStride,
                                                  beta: beta, c: output + x * W * valueChannels + h * dv,
                                                  ldc: valueChannels)
                                }
                            }
                        }
                    }
                }
            }
        }}
    }

    /// `R` (`[2L−1, dk]`) with `max(0, length − L)` zero rows added on both sides, and the row at which
    /// the slice for position 0 starts: position `p`'s slice `R[i − p + L − 1]`, `i = 0..<length`,
    /// begins at row `start − p` of the result.
    static func paddedEmbedding(_ r: [Float], extent: Int, length: Int, dk: Int) -> (rows: [Float], start: Int) {
        let pad = max(0, length - extent)
        var rows = [Float](repeating: 0, count: (2 * extent - 1 + 2 * pad) * dk)
        rows.replaceSubrange((pad * dk)..<((pad + 2 * extent - 1) * dk), with: r)
        return (rows, pad + extent - 1)
    }

    /// BN in place on a `[pixels, valueChannels]` matrix.
    func normalize(_ y: UnsafeMutablePointer<Float>, pixels: Int, threads: Int) {
        normalizationScale.withUnsafeBufferPointer { ps in
            normalizationShift.withUnsafeBufferPointer { pb in
                let (scale, shift, C) = (ps.baseAddress!, pb.baseAddress!, valueChannels)
                let chunk = 256
                Threads.forEach((pixels + chunk - 1) / chunk, threads: threads) { item in
                    for p in (item * chunk)..<min(pixels, (item + 1) * chunk) {
                        let row = y + p * C
                        var c = 0
                        while c + 16 <= C {
                            let raw = UnsafeMutableRawPointer(row + c)
                            let v = raw.loadUnaligned(as: SIMD16<Float>.self)
                            let a = UnsafeRawPointer(scale + c).loadUnaligned(as: SIMD16<Float>.self)
                            let b = UnsafeRawPointer(shift + c).loadUnaligned(as: SIMD16<Float>.self)
                            raw.storeBytes(of: v * a + b, as: SIMD16<Float>.self)
                            c += 16
                        }
                        while c < C { row[c] = row[c] * scale[c] + shift[c]; c += 1 }
                    }
                }
            }
        }
    }

    /// Writes (or adds) a `[pixels, channels]` matrix into an image of the given layout.
    static func store(_ y: UnsafePointer<Float>, pixels: Int, channels: Int, into output: UnsafeMutablePointer<Float>,
                      layout: Layout, accumulate: Bool, threads: Int) {
        if layout == .nhwc {
            for i in 0..<(pixels * channels) { output[i] = accumulate ? output[i] + y[i] : y[i] }
            return
        }
        // Blocked transpose: 32 pixels × all channels at a time.
        Threads.forEach((pixels + 31) / 32, threads: threads) { item in
            for c in 0..<channels {
                for p in (item * 32)..<min(pixels, item * 32 + 32) {
                    let v = y[p * channels + c]
                    output[c * pixels + p] = accumulate ? output[c * pixels + p] + v : v
                }
            }
        }
    }
}
