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
        // (2,550 = 1,024 + 1,526, 1,526 = 23·64 + 54), under 16 pixels (copied into a padded group),
        // and a tensor past the parallel threshold (547,200 elements) on two threads.
        let cases: [(Shape, heads: Int, threads: Int)] = [
            (Shape(1, 64, 13, 11), 1, 1), (Shape(2, 32, 50, 51), 2, 1), (Shape(3, 8, 1, 7), 2, 1),
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

    /// The NCHW kernel starts its chunks at the first pixel whose output is 64-byte aligned and does
    /// the pixels before it last, as one partial group: every misalignment of the output (0 to 15
    /// floats), with the input aligned alike or not, out of place and in place, on planes of one
    /// 16-pixel group, of one tile and of two tiles, on the default and the row-wise streaming paths.
    /// The pixels that fall in partial groups move with the alignment, and the result must not:
    /// every placement gives the same bits.
    func testEveryOutputAlignmentMatchesNaive() throws {
        // 16, 64 and 2,560 pixels (two tiles of 1,024 and 1,536).
        let cases: [(Shape, heads: Int)] = [(Shape(1, 16, 4, 4), 1), (Shape(2, 64, 8, 8), 2), (Shape(1, 8, 32, 80), 1)]
        let rowWise = SPSAPlan.Tuning(streamingBytes: 0, prefetchBytes: 0, blockBytes: .max)
        for (shape, heads) in cases {
            let x = seededTensor(shape, seed: 11, offset: 5)
            let layer = SPSA(alpha: 2, heads: heads)
            let expected = Naive.spsa(x, alpha: 2, channelsPerHead: shape.channels / heads, reverse: true,
                                      similarity: .correlation)
            for tuning in [SPSAPlan.Tuning.default, rowWise] {
                var plan = try layer.makePlan(for: shape, layout: .nchw)
                plan.tuning = tuning
                var first: [Float]?
                for outputOffset in 0..<16 {
                    for (inputOffset, inPlace) in [(outputOffset, false), ((outputOffset + 5) % 16, false), (outputOffset, true)] {
                        // 64-byte aligned buffers, the tensors placed `offset` floats in.
                        func allocate() -> UnsafeMutablePointer<Float> {
                            UnsafeMutableRawPointer.allocate(byteCount: 4 * (shape.count + 16), alignment: 64)
                                .bindMemory(to: Float.self, capacity: shape.count + 16)
                        }
                        let source = allocate(), target = inPlace ? source : allocate()
                        defer {
                            source.deallocate()
                            if !inPlace { target.deallocate() }
                        }
                        x.scalars.withUnsafeBufferPointer { (source + inputOffset).update(from: $0.baseAddress!, count: shape.count) }
                        if !inPlace { (target + outputOffset).update(repeating: .nan, count: shape.count) }
                        plan.run(source: source + inputOffset, destination: target + outputOffset, threads: 1)
                        let y = try Tensor(shape: shape, scalars: Array(UnsafeBufferPointer(start: target + outputOffset, count: shape.count)))
                        let context = "\(shape) output offset \(outputOffset) input offset \(inputOffset) in place \(inPlace) streaming \(tuning.streamingBytes == 0)"
                        assertClose(y, expected, tolerance: .spsa, context)
                        if let first { XCTAssertEqual(y.scalars, first, context) } else { first = y.scalars }
                    }
                }
            }
        }
    }

    func testBlockingDoesNotChangeTheArithmetic() throws {
        // 13 channels a head: one unit a block starts the key pass's 16-row groups at every 13th row,
        // the whole tensor at every 16th, so the rows of the key pass fall in different groups.
        for (shape, heads) in [(Shape(4, 64, 9, 23), 2), (Shape(3, 39, 9, 23), 3)] {
            let x = seededTensor(shape, seed: 5)
            let layer = SPSA(alpha: 2.5, heads: heads)
            let whole = try run(layer, x, tuning: .init(streamingBytes: .max, prefetchBytes: .max, blockBytes: .max),
                                threads: 1, inPlace: false)
            let blocked = try run(layer, x, tuning: .init(streamingBytes: .max, prefetchBytes: .max, blockBytes: 1),
                                  threads: 1, inPlace: false)
            XCTAssertEqual(whole.scalars, blocked.scalars, "\(shape), \(heads) heads")
            assertClose(blocked, Naive.spsa(x, alpha: 2.5, heads: heads), tolerance: .spsa, "\(shape), \(heads) heads")
        }
    }
}
