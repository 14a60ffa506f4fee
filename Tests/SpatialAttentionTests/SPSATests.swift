import SpatialAttention
import SpatialAttentionReference
import TestSupport
import XCTest

final class SPSATests: XCTestCase {
    // Scratch buffers and uninitialised outputs start as NaN: an element a kernel fails to write shows up.
    override func setUp() { Scratch.poisonsBuffers = true }
    override func tearDown() { Scratch.poisonsBuffers = false }

    /// Runs the fast kernel into a NaN-filled output (so an unwritten element fails) and compares it
    /// with the naive transcription.
    private func check(_ x: Tensor, _ layer: SPSA, cph: Int, threads: Int? = nil,
                       file: StaticString = #filePath, line: UInt = #line) {
        var out = x.nanFilledLike()
        XCTAssertNoThrow(try layer.apply(to: x, into: &out, threads: threads), file: file, line: line)
        let ref = Naive.spsa(x, alpha: layer.alpha, channelsPerHead: cph, reverse: layer.reverse,
                             similarity: layer.similarity)
        assertClose(out, ref, tolerance: .spsa, file: file, line: line)
    }

    func testMatchesNaiveOverSweptShapesLayoutsAndHeads() {
        let channelCounts = [1, 2, 3, 15, 16, 17, 64, 65, 128, 256]
        withEvery("N", in: [1, 3]) { n in
            withEvery("C", in: channelCounts) { c in
                // Heads dividing C: one head, one channel a head, and one in between.
                let headCounts = Set([1, c, [2, 4, 5, 3].first(where: { c % $0 == 0 && $0 < c }) ?? 1])
                withEvery("heads", in: headCounts.sorted()) { heads in
                    withEvery("H×W", in: [(1, 1), (1, 7), (7, 7), (13, 11)]) { hw in
                        withEvery("layout", in: Layout.allCases) { layout in
                            let x = seededTensor(Shape(n, c, hw.0, hw.1), layout: layout,
                                                 seed: UInt64(n * 1000 + c * 10 + heads))
                            check(x, SPSA(alpha: 2, heads: heads), cph: c / heads)
                        }
                    }
                }
            }
        }
    }

    func testMatchesNaiveOnResNet50ShapesWithTailPixels() {
        // 56×56 = 3136 pixels (49 chunks of 64), 28×28 = 784 (a 16-pixel tail), 14×14 = 196, 7×7 = 49.
        withEvery("shape", in: [(64, 56, 1), (128, 28, 2), (256, 14, 4), (512, 7, 8)]) { s in
            withEvery("layout", in: Layout.allCases) { layout in
                let x = seededTensor(Shape(1, s.0, s.1, s.1), layout: layout, seed: UInt64(s.0))
                check(x, SPSA(alpha: 2, channelsPerHead: 64), cph: 64)
            }
        }
    }

    func testAlphaReverseAndCosineOptions() {
        withEvery("alpha", in: [Float(0), 1, 2, 2.5, 3]) { alpha in
            withEvery("reverse", in: [true, false]) { reverse in
                withEvery("similarity", in: SPSA.Similarity.allCases) { similarity in
                    withEvery("layout", in: Layout.allCases) { layout in
                        let x = seededTensor(Shape(2, 34, 9, 10), layout: layout, seed: 42)
                        check(x, SPSA(alpha: alpha, channelsPerHead: 17, reverse: reverse, similarity: similarity),
                              cph: 17)
                    }
                }
            }
        }
    }

    func testLargeCommonOffsetKeepsFullAccuracy() {
        withEvery("offset", in: [Float(1000), -1000, 1e5]) { offset in
            withEvery("layout", in: Layout.allCases) { layout in
                let x = seededTensor(Shape(2, 64, 14, 13), layout: layout, seed: 9, offset: offset)
                check(x, SPSA(alpha: 2, channelsPerHead: 32), cph: 32)
            }
        }
    }

    func testConstantPixelHasZeroVarianceAndGetsHalfToTheAlpha() throws {
        // ReLU-like input: many pixels are all-zero, some constant non-zero; the rest random.
        withEvery("layout", in: Layout.allCases) { layout in
            withEvery("alpha", in: [Float(1), 2, 2.5]) { alpha in
                let random = seededTensor(Shape(2, 32, 9, 9), seed: 3)
                let x = try! Tensor(shape: random.shape, layout: layout) { n, c, h, w in
                    if (h + w) % 3 == 0 { return 0 }
                    if (h + w) % 3 == 1 { return 0.1 * Float(h + 1) }
                    return random[n, c, h, w]
                }
                let out = try! SPSA(alpha: alpha, channelsPerHead: 16)(x)
                let half = Float(pow(0.5, Double(alpha)))
                for n in 0..<2 { for c in 0..<32 { for h in 0..<9 { for w in 0..<9 where (h + w) % 3 == 1 {
                    XCTAssertEqual(out[n, c, h, w], half * x[n, c, h, w], accuracy: 1e-6 * abs(x[n, c, h, w]))
                } } } }
                XCTAssertFalse(out.scalars.contains { $0.isNaN })
                check(x, SPSA(alpha: alpha, channelsPerHead: 16), cph: 16)
            }
        }
    }

