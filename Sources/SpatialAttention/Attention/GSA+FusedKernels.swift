/// The SIMD kernels of the fused GSA path (GSA+Fused.swift): the column pass vectorised over 16 image
/// columns, the row pass over 16 output columns. Both read the channel-major planes directly.

/// The shifted, transposed embedding of one pass over lines of `length` positions.
struct ShiftedEmbedding {
    /// Zero floats before shift `−(n−1)`, so that the rows `j` up to the next multiple of 64 past the last
    /// one (computed and dropped) read inside the buffer.
    static let margin = 64
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
    /// The column pass: `result_c[x, y] (=|+=) Σ_i (q[x, y]·R_c[i − x + L − 1])·v_c[i, y]` for every head,
    /// on channel-major planes; with `normalize`, each sum goes through the BN between the passes
    /// (`a_c·sum + b_c`) as it is written. Work items are (head, block of 16 image columns).
    func columnPass(queries q: UnsafePointer<Float>, values v: UnsafePointer<Float>, height H: Int, width W: Int,
                    into result: UnsafeMutablePointer<Float>, accumulate: Bool, normalize: Bool, threads: Int) {
        let (dk, dv, P, L) = (keyChannelsPerHead, valueChannelsPerHead, H * W, extent)
        // Shift table: rs[(δ + off)·dk + κ] = R_c[δ + L − 1][κ] for |δ| ≤ min(L, H) − 1, zero for the other
        // shifts an 8-row block's 4×4 sub-blocks can form (from −(H8 + 2) to H4 + 2).
        let H4 = (H + 3) / 4 * 4, H8 = (H + 7) / 8 * 8, off = H8 + 3
        var rs = [Float](repeating: 0, count: (2 * off + 1) * dk)
        let reach = min(L, H) - 1
        for delta in -reach...reach {
            for k in 0..<dk { rs[(delta + off) * dk + k] = columnEmbedding[(delta + L - 1) * dk + k] }
        }
        let yBlocks = (W + 15) / 16
        // Without BN, the identity (1·sum + 0).
        let scale = normalize ? normalizationScale : [Float](repeating: 1, count: valueChannels)
        let shift = normalize ? normalizationShift : [Float](repeating: 0, count: valueChannels)
        rs.withUnsafeBufferPointer { pr in
        scale.withUnsafeBufferPointer { pa in
        shift.withUnsafeBufferPointer { pb in
            let (table, scales, shifts) = (pr.baseAddress!, pa.baseAddress!, pb.baseAddress!)
            Threads.forEach(heads * yBlocks, threads: threads) { item in
                let h = item / yBlocks, y0 = (item % yBlocks) * 16, lanes = min(16, W - y0)
                // 8 rows of H4 logit vectors, 64-byte aligned (one more vector to align it).
                // With H ≤ 4 nothing writes rows 4…7, whose sums are computed and dropped: zero them.
                withUnsafeTemporaryAllocation(of: Float.self, capacity: (8 * H4 + 1) * 16) { buffer in
                    if Scratch.poisonsBuffers {
                        buffer.initialize(repeating: .nan)
                    } else if H <= 4 {
                        buffer.initialize(repeating: 0)
                    }
                    let s = alignedVectors(buffer.baseAddress!)
                    for x0 in stride(from: 0, to: H, by: 8) {
                        let queries = q + h * dk * P + x0 * W + y0
                        columnLogits(queries, planeStride: P, rowStride: W, dk: dk,
                                     table: table + (off - x0) * dk, rows: H4, into: s)
                        if x0 + 4 < H {
                            columnLogits(queries + 4 * W, planeStride: P, rowStride: W, dk: dk,
                                         table: table + (off - x0 - 4) * dk, rows: H4, into: s + 4 * H4 * 16)
                        }
                        columnSums(s, rows: H4, values: v + h * dv * P + y0, planeStride: P, rowStride: W, dv: dv,
                                   height: H, x0: x0, lanes: lanes,
                                   scale: scales + h * dv, shift: shifts + h * dv,
                                   into: result + h * dv * P + x0 * W + y0, accumulate: accumulate)
                    }
                }
            }
        }}}
    }

