/// The SIMD kernels of the fused GSA path (GSA+Fused.swift): the column pass vectorised over 16 image
/// columns, the row pass over 16 output columns. Both read the channel-major planes directly.

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
    /// The column pass: `result_c[x, y] (=|+=) Σ_i (q[x, y]·R_c[i − x + L − 1])·v_c[i, y]` for every head,
    /// on channel-major planes. Work items are (head, block of 16 image columns).
    func columnPass(queries q: UnsafePointer<Float>, values v: UnsafePointer<Float>, height H: Int, width W: Int,
                    into result: UnsafeMutablePointer<Float>, accumulate: Bool, threads: Int) {
        let (dk, dv, P, L) = (keyChannelsPerHead, valueChannelsPerHead, H * W, extent)
        // Shift table: rs[(δ + off)·dk + κ] = R_c[δ + L − 1][κ] for |δ| ≤ min(L, H) − 1, zero for the other
        // shifts a 4×4 block can form (up to ±(H4 + 2)).
        let H4 = (H + 3) / 4 * 4, off = H4 + 3
        var rs = [Float](repeating: 0, count: (2 * off + 1) * dk)
        let reach = min(L, H) - 1
        for delta in -reach...reach {
            for k in 0..<dk { rs[(delta + off) * dk + k] = columnEmbedding[(delta + L - 1) * dk + k] }
        }
        let yBlocks = (W + 15) / 16
        rs.withUnsafeBufferPointer { pr in
            let table = pr.baseAddress!
            Threads.forEach(heads * yBlocks, threads: threads) { item in
                let h = item / yBlocks, y0 = (item % yBlocks) * 16, lanes = min(16, W - y0)
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * H4 * 16) { buffer in
                    let s = buffer.baseAddress!
                    for x0 in stride(from: 0, to: H, by: 4) {
                        columnLogits(q + h * dk * P + x0 * W + y0, planeStride: P, rowStride: W, dk: dk,
                                     table: table + (off - x0) * dk, rows: H4, into: s)
                        columnSums(s, rows: H4, values: v + h * dv * P + y0, planeStride: P, rowStride: W, dv: dv,
                                   height: H, x0: x0, lanes: lanes,
                                   into: result + h * dv * P + x0 * W + y0, accumulate: accumulate)
                    }
                }
            }
        }
    }

    /// The row pass: `result_c[x, y] (=|+=) Σ_j (q[x, y]·R_r[j − y + L − 1])·v_c[x, j]` for every head, on
    /// channel-major planes. Work items are (head, image row).
    func rowPass(queries q: UnsafePointer<Float>, values v: UnsafePointer<Float>, height H: Int, width W: Int,
                 into result: UnsafeMutablePointer<Float>, accumulate: Bool, threads: Int) {
        let (dk, dv, P) = (keyChannelsPerHead, valueChannelsPerHead, H * W)
        let reversed = GSA.reversedRows(rowEmbedding, rows: 2 * extent - 1, dk: dk)
        let embedding = ShiftedEmbedding(reversed, extent: extent, length: W, dk: dk)
        let nPad = (W + 63) / 64 * 64
        embedding.values.withUnsafeBufferPointer { pe in
            let rt = pe.baseAddress!
            Threads.forEach(heads * H, threads: threads) { item in
                let h = item / H, x = item % H
                withUnsafeTemporaryAllocation(of: Float.self, capacity: (W + 4) * nPad) { buffer in
                    let st = buffer.baseAddress!
                    transposedShiftLogits(q + h * dk * P + x * W, qStride: P, rt: rt, rtStride: embedding.rowStride,
                                          length: W, dk: dk, into: st, sStride: nPad)
                    transposedWeightedSums(st, sStride: nPad, values: v + h * dv * P + x * W, channelStride: P,
                                           dv: dv, length: W, into: result + h * dv * P + x * W, planeStride: P,
                                           accumulate: accumulate)
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

/// Column-pass weighted sums for 4 image rows: `out_c[x0 + xx] (=|+=) Σ_{i<height} s[xx][i]·v_c[i]`,
/// 4 channels × 4 rows per block (8 loads per 16 FMAs); rows past `height`, channels past `dv` dropped.
@inline(__always)
private func columnSums(_ s: UnsafePointer<Float>, rows: Int, values v: UnsafePointer<Float>, planeStride: Int,
                        rowStride: Int, dv: Int, height: Int, x0: Int, lanes: Int,
                        into out: UnsafeMutablePointer<Float>, accumulate: Bool) {
    let s1 = s + rows * 16, s2 = s1 + rows * 16, s3 = s2 + rows * 16
    for c0 in stride(from: 0, to: dv, by: 4) {
        let v0p = v + c0 * planeStride, v1p = v + min(c0 + 1, dv - 1) * planeStride
        let v2p = v + min(c0 + 2, dv - 1) * planeStride, v3p = v + min(c0 + 3, dv - 1) * planeStride
        var a00 = SIMD16<Float>(), a01 = a00, a02 = a00, a03 = a00
        var a10 = a00, a11 = a00, a12 = a00, a13 = a00
        var a20 = a00, a21 = a00, a22 = a00, a23 = a00
        var a30 = a00, a31 = a00, a32 = a00, a33 = a00
        var offset = 0
        for i in 0..<height {
            let w0 = load16(v0p + offset), w1 = load16(v1p + offset), w2 = load16(v2p + offset), w3 = load16(v3p + offset)
            let t0 = load16(s + i * 16), t1 = load16(s1 + i * 16), t2 = load16(s2 + i * 16), t3 = load16(s3 + i * 16)
            a00 = multiplyAdd(t0, w0, a00); a01 = multiplyAdd(t0, w1, a01)
            a02 = multiplyAdd(t0, w2, a02); a03 = multiplyAdd(t0, w3, a03)
            a10 = multiplyAdd(t1, w0, a10); a11 = multiplyAdd(t1, w1, a11)
            a12 = multiplyAdd(t1, w2, a12); a13 = multiplyAdd(t1, w3, a13)
            a20 = multiplyAdd(t2, w0, a20); a21 = multiplyAdd(t2, w1, a21)
            a22 = multiplyAdd(t2, w2, a22); a23 = multiplyAdd(t2, w3, a23)
            a30 = multiplyAdd(t3, w0, a30); a31 = multiplyAdd(t3, w1, a31)
            a32 = multiplyAdd(t3, w2, a32); a33 = multiplyAdd(t3, w3, a33)
            offset += rowStride
        }
        @inline(__always) func emit(_ xx: Int, _ c: Int, _ value: SIMD16<Float>) {
            guard x0 + xx < height, c0 + c < dv else { return }
            writeLanes(value, count: lanes, into: out + (c0 + c) * planeStride + xx * rowStride, accumulate: accumulate)
        }
        emit(0, 0, a00); emit(0, 1, a01); emit(0, 2, a02); emit(0, 3, a03)
        emit(1, 0, a10); emit(1, 1, a11); emit(1, 2, a12); emit(1, 3, a13)
        emit(2, 0, a20); emit(2, 1, a21); emit(2, 2, a22); emit(2, 3, a23)
        emit(3, 0, a30); emit(3, 1, a31); emit(3, 2, a32); emit(3, 3, a33)
    }
}

/// Row-pass logits, transposed: `Sᵀ[j][y] = Σ_κ q_κ[y]·RT'[κ][margin + n − 1 + y − j]` (RT' of the reversed
/// embedding) for `j < n`, all `y < nPad`; 4 rows `j` × 64 positions `y` per block, the query vectors shared by the 4 rows.
@inline(__always)
private func transposedShiftLogits(_ qt: UnsafePointer<Float>, qStride: Int, rt: UnsafePointer<Float>, rtStride: Int,
                                   length n: Int, dk: Int, into st: UnsafeMutablePointer<Float>, sStride nPad: Int) {
    for j0 in stride(from: 0, to: n, by: 4) {
        for y0 in stride(from: 0, to: n, by: 64) {
            var a00 = SIMD16<Float>(), a01 = a00, a02 = a00, a03 = a00
            var a10 = a00, a11 = a00, a12 = a00, a13 = a00
            var a20 = a00, a21 = a00, a22 = a00, a23 = a00
            var a30 = a00, a31 = a00, a32 = a00, a33 = a00
            var r = rt + ShiftedEmbedding.margin + n - 1 + y0 - j0
            var q = qt + y0
            for _ in 0..<dk {
                let q0 = load16(q), q1 = load16(q + 16), q2 = load16(q + 32), q3 = load16(q + 48)
                a00 = multiplyAdd(q0, load16(r), a00); a01 = multiplyAdd(q1, load16(r + 16), a01)
                a02 = multiplyAdd(q2, load16(r + 32), a02); a03 = multiplyAdd(q3, load16(r + 48), a03)
                a10 = multiplyAdd(q0, load16(r - 1), a10); a11 = multiplyAdd(q1, load16(r + 15), a11)
                a12 = multiplyAdd(q2, load16(r + 31), a12); a13 = multiplyAdd(q3, load16(r + 47), a13)
                a20 = multiplyAdd(q0, load16(r - 2), a20); a21 = multiplyAdd(q1, load16(r + 14), a21)
                a22 = multiplyAdd(q2, load16(r + 30), a22); a23 = multiplyAdd(q3, load16(r + 46), a23)
                a30 = multiplyAdd(q0, load16(r - 3), a30); a31 = multiplyAdd(q1, load16(r + 13), a31)
                a32 = multiplyAdd(q2, load16(r + 29), a32); a33 = multiplyAdd(q3, load16(r + 45), a33)
                r += rtStride
                q += qStride
            }
            let row = st + j0 * nPad + y0
            store16(a00, row); store16(a01, row + 16); store16(a02, row + 32); store16(a03, row + 48)
            store16(a10, row + nPad); store16(a11, row + nPad + 16)
            store16(a12, row + nPad + 32); store16(a13, row + nPad + 48)
            store16(a20, row + 2 * nPad); store16(a21, row + 2 * nPad + 16)
            store16(a22, row + 2 * nPad + 32); store16(a23, row + 2 * nPad + 48)
            store16(a30, row + 3 * nPad); store16(a31, row + 3 * nPad + 16)
            store16(a32, row + 3 * nPad + 32); store16(a33, row + 3 * nPad + 48)
        }
    }
}

/// `plane_c[y] (=|+=) Σ_j v[j][c]·Sᵀ[j][y]` for `c < dv`, `y < n`: 4 channels × 64 positions per block.
@inline(__always)
private func transposedWeightedSums(_ st: UnsafePointer<Float>, sStride nPad: Int, values v: UnsafePointer<Float>,
                                    channelStride: Int, dv: Int, length n: Int, into plane: UnsafeMutablePointer<Float>,
                                    planeStride: Int, accumulate: Bool) {
    for c0 in stride(from: 0, to: dv, by: 4) {
        // Channels past dv repeat the last one (their sums are computed and dropped).
        let v0p = v + c0 * channelStride, v1p = v + min(c0 + 1, dv - 1) * channelStride
        let v2p = v + min(c0 + 2, dv - 1) * channelStride, v3p = v + min(c0 + 3, dv - 1) * channelStride
        for y0 in stride(from: 0, to: n, by: 64) {
            var a00 = SIMD16<Float>(), a01 = a00, a02 = a00, a03 = a00
            var a10 = a00, a11 = a00, a12 = a00, a13 = a00
            var a20 = a00, a21 = a00, a22 = a00, a23 = a00
            var a30 = a00, a31 = a00, a32 = a00, a33 = a00
            var s = st + y0
            for j in 0..<n {
                let s0 = load16(s), s1 = load16(s + 16), s2 = load16(s + 32), s3 = load16(s + 48)
                let v0 = SIMD16<Float>(repeating: v0p[j]), v1 = SIMD16<Float>(repeating: v1p[j])
                let v2 = SIMD16<Float>(repeating: v2p[j]), v3 = SIMD16<Float>(repeating: v3p[j])
                a00 = multiplyAdd(v0, s0, a00); a01 = multiplyAdd(v0, s1, a01)
                a02 = multiplyAdd(v0, s2, a02); a03 = multiplyAdd(v0, s3, a03)
                a10 = multiplyAdd(v1, s0, a10); a11 = multiplyAdd(v1, s1, a11)
                a12 = multiplyAdd(v1, s2, a12); a13 = multiplyAdd(v1, s3, a13)
                a20 = multiplyAdd(v2, s0, a20); a21 = multiplyAdd(v2, s1, a21)
                a22 = multiplyAdd(v2, s2, a22); a23 = multiplyAdd(v2, s3, a23)
                a30 = multiplyAdd(v3, s0, a30); a31 = multiplyAdd(v3, s1, a31)
                a32 = multiplyAdd(v3, s2, a32); a33 = multiplyAdd(v3, s3, a33)
                s += nPad
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
