/// The fused positional kernel (``GSA/PositionalKernel/fused``): for one image column (or row) and
/// one head, the two GEMMs of the axial pass — logits `S = Q_line·R_shiftedᵀ` and `Y = S·V_line` —
/// computed by register-blocked SIMD micro-kernels on L1-resident copies, instead of two sgemm calls.
///
/// At 56×56 with 8 heads a pass is 448 pairs of `56×56×32` products; OpenBLAS spends as long on call
/// overhead and packing as on arithmetic there (about 50 GFLOP/s measured), and the sgemm path must
/// compute logits for all `2n − 1` shifts to gather them by a stride trick. Here the logits are computed
/// only for the `n` shifts each query uses, straight from the Toeplitz structure: with the embedding
/// stored transposed and shifted (`RT[κ][δ + n − 1 + margin] = R[δ + L − 1][κ]`, zero for `|δ| > L − 1`),
/// row `x` of `S` is `Σ_κ q[x][κ]·RT[κ][n − 1 − x + i]`, a broadcast times a contiguous load.

/// Where the queries, values or results of one line live: element `(line ℓ, position p, head h)` starts
/// at `base + ℓ·lineStride + p·positionStride + h·headStride`.
struct LineView {
    let base: UnsafeMutablePointer<Float>
    let lineStride: Int, positionStride: Int, headStride: Int

    @inline(__always)
    func at(line: Int, position: Int, head: Int) -> UnsafeMutablePointer<Float> {
        base + line * lineStride + position * positionStride + head * headStride
    }
}

/// The shifted, transposed embedding of one pass over lines of `length` positions.
struct ShiftedEmbedding {
    /// Zero floats before shift `−(n−1)`, so that 4-row blocks past the last row read inside the buffer.
    static let margin = 4
    let values: [Float]
    let rowStride: Int

    /// `RT[κ][margin + δ + length − 1] = R[δ + L − 1][κ]` for `|δ| ≤ min(L, length) − 1`, zero elsewhere.
    init(_ r: [Float], extent L: Int, length n: Int, dk: Int) {
        let vectors = (n + 63) / 64 * 64
        rowStride = ShiftedEmbedding.margin + (n - 1) + vectors + 16
        var rt = [Float](repeating: 0, count: dk * rowStride)
        let reach = min(L, n) - 1
        for delta in -reach...reach {
            for k in 0..<dk { rt[k * rowStride + ShiftedEmbedding.margin + delta + n - 1] = r[(delta + L - 1) * dk + k] }
        }
        values = rt
    }
}

extension GSA {
    /// The positional layer with the fused kernel: column pass into `Yᴴ` (`[x, y, heads·dv]`), BN, row pass
    /// into the output, which must be pixel-major here (the forward pass stages NCHW outputs).
    func positionalFused(projected qkv: UnsafeMutablePointer<Float>, layout: ProjectedLayout, geometry: Geometry,
                         output: UnsafeMutablePointer<Float>, accumulate: Bool, threads: Int) {
        precondition(geometry.layout == .nhwc, "the fused positional kernel writes pixel-major outputs")
        let (H, W, P, dk, dv, ld) = (geometry.height, geometry.width, geometry.pixels, keyChannelsPerHead,
                                     valueChannelsPerHead, layout.rowStride)
        let dvT = valueChannels
        let hasColumn = components.contains(.column), hasRow = components.contains(.row)
        Scratch.withFloats(hasColumn ? P * dvT : 0) { yh in
            if hasColumn {
                // Line = image column y, position = row x.
                let t0 = tick() // PROFILE
                linePass(lines: W, length: H, embedding: ShiftedEmbedding(columnEmbedding, extent: extent, length: H, dk: dk),
                         queries: LineView(base: qkv, lineStride: ld, positionStride: W * ld, headStride: layout.block),
                         values: LineView(base: qkv + layout.valueOffset, lineStride: ld, positionStride: W * ld,
                                          headStride: layout.block),
                         result: LineView(base: hasRow ? yh : output, lineStride: dvT, positionStride: W * dvT, headStride: dv),
                         accumulate: !hasRow && accumulate, threads: threads)
                phaseTimes["fused column", default: 0] += tick() - t0 // PROFILE
                if hasRow { normalize(yh, pixels: P, threads: threads) }
            }
            guard hasRow else { return }
            let values = hasColumn
                ? LineView(base: yh, lineStride: W * dvT, positionStride: dvT, headStride: dv)
                : LineView(base: qkv + layout.valueOffset, lineStride: W * ld, positionStride: ld, headStride: layout.block)
            let t0 = tick() // PROFILE
            // Line = image row x, position = column y.
            linePass(lines: H, length: W, embedding: ShiftedEmbedding(rowEmbedding, extent: extent, length: W, dk: dk),
                     queries: LineView(base: qkv, lineStride: W * ld, positionStride: ld, headStride: layout.block),
                     values: values,
                     result: LineView(base: output, lineStride: W * dvT, positionStride: dvT, headStride: dv),
                     accumulate: accumulate, threads: threads)
            phaseTimes["fused row", default: 0] += tick() - t0 // PROFILE
        }
    }

