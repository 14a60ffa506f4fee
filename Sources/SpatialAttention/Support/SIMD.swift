import CKernels

/// The vector type of the hand-written kernels: 16 floats, one zmm register on AVX-512, two ymm on
/// AVX2, four xmm in Swift's default SSE-only x86-64 target.
public typealias FloatVector = SIMD16<Float>

extension UnsafePointer where Pointee == Float {
    /// Loads 16 consecutive floats (no alignment needed).
    @inlinable @inline(__always)
    func loadVector(_ offset: Int = 0) -> FloatVector {
        UnsafeRawPointer(self + offset).loadUnaligned(as: FloatVector.self)
    }
}

extension UnsafeMutablePointer where Pointee == Float {
    /// Stores 16 consecutive floats (no alignment needed).
    @inlinable @inline(__always)
    func storeVector(_ value: FloatVector, _ offset: Int = 0) {
        UnsafeMutableRawPointer(self + offset).storeBytes(of: value, as: FloatVector.self)
    }

    /// Loads 16 consecutive floats (no alignment needed).
    @inlinable @inline(__always)
    func loadVector(_ offset: Int = 0) -> FloatVector {
        UnsafeRawPointer(self + offset).loadUnaligned(as: FloatVector.self)
    }
}

/// `a·b + c`. With `SPATIAL_ATTENTION_FMA` defined (the native build of the Makefile, or
/// `SPATIAL_ATTENTION_NATIVE=1`) this is one fused multiply-add; without it, a multiply and an add,
/// because `addingProduct` on the default SSE-only target becomes 16 calls to libm's `fmaf`
/// (docs/design.md).
@inlinable @inline(__always)
func multiplyAdd(_ a: FloatVector, _ b: FloatVector, _ c: FloatVector) -> FloatVector {
    #if SPATIAL_ATTENTION_FMA
    return c.addingProduct(a, b)
    #else
    return a * b + c
    #endif
}

extension SIMD16 where Scalar == Float {
    /// The sum of the 16 lanes as a balanced tree (`SIMD.sum()` is an ordered scalar loop).
    @inlinable @inline(__always)
    var treeSum: Float {
        let a = lowHalf + highHalf
        let b = a.lowHalf + a.highHalf
        let c = b.lowHalf + b.highHalf
        return c[0] + c[1]
    }

    /// The lanes' square roots in one vector instruction (`ck_sqrt16`). `squareRoot()` on SIMD
    /// types takes each lane through libm's scalar path: in SPSA's per-pixel correlation it made
    /// the chunk's finishing step 900 instructions for 64 pixels.
    @inline(__always)
    var vectorSquareRoot: FloatVector {
        var v = self
        withUnsafeMutableBytes(of: &v) { ck_sqrt16($0.baseAddress!.assumingMemoryBound(to: Float.self)) }
        return v
    }
}