    /// The row pass: `result_c[x, y] (=|+=) Σ_j (q[x, y]·R_r[j − y + L − 1])·v_c[x, j]` for every head, on
    /// channel-major planes, plus the content term `Σ_κ C_h[κ][c]·q_κ[x, y]` when `contexts` holds the
    /// heads' `C_h` (`[heads, dk, dv]`). Work items are (head, image row).
    func rowPass(queries q: UnsafePointer<Float>, values v: UnsafePointer<Float>, height H: Int, width W: Int,
                 contexts: UnsafePointer<Float>?, into result: UnsafeMutablePointer<Float>, accumulate: Bool,
                 threads: Int) {
        let (dk, dv, P) = (keyChannelsPerHead, valueChannelsPerHead, H * W)
        let reversed = GSA.reversedRows(rowEmbedding, rows: 2 * extent - 1, dk: dk)
        let embedding = ShiftedEmbedding(reversed, extent: extent, length: W, dk: dk)
        let nPad = (W + 63) / 64 * 64
        embedding.values.withUnsafeBufferPointer { pe in
            let rt = pe.baseAddress!
            Threads.forEach(heads * H, threads: threads) { item in
                let h = item / H, x = item % H
                // nPad rows of nPad logits, 64-byte aligned (one more vector to align them).
                withUnsafeTemporaryAllocation(of: Float.self, capacity: (nPad + 1) * nPad) { buffer in
                    if Scratch.poisonsBuffers { buffer.initialize(repeating: .nan) }
                    let st = alignedVectors(buffer.baseAddress!)
                    let queries = q + h * dk * P + x * W
                    // Literal gaps, so that each call is specialised (equal offsets merged at gap 16).
                    if W > 48 {
                        shiftLogits(queries, qStride: P, rt: rt, rtStride: embedding.rowStride, length: W, dk: dk,
                                    rowGap: 16, into: st, sStride: nPad)
                    } else {
                        shiftLogits(queries, qStride: P, rt: rt, rtStride: embedding.rowStride, length: W, dk: dk,
                                    rowGap: 1, into: st, sStride: nPad)
                    }
                    let content = contexts.map {
                        WeightedRows(rows: queries, rowStride: P, weights: $0 + h * dk * dv, channelStride: 1, step: dv,
                                     count: dk)
                    }
                    transposedWeightedSums(st, sStride: nPad, values: v + h * dv * P + x * W, channelStride: P,
                                           dv: dv, length: W, extra: content, into: result + h * dv * P + x * W,
                                           planeStride: P, accumulate: accumulate)
                }
            }
        }
    }

    /// `R` with its rows in reverse order (`R'[r] = R[2L − 2 − r]`: shift `δ` becomes `−δ`).
    static func reversedRows(_ r: [Float], rows: Int, dk: Int) -> [Float] {
        var out = [Float](repeating: 0, count: r.count)
        for row in 0..<rows { for k in 0..<dk { out[row * dk + k] = r[(rows - 1 - row) * dk + k] } }
        return out
    }
}

