import SpatialAttention
import SpatialAttentionReference
import TestSupport
import XCTest

final class LayerTests: XCTestCase {
    // Scratch buffers and uninitialised outputs start as NaN: an element a kernel fails to write shows up.
    override func setUp() { Scratch.poisonsBuffers = true }
    override func tearDown() { Scratch.poisonsBuffers = false }

    private func uniform(_ count: Int, _ lower: Float, _ upper: Float, seed: UInt64) -> [Float] {
        var g = SeededGenerator(seed: seed)
        return (0..<count).map { _ in RandomDistribution.uniform(lower: lower, upper: upper).sample(using: &g) }
    }

    func testBatchNormMatchesNaiveInBothLayouts() throws {
        try withEvery("C", in: [1, 3, 17]) { c in
            try withEvery("layout", in: Layout.allCases) { layout in
                let bn = try BatchNorm(weight: uniform(c, 0.5, 1.5, seed: 1), bias: uniform(c, -1, 1, seed: 2),
                                       runningMean: uniform(c, -1, 1, seed: 3), runningVariance: uniform(c, 0.1, 3, seed: 4))
                let x = seededTensor(Shape(2, c, 5, 7), layout: layout, seed: 5)
                let y = try bn(x, threads: 2)
                XCTAssertEqual(y.layout, layout)
                assertClose(y, Naive.batchNorm(ReferenceTensor(x), bn), tolerance: .convolution)
                XCTAssertEqual(bn.parameterCount, 2 * c)
                XCTAssertEqual(try bn.multiplyAccumulates(for: x.shape), 2 * c * 35)
            }
        }
    }

    func testMaxPoolMatchesNaiveIncludingStemWindow() throws {
        try withEvery("window", in: [WindowGeometry(kernel: 3, stride: 2, padding: 1), WindowGeometry(kernel: 2, stride: 2),
                                     WindowGeometry(kernel: 3, stride: 1, padding: 1, dilation: 2)]) { window in
            try withEvery("H×W", in: [(1, 1), (7, 9), (16, 16), (112, 112)]) { hw in
                guard (try? window.outputSize(height: hw.0, width: hw.1)) != nil else { return }
                let x = seededTensor(Shape(2, 3, hw.0, hw.1), seed: 7)
                let pool = MaxPool2D(window: window)
                assertClose(try pool(x, threads: 2), try Naive.maxPool(ReferenceTensor(x), window: window), tolerance: .exact)
            }
        }
    }

    func testMaxPoolPropagatesNaN() throws {
        var x = seededTensor(Shape(1, 1, 4, 4), seed: 8)
        x[0, 0, 1, 1] = .nan
        let y = try MaxPool2D(window: WindowGeometry(kernel: 2, stride: 2))(x)
        XCTAssertTrue(y[0, 0, 0, 0].isNaN)
        XCTAssertFalse(y[0, 0, 1, 1].isNaN)
    }

    func testAveragePoolMatchesNaiveWithAndWithoutPaddingInDivisor() throws {
        try withEvery("countsPadding", in: [true, false]) { counts in
            try withEvery("window", in: [WindowGeometry(kernel: 3, stride: 2, padding: 1), WindowGeometry(kernel: 2, stride: 2),
                                         WindowGeometry(kernel: 7)]) { window in
                let x = seededTensor(Shape(2, 4, 9, 11), layout: .nhwc, seed: 9)
                let pool = AvgPool2D(window: window, countsPadding: counts)
                assertClose(try pool(x), try Naive.averagePool(ReferenceTensor(x), window: window, countsPadding: counts),
                            tolerance: .convolution)
            }
        }
        assertThrowsShapeError(try AvgPool2D(window: WindowGeometry(kernel: 3, dilation: 2))(seededTensor(Shape(1, 1, 8, 8), seed: 1)),
                               mentioning: ["dilation"])
    }

    func testGlobalAveragePoolMatchesNaive() throws {
        try withEvery("H×W", in: [(1, 1), (3, 5), (7, 7), (56, 56)]) { hw in
            let x = seededTensor(Shape(3, 5, hw.0, hw.1), seed: 10, offset: 0.5)
            let y = try GlobalAveragePool()(x, threads: 2)
            XCTAssertEqual(y.shape, Shape(3, 5, 1, 1))
            assertClose(y, Naive.globalAveragePool(ReferenceTensor(x)), tolerance: .convolution)
        }
        assertThrowsShapeError(try GlobalAveragePool()(try Tensor(shape: Shape(1, 2, 0, 3), repeating: 0)), mentioning: ["[1, 2, 0, 3]"])
    }

