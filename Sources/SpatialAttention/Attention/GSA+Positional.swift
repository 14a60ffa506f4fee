
/// GSA axial positional attention (003 Eq. 2, Appendix B Eq. 5–7): column pass, BN, row pass, by GEMMs.
///
/// Appendix B re-indexes `R` through a one-hot tensor `I[x, i, r]` (`H×H×(2L−1)`); here the
/// re-indexing is a gather done by the GEMM's leading dimension. For one image column `y`:
///
/// 1. `T[(x, h), δ + H − 1] = q[x, y, h]·R_c[δ + L − 1]` for every shift `δ = i − x` in `−(H−1)...H−1`
///    whose embedding row exists (`|δ| ≤ L − 1`), zero for the others: one GEMM `Q_y·R_cᵀ` with
///    `m = H·heads`, `n ≤ 2H − 1`, `k = dk`, on a copy of `Q` with the image transposed
///    (`[y, x, heads·dk]`, so that one column's queries are one matrix). `T` rows hold `2H` floats.
/// 2. For head `h`, the logit of query row `x` and key row `i` is `T[(x, h), H − 1 − x + i]`: going from
///    `x` to `x + 1` moves `heads·2H − 1` floats, so `S_h = [T[(x,h), H−1−x+i]]` is a plain strided
///    matrix with leading dimension `heads·2H − 1`: no copy. `Yᴴ[·, y, h] = S_h·V[·, y, h]`, one GEMM
///    per head (`m = H`, `n = dv`, `k = H`).
///
/// The row pass is the same per image row `x`, on `Q` as projected and with `BN(Yᴴ)` (or `V` without a
/// column pass) as values. Its value GEMMs write the output directly, as `[dv, W]` blocks of the NCHW
/// channel planes or `[W, dv]` blocks of NHWC rows. `T` (`H·heads·2H` floats for a column, L2-resident
/// at 56×56) is the only buffer beyond `O(H·W·channels)`. Logits are computed for all `2H − 1` shifts
/// although each query needs `H`: about twice the minimal logit MACs, in one GEMM per column instead
/// of `H` strided ones (measured faster; docs/gsa.md).
extension GSA {
    func positional(projected qkv: UnsafeMutablePointer<Float>, layout: ProjectedLayout, geometry: Geometry,
                    output: UnsafeMutablePointer<Float>, accumulate: Bool, threads: Int) {
        let (H, W, P) = (geometry.height, geometry.width, geometry.pixels)
        let hasColumn = components.contains(.column), hasRow = components.contains(.row)
        let logitsCount = max(hasColumn ? H * heads * 2 * H : 0, hasRow ? W * heads * 2 * W : 0)
        Scratch.withFloats(logitsCount) { logits in
            Scratch.withFloats(hasColumn ? P * valueChannels : 0) { columnOutput in
                if hasColumn {
                    columnPass(qkv: qkv, layout: layout, geometry: geometry, logits: logits, result: columnOutput,
                               threads: threads)
                    if hasRow {
                        normalize(columnOutput, pixels: P, threads: threads)
                    } else {
                        GSA.store(columnOutput, pixels: P, channels: valueChannels, into: output,
                                  layout: geometry.layout, accumulate: accumulate, threads: threads)
                    }
                }
                if hasRow {
                    let values = hasColumn
                        ? (base: UnsafePointer(columnOutput), rowStride: valueChannels, headStride: valueChannelsPerHead)
                        : (base: UnsafePointer(qkv + layout.valueOffset), rowStride: layout.rowStride,
                           headStride: layout.block)
                    rowPass(qkv: qkv, layout: layout, geometry: geometry, logits: logits, values: values,
                            output: output, accumulate: accumulate)
                }
            }
        }
    }

    /// The shift logits `T` of one column (or row) of `length` positions: `m` query rows at `queries`
    /// (row stride `queryStride`) times the embedding rows of the shifts that exist, into rows of `2·length`
    /// floats (`T` must be zero outside the columns this writes; they are the same on every call).
    private func shiftLogits(queries: UnsafePointer<Float>, queryStride: Int, rows m: Int, length: Int,
                             embedding r: UnsafePointer<Float>, into t: UnsafeMutablePointer<Float>) {
        let dk = keyChannelsPerHead, L = extent
        // Shift δ = c − (length − 1) in column c uses embedding row δ + L − 1 when 0 ≤ δ + L − 1 ≤ 2L − 2.
        let first = max(0, L - length), last = min(2 * L - 2, L + length - 2)
        guard first <= last else { return }
        GEMM.multiply(m: m, n: last - first + 1, k: dk, a: queries, lda: queryStride,
                      b: r + first * dk, ldb: dk, transposeB: true,
                      c: t + (first - L + length), ldc: 2 * length)
    }

