import Dispatch
import Foundation
import SpatialAttention
import TestSupport
import XCTest

/// Many threads calling the same layer value at once get, bit for bit, what a lone caller gets: layers
/// are immutable values with no shared scratch state, and their kernels give each work item to one
/// worker with the same arithmetic whatever the thread count. Run under ThreadSanitizer by
/// `make test-tsan`.
final class ConcurrencyTests: XCTestCase {
    /// Callers at once: more than the machine's cores, so calls interleave.
    private let callers = 8

    /// The layers under test with an input shape each: small shapes (the sanitizer builds are debug
    /// builds), plus one SPSA call above the kernel's parallel threshold so that its own workers run
    /// inside each concurrent call.
    private var cases: [(name: String, layer: any Layer, shape: Shape)] {
        var generator = SeededGenerator(seed: 3)
        func weights(_ count: Int, scale: Float) -> [Float] {
            (0..<count).map { _ in RandomDistribution.uniform(lower: -scale, upper: scale).sample(using: &generator) }
        }
        return [
            ("SPSA h=1", SPSA(alpha: 2, channelsPerHead: 16), Shape(2, 16, 9, 7)),
            ("SPSA h=4 cosine no-reverse", SPSA(alpha: 2.5, heads: 4, reverse: false, similarity: .cosine), Shape(1, 32, 5, 5)),
            ("SPSA above the parallel threshold", SPSA(alpha: 1, channelsPerHead: 64), Shape(1, 64, 96, 96)),
            ("Conv2D 3×3 (im2col + sgemm)", try! Conv2D(inputChannels: 16, outputChannels: 24, window: WindowGeometry(kernel: 3, padding: 1),
                                                        weight: weights(24 * 16 * 9, scale: 0.1), bias: weights(24, scale: 0.1)), Shape(2, 16, 12, 10)),
            ("depthwise Conv2D", try! Conv2D(inputChannels: 16, outputChannels: 16, window: WindowGeometry(kernel: 3, stride: 2, padding: 1),
                                             groups: 16, weight: weights(16 * 9, scale: 0.3)), Shape(1, 16, 15, 15)),
            ("squeeze-excitation", try! SqueezeExcitation(channels: 32, hiddenChannels: 4, reduceWeight: weights(128, scale: 0.3),
                                                          expandWeight: weights(128, scale: 0.3)), Shape(2, 32, 6, 6)),
            ("ECA", try! EfficientChannelAttention(channels: 32, weight: weights(5, scale: 0.5)), Shape(2, 32, 6, 6)),
            ("ResNet-50+SPSA+SE", Self.model, Shape(1, 3, 32, 32)),
        ]
    }

    /// A whole network: every kernel of a forward pass, GEMMs included.
    private static let model = Model(name: try! ModelName("resnet50+spsa+se"), seed: 5)

    func testManyThreadsCallingOneLayerGetTheSingleThreadResults() throws {
        for item in cases {
            for layout in Layout.allCases {
                let inputs = (0..<callers).map { seededTensor(item.shape, layout: layout, seed: UInt64(100 + $0)) }
                let expected = try inputs.map { try item.layer($0) }
                let results = ResultBox(count: callers)
                let layer = item.layer
                DispatchQueue.concurrentPerform(iterations: callers) { i in
                    results.set(i, Result { try layer(inputs[i]) })
                }
                for i in 0..<callers {
                    let result = try results.get(i).get()
                    XCTAssertEqual(result.scalars.map(\.bitPattern), expected[i].scalars.map(\.bitPattern),
                                   "\(item.name) \(layout) caller \(i)")
                }
            }
        }
    }

    func testSPSAThreadCountDoesNotChangeTheResult() throws {
        let x = seededTensor(Shape(1, 64, 96, 96), layout: .nchw, seed: 7)
        let layer = SPSA(alpha: 2, channelsPerHead: 32)
        let one = try layer(x, threads: 1)
        for threads in [2, 3, 8] {
            XCTAssertEqual(try layer(x, threads: threads).scalars.map(\.bitPattern), one.scalars.map(\.bitPattern), "threads \(threads)")
        }
    }

    func testConcurrentReadersDecodeTheSameFiles() throws {
        let array = try NDArray(shape: [3, 4, 5], values: (0..<60).map { Float($0) * 0.5 })
        let npy = NPY.encode(array)
        let safetensors = try Safetensors(tensors: ["a": array], metadata: ["k": "v"]).encoded()
        let results = ResultBox(count: 4 * callers)
        DispatchQueue.concurrentPerform(iterations: 4 * callers) { i in
            results.set(i, Result {
                let a = try NPY.decode(npy)
                let b = try Safetensors(decoding: safetensors).tensors["a"]!
                guard a == array, b == array else { throw ShapeError("decoded arrays differ") }
                return try Tensor(a)
            })
        }
        for i in 0..<(4 * callers) { XCTAssertNoThrow(try results.get(i).get()) }
    }
}

/// Results written by concurrent callers, one slot each, behind a lock.
private final class ResultBox: @unchecked Sendable {
    private var slots: [Result<Tensor, any Error>?]
    private let lock = NSLock()

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ i: Int, _ value: Result<Tensor, any Error>) {
        lock.lock()
        slots[i] = value
        lock.unlock()
    }

    func get(_ i: Int) throws -> Result<Tensor, any Error> {
        lock.lock()
        defer { lock.unlock() }
        guard let value = slots[i] else { throw ShapeError("caller \(i) produced nothing") }
        return value
    }
}
