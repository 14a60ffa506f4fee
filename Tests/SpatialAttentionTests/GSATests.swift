import SpatialAttention
import SpatialAttentionReference
import TestSupport
import XCTest

final class GSATests: XCTestCase {
    // Scratch buffers and outputs start as NaN: an element a kernel fails to write shows up.
    override func setUp() { Scratch.poisonsBuffers = true }
    override func tearDown() { Scratch.poisonsBuffers = false }

    /// Every component combination of 003 Table 4 (content, column, row and their unions).
    static let ablations: [GSA.Components] = [
        .all, .content, .positional, .column, .row, [.content, .column], [.content, .row],
    ]

    func testMatchesNaiveOverShapesHeadsExtentsAndLayouts() throws {
        // (channels, heads, keyChannels, valueChannels): dk ≠ dv, one head and eight.
        let configurations = [(5, 1, 3, 4), (16, 8, 16, 24), (12, 2, 34, 18)]
        try withEvery("C/heads/dk·h/dv·h", in: configurations) { c in
            try withEvery("H×W", in: [(1, 1), (1, 6), (5, 3), (7, 9)]) { hw in
                // L = max(H, W) (global) and L smaller than H or W: offsets beyond L − 1 contribute nothing.
                try withEvery("L", in: Set([max(hw.0, hw.1), 2, 1]).sorted()) { L in
                    try withEvery("layout", in: Layout.allCases) { layout in
                        var gsa = try GSA(channels: c.0, heads: c.1, keyChannels: c.2, valueChannels: c.3,
                                          extent: L, seed: UInt64(c.0 * 31 + L))
                        let x = seededTensor(Shape(2, c.0, hw.0, hw.1), layout: layout, seed: UInt64(hw.0 * 7 + hw.1))
                        let reference = try Naive.gsa(x, module: gsa)
                        try withEvery("kernel", in: GSA.PositionalKernel.allCases) { kernel in
                            gsa.positionalKernel = kernel
                            let fast = try gsa(x, threads: 2)
                            XCTAssertEqual(fast.layout, layout)
                            assertClose(fast, reference, tolerance: .gsa)
                        }
                    }
                }
            }
        }
    }

    func testAblationsMatchNaive() throws {
        try withEvery("components", in: GSATests.ablations) { parts in
            try withEvery("layout", in: Layout.allCases) { layout in
                // (3, 50): rows over 48 positions, where the content term joins the row pass.
                try withEvery("H×W", in: [(4, 6), (6, 1), (3, 50)]) { hw in
                    var gsa = try GSA(channels: 8, heads: 2, valueChannels: 6, extent: 3, components: parts, seed: 5)
                    let x = seededTensor(Shape(2, 8, hw.0, hw.1), layout: layout, seed: 9)
                    let reference = try Naive.gsa(x, module: gsa)
                    try withEvery("kernel", in: GSA.PositionalKernel.allCases) { kernel in
                        gsa.positionalKernel = kernel
                        assertClose(try gsa(x), reference, tolerance: .gsa)
                    }
                }
            }
        }
    }

    func testHeadChannelsOnBothSidesOfTheVectorWidth() throws {
        // dk and dv of 15, 16, 17, 33 cross the 16-lane softmax and BN loops (full vectors and tails).
        try withEvery("dk", in: [15, 16, 17, 33]) { dk in
            try withEvery("components", in: [GSA.Components.all, .content]) { parts in
                var gsa = try GSA(channels: 9, heads: 2, keyChannels: 2 * dk, valueChannels: 2 * (dk + 1),
                                  extent: 6, components: parts, seed: UInt64(dk))
                let x = seededTensor(Shape(1, 9, 6, 5), seed: 3)
                let reference = try Naive.gsa(x, module: gsa)
                try withEvery("kernel", in: GSA.PositionalKernel.allCases) { kernel in
                    gsa.positionalKernel = kernel
                    assertClose(try gsa(x), reference, tolerance: .gsa)
                }
            }
        }
    }

    func testGSAResNetStage4ShapeMatchesNaive() throws {
        // The last stage of GSA-ResNet-50: 512 channels, 8 heads (dk = dv = 64), 7×7, L = 7.
        let gsa = try GSA(channels: 512, heads: 8, extent: 7, seed: 50)
        let x = seededTensor(Shape(1, 512, 7, 7), seed: 51)
        assertClose(try gsa(x), try Naive.gsa(x, module: gsa), tolerance: .gsa)
    }