/// Column-pass logits of 4 image rows `x0..x0+3` against all rows `i < rows`, 16 columns per vector:
/// `s[xx][i] = Σ_κ q_κ[x0 + xx]·table[(i − xx)·dk + κ]` (`table` is centred so that `table[(i − x)·dk]` is
/// the shift `i − x` of row `x0`; 4 query loads and 7 broadcasts per 16 FMAs).
@inline(__always)
private func columnLogits(_ q: UnsafePointer<Float>, planeStride: Int, rowStride: Int, dk: Int,
                          table: UnsafePointer<Float>, rows: Int, into s: UnsafeMutablePointer<Float>) {
    for i0 in stride(from: 0, to: rows, by: 4) {
        var a00 = SIMD16<Float>(), a01 = a00, a02 = a00, a03 = a00
        var a10 = a00, a11 = a00, a12 = a00, a13 = a00
        var a20 = a00, a21 = a00, a22 = a00, a23 = a00
        var a30 = a00, a31 = a00, a32 = a00, a33 = a00
        var qk = q, r = table + i0 * dk
        for _ in 0..<dk {
            let q0 = load16(qk), q1 = load16(qk + rowStride), q2 = load16(qk + 2 * rowStride)
            let q3 = load16(qk + 3 * rowStride)
            // shift d = (i0 + ii) − (x0 + xx) relative to i0 − x0: broadcast r[d·dk] for d = −3...3.
            let m3 = SIMD16<Float>(repeating: r[-3 * dk]), m2 = SIMD16<Float>(repeating: r[-2 * dk])
            let m1 = SIMD16<Float>(repeating: r[-dk]), z0 = SIMD16<Float>(repeating: r[0])
            let p1 = SIMD16<Float>(repeating: r[dk]), p2 = SIMD16<Float>(repeating: r[2 * dk])
            let p3 = SIMD16<Float>(repeating: r[3 * dk])
            a00 = multiplyAdd(q0, z0, a00); a01 = multiplyAdd(q0, p1, a01)
            a02 = multiplyAdd(q0, p2, a02); a03 = multiplyAdd(q0, p3, a03)
            a10 = multiplyAdd(q1, m1, a10); a11 = multiplyAdd(q1, z0, a11)
            a12 = multiplyAdd(q1, p1, a12); a13 = multiplyAdd(q1, p2, a13)
            a20 = multiplyAdd(q2, m2, a20); a21 = multiplyAdd(q2, m1, a21)
            a22 = multiplyAdd(q2, z0, a22); a23 = multiplyAdd(q2, p1, a23)
            a30 = multiplyAdd(q3, m3, a30); a31 = multiplyAdd(q3, m2, a31)
            a32 = multiplyAdd(q3, m1, a32); a33 = multiplyAdd(q3, z0, a33)
            qk += planeStride
            r += 1
        }
        let row0 = s + i0 * 16, row1 = row0 + rows * 16, row2 = row1 + rows * 16, row3 = row2 + rows * 16
        store16(a00, row0); store16(a01, row0 + 16); store16(a02, row0 + 32); store16(a03, row0 + 48)
        store16(a10, row1); store16(a11, row1 + 16); store16(a12, row1 + 32); store16(a13, row1 + 48)
        store16(a20, row2); store16(a21, row2 + 16); store16(a22, row2 + 32); store16(a23, row2 + 48)
        store16(a30, row3); store16(a31, row3 + 16); store16(a32, row3 + 32); store16(a33, row3 + 48)
    }
}

