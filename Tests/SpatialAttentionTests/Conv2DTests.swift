import SpatialAttention
import SpatialAttentionReference
import TestSupport
import XCTest

final class Conv2DTests: XCTestCase {
    // Scratch buffers and uninitialised outputs start as NaN: an element a kernel fails to write shows up.
    override func setUp() { Scratch.poisonsBuffers = true }
    override func tearDown() { Scratch.poisonsBuffers = false }

    /// A convolution with seeded weights and bias.
    private func makeConv(_ c: Int, _ k: Int, _ window: WindowGeometry, groups: Int = 1,
                          activation: ActivationFunction = .identity, seed: UInt64) throws -> Conv2D {
        try Conv2D.random(inputChannels: c, outputChannels: k, window: window, groups: groups, bias: true,
                          activation: activation, seed: seed)
    }

    /// Runs `conv` on `x` with `algorithm` into a NaN-filled output and compares with the naive twin.
    private func check(_ conv: Conv2D, _ x: Tensor, algorithm: Conv2D.Algorithm, residual: Tensor? = nil,
                       threads: Int = 1, file: StaticString = #filePath, line: UInt = #line) throws {
        let shape = try conv.outputShape(for: x.shape)
        var y = try Tensor(shape: shape, repeating: .nan)
        try conv.apply(x, into: &y, residual: residual, algorithm: algorithm, threads: threads)
        let expected = try Naive.conv2d(ReferenceTensor(x), conv, residual: residual.map(ReferenceTensor.init))
        assertClose(y, expected, tolerance: .convolution, "\(algorithm)", file: file, line: line)
    }

    func testKernelStridePaddingDilationGroupsSweepMatchesNaive() throws {
        let C = 4
        var cases = 0
        try withEvery("k", in: [1, 3, 5, 7]) { k in
            try withEvery("stride", in: [1, 2]) { s in
                try withEvery("pad", in: [0, 1, 2, 3]) { p in
                    try withEvery("dilation", in: [1, 2]) { d in
                        try withEvery("groups×K", in: [(1, 6), (2, 6), (C, C), (C, 2 * C)]) { gk in
                            let window = WindowGeometry(kernel: k, stride: s, padding: p, dilation: d)
                            let hw = (k + p + d) % 2 == 0 ? (13, 11) : (7, 9)
                            guard (try? window.outputSize(height: hw.0, width: hw.1)) != nil else { return }
                            let conv = try makeConv(C, gk.1, window, groups: gk.0, seed: UInt64(k * 1000 + s * 100 + p * 10 + d))
                            let x = seededTensor(Shape(2, C, hw.0, hw.1), seed: UInt64(k + 7 * p))
                            for algorithm in Conv2D.Algorithm.allCases where conv.supports(algorithm) {
                                try check(conv, x, algorithm: algorithm)
                                cases += 1
                            }
                        }
                    }
                }
            }
        }
        XCTAssertGreaterThan(cases, 250, "the sweep skipped most windows")
    }

    func testChannelsAcrossVectorWidthWithResidualAndActivations() throws {
        // C = 33: a 3×3 layer 297 deep crosses the packed kernels' 256-deep block with K = 17 rows.
        try withEvery("C", in: [1, 3, 15, 16, 17, 33]) { c in
            try withEvery("K", in: [1, 16, 17]) { k in
                try withEvery("activation", in: ActivationFunction.allCases) { f in
                    // 1×1 (pointwise, packed), 3×3 stride 2 (im2col, packed) and 3×3 stride 1 (Winograd):
                    // K = 1, 16, 17 on both sides of the packed kernels' 8-row tile.
                    for window in [WindowGeometry(kernel: 1), WindowGeometry(kernel: 3, stride: 2, padding: 1),
                                   WindowGeometry(kernel: 3, padding: 1)] {
                        let conv = try makeConv(c, k, window, activation: f, seed: UInt64(c * 31 + k))
                        let x = seededTensor(Shape(3, c, 9, 10), seed: UInt64(c + k), scale: 2)
                        let residual = seededTensor(try conv.outputShape(for: x.shape), seed: 99)
                        for algorithm in Conv2D.Algorithm.allCases where conv.supports(algorithm) {
                            try check(conv, x, algorithm: algorithm, residual: residual)
                        }
                    }
                }
            }
        }
    }

    func testOneByOneSpatialAndBatchOfOne() throws {
        let conv = try makeConv(8, 5, WindowGeometry(kernel: 3, padding: 1), seed: 3)
        try check(conv, seededTensor(Shape(1, 8, 1, 1), seed: 4), algorithm: .im2col)
        let pointwise = try makeConv(8, 5, WindowGeometry(kernel: 1), seed: 5)
        try check(pointwise, seededTensor(Shape(4, 8, 1, 1), seed: 6), algorithm: .pointwise)
    }