    /// One axial pass over `lines` lines of `length` positions with the fused kernel: for every line
    /// and head, `result[x] (=|+=) Σ_i (q[x]·R[i − x + L − 1])·v[i]`. Lines are spread over `threads`.
    ///
    /// Each line's queries and values, all heads, are first copied into dense `[n, heads·dk]` and
    /// `[n, heads·dvPad]` buffers in one sweep over its positions (per-head copies touch a new page per
    /// position in the column pass and measured slower than the arithmetic).
    func linePass(lines: Int, length n: Int, embedding: ShiftedEmbedding, queries: LineView, values: LineView,
                  result: LineView, accumulate: Bool, threads: Int) {
        let (dk, dv) = (keyChannelsPerHead, valueChannelsPerHead)
        let dvPad = (dv + 15) / 16 * 16, nPad = (n + 63) / 64 * 64
        let qStride = keyChannels, vStride = heads * dvPad
        let scratchCount = (n + 4) * qStride + n * vStride + (n + 6) * nPad
        embedding.values.withUnsafeBufferPointer { pe in
            let rt = UnsafePointer(pe.baseAddress!)
            Threads.forEach(lines, threads: threads) { line in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: scratchCount) { scratch in
                    let q = scratch.baseAddress!, v = q + (n + 4) * qStride, s = v + n * vStride
                    // Rows past the line's end are read by the last blocks; keep them finite (zero).
                    (q + n * qStride).update(repeating: 0, count: 4 * qStride)
                    (s + n * nPad).update(repeating: 0, count: 6 * nPad)
                    if dvPad != dv { v.update(repeating: 0, count: n * vStride) }
                    for p in 0..<n {
                        for h in 0..<heads {
                            copyFloats(queries.at(line: line, position: p, head: h), q + p * qStride + h * dk, count: dk)
                            copyFloats(values.at(line: line, position: p, head: h), v + p * vStride + h * dvPad, count: dv)
                        }
                    }
                    for h in 0..<heads {
                        shiftLogits(q + h * dk, qStride: qStride, rt: rt, rtStride: embedding.rowStride, length: n,
                                    dk: dk, into: s, sStride: nPad)
                        weightedSums(s, sStride: nPad, values: v + h * dvPad, vStride: vStride, dvPad: dvPad, dv: dv,
                                     length: n, result: result, line: line, head: h, accumulate: accumulate)
                    }
                }
            }
        }
    }
}

/// `S[x][i] = Σ_κ q[x][κ]·RT[κ][margin + n − 1 − x + i]` for `x, i < n`, 4 rows × 64 columns per block.
@inline(__always)
private func shiftLogits(_ q: UnsafePointer<Float>, qStride: Int, rt: UnsafePointer<Float>, rtStride: Int, length n: Int,
                         dk: Int, into s: UnsafeMutablePointer<Float>, sStride: Int) {
    for x0 in stride(from: 0, to: n, by: 4) {
        for i0 in stride(from: 0, to: n, by: 64) {
            var a00 = SIMD16<Float>(), a01 = a00, a02 = a00, a03 = a00
            var a10 = a00, a11 = a00, a12 = a00, a13 = a00
            var a20 = a00, a21 = a00, a22 = a00, a23 = a00
            var a30 = a00, a31 = a00, a32 = a00, a33 = a00
            var r = rt + ShiftedEmbedding.margin + n - 1 - x0 + i0
            var qk = q + x0 * qStride
            for _ in 0..<dk {
                let q0 = SIMD16<Float>(repeating: qk[0]), q1 = SIMD16<Float>(repeating: qk[qStride])
                let q2 = SIMD16<Float>(repeating: qk[2 * qStride]), q3 = SIMD16<Float>(repeating: qk[3 * qStride])
                a00 = a00.addingProduct(q0, load16(r)); a01 = a01.addingProduct(q0, load16(r + 16))
                a02 = a02.addingProduct(q0, load16(r + 32)); a03 = a03.addingProduct(q0, load16(r + 48))
                a10 = a10.addingProduct(q1, load16(r - 1)); a11 = a11.addingProduct(q1, load16(r + 15))
                a12 = a12.addingProduct(q1, load16(r + 31)); a13 = a13.addingProduct(q1, load16(r + 47))
                a20 = a20.addingProduct(q2, load16(r - 2)); a21 = a21.addingProduct(q2, load16(r + 14))
                a22 = a22.addingProduct(q2, load16(r + 30)); a23 = a23.addingProduct(q2, load16(r + 46))
                a30 = a30.addingProduct(q3, load16(r - 3)); a31 = a31.addingProduct(q3, load16(r + 13))
                a32 = a32.addingProduct(q3, load16(r + 29)); a33 = a33.addingProduct(q3, load16(r + 45))
                r += rtStride
                qk += 1
            }
            let row = s + x0 * sStride + i0
            store16(a00, row); store16(a01, row + 16); store16(a02, row + 32); store16(a03, row + 48)
            store16(a10, row + sStride); store16(a11, row + sStride + 16)
            store16(a12, row + sStride + 32); store16(a13, row + sStride + 48)
            store16(a20, row + 2 * sStride); store16(a21, row + 2 * sStride + 16)
            store16(a22, row + 2 * sStride + 32); store16(a23, row + 2 * sStride + 48)
            store16(a30, row + 3 * sStride); store16(a31, row + 3 * sStride + 16)
            store16(a32, row + 3 * sStride + 32); store16(a33, row + 3 * sStride + 48)
        }
    }
}