    func testGSAResNetStage1ShapeMatchesNaive() throws {
        // The first stage of GSA-ResNet-50: 64 channels, 8 heads (dk = dv = 8), 56×56, L = 56: rows over
        // 48 positions take the row pass's diagonal blocks, and 56 rows are 7 of the column pass's 8-row blocks.
        let gsa = try GSA(channels: 64, heads: 8, extent: 56, seed: 52)
        let x = seededTensor(Shape(1, 64, 56, 56), seed: 53)
        assertClose(try gsa(x), try Naive.gsa(x, module: gsa), tolerance: .gsa)
    }

    func testTallAndWideImagesWithShortExtentMatchNaive() throws {
        // H ≫ W and W ≫ H with L well below the long side (many shifts have no embedding row), and global.
        // 70 > 64 crosses the fused kernels' 64-position blocks; 100 gives the row pass's 64 × 64 tiles
        // logit blocks of 2 and 3 rows; 2, 29 and 37 take the short rows' 1, 2 and 3 vectors.
        try withEvery("H×W", in: [(23, 2), (2, 29), (17, 13), (2, 37), (3, 70), (67, 2), (2, 100), (100, 3)]) { hw in
            try withEvery("L", in: Set([3, 13, max(hw.0, hw.1)]).sorted()) { L in
                var gsa = try GSA(channels: 16, heads: 8, extent: L, seed: 8)
                let x = seededTensor(Shape(1, 16, hw.0, hw.1), layout: .nhwc, seed: 81)
                let reference = try Naive.gsa(x, module: gsa)
                try withEvery("kernel", in: GSA.PositionalKernel.allCases) { kernel in
                    gsa.positionalKernel = kernel
                    assertClose(try gsa(x, threads: 1), reference, tolerance: .gsa)
                }
            }
        }
    }

    func testResultDoesNotDependOnThreadCount() throws {
        var gsa = try GSA(channels: 32, heads: 4, extent: 12, seed: 4)
        let x = seededTensor(Shape(3, 32, 12, 10), seed: 44)
        withEvery("kernel", in: GSA.PositionalKernel.allCases) { kernel in
            gsa.positionalKernel = kernel
            let one = try! gsa(x, threads: 1)
            withEvery("threads", in: [2, 3, 8]) { t in
                assertClose(try! gsa(x, threads: t), one, tolerance: .exact)
            }
        }
    }

    func testNaNInOnePixelPropagatesLikeTheNaiveTwin() throws {
        try withEvery("components", in: [GSA.Components.all, .column, .row]) { parts in
            let gsa = try GSA(channels: 4, heads: 2, extent: 5, components: parts, seed: 2)
            var x = seededTensor(Shape(1, 4, 5, 5), seed: 6)
            x[0, 1, 2, 3] = .nan
            // With the content part the NaN key reaches every output through the global context.
            assertClose(try gsa(x), try Naive.gsa(x, module: gsa), tolerance: .gsa, expectingNonFinite: parts == .all)
        }
    }

    func testExplicitWeightsReproduceTheSeededModule() throws {
        let seeded = try GSA(channels: 6, heads: 2, keyChannels: 4, valueChannels: 8, extent: 4, seed: 12)
        let explicit = try GSA(channels: 6, heads: 2, extent: 4, queryWeight: seeded.queryWeight,
                               keyWeight: seeded.keyWeight, valueWeight: seeded.valueWeight,
                               columnEmbedding: seeded.columnEmbedding, rowEmbedding: seeded.rowEmbedding,
                               normalization: seeded.normalization)
        let x = seededTensor(Shape(1, 6, 4, 3), seed: 1)
        assertClose(try explicit(x), try seeded(x), tolerance: .exact)
    }

