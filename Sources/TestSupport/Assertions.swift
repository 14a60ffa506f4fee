import SpatialAttention
import SpatialAttentionReference
import XCTest

/// The sweep labels of the enclosing ``withEvery(_:in:_:)`` calls, innermost last, so that a failure
/// names its combination ("C=17 H×W=13×11 …").
@TaskLocal public var sweepContext: [String] = []

/// Runs `body` once for each value, with `"name=value"` added to ``sweepContext`` for the call.
public func withEvery<S: Sequence>(_ name: String, in values: S, _ body: (S.Element) throws -> Void) rethrows {
    for value in values {
        try $sweepContext.withValue(sweepContext + ["\(name)=\(value)"]) {
            try body(value)
        }
    }
}

private func contextSuffix() -> String {
    sweepContext.isEmpty ? "" : " [" + sweepContext.joined(separator: " ") + "]"
}

/// Asserts that `actual` matches the Double reference `expected` within `tolerance`: checks the shape
/// first, then `|a − e| ≤ atol + rtol·|e|` for every element; on failure names the first failing
/// multi-index, both values, the max abs/rel error, the shape and the sweep combination.
///
/// NaN matches NaN, so a reference with no finite element makes a comparison that cannot fail (a
/// network that overflowed in both twins passed this way): that fails too, unless the test means it
/// (`expectingNonFinite`, a NaN input that spreads to every output).
public func assertClose(
    _ actual: Tensor, _ expected: ReferenceTensor, tolerance: Tolerance, expectingNonFinite: Bool = false,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    if !expectingNonFinite, !expected.values.isEmpty, !expected.values.contains(where: \.isFinite) {
        XCTFail("every expected value of \(expected.shape) is NaN or ±∞: the comparison cannot fail" +
                "\(contextSuffix()) \(message())", file: file, line: line)
    }
    if let mismatch = tolerance.firstMismatch(actual, expected) {
        XCTFail("\(mismatch) (\(tolerance))\(contextSuffix()) \(message())", file: file, line: line)
    }
}

/// Asserts two flat arrays agree within `tolerance` (matrices, vectors).
public func assertClose(
    _ actual: [Float], _ expected: [Double], tolerance: Tolerance,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    if let mismatch = tolerance.firstMismatch(actual, expected) {
        XCTFail("\(mismatch) (\(tolerance))\(contextSuffix()) \(message())", file: file, line: line)
    }
}

/// Asserts that two Float32 tensors agree within `tolerance` (fast vs fast: layouts, thread counts).
public func assertClose(
    _ actual: Tensor, _ expected: Tensor, tolerance: Tolerance, expectingNonFinite: Bool = false,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    assertClose(actual, ReferenceTensor(expected), tolerance: tolerance, expectingNonFinite: expectingNonFinite,
                message(), file: file, line: line)
}

/// Asserts that `body` throws a ``ShapeError`` whose message contains every string in `mentioning`.
public func assertThrowsShapeError<T>(
    _ body: @autoclosure () throws -> T, mentioning: [String] = [],
    file: StaticString = #filePath, line: UInt = #line
) {
    do {
        _ = try body()
        XCTFail("expected a ShapeError\(contextSuffix())", file: file, line: line)
    } catch let error as ShapeError {
        for text in mentioning where !error.message.contains(text) {
            XCTFail("ShapeError \"\(error.message)\" does not mention \"\(text)\"\(contextSuffix())", file: file, line: line)
        }
    } catch {
        XCTFail("expected a ShapeError, got \(error)\(contextSuffix())", file: file, line: line)
    }
}

/// A seeded normal tensor: the standard test input (never zeros alone).
public func seededTensor(_ shape: Shape, layout: Layout = .nchw, seed: UInt64, offset: Float = 0,
                         scale: Float = 1) -> Tensor {
    try! Tensor.random(shape: shape, layout: layout, seed: seed,
                       distribution: .normal(mean: offset, standardDeviation: scale))
}
