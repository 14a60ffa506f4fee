/// The GSA row pass on channel-major planes (GSA+Fused.swift), vectorised over 16 output columns, and the
/// content term it can carry.

/// The shifted, transposed embedding of one pass over lines of `length` positions.
struct ShiftedEmbedding {
    /// Zero floats before shift `−(n−1)`, so that rows `j` computed past the last one (up to 3 in a block
    /// of consecutive rows, then dropped) read inside the buffer; 64 also covers a whole tile of rows.
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
            let column = ShiftedEmbedding.margin + delta + n - 1
            for k in 0..<dk { rt[k * rowStride + column] = r[(delta + L - 1) * dk + k] }
        }
        values = rt
    }
}

extension GSA {
    /// The row pass: `result_c[x, y] (=|+=) Σ_j (q[x, y]·R_r[j − y + L − 1])·v_c[x, j]` for every head, on
    /// channel-major planes, plus the content term `Σ_κ C_h[κ][c]·q_κ[x, y]` when `contexts` holds the
    /// heads' `C_h` (`[heads, dk, dv]`). Work items are (head, image row).
    ///
    /// Each row goes in tiles of 64 positions `y` × 64 rows `j` (one when `W ≤ 64`): the tile's logits
    /// (16 KiB) stay in L1 while every channel's sums over its rows are added to the output. A whole row's
    /// logits at `W = 224` (256 KiB) spilled to L2, and the pass ran 22% slower per FMA than at `W = 56`.
    func rowPass(queries q: UnsafePointer<Float>, values v: UnsafePointer<Float>, height H: Int, width W: Int,
                 contexts: UnsafePointer<Float>?, into result: UnsafeMutablePointer<Float>, accumulate: Bool,
                 threads: Int) {
        let (dk, dv, P) = (keyChannelsPerHead, valueChannelsPerHead, H * W)
        let reversed = GSA.reversedRows(rowEmbedding, rows: 2 * extent - 1, dk: dk)
        let embedding = ShiftedEmbedding(reversed, extent: extent, length: W, dk: dk)
        let tile = 64
        embedding.values.withUnsafeBufferPointer { pe in
            let rt = pe.baseAddress!
            Threads.forEach(heads * H, threads: threads) { item in
                let h = item / H, x = item % H
                // One tile of logits, 64-byte aligned (one more vector to align it).
                withUnsafeTemporaryAllocation(of: Float.self, capacity: (tile + 1) * tile) { buffer in
                    if Scratch.poisonsBuffers { buffer.initialize(repeating: .nan) }
                    let st = alignedVectors(buffer.baseAddress!)
                    let queries = q + h * dk * P + x * W, values = v + h * dv * P + x * W
                    let output = result + h * dv * P + x * W
                    for yTile in 0..<(W + tile - 1) / tile {
                        for jTile in 0..<(W + tile - 1) / tile {
                            let (y0, j0) = (yTile * tile, jTile * tile)
                            // One tile; the kernels are specialised per width (vectors past a short row dropped).
                            func tileSums<Width: RowTileWidth>(_ width: Width.Type) {
                                shiftLogits(width, queries, qStride: P, rt: rt, rtStride: embedding.rowStride,
                                            length: W, dk: dk, y0: y0, j0: j0, into: st, sStride: tile)
                                // The content term joins the first tile of rows; later tiles add to the output.
                                let content = j0 > 0 ? nil : contexts.map {
                                    WeightedRows(rows: queries + y0, rowStride: P, weights: $0 + h * dk * dv,
                                                 channelStride: 1, step: dv, count: dk)
                                }
                                let logits = WeightedRows(rows: st, rowStride: tile, weights: values + j0,
                                                          channelStride: P, step: 1, count: min(tile, W - j0))
                                transposedWeightedSums(width, logits, extra: content, dv: dv, lanes: W - y0,
                                                       into: output + y0, planeStride: P,
                                                       accumulate: accumulate || j0 > 0)
                            }
                            switch W {
                            case 49...: tileSums(TileOf64.self)
                            case 33...48: tileSums(TileOf48.self)
                            case 17...32: tileSums(TileOf32.self)
                            default: tileSums(TileOf16.self)
                            }
                        }
                    }
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

/// Row-pass logits, transposed, for one tile:
/// `Sᵀ[j − j0][y − y0] = Σ_κ q_κ[y]·RT'[κ][margin + n − 1 + y − j]` (RT' of the reversed embedding) for
/// the `16·vectors` positions from `y0` (64 on lines over 48 positions; fewer vectors on shorter lines,
/// whose single tile has fewer positions) and the rows `j0 ≤ j < j0 + 64`, in blocks of 4 rows
/// `j + rowGap·jj` × `vectors` vectors of positions `y0 + 16·yy + lane`, whose embedding vectors start at
/// offsets `16·yy − rowGap·jj` (with the query vectors shared by the rows):
/// - `rowGap` 16 (lines over 48 positions): the 16 vectors of a block meet only 7 distinct offsets, so
///   each `κ` takes 4 query loads and 7 embedding loads per 16 FMAs; a block computes only its rows before
///   the line's end;
/// - `rowGap` 1 (lines of at most 48 positions, one tile): 16 embedding loads per 16 FMAs, most of them
///   across a cache line, but only rows `j < n` (rounded up to 4) are computed, where the gap of 16 would
///   compute 64.
private func shiftLogits<Width: RowTileWidth>(_ width: Width.Type, _ qt: UnsafePointer<Float>, qStride: Int,
                                             rt: UnsafePointer<Float>, rtStride: Int, length n: Int, dk: Int,
                                             y0: Int, j0: Int, into st: UnsafeMutablePointer<Float>, sStride: Int) {
    let diagonal = Width.vectors == 4
    let blocks = diagonal ? 16 : (n + 3) / 4
    for block in 0..<blocks {
        let j = j0 + (diagonal ? block : 4 * block)
        let (q, r, tileRow) = (qt + y0, rt + ShiftedEmbedding.margin + n - 1 + y0 - j, st + (j - j0) * sStride)
        @inline(__always) func compute<Rows: LogitBlockRows>(_ rows: Rows.Type) {
            shiftLogitBlock(width, rows, q, qStride: qStride, rt: r, rtStride: rtStride, dk: dk, into: tileRow,
                            sStride: sStride)
        }
        guard diagonal else {
            compute(ConsecutiveRows.self)
            continue
        }
        // Diagonal blocks: the rows j + 16·jj before the line's end, 1…4 (none: all are past it).
        switch (n - j + 15) / 16 {
        case ...0: break
        case 1: compute(DiagonalRows1.self)
        case 2: compute(DiagonalRows2.self)
        case 3: compute(DiagonalRows3.self)
        default: compute(DiagonalRows4.self)
        }
    }
}

/// The width of a row-pass tile in vectors of 16 positions: 4 (64 positions) on lines over 48
/// positions, else the fewest that hold the line. A type, so that the kernels are specialised per width.
private protocol RowTileWidth { static var vectors: Int { get } }
private enum TileOf16: RowTileWidth { static var vectors: Int { 1 } }
private enum TileOf32: RowTileWidth { static var vectors: Int { 2 } }
private enum TileOf48: RowTileWidth { static var vectors: Int { 3 } }
private enum TileOf64: RowTileWidth { static var vectors: Int { 4 } }

/// The rows of one block of row-pass logits, `rowGap` apart: 4 consecutive rows (lines of at most 48
/// positions) or the diagonal block's rows before the line's end (1…4, 16 apart).
private protocol LogitBlockRows { static var rows: Int { get }; static var rowGap: Int { get } }
private enum ConsecutiveRows: LogitBlockRows { static var rows: Int { 4 }; static var rowGap: Int { 1 } }
private enum DiagonalRows1: LogitBlockRows { static var rows: Int { 1 }; static var rowGap: Int { 16 } }
private enum DiagonalRows2: LogitBlockRows { static var rows: Int { 2 }; static var rowGap: Int { 16 } }
private enum DiagonalRows3: LogitBlockRows { static var rows: Int { 3 }; static var rowGap: Int { 16 } }
private enum DiagonalRows4: LogitBlockRows { static var rows: Int { 4 }; static var rowGap: Int { 16 } }

/// One block of `shiftLogits`: `Rows.rows` (1…4) rows `Rows.rowGap·jj` apart × `Width.vectors` (1…4)
/// vectors of 16 positions, the embedding of row 0 starting at `rt`. Specialised per shape, so the loads
/// and FMAs of the other rows and vectors go, and at gap 16 the equal embedding offsets merge.
private func shiftLogitBlock<Width: RowTileWidth, Rows: LogitBlockRows>(
    _ width: Width.Type, _ block: Rows.Type, _ qt: UnsafePointer<Float>, qStride: Int, rt: UnsafePointer<Float>,
    rtStride: Int, dk: Int, into row: UnsafeMutablePointer<Float>, sStride: Int
) {
    let (vectors, rows, g) = (Width.vectors, Rows.rows, Rows.rowGap)
    var a00 = SIMD16<Float>(), a01 = a00, a02 = a00, a03 = a00
    var a10 = a00, a11 = a00, a12 = a00, a13 = a00
    var a20 = a00, a21 = a00, a22 = a00, a23 = a00
    var a30 = a00, a31 = a00, a32 = a00, a33 = a00
    var r = rt, q = qt
    for _ in 0..<dk {
        let q0 = load16(q), q1 = vectors > 1 ? load16(q + 16) : q0
        let q2 = vectors > 2 ? load16(q + 32) : q0, q3 = vectors > 3 ? load16(q + 48) : q0
        // Row jj, vector yy: r[16·yy − g·jj] (with g = 16 the compiler merges equal offsets).
        a00 = multiplyAdd(q0, load16(r), a00)
        if vectors > 1 { a01 = multiplyAdd(q1, load16(r + 16), a01) }
        if vectors > 2 { a02 = multiplyAdd(q2, load16(r + 32), a02) }
        if vectors > 3 { a03 = multiplyAdd(q3, load16(r + 48), a03) }
        if rows > 1 {
            a10 = multiplyAdd(q0, load16(r - g), a10)
            if vectors > 1 { a11 = multiplyAdd(q1, load16(r + 16 - g), a11) }
            if vectors > 2 { a12 = multiplyAdd(q2, load16(r + 32 - g), a12) }
            if vectors > 3 { a13 = multiplyAdd(q3, load16(r + 48 - g), a13) }
        }
        if rows > 2 {
            a20 = multiplyAdd(q0, load16(r - 2 * g), a20)
            if vectors > 1 { a21 = multiplyAdd(q1, load16(r + 16 - 2 * g), a21) }
            if vectors > 2 { a22 = multiplyAdd(q2, load16(r + 32 - 2 * g), a22) }
            if vectors > 3 { a23 = multiplyAdd(q3, load16(r + 48 - 2 * g), a23) }
        }
        if rows > 3 {
            a30 = multiplyAdd(q0, load16(r - 3 * g), a30)
            if vectors > 1 { a31 = multiplyAdd(q1, load16(r + 16 - 3 * g), a31) }
            if vectors > 2 { a32 = multiplyAdd(q2, load16(r + 32 - 3 * g), a32) }
            if vectors > 3 { a33 = multiplyAdd(q3, load16(r + 48 - 3 * g), a33) }
        }
        r += rtStride
        q += qStride
    }
    let jump = g * sStride
    store16(a00, row)
    if vectors > 1 { store16(a01, row + 16) }
    if vectors > 2 { store16(a02, row + 32) }
    if vectors > 3 { store16(a03, row + 48) }
    if rows > 1 {
        store16(a10, row + jump)
        if vectors > 1 { store16(a11, row + jump + 16) }
        if vectors > 2 { store16(a12, row + jump + 32) }
        if vectors > 3 { store16(a13, row + jump + 48) }
    }
    if rows > 2 {
        store16(a20, row + 2 * jump)
        if vectors > 1 { store16(a21, row + 2 * jump + 16) }
        if vectors > 2 { store16(a22, row + 2 * jump + 32) }
        if vectors > 3 { store16(a23, row + 2 * jump + 48) }
    }
    if rows > 3 {
        store16(a30, row + 3 * jump)
        if vectors > 1 { store16(a31, row + 3 * jump + 16) }
        if vectors > 2 { store16(a32, row + 3 * jump + 32) }
        if vectors > 3 { store16(a33, row + 3 * jump + 48) }
    }
}

/// One sum of `transposedWeightedSums`: `Σ_t weight_c[t]·rows[t][y]` over `count` terms, with row `t` at
/// `rows + t·rowStride` and `weight_c[t]` at `weights + c·channelStride + t·step`.
private struct WeightedRows {
    let rows: UnsafePointer<Float>, rowStride: Int
    let weights: UnsafePointer<Float>, channelStride: Int, step: Int
    let count: Int
}

/// `plane_c[y] (=|+=) Σ_t weight_c[t]·rows[t][y]` over the `main` sum's terms, plus the `extra` sum when
/// given (the row pass's content term `Σ_κ C[κ][c]·q_κ[y]`), for `c < dv` and the first
/// `min(lanes, 16·vectors)` positions: 4 channels × `Width.vectors` vectors of 16 positions per block
/// (specialised per width).
private func transposedWeightedSums<Width: RowTileWidth>(
    _ width: Width.Type, _ main: WeightedRows, extra: WeightedRows?, dv: Int, lanes: Int,
    into plane: UnsafeMutablePointer<Float>, planeStride: Int, accumulate: Bool
) {
    let vectors = Width.vectors
    for group in 0..<(dv + 3) / 4 {
        let c0 = 4 * group
        // Channels past dv repeat the last one (their sums are computed and dropped).
        let (c1, c2, c3) = (min(c0 + 1, dv - 1), min(c0 + 2, dv - 1), min(c0 + 3, dv - 1))
        var a00 = SIMD16<Float>(), a01 = a00, a02 = a00, a03 = a00
        var a10 = a00, a11 = a00, a12 = a00, a13 = a00
        var a20 = a00, a21 = a00, a22 = a00, a23 = a00
        var a30 = a00, a31 = a00, a32 = a00, a33 = a00
        for term in 0..<(extra == nil ? 1 : 2) {
            let sum = term == 0 ? main : extra!
            let w = sum.weights, ws = sum.channelStride
            var (w0, w1, w2, w3) = (w + c0 * ws, w + c1 * ws, w + c2 * ws, w + c3 * ws)
            var s = sum.rows
            for _ in 0..<sum.count {
                let v0 = SIMD16<Float>(repeating: w0.pointee), v1 = SIMD16<Float>(repeating: w1.pointee)
                let v2 = SIMD16<Float>(repeating: w2.pointee), v3 = SIMD16<Float>(repeating: w3.pointee)
                let s0 = load16(s)
                a00 = multiplyAdd(v0, s0, a00); a10 = multiplyAdd(v1, s0, a10)
                a20 = multiplyAdd(v2, s0, a20); a30 = multiplyAdd(v3, s0, a30)
                if vectors > 1 {
                    let s1 = load16(s + 16)
                    a01 = multiplyAdd(v0, s1, a01); a11 = multiplyAdd(v1, s1, a11)
                    a21 = multiplyAdd(v2, s1, a21); a31 = multiplyAdd(v3, s1, a31)
                }
                if vectors > 2 {
                    let s2 = load16(s + 32)
                    a02 = multiplyAdd(v0, s2, a02); a12 = multiplyAdd(v1, s2, a12)
                    a22 = multiplyAdd(v2, s2, a22); a32 = multiplyAdd(v3, s2, a32)
                }
                if vectors > 3 {
                    let s3 = load16(s + 48)
                    a03 = multiplyAdd(v0, s3, a03); a13 = multiplyAdd(v1, s3, a13)
                    a23 = multiplyAdd(v2, s3, a23); a33 = multiplyAdd(v3, s3, a33)
                }
                s += sum.rowStride
                w0 += sum.step; w1 += sum.step; w2 += sum.step; w3 += sum.step
            }
        }
        @inline(__always) func emit(_ c: Int, _ x0: SIMD16<Float>, _ x1: SIMD16<Float>, _ x2: SIMD16<Float>,
                                    _ x3: SIMD16<Float>) {
            guard c < dv else { return }
            let target = plane + c * planeStride
            writeLanes(x0, count: lanes, into: target, accumulate: accumulate)
            if vectors > 1 { writeLanes(x1, count: lanes - 16, into: target + 16, accumulate: accumulate) }
            if vectors > 2 { writeLanes(x2, count: lanes - 32, into: target + 32, accumulate: accumulate) }
            if vectors > 3 { writeLanes(x3, count: lanes - 48, into: target + 48, accumulate: accumulate) }
        }
        emit(c0, a00, a01, a02, a03); emit(c0 + 1, a10, a11, a12, a13)
        emit(c0 + 2, a20, a21, a22, a23); emit(c0 + 3, a30, a31, a32, a33)
    }
}
