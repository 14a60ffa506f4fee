import SpatialAttention
import SpatialAttentionReference
import TestSupport
import XCTest

/// The comparison every kernel test relies on: a helper that passes a wrong value makes the whole
/// suite unable to fail, so its edge cases are checked here directly (`firstMismatch` returns the
/// failure `assertClose` reports).
final class ToleranceTests: XCTestCase {
    private let tolerance = Tolerance(absolute: 1e-4, relative: 1e-4)

    /// `[1, 1, 1, 3]` actual values against Double expected values.
    private func mismatch(_ actual: [Float], _ expected: [Double], _ tolerance: Tolerance) -> Mismatch? {
        let t = try! Tensor(shape: Shape(1, 1, 1, actual.count), scalars: actual)
        return tolerance.firstMismatch(t, ReferenceTensor(shape: t.shape, values: expected))
    }

    func testValuesWithinTheBoundPassAndOutsideFail() {
        // Bound at e = 2: 1e-4 + 1e-4·2 = 3e-4.
        XCTAssertNil(mismatch([1, 2, 3], [1, 2.000_25, 3], tolerance))
        let failure = mismatch([1, 2, 3], [1, 2.000_35, 3], tolerance)
        XCTAssertEqual(failure?.index, [0, 0, 0, 1])
        XCTAssertEqual(failure?.expected, 2.000_35)
    }

    func testNaNMatchesOnlyNaN() {
        XCTAssertNil(mismatch([.nan, 1], [.nan, 1], tolerance))
        XCTAssertEqual(mismatch([.nan, 1], [0, 1], tolerance)?.index, [0, 0, 0, 0])
        XCTAssertEqual(mismatch([0, 1], [.nan, 1], tolerance)?.index, [0, 0, 0, 0])
    }

    func testInfinityMatchesOnlyTheSameInfinity() {
        // Before the fix `|a − ∞| ≤ atol + rtol·∞` read ∞ ≤ ∞ and every one of these passed.
        XCTAssertNil(mismatch([.infinity, -.infinity], [.infinity, -.infinity], tolerance))
        XCTAssertNotNil(mismatch([5, 0], [.infinity, 0], tolerance))
        XCTAssertNotNil(mismatch([0, -.infinity], [0, .infinity], tolerance))
        XCTAssertNotNil(mismatch([.infinity, 0], [1e30, 0], tolerance))
        XCTAssertNotNil(mismatch([.infinity, 0], [5, 0], .exact))
    }

    func testShapeAndCountMismatchesFail() {
        let t = try! Tensor(shape: Shape(1, 2, 3, 4), repeating: 1)
        let wrong = ReferenceTensor(shape: Shape(1, 2, 4, 3), values: [Double](repeating: 1, count: 24))
        XCTAssertNotNil(tolerance.firstMismatch(t, wrong))
        XCTAssertNotNil(tolerance.firstMismatch([1, 2, 3], [1, 2]))
        XCTAssertNil(tolerance.firstMismatch([1, 2, 3], [1, 2, 3]))
    }

    func testMismatchNamesTheLogicalIndexOfAnNHWCTensor() {
        // The comparison is in logical NCHW order whatever the layout: an error at [1, 2, 0, 1].
        let x = seededTensor(Shape(2, 3, 2, 2), layout: .nhwc, seed: 1)
        var expected = ReferenceTensor(x)
        expected[1, 2, 0, 1] += 1
        XCTAssertEqual(Tolerance.exact.firstMismatch(x, expected)?.index, [1, 2, 0, 1])
    }

    func testWithEveryRunsEveryValueWithItsLabel() {
        var seen: [String] = []
        withEvery("a", in: [1, 2]) { a in
            withEvery("b", in: ["x", "y", "z"]) { b in seen.append(sweepContext.joined(separator: " ")) }
        }
        XCTAssertEqual(seen, ["a=1 b=x", "a=1 b=y", "a=1 b=z", "a=2 b=x", "a=2 b=y", "a=2 b=z"])
    }

    func testSeededTensorIsReproducibleAndNotConstant() {
        let a = seededTensor(Shape(1, 4, 5, 5), seed: 7, offset: 1000)
        XCTAssertEqual(a, seededTensor(Shape(1, 4, 5, 5), seed: 7, offset: 1000))
        XCTAssertNotEqual(a, seededTensor(Shape(1, 4, 5, 5), seed: 8, offset: 1000))
        let mean = a.scalars.reduce(0) { $0 + Double($1) } / Double(a.scalars.count)
        XCTAssertEqual(mean, 1000, accuracy: 0.5)
        XCTAssertGreaterThan(Set(a.scalars).count, 90)
    }
}
