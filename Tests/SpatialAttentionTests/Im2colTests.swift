import SpatialAttention
import SpatialAttentionReference
import TestSupport
import XCTest

final class Im2colTests: XCTestCase {
    func testIm2colMatchesNaiveOverKernelStridePaddingDilation() throws {
        withEvery("C", in: [1, 3]) { c in
            withEvery("H×W", in: [(1, 1), (5, 7), (8, 8), (13, 11)]) { hw in
                withEvery("k", in: [1, 3, 5, 7]) { k in
                    withEvery("stride", in: [1, 2]) { s in
                        withEvery("pad", in: [0, 1, 3]) { p in
                            withEvery("dilation", in: [1, 2]) { d in
                                let window = WindowGeometry(kernel: k, stride: s, padding: p, dilation: d)
                                guard (try? window.outputSize(height: hw.0, width: hw.1)) != nil else { return }
                                let x = seededTensor(Shape(2, c, hw.0, hw.1), seed: UInt64(c * 100 + k))
                                let fast = try! Im2col.columns(of: x, image: 1, window: window)
                                let ref = try! Naive.im2col(x, image: 1, window: window)
                                assertClose(fast, ref, tolerance: .exact)
                            }
                        }
                    }
                }
            }
        }
    }

    func testIm2colStride2Pad1RectangularKernel() throws {
        let window = WindowGeometry(kernelHeight: 3, kernelWidth: 2, strideHeight: 2, strideWidth: 1,
                                    paddingHeight: 1, paddingWidth: 0, dilationHeight: 1, dilationWidth: 2)
        let x = seededTensor(Shape(1, 2, 6, 9), seed: 5)
        assertClose(try Im2col.columns(of: x, image: 0, window: window),
                    try Naive.im2col(x, image: 0, window: window), tolerance: .exact)
    }

    func testWindowThatDoesNotFitThrows() {
        assertThrowsShapeError(try WindowGeometry(kernel: 5).outputSize(height: 3, width: 3), mentioning: ["3×3"])
        assertThrowsShapeError(try WindowGeometry(kernel: 3, stride: 0).outputSize(height: 8, width: 8))
    }
}
