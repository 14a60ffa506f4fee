#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Pass 1 of SPSA: the key of every (image, head), centred (correlation) or not (cosine), with its
/// inverse norm. One read of x.
final class SPSAKeys: @unchecked Sendable {
    /// One head's key: `values[0..<channelsPerHead]` and how correlations with it are normalised.
    struct Head {
        let values: UnsafePointer<Float>
        /// `1 / ‖kc‖`; NaN when the head's input holds a NaN or ±Inf.
        let inverseNorm: Float
        /// `‖kc‖ = 0`: every correlation with this key is 0.
        let degenerate: Bool
        /// `Σ kc` as stored (zero up to rounding when centred).
        let sum: Float

        /// `dot / (‖x‖·‖kc‖)`, with 0 where `‖x‖ = 0` or `‖kc‖ = 0` unless a NaN must propagate.
        @inline(__always)
        func correlation(dot: FloatVector, squaredNorm: FloatVector) -> FloatVector {
            if degenerate { return FloatVector() }
            var corr = dot / squaredNorm.squareRoot() * inverseNorm
            if !inverseNorm.isNaN { corr.replace(with: 0, where: squaredNorm .== 0) }
            return corr
        }

        @inline(__always)
        func correlation(dot: Float, squaredNorm: Float) -> Float {
            if degenerate { return 0 }
            if squaredNorm == 0 && !inverseNorm.isNaN { return 0 }
            return dot / squaredNorm.squareRoot() * inverseNorm
        }
    }

    private let plan: SPSAPlan
    /// `N·C` key values (head g of image n at `(n·C + g·cph)`).
    private let storage: UnsafeMutablePointer<Float>
    private var inverseNorms: [Float]
    private var degenerate: [Bool]
    private var sums: [Float]

    init(plan: SPSAPlan, source x: UnsafePointer<Float>, threads: Int) {
        self.plan = plan
        let (N, C) = (plan.shape.batch, plan.shape.channels)
        storage = .allocate(capacity: N * C)
        inverseNorms = [Float](repeating: 0, count: N * plan.heads)
        degenerate = [Bool](repeating: false, count: N * plan.heads)
        sums = [Float](repeating: 0, count: N * plan.heads)
        // storage[n·C + c] = mean_p (x[n,c,p] − x[n,c,0]): shifted by the channel's first pixel.
        switch plan.layout {
        case .nchw: shiftedMeansChannelsFirst(x, threads: threads)
        case .nhwc: shiftedMeansChannelsLast(x, threads: threads)
        }
        finish(x)
    }

    deinit { storage.deallocate() }

    @inline(__always)
    func head(_ n: Int, _ g: Int) -> Head {
        let i = n * plan.heads + g
        return Head(values: UnsafePointer(storage + n * plan.shape.channels + g * plan.channelsPerHead),
                    inverseNorm: inverseNorms[i], degenerate: degenerate[i], sum: sums[i])
    }

    // Both layouts sum x − x[c,0] in Float over blocks of pixels and add the block sums into a Double
    // total: the shift is one sample, not the mean, so the running sum grows like P·(k − x[c,0]), and a
    // Float total over a 270×260 image lost 1e-4 of the centred key (measured: a 3.7e-5 relative error
    // in the output).

    private func shiftedMeansChannelsFirst(_ x: UnsafePointer<Float>, threads: Int) {
        let P = plan.shape.pixels
        let rows = plan.shape.batch * plan.shape.channels
        let storage = self.storage
        let rowsPerItem = 8, pixelBlock = 1024
        Threads.forEach((rows + rowsPerItem - 1) / rowsPerItem, threads: threads) { item in
            for row in (item * rowsPerItem)..<min(rows, (item + 1) * rowsPerItem) {
                let r = x + row * P
                let s = FloatVector(repeating: r[0])
                var total = 0.0
                var p0 = 0
                while p0 < P {
                    let end = min(P, p0 + pixelBlock)
                    var a0 = FloatVector(), a1 = FloatVector(), a2 = FloatVector(), a3 = FloatVector()
                    var p = p0
                    while p + 64 <= end {
                        a0 += r.loadVector(p) - s; a1 += r.loadVector(p + 16) - s
                        a2 += r.loadVector(p + 32) - s; a3 += r.loadVector(p + 48) - s
                        p += 64
                    }
                    while p + 16 <= end { a0 += r.loadVector(p) - s; p += 16 }
                    var sum = ((a0 + a1) + (a2 + a3)).treeSum
                    while p < end { sum += r[p] - r[0]; p += 1 }
                    total += Double(sum)
                    p0 = end
                }
                storage[row] = Float(total / Double(P))
            }
        }
    }

