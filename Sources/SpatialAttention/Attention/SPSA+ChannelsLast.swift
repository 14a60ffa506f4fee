// The NHWC path of the fused SPSA kernel (SPSA+Kernel.swift has the plan, the NCHW path and the
// cost model): a pixel's channel vector is contiguous, so the moments are reduced per pixel, 16
// pixels at a time in C (`ck_pixel_moments16`), and the weights computed 64 pixels at a time.

import CKernels

extension SPSAPlan {
    func runChannelsLast(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, images: Range<Int>,
                         keys: SPSAKeys, power: SPSAPower, threads: Int) {
        let (C, P, cph) = (shape.channels, shape.pixels, channelsPerHead)
        let groups = (P + Self.pixelGroup - 1) / Self.pixelGroup
        Threads.forEach(images.count * groups, threads: threads) { item in
            let n = images.lowerBound + item / groups, start = (item % groups) * Self.pixelGroup
            let count = min(P, start + Self.pixelGroup) - start
            // The group's weights, then one 16-pixel batch's Σv, Σv² and Σv·k.
            withUnsafeTemporaryAllocation(of: Float.self, capacity: Self.pixelGroup + 48) { buffer in
                let weights = buffer.baseAddress!, moments = weights + Self.pixelGroup
                for g in 0..<heads {
                    let key = keys.head(n * heads + g)
                    let first = x + (n * P + start) * C + g * cph
                    var j = 0
                    while j < count {
                        // 16 pixels at a time: each pixel's sums in 16 lanes, then the lanes of the 16
                        // pixels folded together (one horizontal sum per pixel and moment was most of
                        // an NHWC call; docs/kernels.md).
                        ck_pixel_moments16(first + j * C, C, Int32(min(16, count - j)), Int32(cph), key.values,
                                           centered ? 1 : 0, moments, moments + 16, moments + 32)
                        var (sum, squares, dots) = (OneVector(), OneVector(), OneVector())
                        sum[0] = moments.loadVector()
                        squares[0] = moments.loadVector(16)
                        dots[0] = moments.loadVector(32)
                        OneVector.finish(sum: sum, squares: squares, dots: dots, count: cph, centered: centered,
                                         key: key, into: weights + j)
                        j += 16
                    }
                    // Weights past the last batch (a plane's last group) are computed and never used.
                    (weights + j).initialize(repeating: 0, count: Self.pixelGroup - j)
                    power.weights(weights, count: Self.pixelGroup, reverse: reverse)
                    for j in 0..<count {
                        let offset = (n * P + start + j) * C + g * cph
                        scaleRow(x + offset, out + offset, weights[j])
                    }
                }
            }
        }
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
