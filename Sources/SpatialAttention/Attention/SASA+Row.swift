/// The SASA attention kernel for one head and one image row (see SASA+Kernel.swift for the plan).
extension SASA {
    func attendRow(head h: Int, row i: Int, queries: UnsafePointer<Float>, padded: UnsafePointer<Float>,
                   terms u: UnsafePointer<Float>, geometry g: PaddedGeometry, output y: UnsafeMutablePointer<Float>) {
        let (H, W, r, rowStride, plane) = (g.height, g.width, g.radius, g.rowStride, g.planeSize)
        let (k, dk, dv, P) = (kernelSize, keyChannelsPerHead, valueChannelsPerHead, g.height * g.width)
        let keys = padded + h * dk * plane, values = padded + (keyChannels + h * dv) * plane
        let q = queries + h * dk * P, rowTerms = u + h * 2 * k * P, columnTerms = rowTerms + k * P
        let excluded = boundary == .excluded
        withUnsafeTemporaryAllocation(of: SIMD16<Float>.self, capacity: k * k) { buffer in
            let logits = buffer.baseAddress!
            for j0 in stride(from: 0, to: W, by: 16) {
                let p0 = i * W + j0
                // 1. Logits, 4 column offsets at a time.
                for a in 0..<k {
                    let rowInside = i + a - r >= 0 && i + a - r < H
                    if !rowInside && excluded {
                        for b in 0..<k { logits[a * k + b] = SIMD16(repeating: -.infinity) }
                        continue
                    }
                    let ur = load16(rowTerms + a * P + p0)
                    var b0 = 0
                    while b0 < k {
                        var acc0 = SIMD16<Float>(), acc1 = acc0, acc2 = acc0, acc3 = acc0
                        if rowInside {
                            var kc = keys + (i + a) * rowStride + j0 + b0, qc = q + p0
                            for _ in 0..<dk {
                                let qv = load16(qc)
                                acc0 = multiplyAdd(qv, load16(kc), acc0)
                                acc1 = multiplyAdd(qv, load16(kc + 1), acc1)
                                acc2 = multiplyAdd(qv, load16(kc + 2), acc2)
                                acc3 = multiplyAdd(qv, load16(kc + 3), acc3)
                                kc += plane
                                qc += P
                            }
                        }
                        let accs = (acc0, acc1, acc2, acc3)
                        for t in 0..<min(4, k - b0) {
                            let acc = t == 0 ? accs.0 : t == 1 ? accs.1 : t == 2 ? accs.2 : accs.3
                            logits[a * k + b0 + t] = acc + ur + load16(columnTerms + (b0 + t) * P + p0)
                        }
                        b0 += 4
                    }
                }
                // Excluded neighbours left or right of the image (only tiles touching a side border).
                if excluded && (j0 < r || j0 + 15 + r >= W) {
                    let lane = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
                    for b in 0..<k {
                        let column = lane &+ Int32(j0 + b - r)
                        let outside = (column .< 0) .| (column .>= Int32(W))
                        for a in 0..<k { logits[a * k + b].replace(with: -.infinity, where: outside) }
                    }
                }
                // 2. Softmax numerators per lane (the centre is always inside, so the sum is positive).
                var m = SIMD16<Float>(repeating: -.infinity)
                for n in 0..<(k * k) { m = m.replacing(with: logits[n], where: logits[n] .> m) }
                var s = SIMD16<Float>()
                for n in 0..<(k * k) {
                    let e = exp16(logits[n] - m)
                    logits[n] = e
                    s += e
                }
                let inverse = 1 / s
                // 3. Weighted sums of the values, 4 channels at a time; rows outside add nothing.
                let lanes = min(16, W - j0)
                var v0 = 0
                while v0 < dv {
                    let count = min(4, dv - v0)
                    var acc0 = SIMD16<Float>(), acc1 = acc0, acc2 = acc0, acc3 = acc0
                    for a in 0..<k where i + a - r >= 0 && i + a - r < H {
                        let base = values + v0 * plane + (i + a) * rowStride + j0
                        for b in 0..<k {
                            let e = logits[a * k + b]
                            acc0 = multiplyAdd(e, load16(base + b), acc0)
                            if count > 1 { acc1 = multiplyAdd(e, load16(base + plane + b), acc1) }
                            if count > 2 { acc2 = multiplyAdd(e, load16(base + 2 * plane + b), acc2) }
                            if count > 3 { acc3 = multiplyAdd(e, load16(base + 3 * plane + b), acc3) }
                        }
                    }
                    let accs = (acc0 * inverse, acc1 * inverse, acc2 * inverse, acc3 * inverse)
                    for t in 0..<count {
                        let v = t == 0 ? accs.0 : t == 1 ? accs.1 : t == 2 ? accs.2 : accs.3
                        let target = y + (h * dv + v0 + t) * P + p0
                        if lanes == 16 {
                            UnsafeMutableRawPointer(target).storeBytes(of: v, as: SIMD16<Float>.self)
                        } else {
                            for lane in 0..<lanes { target[lane] = v[lane] }
                        }
                    }
                    v0 += 4
                }
            }
        }
    }
}

/// Loads 16 floats from an unaligned address.
@inline(__always)
func load16(_ p: UnsafePointer<Float>) -> FloatVector { p.loadVector() }