/// `result[x] (=|+=) Σ_i S[x][i]·v[i]` for `x < n`, 6 rows × 32 value channels per block (16 for the tail).
@inline(__always)
private func weightedSums(_ s: UnsafePointer<Float>, sStride: Int, values v: UnsafePointer<Float>, vStride: Int,
                          dvPad: Int, dv: Int,
                          length n: Int, result: LineView, line: Int, head: Int, accumulate: Bool) {
    for x0 in stride(from: 0, to: n, by: 6) {
        var c0 = 0
        while c0 < dvPad {
            let wide = c0 + 32 <= dvPad
            var a00 = SIMD16<Float>(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00
            var a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00
            var vi = v + c0, si = s + x0 * sStride
            for _ in 0..<n {
                let v0 = load16(vi), v1 = wide ? load16(vi + 16) : SIMD16<Float>()
                let s0 = SIMD16<Float>(repeating: si[0]), s1 = SIMD16<Float>(repeating: si[sStride])
                let s2 = SIMD16<Float>(repeating: si[2 * sStride]), s3 = SIMD16<Float>(repeating: si[3 * sStride])
                let s4 = SIMD16<Float>(repeating: si[4 * sStride]), s5 = SIMD16<Float>(repeating: si[5 * sStride])
                a00 = a00.addingProduct(s0, v0); a01 = a01.addingProduct(s0, v1)
                a10 = a10.addingProduct(s1, v0); a11 = a11.addingProduct(s1, v1)
                a20 = a20.addingProduct(s2, v0); a21 = a21.addingProduct(s2, v1)
                a30 = a30.addingProduct(s3, v0); a31 = a31.addingProduct(s3, v1)
                a40 = a40.addingProduct(s4, v0); a41 = a41.addingProduct(s4, v1)
                a50 = a50.addingProduct(s5, v0); a51 = a51.addingProduct(s5, v1)
                vi += vStride
                si += 1
            }
            let count = min(wide ? 32 : 16, dv - c0)
            @inline(__always) func emit(_ r: Int, _ low: SIMD16<Float>, _ high: SIMD16<Float>) {
                guard x0 + r < n else { return }
                writeRow(low, high, count: count, into: result.at(line: line, position: x0 + r, head: head) + c0,
                         accumulate: accumulate)
            }
            emit(0, a00, a01); emit(1, a10, a11); emit(2, a20, a21)
            emit(3, a30, a31); emit(4, a40, a41); emit(5, a50, a51)
            c0 += wide ? 32 : 16
        }
    }
}

/// Writes (or adds) the first `count` ≤ 32 lanes of `(low, high)` at `target`.
@inline(__always)
private func writeRow(_ low: SIMD16<Float>, _ high: SIMD16<Float>, count: Int, into target: UnsafeMutablePointer<Float>,
                      accumulate: Bool) {
    if count == 32 {
        store16(accumulate ? low + load16(target) : low, target)
        store16(accumulate ? high + load16(target + 16) : high, target + 16)
    } else if count == 16 {
        store16(accumulate ? low + load16(target) : low, target)
    } else {
        for c in 0..<count {
            let value = c < 16 ? low[c] : high[c - 16]
            target[c] = accumulate ? target[c] + value : value
        }
    }
}

@inline(__always)
func store16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}