/// Column-pass weighted sums for 8 image rows: `out_c[x0 + xx] (=|+=) Σ_{i<height} s[xx][i]·v_c[i]`,
/// 3 channels × 8 rows per block (3 value loads and 8 logit loads per 24 FMAs: the values, which come
/// from L2, are read once per 8 rows); rows past `height`, channels past `dv` dropped. Channel `c`'s sums
/// are written as `scale[c]·sum + shift[c]`.
@inline(__always)
private func columnSums(_ s: UnsafePointer<Float>, rows: Int, values v: UnsafePointer<Float>, planeStride: Int,
                        rowStride: Int, dv: Int, height: Int, x0: Int, lanes: Int,
                        scale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
                        into out: UnsafeMutablePointer<Float>, accumulate: Bool) {
    let r = rows * 16
    for c0 in stride(from: 0, to: dv, by: 3) {
        let v0p = v + c0 * planeStride, v1p = v + min(c0 + 1, dv - 1) * planeStride
        let v2p = v + min(c0 + 2, dv - 1) * planeStride
        var a00 = SIMD16<Float>(), a01 = a00, a02 = a00, a10 = a00, a11 = a00, a12 = a00
        var a20 = a00, a21 = a00, a22 = a00, a30 = a00, a31 = a00, a32 = a00
        var a40 = a00, a41 = a00, a42 = a00, a50 = a00, a51 = a00, a52 = a00
        var a60 = a00, a61 = a00, a62 = a00, a70 = a00, a71 = a00, a72 = a00
        var offset = 0, si = s
        for _ in 0..<height {
            let w0 = load16(v0p + offset), w1 = load16(v1p + offset), w2 = load16(v2p + offset)
            // Logit row xx (in L1) times the three value vectors, into that row's accumulators.
            @inline(__always) func add(_ xx: Int, _ b0: inout SIMD16<Float>, _ b1: inout SIMD16<Float>,
                                       _ b2: inout SIMD16<Float>) {
                let t = load16(si + xx * r)
                b0 = multiplyAdd(t, w0, b0); b1 = multiplyAdd(t, w1, b1); b2 = multiplyAdd(t, w2, b2)
            }
            add(0, &a00, &a01, &a02); add(1, &a10, &a11, &a12); add(2, &a20, &a21, &a22); add(3, &a30, &a31, &a32)
            add(4, &a40, &a41, &a42); add(5, &a50, &a51, &a52); add(6, &a60, &a61, &a62); add(7, &a70, &a71, &a72)
            offset += rowStride
            si += 16
        }
        @inline(__always) func emit(_ xx: Int, _ b0: SIMD16<Float>, _ b1: SIMD16<Float>, _ b2: SIMD16<Float>) {
            guard x0 + xx < height else { return }
            let target = out + c0 * planeStride + xx * rowStride
            @inline(__always) func put(_ k: Int, _ sum: SIMD16<Float>) {
                guard c0 + k < dv else { return }
                writeLanes(sum * scale[c0 + k] + shift[c0 + k], count: lanes, into: target + k * planeStride,
                           accumulate: accumulate)
            }
            put(0, b0); put(1, b1); put(2, b2)
        }
        emit(0, a00, a01, a02); emit(1, a10, a11, a12); emit(2, a20, a21, a22); emit(3, a30, a31, a32)
        emit(4, a40, a41, a42); emit(5, a50, a51, a52); emit(6, a60, a61, a62); emit(7, a70, a71, a72)
    }
}

/// The first 64-byte boundary at or after `p` (the buffer must hold 15 floats more than it uses).
@inline(__always)
func alignedVectors(_ p: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
    let address = UInt(bitPattern: p)
    return p + Int((64 - address % 64) % 64) / MemoryLayout<Float>.stride
}

