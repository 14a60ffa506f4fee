import CKernels
import SpatialAttention
import XCTest

/// `ck_evict`, the eviction behind `spatial-bench scaling`'s cold samples, must write dirty lines
/// back before it drops them: an invalidate without write-back (`dc ivac` instead of `dc civac`)
/// would lose the values stored just before the call.
final class CacheEvictionTests: XCTestCase {
    func testEvictionKeepsFreshlyStoredValues() {
        var generator = SeededGenerator(seed: 41)
        // 3 floats past an aligned start, and a length that is not a whole number of lines, so that the
        // first and last lines are partial; the neighbours on both sides must survive too.
        let (lead, count, trail) = (3, 10_000 + 5, 7)
        let expected = (0..<(lead + count + trail)).map { _ in Float.random(in: -1000...1000, using: &generator) }
        var buffer = [Float](repeating: .nan, count: expected.count)
        for sweep in 0..<2 {
            // Stores right before the eviction leave the lines dirty in L1.
            for i in buffer.indices { buffer[i] = expected[i] + Float(sweep) }
            let done = buffer.withUnsafeBytes { raw in
                ck_evict(raw.baseAddress! + lead * MemoryLayout<Float>.stride, count * MemoryLayout<Float>.stride)
            }
            #if arch(x86_64) || arch(arm64)
            XCTAssertEqual(done, 1, "eviction must be available on this architecture")
            #endif
            for i in buffer.indices where buffer[i] != expected[i] + Float(sweep) {
                XCTFail("sweep \(sweep): element \(i) became \(buffer[i]), stored \(expected[i] + Float(sweep))")
                break
            }
        }
        XCTAssertEqual(ck_evict(nil, 0), 1, "an empty range is a no-op")
    }
}
