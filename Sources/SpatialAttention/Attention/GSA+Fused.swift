/// The fused GSA path (``GSA/PositionalKernel/fused``): everything channel-major (`[channels, H·W]`,
/// NCHW planes), so no pass gathers or transposes data.
///
/// 1. `[Q; K; V] = W·X`, one sgemm (`m = channels`, `n = H·W`).
/// 2. Content: a softmax over each key row (contiguous), `C_h = K̂_h·V_hᵀ` and `Yᶜ_h = C_hᵀ·Q_h`, sgemm.
/// 3. Column pass, SIMD over 16 image columns at once: for a block of 4 rows `x` and 4 rows `i`,
///    `S[x][i] = Σ_κ Q_κ[x, y..y+15]·R_c[i − x + L − 1][κ]` (4 query loads and 7 embedding broadcasts
///    per 16 FMAs), then `Yᴴ_c[x, y..] = Σ_i S[x][i]·V_c[i, y..]` (4 channels × 4 rows, 8 loads per 16
///    FMAs). The logits of a 4-row block (4·H vectors) stay in L1.
/// 4. BN on the `Yᴴ` planes; row pass, SIMD over 16 output columns `y` of one image row `x`:
///    `Sᵀ[j][y] = Σ_κ Q_κ[x, y]·R_r[j − y + L − 1][κ]` (read from the reversed, shift-indexed embedding
///    so consecutive `y` are consecutive floats), then `Y_c[x, y] += Σ_j Yᴴ_c[x, j]·Sᵀ[j][y]`.
///
/// Each query only meets the `n` shifts it uses (the sgemm path computes all `2n − 1`). At 56×56, 8
/// heads, OpenBLAS reaches about 50 GFLOP/s on the 448 `56×56×32` products per pass, call overhead and
/// packing included; these kernels run without either.
extension GSA {
    func forwardFused(image: UnsafePointer<Float>, geometry: Geometry, output: UnsafeMutablePointer<Float>,
                      threads: Int) {
        let (H, W, P) = (geometry.height, geometry.width, geometry.pixels)
        let hasContent = components.contains(.content)
        let (qRows, kRows, vRows) = (keyChannels, hasContent ? keyChannels : 0, valueChannels)
        let D = qRows + kRows + vRows, nchw = geometry.layout == .nchw
        let hasColumn = components.contains(.column), hasRow = components.contains(.row)
        // SIMD loads of 16 or 64 positions from the last rows read up to 4 rows + 64 floats past the last
        // plane (into the next plane, or this zeroed tail); those lanes are never stored.
        let tail = 4 * W + 64
        let sizes = [D * P + tail, hasColumn && hasRow ? valueChannels * P + tail : 0, nchw ? 0 : valueChannels * P]
        Scratch.withFloats(sizes.reduce(0, +)) { buffer in
            let qkv = buffer, yh = buffer + sizes[0], staging = yh + sizes[1]
            (qkv + D * P).update(repeating: 0, count: tail)
            if sizes[1] > 0 { (yh + valueChannels * P).update(repeating: 0, count: tail) }
            let target = nchw ? output : staging
            planarProjection.withUnsafeBufferPointer { pw in
                GEMM.multiply(m: D, n: P, k: channels, a: pw.baseAddress!, lda: channels,
                              b: image, ldb: nchw ? P : channels, transposeB: !nchw, c: qkv, ldc: P)
            }
            let q = qkv, k = qkv + qRows * P, v = k + kRows * P
            if hasContent { planarContent(queries: q, keys: k, values: v, pixels: P, into: target, threads: threads) }
            if hasColumn {
                let destination = hasRow ? yh : target
                columnPass(queries: q, values: v, height: H, width: W, into: destination,
                           accumulate: !hasRow && hasContent, threads: threads)
                if hasRow { normalizePlanes(yh, pixels: P, threads: threads) }
            }
            if hasRow {
                rowPass(queries: q, values: hasColumn ? yh : v, height: H, width: W, into: target,
                        accumulate: hasContent, threads: threads)
            }
            if !nchw {
                Transpose.planesToPixels(staging, pixels: P, channels: valueChannels, into: output, threads: threads)
            }
        }
    }

    /// Content attention on channel-major `Q`, `K`, `V`: `K` rows become softmax numerators in place.
    private func planarContent(queries q: UnsafeMutablePointer<Float>, keys k: UnsafeMutablePointer<Float>,
                               values v: UnsafeMutablePointer<Float>, pixels P: Int, into y: UnsafeMutablePointer<Float>,
                               threads: Int) {
        let (dk, dv) = (keyChannelsPerHead, valueChannelsPerHead)
        Scratch.withFloats(keyChannels + dk * dv) { sums in
            let context = sums + keyChannels
            Threads.forEach(keyChannels, threads: threads) { row in
                let r = k + row * P
                sums[row] = VectorMath.exp(r, into: r, count: P, subtracting: VectorMath.maximum(r, count: P))
            }
            for h in 0..<heads {
                // C [dk, dv] = exp(K_h − max)·V_hᵀ, row κ over its sum; Yᶜ_h [dv, P] = Cᵀ·Q_h.
                GEMM.multiply(m: dk, n: dv, k: P, a: k + h * dk * P, lda: P, b: v + h * dv * P, ldb: P,
                              transposeB: true, c: context, ldc: dv)
                for row in 0..<dk { scaleInPlace(context + row * dv, count: dv, by: 1 / sums[h * dk + row]) }
                GEMM.multiply(m: dv, n: P, k: dk, a: context, lda: dv, transposeA: true, b: q + h * dk * P, ldb: P,
                              c: y + h * dv * P, ldc: P)
            }
        }
    }

    /// BN on `valueChannels` planes of `pixels` floats.
    private func normalizePlanes(_ y: UnsafeMutablePointer<Float>, pixels: Int, threads: Int) {
        Threads.forEach(valueChannels, threads: threads) { c in
            let plane = y + c * pixels, a = normalizationScale[c], b = normalizationShift[c]
            var p = 0
            while p + 16 <= pixels { store16(load16(plane + p) * a + b, plane + p); p += 16 }
            while p < pixels { plane[p] = plane[p] * a + b; p += 1 }
        }
    }
}
