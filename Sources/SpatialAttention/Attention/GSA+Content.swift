/// GSA content attention, `Yᶜ = Q·(K̂ᵀ·V)` with `K̂` the softmax of `K` over positions (003 Eq. 1, 4).
extension GSA {
    /// Content attention from the projected `[Q|K|V]` matrix: per head `C = K̂ᵀ·V` (`dk×dv`, sgemm
    /// with `k = P`) and `Yᶜ = Q·C` (sgemm) written to `output` (overwriting it).
    ///
    /// `K` is replaced by `exp(K − max)` in place; the softmax's `1/Σ` scales the rows of `C`, which is
    /// `dk·dv` multiplications instead of `P·dk`.
    func content(projected qkv: UnsafeMutablePointer<Float>, layout: ProjectedLayout, geometry: Geometry,
                 output: UnsafeMutablePointer<Float>, threads: Int) {
        let (P, dk, dv, ld) = (geometry.pixels, keyChannelsPerHead, valueChannelsPerHead, layout.rowStride)
        var sums = [Float](repeating: 0, count: keyChannels)
        sums.withUnsafeMutableBufferPointer { ps in
            let sums = ps.baseAddress!
            Threads.forEach(heads, threads: threads) { h in
                columnSoftmaxNumerators(qkv + h * layout.block + layout.keyOffset, rows: P, columns: dk,
                                        rowStride: ld, sums: sums + h * dk)
            }
        }
        var context = [Float](repeating: 0, count: dk * dv)
        context.withUnsafeMutableBufferPointer { pc in
            let context = pc.baseAddress!
            for h in 0..<heads {
                let q = qkv + h * layout.block, k = q + layout.keyOffset, v = q + layout.valueOffset
                // C = exp(K − max)ᵀ·V, then row κ of C divided by Σ_p exp(K[p, κ] − max).
                GEMM.multiply(m: dk, n: dv, k: P, a: k, lda: ld, transposeA: true, b: v, ldb: ld,
                              c: context, ldc: dv)
                for row in 0..<dk { scaleInPlace(context + row * dv, count: dv, by: 1 / sums[h * dk + row]) }
                if geometry.layout == .nchw {
                    // Yᶜ_hᵀ [dv, P] = Cᵀ·Q_hᵀ, straight into the NCHW channel planes of head h.
                    GEMM.multiply(m: dv, n: P, k: dk, a: context, lda: dv, transposeA: true,
                                  b: q, ldb: ld, transposeB: true, c: output + h * dv * P, ldc: P)
                } else {
                    GEMM.multiply(m: P, n: dv, k: dk, a: q, lda: ld, b: context, ldb: dv,
                                  c: output + h * dv, ldc: valueChannels)
                }
            }
        }
    }

