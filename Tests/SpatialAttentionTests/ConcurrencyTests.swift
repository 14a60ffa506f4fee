import CKernels
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

/// `Threads.forEach` on the package's persistent workers: every item exactly once, for worker counts
/// above the machine's cores too, after idle gaps long enough for the workers to go to sleep, from
/// inside another call's body (nested), and from many callers at once (the pool is busy, so the other
/// callers run on Dispatch).
final class ThreadPoolTests: XCTestCase {
    /// Visit counts written by the workers: item `i` by the one worker that owns it.
    private final class Visits: @unchecked Sendable {
        let counts: UnsafeMutableBufferPointer<Int>
        init(_ count: Int) { counts = .allocate(capacity: count); counts.initialize(repeating: 0) }
        deinit { counts.deallocate() }
        func visit(_ i: Int) { counts[i] += 1 }
        var allOnce: Bool { counts.allSatisfy { $0 == 1 } }
    }

    func testEveryItemRunsOnceForEveryWorkerCountAndAfterIdleGaps() {
        for workers in [2, 3, 5, 8] {
            for count in [2, 3, 7, 64, 1000] {
                for round in 0..<20 {
                    // Every fifth round waits past WorkerPool.spinSeconds (0.2 ms), so the workers sleep.
                    if round % 5 == 4 { usleep(2000) }
                    let visits = Visits(count)
                    Threads.forEach(count, threads: workers) { visits.visit($0) }
                    XCTAssertTrue(visits.allOnce, "workers \(workers), items \(count), round \(round): \(Array(visits.counts))")
                }
            }
        }
    }

    /// More workers than processors: the workers sleep between jobs, and the caller may still be
    /// waking a worker that has already run its block and gone back to sleep. That late wake-up must
    /// not run the block a second time (it once did: a count of 2, then a closure used after the
    /// call had returned).
    func testManyWorkersOnFewProcessorsRunEachBlockOnce() {
        let workers = 2 * ProcessInfo.processInfo.activeProcessorCount + 4
        for call in 0..<3000 {
            let visits = Visits(workers)
            Threads.forEach(workers, threads: workers) { visits.visit($0) }
            if !visits.allOnce {
                XCTFail("call \(call): \(Array(visits.counts))")
                return
            }
        }
    }

    func testTheCallingThreadRunsTheFirstBlock() {
        let caller = pthread_self()
        let ranOnCaller = Visits(2)
        Threads.forEach(2, threads: 2) { i in
            if pthread_equal(pthread_self(), caller) != 0 { ranOnCaller.visit(i) }
        }
        XCTAssertEqual(Array(ranOnCaller.counts), [1, 0])
    }

    /// The pool moves a worker that shares the caller's processor (`ck_leave_cpu`): the thread ends up
    /// on another processor, and may still run anywhere afterwards.
    func testLeavingAProcessorMovesTheThread() throws {
        guard ProcessInfo.processInfo.activeProcessorCount > 1, ck_current_cpu() >= 0 else {
            throw XCTSkip("needs two processors and sched_getcpu")
        }
        let results = DispatchQueue.global().sync { () -> [Int32] in
            let before = ck_current_cpu()
            let moved = ck_leave_cpu(before)
            let after = ck_current_cpu()
            let back = ck_leave_cpu(after)  // the mask was restored: leaving again works too
            return [before, moved, after, back]
        }
        XCTAssertEqual(results[1], 1)
        XCTAssertNotEqual(results[0], results[2], "\(results)")
        XCTAssertEqual(results[3], 1, "the affinity mask lost a processor: \(results)")
    }

    func testNestedCallsRunEveryInnerItem() {
        let outer = 6, inner = 50
        let visits = Visits(outer * inner)
        Threads.forEach(outer, threads: 3) { o in
            Threads.forEach(inner, threads: 2) { i in visits.visit(o * inner + i) }
        }
        XCTAssertTrue(visits.allOnce, "\(Array(visits.counts))")
    }

    func testConcurrentCallersEachRunEveryItem() {
        let callers = 8, count = 300
        let visits = (0..<callers).map { _ in Visits(count) }
        DispatchQueue.concurrentPerform(iterations: callers) { c in
            for _ in 0..<10 { Threads.forEach(count, threads: 2) { visits[c].visit($0) } }
        }
        for c in 0..<callers {
            XCTAssertTrue(visits[c].counts.allSatisfy { $0 == 10 }, "caller \(c): \(Array(visits[c].counts))")
        }
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
