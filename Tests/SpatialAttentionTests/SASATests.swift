import SpatialAttention
import SpatialAttentionReference
import TestSupport
import XCTest

final class SASATests: XCTestCase {
    // Scratch buffers and outputs start as NaN: an element a kernel fails to write shows up.
    override func setUp() { Scratch.poisonsBuffers = true }
    override func tearDown() { Scratch.poisonsBuffers = false }

    func testMatchesNaiveOverShapesKernelsBoundariesAndLayouts() throws {
        // (channels, heads, keyChannels, valueChannels): one head and eight, dk ≠ dv, dv not a multiple of 4.
        let configurations = [(6, 1, 4, 5), (16, 8, 16, 24), (12, 2, 36, 14)]
        try withEvery("C/heads/dk·h/dv·h", in: configurations) { c in
            // Widths on both sides of the 16-lane tile; a window wider than the image (k = 7 on 5×3).
            try withEvery("H×W", in: [(1, 1), (5, 3), (4, 17), (9, 33)]) { hw in
                try withEvery("k", in: [1, 3, 7]) { k in
                    try withEvery("boundary", in: SASA.Boundary.allCases) { boundary in
                        // Alternate layouts without doubling the sweep: H + k is odd only at H = 4, and
                        // adding the head count (1, 8, 2) flips the parity for the one-head configuration,
                        // so every H×W runs in both layouts (before, only 4×17 ever ran in NHWC).
                        let layout: Layout = (hw.0 + k + c.1) % 2 == 1 ? .nchw : .nhwc
                        let module = try SASA(channels: c.0, heads: c.1, keyChannels: c.2, valueChannels: c.3,
                                              kernelSize: k, boundary: boundary, seed: UInt64(c.0 * 13 + k))
                        let x = seededTensor(Shape(2, c.0, hw.0, hw.1), layout: layout, seed: UInt64(hw.0 + hw.1))
                        let fast = try module(x, threads: 2)
                        XCTAssertEqual(fast.layout, layout)
                        assertClose(fast, try Naive.sasa(x, module: module), tolerance: .sasa)
                    }
                }
            }
        }
    }

    func testSASAResNetStageShapeMatchesNaive() throws {
        // A SASA-ResNet-50 stage-4 attention layer: 512 channels, 8 heads (dk = dv = 64), k = 7, 7×7.
        let module = try SASA(channels: 512, seed: 4)
        let x = seededTensor(Shape(1, 512, 7, 7), seed: 5)
        assertClose(try module(x), try Naive.sasa(x, module: module), tolerance: .sasa)
    }

    func testZeroPaddedDiffersFromExcludedOnlyNearTheBorder() throws {
        // The two boundaries agree wherever the window lies inside the image, and differ at the border.
        let excluded = try SASA(channels: 8, heads: 2, kernelSize: 3, seed: 6)
        let padded = try SASA(channels: 8, heads: 2, kernelSize: 3, boundary: .zeroPadded,
                              queryWeight: excluded.queryWeight, keyWeight: excluded.keyWeight,
                              valueWeight: excluded.valueWeight, rowEmbedding: excluded.rowEmbedding,
                              columnEmbedding: excluded.columnEmbedding)
        let x = seededTensor(Shape(1, 8, 6, 6), seed: 7)
        let (a, b) = (try excluded(x), try padded(x))
        XCTAssertEqual(a[0, 3, 2, 3], b[0, 3, 2, 3], accuracy: 1e-6)
        XCTAssertGreaterThan(abs(a[0, 3, 0, 0] - b[0, 3, 0, 0]), 1e-4)
    }

    func testResultDoesNotDependOnThreadCount() throws {
        let module = try SASA(channels: 16, heads: 4, kernelSize: 5, seed: 8)
        let x = seededTensor(Shape(2, 16, 11, 19), seed: 9)
        let one = try module(x, threads: 1)
        withEvery("threads", in: [2, 7]) { t in assertClose(try! module(x, threads: t), one, tolerance: .exact) }
    }

    func testNaNStaysInsideTheWindowsThatSeeIt() throws {
        let module = try SASA(channels: 4, heads: 2, kernelSize: 3, seed: 1)
        var x = seededTensor(Shape(1, 4, 7, 7), seed: 2)
        x[0, 1, 3, 3] = .nan
        let y = try module(x)
        XCTAssertTrue(y[0, 0, 2, 4].isNaN)
        XCTAssertFalse(y[0, 0, 0, 0].isNaN)
        assertClose(y, try Naive.sasa(x, module: module), tolerance: .sasa)
    }

    func testParameterAndMACCounts() throws {
        let module = try SASA(channels: 64, seed: 1)  // 8 heads, dk = dv = 8, k = 7
        XCTAssertEqual(module.parameterCount, 3 * 64 * 64 + 2 * 7 * 4)
        let P = 14 * 14
        XCTAssertEqual(try module.multiplyAccumulates(for: Shape(1, 64, 14, 14)),
                       P * 64 * 192 + P * (49 * 64 + 7 * 64 + 49 * 64))
    }

    func testBadShapesThrowNamingThem() throws {
        let module = try SASA(channels: 8, heads: 2, seed: 1)
        assertThrowsShapeError(try module(seededTensor(Shape(1, 3, 4, 4), seed: 1)), mentioning: ["8", "[1, 3, 4, 4]"])
        assertThrowsShapeError(try SASA(channels: 8, heads: 2, kernelSize: 4, seed: 1), mentioning: ["kernel size 4"])
        assertThrowsShapeError(try SASA(channels: 6, heads: 2, seed: 1), mentioning: ["per head 3", "even"])
        assertThrowsShapeError(try SASA(channels: 8, heads: 2, queryWeight: module.queryWeight, keyWeight: module.keyWeight,
                                        valueWeight: module.valueWeight, rowEmbedding: [1],
                                        columnEmbedding: module.columnEmbedding),
                               mentioning: ["row embedding", "[7, 2]"])
        // Paths no test reached before: mismatched projection weights, key channels not a multiple of heads.
        assertThrowsShapeError(try SASA(channels: 8, heads: 2, queryWeight: module.queryWeight, keyWeight: [1, 2],
                                        valueWeight: module.valueWeight, rowEmbedding: module.rowEmbedding,
                                        columnEmbedding: module.columnEmbedding),
                               mentioning: ["key [2]", "[dk·heads, 8]"])
        assertThrowsShapeError(try SASA(channels: 8, heads: 3, keyChannels: 6, valueChannels: 8, seed: 1),
                               mentioning: ["value channels 8", "heads 3"])
    }
}
