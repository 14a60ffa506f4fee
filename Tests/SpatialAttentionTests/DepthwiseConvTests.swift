import SpatialAttention
import SpatialAttentionReference
import TestSupport
import XCTest

/// The depthwise kernel (`ck_depthwise_conv`) against the naive convolution: the fused activation,
/// the residual epilogue (the activation must follow the addition), output rows wider than the
/// 16-float vector, and the MobileNetV2 planes that split over two threads. Conv2DTests reaches the
/// depthwise kernel only at 4 channels (no activation, no residual) and at 1 channel (C = K = 1 is
/// depthwise: rows of at most 10 floats, one thread).
final class DepthwiseConvTests: XCTestCase {
    override func setUp() { Scratch.poisonsBuffers = true }
    override func tearDown() { Scratch.poisonsBuffers = false }

    /// Both kernels that compute a depthwise layer (depthwise and im2col), into NaN, against Naive.
    private func check(_ conv: Conv2D, _ x: Tensor, residual: Tensor? = nil, threads: Int = 1,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertTrue(conv.isDepthwise, file: file, line: line)
        XCTAssertEqual(conv.preferredAlgorithm, .depthwise, file: file, line: line)
        let expected = try Naive.conv2d(ReferenceTensor(x), conv, residual: residual.map(ReferenceTensor.init))
        for algorithm in [Conv2D.Algorithm.depthwise, .im2col] {
            var y = try Tensor(shape: expected.shape, repeating: .nan)
            try conv.apply(x, into: &y, residual: residual, algorithm: algorithm, threads: threads)
            assertClose(y, expected, tolerance: .convolution, "\(algorithm)", file: file, line: line)
        }
    }

    func testActivationsResidualAndWindowsMatchNaive() throws {
        let windows = [WindowGeometry(kernel: 3, padding: 1), WindowGeometry(kernel: 3, stride: 2, padding: 1),
                       WindowGeometry(kernel: 5, padding: 2), WindowGeometry(kernel: 3, padding: 2, dilation: 2),
                       WindowGeometry(kernel: 3)]
        try withEvery("C", in: [1, 17]) { c in
            // Output widths 1, 35 and 37 (> 2 vectors, odd) and 18/19 at stride 2.
            try withEvery("H×W", in: [(1, 1), (5, 37), (4, 39)]) { hw in
                try withEvery("window", in: windows) { window in
                    guard (try? window.outputSize(height: hw.0, width: hw.1)) != nil else { return }
                    try withEvery("activation", in: ActivationFunction.allCases) { f in
                        let conv = try Conv2D.random(inputChannels: c, outputChannels: c, window: window, groups: c,
                                                     bias: true, activation: f, seed: UInt64(c * 7 + window.kernelHeight))
                        // Scale 3: ReLU6 clamps at both ends.
                        let x = seededTensor(Shape(2, c, hw.0, hw.1), seed: UInt64(hw.1), scale: 3)
                        try check(conv, x)
                        let residual = seededTensor(try conv.outputShape(for: x.shape), seed: 5, scale: 3)
                        try check(conv, x, residual: residual)
                    }
                }
            }
        }
    }

    func testMobileNetV2PlanesOnTwoThreads() throws {
        // The first two depthwise layers of MobileNetV2 at 112×112 (3.6 M multiply-adds each): large
        // enough for the plane split to use both threads; the first with a residual.
        for (c, stride, residual) in [(32, 1, true), (96, 2, false)] {
            let window = WindowGeometry(kernel: 3, stride: stride, padding: 1)
            let conv = try Conv2D.random(inputChannels: c, outputChannels: c, window: window, groups: c, bias: true,
                                         activation: .relu6, seed: UInt64(c))
            let x = seededTensor(Shape(1, c, 112, 112), seed: UInt64(c + 1), offset: 0.5, scale: 2)
            let r = residual ? seededTensor(try conv.outputShape(for: x.shape), seed: 3) : nil
            try check(conv, x, residual: r, threads: 2)
            let one = try conv(x, residual: r, threads: 1)
            assertClose(try conv(x, residual: r, threads: 2), one, tolerance: .exact, "threads")
        }
    }
}