    func testParameterAndMACCounts() throws {
        // C = 64, d = 64, 8 heads (dk = dv = 8), L = 14: 3·64·64 + 2·27·8 + 2·64 parameters.
        let gsa = try GSA(channels: 64, heads: 8, extent: 14, seed: 1)
        XCTAssertEqual(gsa.parameterCount, 3 * 64 * 64 + 2 * 27 * 8 + 2 * 64)
        let P = 14 * 14
        let macs = 3 * P * 64 * 64 + 2 * P * 8 * 8 * 8 + 2 * P * 14 * 16 * 8 + P * 64
        XCTAssertEqual(try gsa.multiplyAccumulates(for: Shape(2, 64, 14, 14)), 2 * macs)
        let positionalOnly = try GSA(channels: 64, heads: 8, extent: 14, components: .positional, seed: 1)
        XCTAssertEqual(positionalOnly.parameterCount, 2 * 64 * 64 + 2 * 27 * 8 + 2 * 64)
        let contentOnly = try GSA(channels: 64, heads: 8, extent: 14, components: .content, seed: 1)
        XCTAssertEqual(contentOnly.parameterCount, 3 * 64 * 64)
        XCTAssertNil(contentOnly.normalization)
    }

    func testBadShapesThrowNamingThem() throws {
        let gsa = try GSA(channels: 8, heads: 2, extent: 4, seed: 1)
        assertThrowsShapeError(try gsa(seededTensor(Shape(1, 7, 4, 4), seed: 1)), mentioning: ["8", "[1, 7, 4, 4]"])
        assertThrowsShapeError(try GSA(channels: 8, heads: 3, extent: 4, seed: 1), mentioning: ["heads 3"])
        assertThrowsShapeError(try GSA(channels: 8, heads: 2, extent: 0, seed: 1), mentioning: ["L = 0"])
        assertThrowsShapeError(try GSA(channels: 8, heads: 2, extent: 4, queryWeight: gsa.queryWeight,
                                       keyWeight: gsa.keyWeight, valueWeight: gsa.valueWeight,
                                       columnEmbedding: [1, 2, 3], rowEmbedding: gsa.rowEmbedding,
                                       normalization: gsa.normalization),
                               mentioning: ["column embedding", "[7, 4]"])
        assertThrowsShapeError(try GSA(channels: 8, heads: 2, extent: 4, components: .content,
                                       queryWeight: gsa.queryWeight, keyWeight: gsa.keyWeight,
                                       valueWeight: gsa.valueWeight, columnEmbedding: gsa.columnEmbedding,
                                       rowEmbedding: [], normalization: nil),
                               mentioning: ["column embedding", "none"])
        // Paths no test reached before: a query weight that is not [d, C], a normalization of the wrong
        // width or where the components need none, and no component at all.
        assertThrowsShapeError(try GSA(channels: 8, heads: 2, extent: 4, queryWeight: [1, 2, 3],
                                       keyWeight: gsa.keyWeight, valueWeight: gsa.valueWeight,
                                       columnEmbedding: gsa.columnEmbedding, rowEmbedding: gsa.rowEmbedding,
                                       normalization: gsa.normalization),
                               mentioning: ["query weight [3]", "[d, 8]"])
        let narrow = try GSA(channels: 8, heads: 2, valueChannels: 4, extent: 4, seed: 1).normalization
        assertThrowsShapeError(try GSA(channels: 8, heads: 2, extent: 4, queryWeight: gsa.queryWeight,
                                       keyWeight: gsa.keyWeight, valueWeight: gsa.valueWeight,
                                       columnEmbedding: gsa.columnEmbedding, rowEmbedding: gsa.rowEmbedding,
                                       normalization: narrow),
                               mentioning: ["normalization", "[8]", "got [4]"])
        assertThrowsShapeError(try GSA(channels: 8, heads: 2, extent: 4, components: .content,
                                       queryWeight: gsa.queryWeight, keyWeight: gsa.keyWeight,
                                       valueWeight: gsa.valueWeight, columnEmbedding: [], rowEmbedding: [],
                                       normalization: gsa.normalization),
                               mentioning: ["normalization", "got [8]"])
        assertThrowsShapeError(try GSA(channels: 8, heads: 2, extent: 4, components: [], seed: 1),
                               mentioning: ["at least one component"])
    }

    func testEmptyBatchGivesEmptyOutput() throws {
        let gsa = try GSA(channels: 4, heads: 2, extent: 3, seed: 1)
        let y = try gsa(try Tensor(shape: Shape(0, 4, 3, 3), repeating: 0))
        XCTAssertEqual(y.shape, Shape(0, 4, 3, 3))
    }
}
