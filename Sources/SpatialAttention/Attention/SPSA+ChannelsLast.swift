// The NHWC path of the fused SPSA kernel (SPSA+Kernel.swift has the plan, the NCHW path and the
// cost model): a pixel's channel vector is contiguous, so the moments are reduced per pixel and the
// weights computed 64 pixels at a time.

extension SPSAPlan {
    func runChannelsLast(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, images: Range<Int>,
                         keys: SPSAKeys, power: SPSAPower, threads: Int) {
        let (C, P, cph) = (shape.channels, shape.pixels, channelsPerHead)
        let groups = (P + Self.pixelGroup - 1) / Self.pixelGroup
        Threads.forEach(images.count * groups, threads: threads) { item in
            let n = images.lowerBound + item / groups, start = (item % groups) * Self.pixelGroup
            let count = min(P, start + Self.pixelGroup) - start
            withUnsafeTemporaryAllocation(of: Float.self, capacity: Self.pixelGroup) { weightBuffer in
                let weights = weightBuffer.baseAddress!
                for g in 0..<heads {
                    let key = keys.head(n * heads + g)
                    for j in 0..<count {
                        weights[j] = pixelCorrelation(x + (n * P + start + j) * C + g * cph, key: key)
                    }
                    for j in count..<Self.pixelGroup { weights[j] = 0 }
                    power.weights(weights, count: Self.pixelGroup, reverse: reverse)
                    for j in 0..<count {
                        let offset = (n * P + start + j) * C + g * cph
                        scaleRow(x + offset, out + offset, weights[j])
                    }
                }
            }
        }
    }

    /// One pixel's correlation with the key, from one pass over its contiguous channel vector, with
    /// the same shifted sums as ``ChunkVectors`` (the shift is the pixel's first channel value).
    @inline(__always)
    private func pixelCorrelation(_ row: UnsafePointer<Float>, key: SPSAKeys.Head) -> Float {
        let cph = channelsPerHead
        let vectorEnd = cph & ~15
        var q = FloatVector(), d = FloatVector(), a = FloatVector()
        var qTail: Float = 0, dTail: Float = 0, aTail: Float = 0
        let s: Float = centered ? row[0] : 0
        let sv = FloatVector(repeating: s)
        var i = 0
        while i < vectorEnd {
            let v = row.loadVector(i) - sv
            a += v
            q = multiplyAdd(v, v, q)
            d = multiplyAdd(v, key.values.loadVector(i), d)
            i += 16
        }
        while i < cph { let v = row[i] - s; aTail += v; qTail += v * v; dTail += v * key.values[i]; i += 1 }
        var dot = d.treeSum + dTail, squaredNorm = q.treeSum + qTail
        if centered {
            let sum = a.treeSum + aTail
            let correction = sum * sum / Float(cph)
            squaredNorm = squaredNorm > correction ? squaredNorm - correction : 0
            dot -= sum * key.sum / Float(cph)
        }
        return key.correlation(dot: dot, squaredNorm: squaredNorm)
    }

    @inline(__always)
    private func scaleRow(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ weight: Float) {
        let cph = channelsPerHead
        let w = FloatVector(repeating: weight)
        var i = 0
        while i + 16 <= cph { out.storeVector(x.loadVector(i) * w, i); i += 16 }
        while i < cph { out[i] = x[i] * weight; i += 1 }
    }
}