/// Row-pass logits, transposed: `Sᵀ[j][y] = Σ_κ q_κ[y]·RT'[κ][margin + n − 1 + y − j]` (RT' of the reversed
/// embedding) for all `y < nPad`, in blocks of 4 rows `j0 + rowGap·jj` × 64 positions `y0 + 16·yy + lane`,
/// whose embedding vectors start at offsets `16·yy − rowGap·jj` (with the query vectors shared by the rows):
/// - `rowGap` 16 (lines over 48 positions): the 16 vectors of a block meet only 7 distinct offsets, so
///   each `κ` takes 4 query loads and 7 embedding loads per 16 FMAs; rows `j < nPad` are computed (those
///   past `n` are dropped by the caller);
/// - `rowGap` 1 (shorter lines): 16 embedding loads per 16 FMAs, most of them across a cache line, but only
///   rows `j < n` (rounded up to 4) are computed, where the gap of 16 would compute 64.
@inline(__always)
private func shiftLogits(_ qt: UnsafePointer<Float>, qStride: Int, rt: UnsafePointer<Float>, rtStride: Int,
                         length n: Int, dk: Int, rowGap g: Int,
                         into st: UnsafeMutablePointer<Float>, sStride nPad: Int) {
    // Blocks: j0 = 0, 4, 8, … (gap 1), or j0 = 64·b + t for t < 16 (gap 16).
    let blocks = g == 1 ? (n + 3) / 4 : (n + 63) / 64 * 16
    for block in 0..<blocks {
        let j0 = g == 1 ? 4 * block : block / 16 * 64 + block % 16
        for y0 in stride(from: 0, to: n, by: 64) {
            var a00 = SIMD16<Float>(), a01 = a00, a02 = a00, a03 = a00
            var a10 = a00, a11 = a00, a12 = a00, a13 = a00
            var a20 = a00, a21 = a00, a22 = a00, a23 = a00
            var a30 = a00, a31 = a00, a32 = a00, a33 = a00
            var r = rt + ShiftedEmbedding.margin + n - 1 + y0 - j0
            var q = qt + y0
            for _ in 0..<dk {
                let q0 = load16(q), q1 = load16(q + 16), q2 = load16(q + 32), q3 = load16(q + 48)
                // Row jj, vector yy: r[16·yy − g·jj] (with g = 16 the compiler merges equal offsets).
                a00 = multiplyAdd(q0, load16(r), a00); a01 = multiplyAdd(q1, load16(r + 16), a01)
                a02 = multiplyAdd(q2, load16(r + 32), a02); a03 = multiplyAdd(q3, load16(r + 48), a03)
                a10 = multiplyAdd(q0, load16(r - g), a10); a11 = multiplyAdd(q1, load16(r + 16 - g), a11)
                a12 = multiplyAdd(q2, load16(r + 32 - g), a12); a13 = multiplyAdd(q3, load16(r + 48 - g), a13)
                a20 = multiplyAdd(q0, load16(r - 2 * g), a20); a21 = multiplyAdd(q1, load16(r + 16 - 2 * g), a21)
                a22 = multiplyAdd(q2, load16(r + 32 - 2 * g), a22); a23 = multiplyAdd(q3, load16(r + 48 - 2 * g), a23)
                a30 = multiplyAdd(q0, load16(r - 3 * g), a30); a31 = multiplyAdd(q1, load16(r + 16 - 3 * g), a31)
                a32 = multiplyAdd(q2, load16(r + 32 - 3 * g), a32); a33 = multiplyAdd(q3, load16(r + 48 - 3 * g), a33)
                r += rtStride
                q += qStride
            }
            let row = st + j0 * nPad + y0, jump = g * nPad
            store16(a00, row); store16(a01, row + 16); store16(a02, row + 32); store16(a03, row + 48)
            store16(a10, row + jump); store16(a11, row + jump + 16)
            store16(a12, row + jump + 32); store16(a13, row + jump + 48)
            store16(a20, row + 2 * jump); store16(a21, row + 2 * jump + 16)
            store16(a22, row + 2 * jump + 32); store16(a23, row + 2 * jump + 48)
            store16(a30, row + 3 * jump); store16(a31, row + 3 * jump + 16)
            store16(a32, row + 3 * jump + 32); store16(a33, row + 3 * jump + 48)
        }
    }
}

/// One sum of `transposedWeightedSums`: `Σ_t weight_c[t]·rows[t][y]` over `count` terms, with row `t` at
/// `rows + t·rowStride` and `weight_c[t]` at `weights + c·channelStride + t·step`.
private struct WeightedRows {
    let rows: UnsafePointer<Float>, rowStride: Int
    let weights: UnsafePointer<Float>, channelStride: Int, step: Int
    let count: Int
}

