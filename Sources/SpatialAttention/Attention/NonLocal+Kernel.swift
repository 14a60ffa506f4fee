/// The full-attention forward pass: projections by one GEMM, then per head and query block an online
/// softmax over key blocks (sgemm inside blocks), then the output projection and residual.
extension NonLocal {
    /// Applies the block with `threads` workers for the softmax rows and copies; GEMMs run on OpenBLAS's
    /// own threads (``BLAS/threads``), never at the same time.
    ///
    /// Memory: the `[P, 2·keyChannels + valueChannels]` projections, the `[P, valueChannels]` attention
    /// output, and one `queryBlock × keyBlock` logit block: `O(P)`, never `P×P`.
    /// A query whose logits are all `−∞` gets NaN (the softmax's `0/0`), as does any output that
    /// depends on a NaN.
    ///
    /// - Throws: ``ShapeError`` when `x` does not have `channels` channels.
    public func callAsFunction(_ x: Tensor, threads: Int?) throws -> Tensor {
        let outShape = try outputShape(for: x.shape)
        guard !outShape.isEmpty else { return try Tensor(shape: outShape, layout: x.layout, repeating: 0) }
        let threads = Threads.resolve(threads)
        let (N, C, P) = (x.shape.batch, channels, x.shape.pixels)
        let D = 2 * keyChannels + valueChannels, outC = outputChannels, nchw = x.layout == .nchw
        let out = x.scalars.withUnsafeBufferPointer { px in
            uninitializedFloats(outShape.count) { po in
                Scratch.withFloats(P * D + P * valueChannels) { buffer in
                    let qkv = buffer, attended = buffer + P * D
                    for n in 0..<N {
                        let image = px.baseAddress! + n * C * P, output = po + n * outC * P
                        projection.withUnsafeBufferPointer { pw in
                            GEMM.multiply(m: P, n: D, k: C, a: image, lda: nchw ? P : C, transposeA: nchw,
                                          b: pw.baseAddress!, ldb: C, transposeB: true, c: qkv, ldc: D)
                        }
                        if !projectionBias.isEmpty { addRowVector(projectionBias, to: qkv, rows: P, threads: threads) }
                        for h in 0..<heads {
                            attend(queries: qkv + h * keyChannelsPerHead, keys: qkv + keyChannels + h * keyChannelsPerHead,
                                   values: qkv + 2 * keyChannels + h * valueChannelsPerHead, rowStride: D, pixels: P,
                                   into: attended + h * valueChannelsPerHead, outputStride: valueChannels,
                                   threads: threads)
                        }
                        finish(attended: attended, image: image, pixels: P, layout: x.layout, output: output,
                               threads: threads)
                    }
                }
            }
        }
        return try Tensor(shape: outShape, layout: x.layout, scalars: out)
    }

    /// One head: `out[p] = Σ_j softmax_j(scale·q_p·k_j)·v_j` for all `pixels` queries.
    ///
    /// Per query block: for each key block, `S = scale·Q_b·K_bᵀ` (sgemm), then per row the running max
    /// `m` and sum `l` are updated (`m' = max(m, max S)`, `l' = l·e^{m−m'} + Σ e^{S−m'}`), the partial output
    /// is rescaled by `e^{m−m'}` and `O += e^{S−m'}·V_b` (sgemm, `beta = 1`); finally `O/l`.
    func attend(queries: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                rowStride ld: Int, pixels P: Int, into out: UnsafeMutablePointer<Float>, outputStride: Int,
                threads: Int) {
        let (dk, dv) = (keyChannelsPerHead, valueChannelsPerHead)
        let bq = max(1, min(queryBlock, P)), bk = max(1, min(keyBlock, P))
        Scratch.withFloats(bq * bk + bq * dv + 2 * bq) { scratch in
            let s = scratch, o = s + bq * bk, runningMax = o + bq * dv, runningSum = runningMax + bq
            for q0 in stride(from: 0, to: P, by: bq) {
                let mb = min(bq, P - q0)
                runningMax.update(repeating: -.infinity, count: mb)
                runningSum.update(repeating: 0, count: mb)
                o.update(repeating: 0, count: mb * dv)
                for k0 in stride(from: 0, to: P, by: bk) {
                    let nb = min(bk, P - k0)
                    GEMM.multiply(m: mb, n: nb, k: dk, alpha: scale, a: queries + q0 * ld, lda: ld,
                                  b: keys + k0 * ld, ldb: ld, transposeB: true, c: s, ldc: nb)
                    let chunk = max(8, (mb + threads - 1) / threads)
                    Threads.forEach((mb + chunk - 1) / chunk, threads: threads) { item in
                        for i in (item * chunk)..<min(mb, (item + 1) * chunk) {
                            let row = s + i * nb
                            let newMax = max(runningMax[i], VectorMath.maximum(row, count: nb))
                            if newMax == -.infinity {
                                // Every logit so far is −∞: this block adds nothing.
                                row.update(repeating: 0, count: nb)
                                continue
                            }
                            let correction = expScalar(runningMax[i] - newMax)
                            let sum = VectorMath.exp(row, into: row, count: nb, subtracting: newMax)
                            runningSum[i] = runningSum[i] * correction + sum
                            runningMax[i] = newMax
                            if correction != 1 { scaleInPlace(o + i * dv, count: dv, by: correction) }
                        }
                    }
                    GEMM.multiply(m: mb, n: dv, k: nb, a: s, lda: nb, b: values + k0 * ld, ldb: ld,
                                  beta: 1, c: o, ldc: dv)
                }
                for i in 0..<mb {
                    let inverse = 1 / runningSum[i]
                    let target = out + (q0 + i) * outputStride, source = o + i * dv
                    for c in 0..<dv { target[c] = source[c] * inverse }
                }
            }
        }
    }

