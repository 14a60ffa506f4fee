@testable import SpatialAttention
import SpatialAttentionReference
import TestSupport
import XCTest

final class GEMMTests: XCTestCase {
    func testSgemmMatchesNaiveAcrossShapesAndTransposes() throws {
        var generator = SeededGenerator(seed: 7)
        withEvery("m", in: [1, 3, 16, 17, 64]) { m in
            withEvery("n", in: [1, 5, 16, 33]) { n in
                withEvery("k", in: [1, 7, 64, 257]) { k in
                    withEvery("transpose", in: [(false, false), (true, false), (false, true), (true, true)]) { t in
                        let a = (0..<(m * k)).map { _ in RandomDistribution.normal(mean: 0, standardDeviation: 1).sample(using: &generator) }
                        let b = (0..<(k * n)).map { _ in RandomDistribution.normal(mean: 0, standardDeviation: 1).sample(using: &generator) }
                        let fast = try! GEMM.multiply(a, b, m: m, n: n, k: k, transposeA: t.0, transposeB: t.1)
                        let ref = Naive.gemm(a, b, m: m, n: n, k: k, transposeA: t.0, transposeB: t.1)
                        assertClose(fast, ref, tolerance: .gemm)
                    }
                }
            }
        }
    }

    /// The executables' restart rule: AVX-512 kernels where the CPU has AVX-512 and OpenBLAS runs others.
    func testRecommendedCoreTypeAsksForAVX512KernelsOnlyWhereTheyAreMissing() {
        for core in ["Haswell", "Zen", "Prescott", "SandyBridge"] {
            XCTAssertEqual(BLAS.recommendedCoreType(running: core, cpuSupportsAVX512: true), "SkylakeX", core)
            XCTAssertNil(BLAS.recommendedCoreType(running: core, cpuSupportsAVX512: false), core)
        }
        for core in ["SkylakeX", "Cooperlake", "SapphireRapids", "skylakex"] {
            XCTAssertNil(BLAS.recommendedCoreType(running: core, cpuSupportsAVX512: true), core)
        }
        // This process: whatever it runs, the rule's answer for it is what the property gives.
        XCTAssertEqual(BLAS.recommendedCoreType,
                       BLAS.recommendedCoreType(running: BLAS.coreName, cpuSupportsAVX512: BLAS.cpuSupportsAVX512))
    }

    func testSgemmAccumulatesIntoCWithAlphaAndBeta() {
        let (m, n, k) = (5, 7, 9)
        var generator = SeededGenerator(seed: 11)
        let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &generator) }
        let b = (0..<(k * n)).map { _ in Float.random(in: -1...1, using: &generator) }
        let c0 = (0..<(m * n)).map { _ in Float.random(in: -1...1, using: &generator) }
        var c = c0
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    GEMM.multiply(m: m, n: n, k: k, alpha: 0.5, a: pa.baseAddress!, lda: k,
                                  b: pb.baseAddress!, ldb: n, beta: 2, c: pc.baseAddress!, ldc: n)
                }
            }
        }
        let product = Naive.gemm(a, b, m: m, n: n, k: k)
        let expected = zip(product, c0).map { 0.5 * $0 + 2 * Double($1) }
        assertClose(c, expected, tolerance: .gemm)
    }

    func testMismatchedArraysThrowNamingTheDimensions() {
        assertThrowsShapeError(try GEMM.multiply([1, 2, 3], [1, 2], m: 2, n: 1, k: 2), mentioning: ["A has 3", "2·2"])
    }
}