/// `plane_c[y] (=|+=) Σ_j v[j][c]·Sᵀ[j][y]` for `c < dv`, `y < n`, plus the `extra` sum when given (the
/// row pass's content term `Σ_κ C[κ][c]·q_κ[y]`): 4 channels × 64 positions per block.
@inline(__always)
private func transposedWeightedSums(_ st: UnsafePointer<Float>, sStride nPad: Int, values v: UnsafePointer<Float>,
                                    channelStride: Int, dv: Int, length n: Int, extra: WeightedRows?,
                                    into plane: UnsafeMutablePointer<Float>, planeStride: Int, accumulate: Bool) {
    let main = WeightedRows(rows: st, rowStride: nPad, weights: v, channelStride: channelStride, step: 1, count: n)
    for c0 in stride(from: 0, to: dv, by: 4) {
        // Channels past dv repeat the last one (their sums are computed and dropped).
        let (c1, c2, c3) = (min(c0 + 1, dv - 1), min(c0 + 2, dv - 1), min(c0 + 3, dv - 1))
        for y0 in stride(from: 0, to: n, by: 64) {
            var a00 = SIMD16<Float>(), a01 = a00, a02 = a00, a03 = a00
            var a10 = a00, a11 = a00, a12 = a00, a13 = a00
            var a20 = a00, a21 = a00, a22 = a00, a23 = a00
            var a30 = a00, a31 = a00, a32 = a00, a33 = a00
            for term in 0..<(extra == nil ? 1 : 2) {
                let sum = term == 0 ? main : extra!
                let w = sum.weights, ws = sum.channelStride
                var (w0, w1, w2, w3) = (w + c0 * ws, w + c1 * ws, w + c2 * ws, w + c3 * ws)
                var s = sum.rows + y0
                for _ in 0..<sum.count {
                    let s0 = load16(s), s1 = load16(s + 16), s2 = load16(s + 32), s3 = load16(s + 48)
                    let v0 = SIMD16<Float>(repeating: w0.pointee), v1 = SIMD16<Float>(repeating: w1.pointee)
                    let v2 = SIMD16<Float>(repeating: w2.pointee), v3 = SIMD16<Float>(repeating: w3.pointee)
                    a00 = multiplyAdd(v0, s0, a00); a01 = multiplyAdd(v0, s1, a01)
                    a02 = multiplyAdd(v0, s2, a02); a03 = multiplyAdd(v0, s3, a03)
                    a10 = multiplyAdd(v1, s0, a10); a11 = multiplyAdd(v1, s1, a11)
                    a12 = multiplyAdd(v1, s2, a12); a13 = multiplyAdd(v1, s3, a13)
                    a20 = multiplyAdd(v2, s0, a20); a21 = multiplyAdd(v2, s1, a21)
                    a22 = multiplyAdd(v2, s2, a22); a23 = multiplyAdd(v2, s3, a23)
                    a30 = multiplyAdd(v3, s0, a30); a31 = multiplyAdd(v3, s1, a31)
                    a32 = multiplyAdd(v3, s2, a32); a33 = multiplyAdd(v3, s3, a33)
                    s += sum.rowStride
                    w0 += sum.step; w1 += sum.step; w2 += sum.step; w3 += sum.step
                }
            }
            let lanes = n - y0
            @inline(__always) func emit(_ c: Int, _ x0: SIMD16<Float>, _ x1: SIMD16<Float>, _ x2: SIMD16<Float>,
                                        _ x3: SIMD16<Float>) {
                guard c < dv else { return }
                let target = plane + c * planeStride + y0
                writeLanes(x0, count: lanes, into: target, accumulate: accumulate)
                writeLanes(x1, count: lanes - 16, into: target + 16, accumulate: accumulate)
                writeLanes(x2, count: lanes - 32, into: target + 32, accumulate: accumulate)
                writeLanes(x3, count: lanes - 48, into: target + 48, accumulate: accumulate)
            }
            emit(c0, a00, a01, a02, a03); emit(c0 + 1, a10, a11, a12, a13)
            emit(c0 + 2, a20, a21, a22, a23); emit(c0 + 3, a30, a31, a32, a33)
        }
    }
}

/// Writes (or adds) the first `count` lanes of `v` (all 16 when `count ≥ 16`, none when `count ≤ 0`).
@inline(__always)
private func writeLanes(_ v: SIMD16<Float>, count: Int, into target: UnsafeMutablePointer<Float>, accumulate: Bool) {
    if count >= 16 {
        store16(accumulate ? v + load16(target) : v, target)
    } else if count > 0 {
        for i in 0..<count { target[i] = accumulate ? target[i] + v[i] : v[i] }
    }
}

/// Stores 16 floats at an unaligned address.
@inline(__always)
func store16(_ v: FloatVector, _ p: UnsafeMutablePointer<Float>) { p.storeVector(v) }

