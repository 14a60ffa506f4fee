import SpatialAttention
import SpatialAttentionReference
import TestSupport
import XCTest

final class ChannelAttentionTests: XCTestCase {
    // Scratch buffers and uninitialised outputs start as NaN: an element a kernel fails to write shows up.
    override func setUp() { Scratch.poisonsBuffers = true }
    override func tearDown() { Scratch.poisonsBuffers = false }

    private func normal(_ count: Int, std: Float, seed: UInt64) -> [Float] {
        var g = SeededGenerator(seed: seed)
        return (0..<count).map { _ in RandomDistribution.normal(mean: 0, standardDeviation: std).sample(using: &g) }
    }

    func testSqueezeExcitationMatchesNaive() throws {
        try withEvery("C/r", in: [(16, 1), (64, 4), (256, 16), (17, 3)]) { cr in
            try withEvery("layout", in: Layout.allCases) { layout in
                let (c, r) = cr
                let se = try SqueezeExcitation(channels: c, hiddenChannels: r, reduceWeight: normal(c * r, std: 0.5, seed: 1),
                                               expandWeight: normal(c * r, std: 0.5, seed: 2))
                let x = seededTensor(Shape(3, c, 5, 6), layout: layout, seed: 3, offset: 0.3)
                let y = try se(x, threads: 2)
                XCTAssertEqual(y.layout, layout)
                assertClose(y, Naive.squeezeExcitation(ReferenceTensor(x), se), tolerance: .convolution)
                XCTAssertEqual(se.parameterCount, 2 * c * r)
                XCTAssertEqual(try se.multiplyAccumulates(for: x.shape), 3 * (2 * c * r + r) + x.shape.count)
            }
        }
    }

    func testEfficientChannelAttentionMatchesNaive() throws {
        try withEvery("C", in: [1, 2, 16, 65]) { c in
            try withEvery("k", in: [1, 3, 5, 7]) { k in
                let eca = try EfficientChannelAttention(channels: c, weight: normal(k, std: 1, seed: UInt64(k)))
                let x = seededTensor(Shape(2, c, 4, 3), seed: 4, offset: 0.2)
                assertClose(try eca(x), Naive.efficientChannelAttention(ReferenceTensor(x), eca), tolerance: .convolution)
                XCTAssertEqual(eca.parameterCount, k)
                XCTAssertEqual(try eca.multiplyAccumulates(for: x.shape), 2 * c * k + x.shape.count)
            }
        }
    }

    func testBadShapesThrow() throws {
        let eca = try EfficientChannelAttention(channels: 8, weight: [1, 2, 3])
        assertThrowsShapeError(try eca(seededTensor(Shape(1, 4, 2, 2), seed: 1)), mentioning: ["8", "[1, 4, 2, 2]"])
        assertThrowsShapeError(try EfficientChannelAttention(channels: 8, weight: [1, 2]), mentioning: ["k = 2"])
        assertThrowsShapeError(try SqueezeExcitation(channels: 8, hiddenChannels: 2, reduceWeight: [1], expandWeight: [1]),
                               mentioning: ["[2, 8]"])
    }
}
