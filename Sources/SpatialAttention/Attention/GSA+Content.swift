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
        Scratch.withFloats(2 * keyChannels + dk * dv) { sums in
            let maxima = sums + keyChannels, context = maxima + keyChannels
            // Row sweeps over the pixels (prefetch-friendly), all heads' key segments per row.
            keySoftmaxNumerators(qkv, layout: layout, rows: P, maxima: maxima, sums: sums)
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
        let sizes = [keyChannels * P, keyChannels, keyChannels * C, dk * dv, valueChannels * C]
        Scratch.withFloats(sizes.reduce(0, +)) { scratch in
            let keys = scratch, sums = keys + sizes[0], g = sums + sizes[1], ctx = g + sizes[2], m = ctx + sizes[3]
            keyWeight.withUnsafeBufferPointer { pk in
            queryWeight.withUnsafeBufferPointer { pq in
            valueWeight.withUnsafeBufferPointer { pv in
                let (wk, wq, wv) = (pk.baseAddress!, pq.baseAddress!, pv.baseAddress!)
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
            }}}
        }
    }
}

extension GSA {
    /// Replaces each key channel `K[·, h, κ]` of the projected matrix by `exp(K − max over pixels)` and
    /// writes the channel sums to `sums` (the numerators of the softmax over positions, 003 Eq. 4).
    ///
    /// Two sweeps over the pixel rows; in each row, the `dk` keys of every head are handled 16 at a time
    /// (a column-at-a-time loop strides 3 KiB per pixel and measured 6× slower at 56×56).
    func keySoftmaxNumerators(_ qkv: UnsafeMutablePointer<Float>, layout: ProjectedLayout, rows: Int,
                              maxima: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Float>) {
        let dk = keyChannelsPerHead, ld = layout.rowStride
        maxima.update(repeating: -.infinity, count: keyChannels)
        sums.update(repeating: 0, count: keyChannels)
        for p in 0..<rows {
            for h in 0..<heads {
                let k = qkv + p * ld + h * layout.block + layout.keyOffset, m = maxima + h * dk
                var c = 0
                while c + 16 <= dk {
                    let v = UnsafeRawPointer(k + c).loadUnaligned(as: SIMD16<Float>.self)
                    let old = UnsafeRawPointer(m + c).loadUnaligned(as: SIMD16<Float>.self)
                    UnsafeMutableRawPointer(m + c).storeBytes(of: old.replacing(with: v, where: v .> old),
                                                              as: SIMD16<Float>.self)
                    c += 16
                }
                while c < dk { if k[c] > m[c] { m[c] = k[c] }; c += 1 }
            }
        }
        for p in 0..<rows {
            for h in 0..<heads {
                let k = qkv + p * ld + h * layout.block + layout.keyOffset
                let m = maxima + h * dk, s = sums + h * dk
                var c = 0
                while c + 16 <= dk {
                    let raw = UnsafeMutableRawPointer(k + c)
                    let e = exp16(raw.loadUnaligned(as: SIMD16<Float>.self)
                                  - UnsafeRawPointer(m + c).loadUnaligned(as: SIMD16<Float>.self))
                    raw.storeBytes(of: e, as: SIMD16<Float>.self)
                    let total = UnsafeRawPointer(s + c).loadUnaligned(as: SIMD16<Float>.self) + e
                    UnsafeMutableRawPointer(s + c).storeBytes(of: total, as: SIMD16<Float>.self)
                    c += 16
                }
                if c < dk {
                    var v = SIMD16<Float>(repeating: -.infinity)
                    for j in 0..<(dk - c) { v[j] = k[c + j] - m[c + j] }
                    let e = exp16(v)
                    for j in 0..<(dk - c) { k[c + j] = e[j]; s[c + j] += e[j] }
                }
            }
        }
    }
}