    /// Output planes above `batchedGEMMPixelLimit` (1024) run one GEMM per image; smaller ones one
    /// GEMM over the batch. Both paths, with residual, on two threads.
    func testPerImageAndBatchedGEMMPathsWithTwoThreads() throws {
        try withEvery("H×W", in: [(35, 33), (8, 8)]) { hw in
            for (window, groups) in [(WindowGeometry(kernel: 1), 1), (WindowGeometry(kernel: 3, padding: 1), 1),
                                     (WindowGeometry(kernel: 3, padding: 1), 2)] {
                let conv = try makeConv(6, 10, window, groups: groups, activation: .relu, seed: 11)
                let x = seededTensor(Shape(3, 6, hw.0, hw.1), seed: 12)
                let residual = seededTensor(try conv.outputShape(for: x.shape), seed: 13)
                for algorithm in Conv2D.Algorithm.allCases where conv.supports(algorithm) {
                    try check(conv, x, algorithm: algorithm, residual: residual, threads: 2)
                }
            }
        }
    }

    func testResNet50ConvolutionShapesOnEveryAlgorithm() throws {
        // Real channel counts on small planes (the naive convolution in Double is slow). Every kernel
        // that applies, not only the preferred one: the baseline build prefers OpenBLAS and would
        // otherwise never run the packed and Winograd kernels past one 256-deep block, the native
        // build never OpenBLAS on these shapes.
        for (c, k, window) in [(64, 64, WindowGeometry(kernel: 3, padding: 1)), (256, 128, WindowGeometry(kernel: 1)),
                               (128, 128, WindowGeometry(kernel: 3, stride: 2, padding: 1)),
                               (3, 64, WindowGeometry(kernel: 7, stride: 2, padding: 3)),
                               (512, 1024, WindowGeometry(kernel: 1, stride: 2)),
                               (512, 512, WindowGeometry(kernel: 3, padding: 1))] {  // Winograd at k = 4608
            let conv = try makeConv(c, k, window, activation: .relu, seed: UInt64(c + k))
            let x = seededTensor(Shape(2, c, 9, 9), seed: UInt64(k))
            let expected = try Naive.conv2d(ReferenceTensor(x), conv)
            var ran: [Conv2D.Algorithm] = []
            for algorithm in Conv2D.Algorithm.allCases where conv.supports(algorithm) {
                var y = try Tensor(shape: expected.shape, repeating: .nan)
                try conv.apply(x, into: &y, algorithm: algorithm, threads: 2)
                assertClose(y, expected, tolerance: .convolution, "\(c)→\(k) \(window) \(algorithm)")
                ran.append(algorithm)
            }
            XCTAssertTrue(ran.contains(.packed) && ran.contains(.im2col), "\(c)→\(k) \(window): \(ran)")
        }
    }

    /// The packed kernel's channels-in-lanes path (7-column tiles, rows in 16-row panels, taken where
    /// the columns leave much of a 32-wide panel empty): the late ResNet-50 layers at batch 1 (49 and
    /// 196 columns, depth up to 4608), row counts that end inside a 16-row panel and a 64-row tile,
    /// two threads splitting the rows, tiles that cross images (batch 3 of 5×5), residual and ReLU.
    func testColumnTilePathOnLateResNet50Shapes() throws {
        let cases: [(c: Int, k: Int, window: WindowGeometry, input: Shape)] = [
            (512, 2048, WindowGeometry(kernel: 1), Shape(1, 512, 7, 7)),
            (2048, 512, WindowGeometry(kernel: 1), Shape(1, 2048, 7, 7)),
            (1024, 2048, WindowGeometry(kernel: 1, stride: 2), Shape(1, 1024, 14, 14)),
            (512, 512, WindowGeometry(kernel: 3, stride: 2, padding: 1), Shape(1, 512, 14, 14)),
            (512, 512, WindowGeometry(kernel: 3, padding: 1), Shape(1, 512, 7, 7)),
            (256, 1024, WindowGeometry(kernel: 1), Shape(1, 256, 14, 14)),
            (40, 100, WindowGeometry(kernel: 1), Shape(1, 40, 7, 7)),
            (24, 40, WindowGeometry(kernel: 3, padding: 1), Shape(3, 24, 5, 5)),
            (9, 17, WindowGeometry(kernel: 1), Shape(3, 9, 5, 5)),
        ]
        for (c, k, window, input) in cases {
            let conv = try makeConv(c, k, window, activation: .relu, seed: UInt64(c * 7 + k))
            let x = seededTensor(input, seed: UInt64(k + 3))
            let residual = seededTensor(try conv.outputShape(for: x.shape), seed: UInt64(c))
            for threads in [1, 2] {
                try check(conv, x, algorithm: .packed, residual: residual, threads: threads)
            }
        }
    }