    /// The content-only module (003 Table 4, first ablation), reassociated so that neither `Q` nor `V` is
    /// materialised: `C_h = K̂_hᵀ·V_h = (K̂_hᵀ·X)·W_V,hᵀ` and `Yᶜ = Q·C = X·(W_Qᵀ·C)`.
    ///
    /// Three GEMMs with the image (`K = W_K·X`, `G = K̂ᵀ·X`, `Yᶜ = M·X` with `M_h = C_hᵀ·W_Q,h`) replace
    /// the three projections; the per-head `K̂ᵀ·V` and `Q·C` products (`dk×dv` outputs over `k = P`, about
    /// half sgemm's peak at these sizes) become `dk×dv×C` products. Same values up to rounding.
    func contentOnly(image: UnsafePointer<Float>, geometry: Geometry, output: UnsafeMutablePointer<Float>,
                     threads: Int) {
        let (P, C, dk, dv) = (geometry.pixels, channels, keyChannelsPerHead, valueChannelsPerHead)
        let nchw = geometry.layout == .nchw
        var keys = [Float](repeating: 0, count: keyChannels * P)
        var sums = [Float](repeating: 0, count: keyChannels)
        var gathered = [Float](repeating: 0, count: keyChannels * C)
        var context = [Float](repeating: 0, count: dk * dv)
        var mixed = [Float](repeating: 0, count: valueChannels * C)
        keyWeight.withUnsafeBufferPointer { pk in
        queryWeight.withUnsafeBufferPointer { pq in
        valueWeight.withUnsafeBufferPointer { pv in
        keys.withUnsafeMutableBufferPointer { pkeys in
        sums.withUnsafeMutableBufferPointer { psums in
        gathered.withUnsafeMutableBufferPointer { pg in
        context.withUnsafeMutableBufferPointer { pc in
        mixed.withUnsafeMutableBufferPointer { pm in
            let (wk, wq, wv) = (pk.baseAddress!, pq.baseAddress!, pv.baseAddress!)
            let (keys, sums, g, ctx, m) = (pkeys.baseAddress!, psums.baseAddress!, pg.baseAddress!,
                                           pc.baseAddress!, pm.baseAddress!)
            // K [keyChannels, P] = W_K·X (channel-major, so each key channel's softmax runs on a row).
            GEMM.multiply(m: keyChannels, n: P, k: C, a: wk, lda: C,
                          b: image, ldb: nchw ? P : C, transposeB: !nchw, c: keys, ldc: P)
            let rowsPerItem = max(1, keyChannels / max(1, threads))
            let items = (keyChannels + rowsPerItem - 1) / rowsPerItem
            Threads.forEach(items, threads: threads) { item in
                for row in (item * rowsPerItem)..<min(keyChannels, (item + 1) * rowsPerItem) {
                    let r = keys + row * P
                    sums[row] = VectorMath.exp(r, into: r, count: P, subtracting: VectorMath.maximum(r, count: P))
                }
            }
            // G [keyChannels, C] = exp(K − max)·Xᵀ.
            GEMM.multiply(m: keyChannels, n: C, k: P, a: keys, lda: P,
                          b: image, ldb: nchw ? P : C, transposeB: nchw, c: g, ldc: C)
            for h in 0..<heads {
                // C_h [dk, dv] = G_h·W_V,hᵀ with row κ divided by its softmax sum; M_h [dv, C] = C_hᵀ·W_Q,h.
                GEMM.multiply(m: dk, n: dv, k: C, a: g + h * dk * C, lda: C,
                              b: wv + h * dv * C, ldb: C, transposeB: true, c: ctx, ldc: dv)
                for row in 0..<dk { scaleInPlace(ctx + row * dv, count: dv, by: 1 / sums[h * dk + row]) }
                GEMM.multiply(m: dv, n: C, k: dk, a: ctx, lda: dv, transposeA: true,
                              b: wq + h * dk * C, ldb: C, c: m + h * dv * C, ldc: C)
            }
            if nchw {
                GEMM.multiply(m: valueChannels, n: P, k: C, a: m, lda: C, b: image, ldb: P, c: output, ldc: P)
            } else {
                GEMM.multiply(m: P, n: valueChannels, k: C, a: image, lda: C, b: m, ldb: C, transposeB: true,
                              c: output, ldc: valueChannels)
            }
        }}}}}}}}
    }
}

/// Replaces each column of the strided `rows×columns` matrix at `base` by `exp(column − max(column))`
/// and writes the column sums to `sums`: the numerators of a softmax over rows, per column.
///
/// Two passes over the rows with 16 columns per vector (rows are the pixels, columns one head's keys).
func columnSoftmaxNumerators(_ base: UnsafeMutablePointer<Float>, rows: Int, columns: Int, rowStride: Int,
                             sums: UnsafeMutablePointer<Float>) {
    var c0 = 0
    while c0 < columns {
        let width = min(16, columns - c0)
        if width == 16 {
            var m = SIMD16<Float>(repeating: -.infinity)
            for r in 0..<rows {
                let v = UnsafeRawPointer(base + r * rowStride + c0).loadUnaligned(as: SIMD16<Float>.self)
                m = m.replacing(with: v, where: v .> m)
            }
            var s = SIMD16<Float>()
            for r in 0..<rows {
                let p = UnsafeMutableRawPointer(base + r * rowStride + c0)
                let e = exp16(p.loadUnaligned(as: SIMD16<Float>.self) - m)
                p.storeBytes(of: e, as: SIMD16<Float>.self)
                s += e
            }
            for j in 0..<16 { sums[c0 + j] = s[j] }
        } else {
            for c in c0..<(c0 + width) {
                var m = -Float.infinity
                for r in 0..<rows where base[r * rowStride + c] > m { m = base[r * rowStride + c] }
                var s: Float = 0
                for r in 0..<rows {
                    var v = SIMD16<Float>(repeating: -.infinity)
                    v[0] = base[r * rowStride + c] - m
                    let e = exp16(v)[0]
                    base[r * rowStride + c] = e
                    s += e
                }
                sums[c] = s
            }
        }
        c0 += width
    }
}