    func testConstantChannelsAndConstantTensor() throws {
        withEvery("layout", in: Layout.allCases) { layout in
            // Each channel constant over the image: every pixel equals the key, corr = 1.
            let channels = try! Tensor(shape: Shape(1, 16, 5, 6), layout: layout) { _, c, _, _ in Float(c) * 0.37 - 2 }
            check(channels, SPSA(alpha: 2, channelsPerHead: 16), cph: 16)
            let out = try! SPSA(alpha: 1, channelsPerHead: 16)(channels)
            let expected = Float(1 - 1 / (1 + exp(-1.0)))  // 1 − σ(1)
            XCTAssertEqual(out[0, 5, 2, 3] / channels[0, 5, 2, 3], expected, accuracy: 1e-6)
            // A constant tensor: the key is constant too, A = 0.5^α everywhere.
            let constant = try! Tensor(shape: Shape(2, 8, 3, 3), layout: layout, repeating: 1.7)
            let y = try! SPSA(alpha: 2, channelsPerHead: 4)(constant)
            XCTAssertTrue(y.scalars.allSatisfy { abs($0 - 0.25 * 1.7) <= 1e-7 })
        }
    }

    func testOneChannelPerHeadIsDegenerate() {
        let x = seededTensor(Shape(2, 5, 4, 3), seed: 77)
        let y = try! SPSA(alpha: 2, channelsPerHead: 1)(x)
        for i in x.scalars.indices { XCTAssertEqual(y.scalars[i], 0.25 * x.scalars[i], accuracy: 1e-7) }
    }

    func testNaNInputPoisonsOnlyItsHead() {
        withEvery("layout", in: Layout.allCases) { layout in
            var x = seededTensor(Shape(2, 8, 5, 5), layout: layout, seed: 5)
            x[1, 5, 2, 2] = .nan  // image 1, head 1 (channels 4..<8)
            let y = try! SPSA(alpha: 2, channelsPerHead: 4)(x)
            for c in 0..<8 { for h in 0..<5 { for w in 0..<5 {
                XCTAssertTrue(y[1, c, h, w].isNaN == (c >= 4), "n=1 c=\(c) h=\(h) w=\(w)")
                XCTAssertFalse(y[0, c, h, w].isNaN)
            } } }
            check(x, SPSA(alpha: 2, channelsPerHead: 4), cph: 4)
            var inf = x
            inf[1, 5, 2, 2] = .infinity
            check(inf, SPSA(alpha: 2, channelsPerHead: 4), cph: 4)
        }
    }

    func testLayoutsGiveTheSameNumbers() {
        let x = seededTensor(Shape(2, 128, 13, 11), seed: 21)
        let a = try! SPSA(alpha: 2.5, channelsPerHead: 64)(x)
        let b = try! SPSA(alpha: 2.5, channelsPerHead: 64)(x.converted(to: .nhwc))
        assertClose(b.converted(to: .nchw), a, tolerance: .spsa)
    }

    func testOneThreadAndTwoThreadsAgree() {
        // Large enough to pass the parallel threshold, with a pixel tail.
        withEvery("layout", in: Layout.allCases) { layout in
            let x = seededTensor(Shape(4, 128, 45, 37), layout: layout, seed: 8)
            let one = try! SPSA(alpha: 2, channelsPerHead: 64)(x, threads: 1)
            let two = try! SPSA(alpha: 2, channelsPerHead: 64)(x, threads: 2)
            XCTAssertEqual(one.scalars, two.scalars, "the work split must not change the arithmetic")
            check(x, SPSA(alpha: 2, channelsPerHead: 64), cph: 64, threads: 2)
        }
    }

    func testInPlaceMatchesOutOfPlace() {
        withEvery("layout", in: Layout.allCases) { layout in
            let x = seededTensor(Shape(3, 64, 17, 19), layout: layout, seed: 12)
            var y = x
            do { try SPSA(alpha: 2, channelsPerHead: 32).applyInPlace(&y) } catch { XCTFail("\(error)") }
            XCTAssertEqual(y, try! SPSA(alpha: 2, channelsPerHead: 32)(x))
        }
    }

    func testBadShapesAndOptionsThrow() {
        let x = seededTensor(Shape(1, 65, 4, 4), seed: 1)
        assertThrowsShapeError(try SPSA()(x), mentioning: ["65", "64"])
        assertThrowsShapeError(try SPSA(heads: 2)(x), mentioning: ["65", "heads = 2"])
        let empty = try! Tensor(shape: Shape(0, 64, 4, 4), repeating: 0)
        assertThrowsShapeError(try SPSA()(empty), mentioning: ["[0, 64, 4, 4]"])
        var wrong = try! Tensor(shape: Shape(1, 65, 4, 5), repeating: 0)
        assertThrowsShapeError(try SPSA(channelsPerHead: 5).apply(to: x, into: &wrong), mentioning: ["[1, 65, 4, 5]"])
        XCTAssertThrowsError(try SPSA(alpha: -1, channelsPerHead: 5)(x)) { XCTAssertTrue($0 is ArgumentError) }
        XCTAssertThrowsError(try SPSA(channelsPerHead: 0)(x)) { XCTAssertTrue($0 is ArgumentError) }
        XCTAssertThrowsError(try Tensor(shape: Shape(1, -2, 3, 3), repeating: 0)) {
            XCTAssertTrue(String(describing: $0).contains("[1, -2, 3, 3]"))
        }
    }

    func testLayerConformance() throws {
        let layer = SPSA(heads: 4)
        XCTAssertEqual(layer.parameterCount, 0)
        XCTAssertEqual(try layer.outputShape(for: Shape(2, 256, 14, 14)), Shape(2, 256, 14, 14))
        XCTAssertEqual(try layer.multiplyAccumulates(for: Shape(2, 256, 14, 14)), 0)
    }
}