    func testResultDoesNotDependOnThreadCount() throws {
        let conv = try makeConv(32, 48, WindowGeometry(kernel: 3, padding: 1), activation: .relu, seed: 21)
        let x = seededTensor(Shape(2, 32, 40, 40), seed: 22)
        let one = try conv(x, threads: 1)
        let two = try conv(x, threads: 2)
        assertClose(two, one, tolerance: .convolution)
    }

    func testNHWCInputGivesNHWCOutput() throws {
        let conv = try makeConv(5, 7, WindowGeometry(kernel: 3, padding: 1), seed: 31)
        let x = seededTensor(Shape(2, 5, 6, 7), layout: .nhwc, seed: 32)
        let y = try conv(x)
        XCTAssertEqual(y.layout, .nhwc)
        assertClose(y, try Naive.conv2d(ReferenceTensor(x), conv), tolerance: .convolution)
    }

    func testBatchNormFoldingEqualsConvolutionThenBatchNorm() throws {
        try withEvery("bias", in: [false, true]) { hasBias in
            let conv = try Conv2D.random(inputChannels: 6, outputChannels: 17, window: WindowGeometry(kernel: 3, padding: 1),
                                         bias: hasBias, activation: .relu, seed: 41)
            var g = SeededGenerator(seed: 42)
            let u = { (lo: Float, hi: Float) in (0..<17).map { _ in RandomDistribution.uniform(lower: lo, upper: hi).sample(using: &g) } }
            let bn = try BatchNorm(weight: u(0.5, 1.5), bias: u(-0.5, 0.5), runningMean: u(-0.3, 0.3),
                                   runningVariance: u(0.2, 2))
            let x = seededTensor(Shape(2, 6, 8, 9), seed: 43)
            let folded = try conv.folding(bn)
            // Naive: convolution without activation, then BN, then the activation.
            let plain = try Naive.conv2d(ReferenceTensor(x), weight: conv.weight, bias: conv.bias, outputChannels: 17,
                                         window: conv.window)
            let expected = Naive.activation(Naive.batchNorm(plain, bn), .relu)
            assertClose(try folded(x), expected, tolerance: .convolution)
        }
    }

    func testBadShapesThrow() throws {
        let conv = try makeConv(4, 6, WindowGeometry(kernel: 3), seed: 1)
        assertThrowsShapeError(try conv(seededTensor(Shape(1, 5, 8, 8), seed: 1)), mentioning: ["4", "[1, 5, 8, 8]"])
        assertThrowsShapeError(try conv(seededTensor(Shape(1, 4, 2, 2), seed: 1)), mentioning: ["2×2"])
        assertThrowsShapeError(try conv(seededTensor(Shape(1, 4, 8, 8), seed: 1), residual: seededTensor(Shape(1, 6, 5, 5), seed: 2)),
                               mentioning: ["[1, 6, 5, 5]", "[1, 6, 6, 6]"])
        assertThrowsShapeError(try conv(seededTensor(Shape(1, 4, 8, 8), seed: 1), algorithm: .pointwise), mentioning: ["pointwise"])
        assertThrowsShapeError(try Conv2D(inputChannels: 4, outputChannels: 6, window: WindowGeometry(kernel: 3), groups: 4,
                                          weight: []), mentioning: ["groups"])
        assertThrowsShapeError(try Conv2D(inputChannels: 4, outputChannels: 6, window: WindowGeometry(kernel: 3),
                                          weight: [1, 2]), mentioning: ["[6, 4, 3, 3]"])
        var wrong = try Tensor(shape: Shape(1, 6, 5, 5), repeating: 0)
        assertThrowsShapeError(try conv.apply(seededTensor(Shape(1, 4, 8, 8), seed: 1), into: &wrong), mentioning: ["[1, 6, 6, 6]"])
    }

    func testNaNInputPropagatesThroughReLU() throws {
        let conv = try makeConv(2, 3, WindowGeometry(kernel: 1), activation: .relu, seed: 51)
        var x = seededTensor(Shape(1, 2, 4, 4), seed: 52)
        x[0, 1, 2, 3] = .nan
        let y = try conv(x)
        for k in 0..<3 { XCTAssertTrue(y[0, k, 2, 3].isNaN) }
        XCTAssertFalse(y[0, 0, 0, 0].isNaN)
    }
}
