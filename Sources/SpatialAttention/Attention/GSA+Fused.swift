/// The fused GSA path (``GSA/PositionalKernel/fused``): everything channel-major (`[channels, H·W]`,
/// NCHW planes), so no pass gathers or transposes data.
///
/// 1. `[Q; K; V] = W·X`, one sgemm (`m = channels`, `n = H·W`).
/// 2. Content: a softmax over each key row (contiguous) and `C_h = K̂_h·V_hᵀ` (sgemm); `Yᶜ_h = C_hᵀ·Q_h` is
///    added inside the row pass's sums (below) on rows over 48 positions, by sgemm otherwise.
/// 3. Column pass, SIMD over 16 image columns at once: for a block of 4 rows `x` and 4 rows `i`,
///    `S[x][i] = Σ_κ Q_κ[x, y..y+15]·R_c[i − x + L − 1][κ]` (4 query loads and 7 embedding broadcasts
///    per 16 FMAs), then `Yᴴ_c[x, y..] = Σ_i S[x][i]·V_c[i, y..]` (3 channels × 8 rows, 11 loads per 24
///    FMAs, so each value vector, read from L2, serves 8 rows). The logits of an 8-row block (8·H
///    vectors, 28 KiB at H = 56) stay in L1.
/// 4. BN on `Yᴴ` as the column pass writes it; row pass, SIMD over 16 output columns `y` of one image row `x`:
///    `Sᵀ[j][y] = Σ_κ Q_κ[x, y]·R_r[j − y + L − 1][κ]` (read from the reversed, shift-indexed embedding
///    so consecutive `y` are consecutive floats; a block of rows `j, j+16, j+32, j+48` × 64 positions
///    meets 7 distinct embedding vectors, so 4 query loads and 7 embedding loads per 16 FMAs), then
///    `Y_c[x, y] = Σ_κ C_h[κ][c]·Q_κ[x, y] + Σ_j Yᴴ_c[x, j]·Sᵀ[j][y]` in the same accumulators (rows over
///    48 positions): the output is written once, and the queries of row `x` are in L1 from the logits.
///    A row goes in tiles of 64 positions × 64 rows `j` (L1-resident logits); rows of at most 48
///    positions in one tile as wide as the row (16, 32 or 48 positions).
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
        // SIMD loads of 16 or 64 positions from the last rows read up to 8 rows + 64 floats past the last
        // plane (into the next plane, or this zeroed tail); those lanes are never stored.
        let tail = 8 * W + 64
        let sizes = [D * P + tail, hasColumn && hasRow ? valueChannels * P + tail : 0, nchw ? 0 : valueChannels * P,
                     hasContent ? heads * keyChannelsPerHead * valueChannelsPerHead : 0]
        Scratch.withFloats(sizes.reduce(0, +)) { buffer in
            let qkv = buffer, yh = buffer + sizes[0], staging = yh + sizes[1], contexts = staging + sizes[2]
            (qkv + D * P).update(repeating: 0, count: tail)
            if sizes[1] > 0 { (yh + valueChannels * P).update(repeating: 0, count: tail) }
            let target = nchw ? output : staging
            planarProjection.withUnsafeBufferPointer { pw in
                GEMM.multiply(m: D, n: P, k: channels, a: pw.baseAddress!, lda: channels,
                              b: image, ldb: nchw ? P : channels, transposeB: !nchw, c: qkv, ldc: P)
            }
            let q = qkv, k = qkv + qRows * P, v = k + kRows * P
            // With a row pass over rows of more than 48 positions, the content term Σ_κ C_h[κ][c]·q_κ joins
            // the row pass's sums (the queries of each image row are in L1 there) instead of a Yᶜ sgemm
            // whose output the row pass re-reads. On shorter rows the sgemm stays: there the sums' tiles of
            // 16 to 48 positions pad the term's work (16 for 7 positions), and fusing every length measured
            // 0.162–0.167 against 0.146–0.157 ms at 7×7, 0.496–0.514 against 0.472–0.495 ms at 14×14.
            let fusedContent = hasContent && hasRow && W > 48
            if hasContent {
                planarContexts(keys: k, values: v, pixels: P, into: contexts, threads: threads)
                if !fusedContent { applyContexts(contexts, queries: q, pixels: P, into: target) }
            }
            if hasColumn {
                let destination = hasRow ? yh : target
                columnPass(queries: q, values: v, height: H, width: W, into: destination,
                           accumulate: !hasRow && hasContent, normalize: hasRow, threads: threads)
            }
            if hasRow {
                rowPass(queries: q, values: hasColumn ? yh : v, height: H, width: W,
                        contexts: fusedContent ? UnsafePointer(contexts) : nil, into: target,
                        accumulate: hasContent && !fusedContent, threads: threads)
            }
            if !nchw {
                Transpose.planesToPixels(staging, pixels: P, channels: valueChannels, into: output, threads: threads)
            }
        }
    }

    /// The content contexts `C_h = softmax(K_h)·V_hᵀ` (`[heads, dk, dv]`) from channel-major `K`, `V`: `K`
    /// rows become softmax numerators in place, and the softmax's `1/Σ` scales the `dk` rows of `C_h`.
    private func planarContexts(keys k: UnsafeMutablePointer<Float>, values v: UnsafePointer<Float>, pixels P: Int,
                                into contexts: UnsafeMutablePointer<Float>, threads: Int) {
        let (dk, dv) = (keyChannelsPerHead, valueChannelsPerHead)
        Scratch.withFloats(keyChannels) { sums in
            Threads.forEach(keyChannels, threads: threads) { row in
                let r = k + row * P
                sums[row] = VectorMath.exp(r, into: r, count: P, subtracting: VectorMath.maximum(r, count: P))
            }
            for h in 0..<heads {
                let context = contexts + h * dk * dv
                GEMM.multiply(m: dk, n: dv, k: P, a: k + h * dk * P, lda: P, b: v + h * dv * P, ldb: P,
                              transposeB: true, c: context, ldc: dv)
                for row in 0..<dk { scaleInPlace(context + row * dv, count: dv, by: 1 / sums[h * dk + row]) }
            }
        }
    }

    /// `Yᶜ_h [dv, P] = C_hᵀ·Q_h` for every head, sgemm, written to `y` (the module without a row pass).
    private func applyContexts(_ contexts: UnsafePointer<Float>, queries q: UnsafePointer<Float>, pixels P: Int,
                               into y: UnsafeMutablePointer<Float>) {
        let (dk, dv) = (keyChannelsPerHead, valueChannelsPerHead)
        for h in 0..<heads {
            GEMM.multiply(m: dv, n: P, k: dk, a: contexts + h * dk * dv, lda: dv, transposeA: true,
                          b: q + h * dk * P, ldb: P, c: y + h * dv * P, ldc: P)
        }
    }
}
