/// The GSA column pass on channel-major planes (GSA+Fused.swift), vectorised over 16 image columns.

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
