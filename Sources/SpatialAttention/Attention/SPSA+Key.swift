import CKernels
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
            var corr = dot / squaredNorm.vectorSquareRoot * inverseNorm
            if !inverseNorm.isNaN { corr.replace(with: 0, where: squaredNorm .== 0) }
            return corr
        }
    }

    private let plan: SPSAPlan
    /// `N·C` key values (head g of image n at `(n·C + g·cph)`).
    private let storage: UnsafeMutablePointer<Float>
    /// `N·C` channel means `k[n,c]` in Double. Rounding them to Float cost up to 6e-8·|k| in a
    /// centred key whose entries can be 100× smaller than |k|: the largest error term against the
    /// naive twin (7e-6 relative with 3 channels a head).
    private let means: UnsafeMutablePointer<Double>
    private var inverseNorms: [Float]
    private var degenerate: [Bool]
    private var sums: [Float]

    /// Storage for every key of the call; ``compute(_:units:threads:)`` fills them block by block.
    init(plan: SPSAPlan) {
        self.plan = plan
        let (N, C) = (plan.shape.batch, plan.shape.channels)
        storage = .allocate(capacity: N * C)
        means = .allocate(capacity: N * C)
        inverseNorms = [Float](repeating: 0, count: N * plan.heads)
        degenerate = [Bool](repeating: false, count: N * plan.heads)
        sums = [Float](repeating: 0, count: N * plan.heads)
    }

    deinit {
        storage.deallocate()
        means.deallocate()
    }

    /// The keys of `units` (``SPSAPlan/unitCount``: (image, head) pairs n·heads + g for NCHW,
    /// images for NHWC), from one read of their part of x.
    func compute(_ x: UnsafePointer<Float>, units: Range<Int>, threads: Int) {
        // means[n·C + c] = mean_p x[n,c,p], accumulated as shift + mean_p (x[n,c,p] − shift).
        switch plan.layout {
        case .nchw:
            let cph = plan.channelsPerHead
            shiftedMeansChannelsFirst(x, rows: (units.lowerBound * cph)..<(units.upperBound * cph), threads: threads)
            finish(heads: units)
        case .nhwc:
            shiftedMeansChannelsLast(x, images: units, threads: threads)
            finish(heads: (units.lowerBound * plan.heads)..<(units.upperBound * plan.heads))
        }
    }

    /// Head `n·heads + g`: its key starts at channel `n·C + g·cph`, i.e. at `index · cph`.
    @inline(__always)
    func head(_ index: Int) -> Head {
        Head(values: UnsafePointer(storage + index * plan.channelsPerHead),
             inverseNorm: inverseNorms[index], degenerate: degenerate[index], sum: sums[index])
    }

    // Both layouts sum x − s in Float over short runs (up to 64 values a lane: NCHW's 16 lanes over
    // a 1024-value block, NHWC's 64-pixel runs) and add them into Double totals (in C: `reduce.c`). The
    // shift s is the channel's mean over its first 16 pixels (its first pixel when there are fewer):
    // then x − s has a mean of order σ/4 rather than σ, so the partial sums, and their rounding, stay
    // small. A sum of equal values is exact, so a constant channel still gives exactly its value.

    private func shiftedMeansChannelsFirst(_ x: UnsafePointer<Float>, rows: Range<Int>, threads: Int) {
        let P = plan.shape.pixels
        let means = self.means
        // 16 rows an item: ck_shifted_means adds the lanes of rows of 16–1024 values 16 rows at a time.
        let rowsPerItem = 16
        let exact = plan.channelsPerHead <= 4
        Threads.forEach((rows.count + rowsPerItem - 1) / rowsPerItem, threads: threads) { item in
            let first = rows.lowerBound + item * rowsPerItem
            // Float runs of up to 64 values a lane over 1024-pixel blocks, the 16 lanes widened to Double
            // before they are combined (16 rows at a time for rows of one block): a Float tree over them
            // rounded at the block sum's magnitude (measured 4.5e-8 in a mean of 784 normals), which a
            // 2-channel key of small norm turned into 1.5e-5, and 5 channels a head into 3.3e-6.
            // Heads of ≤ 4 channels: a key of small norm is likely, and the
            // correlation's direction then amplifies any rounding of the means, even that of x − s
            // in Float (8e-6 relative in the output with Float runs, 8.5e-7 with every x added in
            // Double; measured with 2 channels a head): every x is added in Double, unshifted.
            ck_shifted_means(x + first * P, min(rows.upperBound, first + rowsPerItem) - first, P, exact ? 1 : 0,
                             means + first)
        }
    }

    private func shiftedMeansChannelsLast(_ x: UnsafePointer<Float>, images: Range<Int>, threads: Int) {
        let (C, P) = (plan.shape.channels, plan.shape.pixels)
        let means = self.means
        // Heads of ≤ 4 channels add every pixel, unshifted, in Double (see the NCHW pass).
        let exact = plan.channelsPerHead <= 4
        // Blocks of 64 channels (`ck_shifted_column_means`, 16 channels a vector; in Swift, the
        // per-block Double totals were a heap array updated one channel at a time: 40% of an NHWC call).
        let block = 64
        let blocks = (C + block - 1) / block
        Threads.forEach(images.count * blocks, threads: threads) { item in
            let n = images.lowerBound + item / blocks, c0 = (item % blocks) * block
            ck_shifted_column_means(x + n * P * C + c0, P, C, Int32(min(block, C - c0)), exact ? 1 : 0,
                                    means + n * C + c0)
        }
    }

    /// Turns channel means into the centred (or raw) key of each head, in Double: `cph` values a head
    /// (`ck_key_finish`: the Swift loops it replaced widened and narrowed one value at a time, 14% of
    /// a `[1, 512, 7, 7]` call).
    private func finish(heads: Range<Int>) {
        let cph = plan.channelsPerHead
        for i in heads {
            var sum = 0.0, squares = 0.0
            // k_c − k_c0 (correlation) or k_c (cosine): relative to the first channel, equal keys
            // give exactly zero. ‖kc‖² and Σkc are those of the key as stored.
            ck_key_finish(means + i * cph, cph, plan.centered ? 1 : 0, storage + i * cph, &sum, &squares)
            sums[i] = Float(sum)
            degenerate[i] = squares == 0
            inverseNorms[i] = Float(1 / squares.squareRoot())
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