    /// `Yᴴ` (`[x, y, heads·dv]`) of the column pass, one image column at a time.
    private func columnPass(qkv: UnsafeMutablePointer<Float>, layout: ProjectedLayout, geometry: Geometry,
                            logits t: UnsafeMutablePointer<Float>, result yh: UnsafeMutablePointer<Float>,
                            threads: Int) {
        let (H, W, P, dk, dv, ld) = (geometry.height, geometry.width, geometry.pixels, keyChannelsPerHead,
                                     valueChannelsPerHead, layout.rowStride)
        let span = 2 * H
        t.update(repeating: 0, count: H * heads * span)
        Scratch.withFloats(P * keyChannels) { qt in
            transposeQueries(qkv: qkv, layout: layout, geometry: geometry, into: qt, threads: threads)
            columnEmbedding.withUnsafeBufferPointer { pr in
                for y in 0..<W {
                    shiftLogits(queries: qt + y * H * keyChannels, queryStride: dk, rows: H * heads, length: H,
                                embedding: pr.baseAddress!, into: t)
                    for h in 0..<heads {
                        GEMM.multiply(m: H, n: dv, k: H, a: t + h * span + H - 1, lda: heads * span - 1,
                                      b: qkv + y * ld + h * layout.block + layout.valueOffset, ldb: W * ld,
                                      c: yh + y * valueChannels + h * dv, ldc: W * valueChannels)
                    }
                }
            }
        }
    }

    /// The row pass on `values` (`[x, y, ·]` rows of `rowStride` floats, head `h` at `h·headStride`),
    /// written (or added) into the output image.
    private func rowPass(qkv: UnsafeMutablePointer<Float>, layout: ProjectedLayout, geometry: Geometry,
                         logits t: UnsafeMutablePointer<Float>,
                         values: (base: UnsafePointer<Float>, rowStride: Int, headStride: Int),
                         output: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let (H, W, P, dv, ld) = (geometry.height, geometry.width, geometry.pixels, valueChannelsPerHead,
                                 layout.rowStride)
        let span = 2 * W, beta: Float = accumulate ? 1 : 0
        t.update(repeating: 0, count: W * heads * span)
        rowEmbedding.withUnsafeBufferPointer { pr in
            for x in 0..<H {
                // Rows (y, h) of image row x's queries: stride `block` floats, since ld = heads·block.
                shiftLogits(queries: qkv + x * W * ld, queryStride: layout.block, rows: W * heads, length: W,
                            embedding: pr.baseAddress!, into: t)
                for h in 0..<heads {
                    let s = t + h * span + W - 1, sStride = heads * span - 1
                    let v = values.base + x * W * values.rowStride + h * values.headStride
                    if geometry.layout == .nchw {
                        // A [dv, W] block of head h's channel planes: Vᵀ·Sᵀ.
                        GEMM.multiply(m: dv, n: W, k: W, a: v, lda: values.rowStride, transposeA: true,
                                      b: s, ldb: sStride, transposeB: true, beta: beta,
                                      c: output + h * dv * P + x * W, ldc: P)
                    } else {
                        GEMM.multiply(m: W, n: dv, k: W, a: s, lda: sStride, b: v, ldb: values.rowStride,
                                      beta: beta, c: output + x * W * valueChannels + h * dv, ldc: valueChannels)
                    }
                }
            }
        }
    }

    /// Copies the queries into `[y, x, heads·dk]` order (the image transposed).
    private func transposeQueries(qkv: UnsafeMutablePointer<Float>, layout: ProjectedLayout, geometry: Geometry,
                                  into qt: UnsafeMutablePointer<Float>, threads: Int) {
        let (H, W, dk) = (geometry.height, geometry.width, keyChannelsPerHead)
        Threads.forEach(W, threads: threads) { y in
            for x in 0..<H {
                let source = qkv + (x * W + y) * layout.rowStride
                let target = qt + (y * H + x) * keyChannels
                for h in 0..<heads {
                    copyFloats(source + h * layout.block, target + h * dk, count: dk)
                }
            }
        }
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
        guard layout == .nhwc else {
            return Transpose.pixelsToPlanes(y, pixels: pixels, channels: channels, into: output,
                                            accumulate: accumulate, threads: threads)
        }
        let count = pixels * channels
        if accumulate {
            var i = 0
            while i + 16 <= count { store16(load16(output + i) + load16(y + i), output + i); i += 16 }
            while i < count { output[i] += y[i]; i += 1 }
        } else {
            output.update(from: y, count: count)
        }
    }
}

/// Copies `count` floats (vectors of 16, then single floats).
@inline(__always)
func copyFloats(_ source: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 16 <= count {
        UnsafeMutableRawPointer(target + i).storeBytes(
            of: UnsafeRawPointer(source + i).loadUnaligned(as: SIMD16<Float>.self), as: SIMD16<Float>.self)
        i += 16
    }
    while i < count { target[i] = source[i]; i += 1 }
}
