@testable import SpatialAttention
import SpatialAttentionReference
import TestSupport
import XCTest

/// The SPSA kernel's out-of-cache paths (row-wise scaling with prefetch, non-temporal stores, keys
/// and outputs computed block by block) switch on by tensor size; these tests force each of them on
/// small tensors through `SPSAPlan.tuning` and compare with the naive twin.
final class SPSAMemoryPathTests: XCTestCase {
    private static let tunings: [(String, SPSAPlan.Tuning)] = [
        ("default", .default),
        ("row-wise, prefetch", .init(streamingBytes: .max, prefetchBytes: 0, blockBytes: .max)),
        ("streaming stores (NCHW)", .init(streamingBytes: 0, prefetchBytes: .max, blockBytes: .max)),
        ("row-wise, streaming", .init(streamingBytes: 0, prefetchBytes: 0, blockBytes: .max)),
        ("one unit a block", .init(streamingBytes: .max, prefetchBytes: 0, blockBytes: 1)),
        ("two units a block", .init(streamingBytes: 0, prefetchBytes: .max, blockBytes: 0)),  // set per shape
    ]

    /// Runs `layer` through a plan with `tuning`, out of place into NaN or in place.
    private func run(_ layer: SPSA, _ x: Tensor, tuning: SPSAPlan.Tuning, threads: Int, inPlace: Bool) throws -> Tensor {
        var plan = try layer.makePlan(for: x.shape, layout: x.layout)
        plan.tuning = tuning
        if inPlace {
            var y = x
            y.scalars.withUnsafeMutableBufferPointer { p in
                plan.run(source: UnsafePointer(p.baseAddress!), destination: p.baseAddress!, threads: threads)
            }
            return y
        }
        var y = x.nanFilledLike()
        x.scalars.withUnsafeBufferPointer { source in
            y.scalars.withUnsafeMutableBufferPointer { destination in
                plan.run(source: source.baseAddress!, destination: destination.baseAddress!, threads: threads)
            }
        }
        return y
    }

    func testEveryMemoryPathMatchesNaive() throws {
        // Planes under one tile (143 pixels), over two tiles with a partial 16-pixel group at the end
        // (1,200 = 512 + 688), under 16 pixels (copied into a padded group), and a tensor past the
        // parallel threshold (547,200 elements) on two threads.
        let cases: [(Shape, heads: Int, threads: Int)] = [
            (Shape(1, 64, 13, 11), 1, 1), (Shape(2, 32, 40, 30), 2, 1), (Shape(3, 8, 1, 7), 2, 1),
            (Shape(2, 64, 75, 57), 2, 2),
        ]
        for (shape, heads, threads) in cases {
            let x = seededTensor(shape, seed: UInt64(shape.count % 1000), offset: 3)
            let layer = SPSA(alpha: 2, heads: heads)
            let expected = Naive.spsa(x, alpha: 2, channelsPerHead: shape.channels / heads, reverse: true,
                                      similarity: .correlation)
            for (name, base) in Self.tunings {
                var tuning = base
                if name == "two units a block" { tuning.blockBytes = 2 * shape.count / (shape.batch * heads) * 4 }
                for layout in Layout.allCases {
                    for inPlace in [false, true] {
                        let y = try run(layer, x.converted(to: layout), tuning: tuning, threads: threads, inPlace: inPlace)
                        assertClose(y.converted(to: .nchw), expected, tolerance: .spsa,
                                    "\(shape) heads \(heads) \(name) \(layout) in place \(inPlace)")
                    }
                }
            }
        }
    }

    func testBlockingDoesNotChangeTheArithmetic() throws {
        let x = seededTensor(Shape(4, 64, 9, 23), seed: 5)
        let layer = SPSA(alpha: 2.5, heads: 2)
        let whole = try run(layer, x, tuning: .init(streamingBytes: .max, prefetchBytes: .max, blockBytes: .max),
                            threads: 1, inPlace: false)
        let blocked = try run(layer, x, tuning: .init(streamingBytes: .max, prefetchBytes: .max, blockBytes: 1),
                              threads: 1, inPlace: false)
        XCTAssertEqual(whole.scalars, blocked.scalars)
    }
}