    /// The output projection, bias and residual, from the `[P, valueChannels]` attention output into the
    /// output image's layout.
    private func finish(attended: UnsafePointer<Float>, image: UnsafePointer<Float>, pixels P: Int, layout: Layout,
                        output: UnsafeMutablePointer<Float>, threads: Int) {
        let outC = outputChannels, nchw = layout == .nchw
        if residual { output.update(from: image, count: outC * P) }
        guard !outputWeight.isEmpty else {
            Self.addMatrix(attended, pixels: P, channels: outC, into: output, nchw: nchw, accumulate: residual)
            return
        }
        let beta: Float = residual ? 1 : 0
        outputWeight.withUnsafeBufferPointer { pw in
            if nchw {
                // [C, P] = W_O·Oᵀ, straight into the channel planes.
                GEMM.multiply(m: outC, n: P, k: valueChannels, a: pw.baseAddress!, lda: valueChannels,
                              b: attended, ldb: valueChannels, transposeB: true, beta: beta, c: output, ldc: P)
            } else {
                GEMM.multiply(m: P, n: outC, k: valueChannels, a: attended, lda: valueChannels,
                              b: pw.baseAddress!, ldb: valueChannels, transposeB: true, beta: beta, c: output, ldc: outC)
            }
        }
        outputBias.withUnsafeBufferPointer { pb in
            let b = pb.baseAddress!
            if nchw {
                for c in 0..<outC {
                    let plane = output + c * P, bias = b[c]
                    for p in 0..<P { plane[p] += bias }
                }
            } else {
                addRowVector(outputBias, to: output, rows: P, threads: threads)
            }
        }
    }

    /// `matrix[r, ·] += vector` for every row of a dense `[rows, vector.count]` matrix.
    private func addRowVector(_ vector: [Float], to matrix: UnsafeMutablePointer<Float>, rows: Int, threads: Int) {
        vector.withUnsafeBufferPointer { pv in
            let v = pv.baseAddress!, n = vector.count
            for r in 0..<rows {
                let row = matrix + r * n
                for c in 0..<n { row[c] += v[c] }
            }
        }
    }

    /// Writes or adds a `[pixels, channels]` matrix into an NCHW or NHWC image.
    static func addMatrix(_ m: UnsafePointer<Float>, pixels: Int, channels: Int, into output: UnsafeMutablePointer<Float>,
                          nchw: Bool, accumulate: Bool) {
        for p in 0..<pixels {
            for c in 0..<channels {
                let i = nchw ? c * pixels + p : p * channels + c
                output[i] = accumulate ? output[i] + m[p * channels + c] : m[p * channels + c]
            }
        }
    }
}

/// `exp(x)` of one Float by the vector kernel (same accuracy as ``VectorMath/exp(_:into:count:subtracting:)``).
@inline(__always)
func expScalar(_ x: Float) -> Float { exp16(SIMD16<Float>(repeating: x))[0] }
