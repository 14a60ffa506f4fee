import SpatialAttention
import SpatialAttentionReference
import TestSupport
import XCTest

final class NonLocalTests: XCTestCase {
    // Scratch buffers and outputs start as NaN: an element a kernel fails to write shows up.
    override func setUp() { Scratch.poisonsBuffers = true }
    override func tearDown() { Scratch.poisonsBuffers = false }

    func testMatchesNaiveOverShapesHeadsAndLayouts() throws {
        // (channels, heads, keyChannels, valueChannels): the non-local default (C/2), dk ≠ dv, 8 heads.
        let configurations: [(Int, Int, Int?, Int?)] = [(8, 1, nil, nil), (6, 1, 5, 7), (16, 8, 16, 24)]
        try withEvery("C/heads/dk·h/dv·h", in: configurations.map { "\($0)" }.indices) { index in
            let c = configurations[index]
            try withEvery("H×W", in: [(1, 1), (3, 5), (7, 6)]) { hw in
                try withEvery("layout", in: Layout.allCases) { layout in
                    let module = try NonLocal(channels: c.0, heads: c.1, keyChannels: c.2, valueChannels: c.3,
                                              seed: UInt64(c.0 + hw.0))
                    let x = seededTensor(Shape(2, c.0, hw.0, hw.1), layout: layout, seed: UInt64(hw.1))
                    let fast = try module(x, threads: 2)
                    XCTAssertEqual(fast.layout, layout)
                    assertClose(fast, try Naive.attention(x, module: module), tolerance: .attention)
                }
            }
        }
    }

    func testQueryAndKeyBlocksAcrossTheirEdges() throws {
        // 11×13 = 143 pixels against blocks of 1, 16, 17, 64 and one covering everything: the online
        // softmax must give the full softmax whatever the split.
        var module = try NonLocal(channels: 12, heads: 2, keyChannels: 8, valueChannels: 12, seed: 3)
        let x = seededTensor(Shape(1, 12, 11, 13), seed: 4, scale: 2)
        let reference = try Naive.attention(x, module: module)
        withEvery("queryBlock", in: [1, 17, 256]) { qb in
            withEvery("keyBlock", in: [1, 16, 17, 64, 1024]) { kb in
                module.queryBlock = qb
                module.keyBlock = kb
                assertClose(try! module(x, threads: 1), reference, tolerance: .attention)
            }
        }
    }

    func testPlainSelfAttentionOf002WithBiasesAndNoProjection() throws {
        // 002 Eq. 1–2: scale 1, no output projection, no residual; with projection biases.
        let (C, d) = (6, 4)
        var g = SeededGenerator(seed: 9)
        func normal(_ n: Int) -> [Float] { (0..<n).map { _ in RandomDistribution.normal(mean: 0, standardDeviation: 0.5).sample(using: &g) } }
        let module = try NonLocal(channels: C, heads: 1, scale: 1, residual: false,
                                  queryWeight: normal(d * C), keyWeight: normal(d * C), valueWeight: normal(d * C),
                                  queryBias: normal(d), keyBias: normal(d), valueBias: normal(d))
        XCTAssertEqual(module.outputChannels, d)
        try withEvery("layout", in: Layout.allCases) { layout in
            let x = seededTensor(Shape(2, C, 5, 4), layout: layout, seed: 10)
            assertClose(try module(x), try Naive.attention(x, module: module), tolerance: .attention)
        }
    }

    func testLargeLogitsStayFinite() throws {
        // Logits of order 10³: exp without the running max would overflow.
        let module = try NonLocal(channels: 8, heads: 1, scale: 1, seed: 5)
        let x = seededTensor(Shape(1, 8, 6, 6), seed: 6, scale: 30)
        let y = try module(x)
        XCTAssertTrue(y.scalars.allSatisfy(\.isFinite))
        assertClose(y, try Naive.attention(x, module: module), tolerance: .attention)
    }

    func testResultDoesNotDependOnThreadCount() throws {
        let module = try NonLocal(channels: 16, heads: 2, seed: 7)
        let x = seededTensor(Shape(2, 16, 9, 9), seed: 8)
        let one = try module(x, threads: 1)
        withEvery("threads", in: [2, 5]) { t in assertClose(try! module(x, threads: t), one, tolerance: .exact) }
    }

    func testNaNPropagatesLikeTheNaiveTwin() throws {
        let module = try NonLocal(channels: 4, seed: 1)
        var x = seededTensor(Shape(1, 4, 3, 3), seed: 2)
        x[0, 2, 1, 1] = .nan
        // Every query attends to the NaN key: every output is NaN.
        assertClose(try module(x), try Naive.attention(x, module: module), tolerance: .attention, expectingNonFinite: true)
    }

    func testParameterAndMACCounts() throws {
        let module = try NonLocal(channels: 64, seed: 1)  // 32 inner channels, W_O 64×32 + bias
        XCTAssertEqual(module.parameterCount, 3 * 32 * 64 + 64 * 32 + 64)
        let P = 14 * 14
        XCTAssertEqual(try module.multiplyAccumulates(for: Shape(1, 64, 14, 14)),
                       P * 64 * 96 + P * P * 64 + P * 32 * 64)
    }

    func testBadShapesThrowNamingThem() throws {
        let module = try NonLocal(channels: 8, seed: 1)
        assertThrowsShapeError(try module(seededTensor(Shape(1, 5, 2, 2), seed: 1)), mentioning: ["8", "[1, 5, 2, 2]"])
        assertThrowsShapeError(try NonLocal(channels: 8, heads: 3, seed: 1), mentioning: ["heads 3"])
        assertThrowsShapeError(try NonLocal(channels: 8, outputProjection: false, residual: true, seed: 1),
                               mentioning: ["residual", "8"])
        assertThrowsShapeError(try NonLocal(channels: 2, heads: 1, scale: 1, residual: false, queryWeight: [1, 2],
                                            keyWeight: [1, 2], valueWeight: [1, 2], queryBias: [1, 2]),
                               mentioning: ["query bias"])
        // Paths no test reached before: key weight not matching the query weight, a half-given output
        // projection, key channels not a multiple of heads.
        assertThrowsShapeError(try NonLocal(channels: 2, heads: 1, scale: 1, residual: false, queryWeight: [1, 2],
                                            keyWeight: [1, 2, 3, 4], valueWeight: [1, 2]),
                               mentioning: ["key [4]", "query [2]"])
        assertThrowsShapeError(try NonLocal(channels: 2, heads: 1, scale: 1, residual: false, queryWeight: [1, 2],
                                            keyWeight: [1, 2], valueWeight: [1, 2], outputWeight: [1, 2]),
                               mentioning: ["output weight [2]", "[2, 1]"])
        assertThrowsShapeError(try NonLocal(channels: 2, heads: 2, scale: 1, residual: false, queryWeight: [1, 2],
                                            keyWeight: [1, 2], valueWeight: [1, 2, 3, 4]),
                               mentioning: ["key channels 1", "heads 2"])
    }
}