    func testLinearMatchesNaiveOnPooledAndSpatialInputs() throws {
        try withEvery("input", in: [Shape(1, 64, 1, 1), Shape(5, 2048, 1, 1), Shape(3, 4, 3, 5)]) { shape in
            try withEvery("bias", in: [true, false]) { hasBias in
                let features = shape.channels * shape.pixels
                let layer = try Linear(inputFeatures: features, outputFeatures: 17,
                                       weight: uniform(17 * features, -0.1, 0.1, seed: 11),
                                       bias: hasBias ? uniform(17, -1, 1, seed: 12) : nil)
                let x = seededTensor(shape, seed: 13)
                let y = try layer(x, threads: 2)
                XCTAssertEqual(y.shape, Shape(shape.batch, 17, 1, 1))
                assertClose(y, Naive.linear(ReferenceTensor(x), layer), tolerance: .convolution)
                XCTAssertEqual(layer.parameterCount, 17 * features + (hasBias ? 17 : 0))
                XCTAssertEqual(try layer.multiplyAccumulates(for: shape), shape.batch * 17 * features)
            }
        }
        let layer = try Linear(inputFeatures: 8, outputFeatures: 2, weight: [Float](repeating: 1, count: 16))
        assertThrowsShapeError(try layer(seededTensor(Shape(1, 3, 1, 1), seed: 1)), mentioning: ["8", "[1, 3, 1, 1]"])
    }

    func testActivationsMatchNaiveAndKeepNaN() throws {
        try withEvery("function", in: ActivationFunction.allCases) { f in
            var x = seededTensor(Shape(2, 3, 200, 300), seed: 14, scale: 5)
            x[1, 2, 3, 4] = .nan
            let y = try Activation(f)(x, threads: 2)
            assertClose(y, Naive.activation(ReferenceTensor(x), f), tolerance: .exact)
            XCTAssertTrue(y[1, 2, 3, 4].isNaN)
            XCTAssertEqual(try Activation(f).multiplyAccumulates(for: x.shape), f == .identity ? 0 : x.shape.count)
        }
    }

    func testTwoThreadPassesOnResNet50ShapesMatchNaiveAndOneThread() throws {
        // The other tests' inputs are under ParallelWork's 2¹⁷-element threshold a piece, so BN and
        // the pools never split over threads there. These are ResNet-50's own shapes, above 2·2¹⁷.
        let bn = try BatchNorm(weight: uniform(64, 0.5, 1.5, seed: 21), bias: uniform(64, -1, 1, seed: 22),
                               runningMean: uniform(64, -1, 1, seed: 23), runningVariance: uniform(64, 0.1, 3, seed: 24))
        let stem = seededTensor(Shape(2, 64, 56, 56), layout: .nhwc, seed: 25)
        let pool = MaxPool2D(window: WindowGeometry(kernel: 3, stride: 2, padding: 1))
        let conv1 = seededTensor(Shape(1, 64, 112, 112), seed: 26)
        let features = seededTensor(Shape(4, 2048, 7, 7), seed: 27, offset: 0.5)
        let cases: [(String, Tensor, (Int) throws -> Tensor, ReferenceTensor, Tolerance)] = [
            ("BN", stem, { try bn(stem, threads: $0) }, Naive.batchNorm(ReferenceTensor(stem), bn), .convolution),
            ("max pool", conv1, { try pool(conv1, threads: $0) },
             try Naive.maxPool(ReferenceTensor(conv1), window: pool.window), .exact),
            ("GAP", features, { try GlobalAveragePool()(features, threads: $0) },
             Naive.globalAveragePool(ReferenceTensor(features)), .convolution),
        ]
        for (name, x, layer, expected, tolerance) in cases {
            let two = try layer(2)
            XCTAssertEqual(two.layout, x.layout, name)
            assertClose(two, expected, tolerance: tolerance, name)
            assertClose(two, try layer(1), tolerance: .exact, "\(name): one thread against two")
        }
    }

    func testResidualAddsBranchesAndActivates() throws {
        let conv = try Conv2D.random(inputChannels: 4, outputChannels: 4, window: WindowGeometry(kernel: 3, padding: 1),
                                     bias: true, seed: 15)
        let block = Residual(body: [conv], activation: .relu)
        let x = seededTensor(Shape(2, 4, 6, 6), seed: 16)
        let expected = Naive.activation(Naive.add(try Naive.conv2d(ReferenceTensor(x), conv), ReferenceTensor(x)), .relu)
        assertClose(try block(x), expected, tolerance: .convolution)
        XCTAssertEqual(block.parameterCount, 4 * 4 * 9 + 4)
        XCTAssertEqual(try block.multiplyAccumulates(for: x.shape), 2 * 4 * 36 * 4 * 9 + 2 * 4 * 36)
        assertThrowsShapeError(try Residual.add(x, seededTensor(Shape(2, 4, 6, 5), seed: 1)), mentioning: ["[2, 4, 6, 5]"])
    }
}
