/// Helpers shared by the SIMD kernels of the fused GSA path: the column pass (GSA+ColumnPass.swift) and
/// the row pass (GSA+RowPass.swift), which read the channel-major planes directly.

/// The first 64-byte boundary at or after `p` (the buffer must hold 15 floats more than it uses).
@inline(__always)
func alignedVectors(_ p: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
    let address = UInt(bitPattern: p)
    return p + Int((64 - address % 64) % 64) / MemoryLayout<Float>.stride
}

/// Writes (or adds) the first `count` lanes of `v` (all 16 when `count ≥ 16`, none when `count ≤ 0`).
@inline(__always)
func writeLanes(_ v: SIMD16<Float>, count: Int, into target: UnsafeMutablePointer<Float>, accumulate: Bool) {
    if count >= 16 {
        store16(accumulate ? v + load16(target) : v, target)
    } else if count > 0 {
        for i in 0..<count { target[i] = accumulate ? target[i] + v[i] : v[i] }
    }
}

/// Stores 16 floats at an unaligned address.
@inline(__always)
func store16(_ v: FloatVector, _ p: UnsafeMutablePointer<Float>) { p.storeVector(v) }
