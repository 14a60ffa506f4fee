/// Vectorised element-wise math shared by the attention kernels: `exp` over arrays, running
/// maxima and sums for softmax.
///
/// glibc's `expf` costs about 3 ns per element here; a softmax over the 157 M logits of full
/// attention at 112×112 would spend 0.5 s in it. ``exp(_:into:count:subtracting:)`` evaluates a
/// degree-6 polynomial on 16 lanes instead (0.1–0.2 ns per element in the native build).
public enum VectorMath {
    /// Writes `exp(x[i] − shift)` to `result[i]` for `i < count` and returns their sum (Float
    /// accumulation in 16 lanes, then a tree reduction).
    ///
    /// Accuracy: within 2 ulp of `exp` for arguments in `[−87.3, 88.37]`; arguments below −87.3
    /// (including `−∞`) give 0, above 88.37 give `+∞` (so that `2ⁿ` stays finite); NaN gives NaN. `x` and `result` may be the
    /// same pointer; otherwise they must not overlap.
    @discardableResult
    public static func exp(
        _ x: UnsafePointer<Float>, into result: UnsafeMutablePointer<Float>, count: Int, subtracting shift: Float = 0
    ) -> Float {
        var i = 0
        var acc = SIMD16<Float>()
        let s = SIMD16<Float>(repeating: shift)
        let raw = UnsafeRawPointer(x), out = UnsafeMutableRawPointer(result)
        while i + 16 <= count {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) - s
            let e = exp16(v)
            out.storeBytes(of: e, toByteOffset: i * 4, as: SIMD16<Float>.self)
            acc += e
            i += 16
        }
        if i < count {
            var v = SIMD16<Float>(repeating: -.infinity)
            for j in 0..<(count - i) { v[j] = x[i + j] - shift }
            let e = exp16(v)
            for j in 0..<(count - i) { result[i + j] = e[j] }
            acc += e
        }
        return acc.treeSum
    }

    /// `exp(x)` of every element of an array, by ``exp(_:into:count:subtracting:)``.
    public static func exp(_ x: [Float]) -> [Float] {
        var result = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { px in
            result.withUnsafeMutableBufferPointer { pr in
                guard let a = px.baseAddress, let b = pr.baseAddress else { return }
                exp(a, into: b, count: x.count)
            }
        }
        return result
    }

    /// The largest of `count` values, ignoring NaN (`−∞` when `count == 0` or every value is NaN).
    /// A softmax built on it still yields NaN for a NaN logit, through `exp(NaN − max)`.
    public static func maximum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var i = 0
        var m = SIMD16<Float>(repeating: -.infinity)
        let raw = UnsafeRawPointer(x)
        while i + 16 <= count {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            m = m.replacing(with: v, where: v .> m)
            i += 16
        }
        var result = m.max()
        while i < count {
            if x[i] > result { result = x[i] }
            i += 1
        }
        return result
    }
}

// MARK: - Kernels on SIMD16 (internal)

/// `exp` on 16 lanes: `exp(x) = 2ⁿ·exp(r)`, `n = round(x·log₂e)`, `r = x − n·ln 2` in two parts,
/// `exp(r)` by the degree-6 polynomial of Cephes' `expf` on `|r| ≤ ln 2 / 2`. `2ⁿ` is built from
/// the bits of `x·log₂e + 1.5·2²³` (the "magic number" rounding), so no float→int conversion traps on NaN.
@inline(__always)
func exp16(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let lower: Float = -87.33654, upper: Float = 88.37626
    var v = x.replacing(with: lower, where: x .< lower)
    v = v.replacing(with: upper, where: v .> upper)
    let magic = SIMD16<Float>(repeating: 12_582_912)  // 1.5·2²³
    let t = v * 1.442_695_04 + magic
    let n = t - magic
    var r = v - n * 0.693_359_375
    r = r - n * -2.121_944_40e-4
    var p = SIMD16<Float>(repeating: 1.987_569_15e-4)
    p = multiplyAdd(p, r, SIMD16(repeating: 1.398_199_95e-3))
    p = multiplyAdd(p, r, SIMD16(repeating: 8.333_451_91e-3))
    p = multiplyAdd(p, r, SIMD16(repeating: 4.166_579_59e-2))
    p = multiplyAdd(p, r, SIMD16(repeating: 1.666_666_55e-1))
    p = multiplyAdd(p, r, SIMD16(repeating: 5.000_000_12e-1))
    p = multiplyAdd(p, r * r, r + 1)
    // t's low mantissa bits hold n + 2²², so (bits(t) − bits(magic) + 127) << 23 is the pattern of 2ⁿ.
    let tb = unsafeBitCast(t, to: SIMD16<Int32>.self)
    let mb = unsafeBitCast(magic, to: SIMD16<Int32>.self)
    let scale = unsafeBitCast((tb &- mb &+ 127) &<< 23, to: SIMD16<Float>.self)
    var e = p * scale
    e = e.replacing(with: 0, where: x .< lower)
    e = e.replacing(with: .infinity, where: x .> upper)
    return e
}

/// Scales every element of `count` values by `factor` in place.
@inline(__always)
func scaleInPlace(_ x: UnsafeMutablePointer<Float>, count: Int, by factor: Float) {
    var i = 0
    let raw = UnsafeMutableRawPointer(x)
    while i + 16 <= count {
        let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) * factor
        raw.storeBytes(of: v, toByteOffset: i * 4, as: SIMD16<Float>.self)
        i += 16
    }
    while i < count { x[i] *= factor; i += 1 }
}