    private func shiftedMeansChannelsLast(_ x: UnsafePointer<Float>, threads: Int) {
        let (N, C, P) = (plan.shape.batch, plan.shape.channels, plan.shape.pixels)
        let storage = self.storage
        let block = 64, pixelBlock = 256
        let blocks = (C + block - 1) / block
        Threads.forEach(N * blocks, threads: threads) { item in
            let n = item / blocks, c0 = (item % blocks) * block, width = min(block, C - c0)
            let first = x + n * P * C + c0
            var total = [Double](repeating: 0, count: width)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: block) { buffer in
                let partial = buffer.baseAddress!
                var p0 = 0
                while p0 < P {
                    partial.initialize(repeating: 0, count: block)
                    for p in p0..<min(P, p0 + pixelBlock) {
                        let row = first + p * C
                        var j = 0
                        while j + 16 <= width {
                            partial.storeVector(partial.loadVector(j) + (row.loadVector(j) - first.loadVector(j)), j)
                            j += 16
                        }
                        while j < width { partial[j] += row[j] - first[j]; j += 1 }
                    }
                    for j in 0..<width { total[j] += Double(partial[j]) }
                    p0 += pixelBlock
                }
            }
            for j in 0..<width { storage[n * C + c0 + j] = Float(total[j] / Double(P)) }
        }
    }

    /// Turns shifted means into the centred (or raw) key of each head, in Double: `cph` values a head.
    /// The reductions use four independent accumulators: with one, a 512-channel head spent 2 µs
    /// waiting on the add latency (measured on `[1, 512, 7, 7]`).
    private func finish(_ x: UnsafePointer<Float>) {
        let (C, cph) = (plan.shape.channels, plan.channelsPerHead)
        let strides = plan.layout.strides(for: plan.shape)
        withUnsafeTemporaryAllocation(of: Double.self, capacity: cph) { buffer in
            let shifted = buffer.baseAddress!
            for n in 0..<plan.shape.batch {
                for g in 0..<plan.heads {
                    let base = n * C + g * cph
                    let first = x + n * strides.n + g * cph * strides.c
                    // k_c − x[n, c0, 0] (correlation) or k_c (cosine): x[n, c, 0] was each channel's shift.
                    // Centred, everything is relative to the first channel too, so equal keys give zero.
                    let origin = plan.centered ? Double(first[0]) + Double(storage[base]) : 0
                    var m = SIMD4<Double>()
                    for j in 0..<cph {
                        let value = (Double(first[j * strides.c]) + Double(storage[base + j])) - origin
                        shifted[j] = value
                        m[j & 3] += value
                    }
                    let mean = plan.centered ? (m[0] + m[1] + m[2] + m[3]) / Double(cph) : 0
                    var squares = SIMD4<Double>(), sums = SIMD4<Double>()
                    for j in 0..<cph {
                        let k = Float(shifted[j] - mean)
                        storage[base + j] = k
                        squares[j & 3] += Double(k) * Double(k)
                        sums[j & 3] += Double(k)
                    }
                    let squaredNorm = squares.sum()
                    let i = n * plan.heads + g
                    self.sums[i] = Float(sums.sum())
                    degenerate[i] = squaredNorm == 0
                    inverseNorms[i] = Float(1 / squaredNorm.squareRoot())
                }
            }
        }
    }
}

/// Pass 2's per-pixel weight `A = (1 + e^{±corr})^{−α}`: σ(−corr) = 1 − σ(corr) when reversed.
enum SPSAPower {
    case zero, one, two
    case integer(Int)
    case general(Float)

    init(alpha: Float) {
        switch alpha {
        case 0: self = .zero
        case 1: self = .one
        case 2: self = .two
        case let a where a == a.rounded() && a <= 16: self = .integer(Int(a))
        default: self = .general(alpha)
        }
    }

    /// Replaces `corr[0..<count]` (count a multiple of 16) with the attention weights.
    @inline(__always)
    func weights(_ corr: UnsafeMutablePointer<Float>, count: Int, reverse: Bool) {
        var i = 0
        while i < count {
            let c = corr.loadVector(i)
            let r = 1 / (1 + Self.exponential(reverse ? c : -c))
            let a: FloatVector
            switch self {
            case .zero: a = FloatVector(repeating: 1)
            case .one: a = r
            case .two: a = r * r
            case let .integer(k):
                var p = r
                for _ in 1..<k { p *= r }
                a = p
            case let .general(alpha):
                var p = FloatVector()
                for lane in 0..<16 { p[lane] = powf(r[lane], alpha) }
                a = p
            }
            corr.storeVector(a, i)
            i += 16
        }
    }

    /// e^z for |z| ≤ 1 (a correlation): Taylor to degree 11 in Horner form. The remainder is below
    /// e/12! ≈ 5.7e-9, under Float's half-ulp at 1; NaN stays NaN.
    @inline(__always)
    static func exponential(_ z: FloatVector) -> FloatVector {
        let coefficients: [Float] = [
            1.0 / 39_916_800, 1.0 / 3_628_800, 1.0 / 362_880, 1.0 / 40_320, 1.0 / 5_040,
            1.0 / 720, 1.0 / 120, 1.0 / 24, 1.0 / 6, 0.5, 1, 1,
        ]
        var p = FloatVector(repeating: coefficients[0])
        for k in 1..<coefficients.count {
            p = multiplyAdd(p, z, FloatVector(repeating: coefficients[k]))
        }
        return p
    }
}
