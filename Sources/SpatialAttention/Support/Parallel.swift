import CKernels
import Dispatch
import Foundation
import Synchronization

/// How many threads the package's own kernels use, and the loop that spreads work over them.
///
/// Kernels split work over `(image, head, pixel tile)` items and hand items to at most
/// ``Threads/defaultCount`` workers; each item is computed by exactly one worker with the same arithmetic
/// whatever the count, so results do not depend on the thread count. OpenBLAS keeps its own threads
/// for GEMM (``BLAS/threads``); the two are never active at once.
public enum Threads {
    /// The default worker count: `SPATIAL_ATTENTION_THREADS` from the environment when set and
    /// positive, otherwise the number of active processors.
    public static let defaultCount: Int = {
        if let text = ProcessInfo.processInfo.environment["SPATIAL_ATTENTION_THREADS"],
           let value = Int(text), value > 0 {
            return value
        }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Resolves an optional per-call thread count: `nil` means ``defaultCount``; values below 1 are 1.
    @inlinable
    public static func resolve(_ requested: Int?) -> Int { max(1, requested ?? defaultCount) }

    /// Runs `body(i)` for every `i` in `0..<count`, on at most `threads` workers.
    ///
    /// Worker `w` of `n` takes the contiguous block `count·w/n ..< count·(w+1)/n`, so neighbouring
    /// items (pixel tiles of one image) share a worker and the split depends only on `count` and `n`.
    /// With one worker, or one item, the loop runs on the calling thread. Otherwise the calling thread
    /// runs block 0 and the package's persistent workers (``WorkerPool``) the others; a call made while
    /// the pool is busy (from another thread, or from inside a `body`) runs on Dispatch instead.
    public static func forEach(_ count: Int, threads: Int, _ body: (Int) -> Void) {
        guard count > 0 else { return }
        let workers = min(max(1, threads), count)
        if workers == 1 {
            for i in 0..<count { body(i) }
            return
        }
        if WorkerPool.shared.run(count, workers: workers, body) { return }
        // concurrentPerform's closure is @Sendable; the body only touches disjoint output ranges.
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                for i in Threads.block(worker, of: workers, count: count) { body(i) }
            }
        }
    }

    /// The items of block `worker` when `count` items are split over `workers` contiguous blocks
    /// (the split of ``forEach(_:threads:_:)``, and of kernels that hand each worker its own block).
    @inline(__always)
    static func block(_ worker: Int, of workers: Int, count: Int) -> Range<Int> {
        (count * worker / workers)..<(count * (worker + 1) / workers)
    }

    /// Tells the package's idle workers to stop spinning and sleep now, so that OpenBLAS's threads
    /// get every core for the GEMM that follows. Called before each OpenBLAS call.
    @usableFromInline
    static func releaseCores() { WorkerPool.shared.park() }
}

/// Persistent worker threads for ``Threads/forEach``.
///
/// `DispatchQueue.concurrentPerform` wakes a parked Dispatch thread for each call; on the 2-core VM
/// that took long enough that a call splitting 2 × 50 µs of work returned after 77–120 µs (median),
/// the caller often running both halves itself, and a ResNet-50 inference makes 54 such calls at
/// batch 1 (`spatial-bench threads`, docs/benchmarks.md). Workers of this pool instead poll for the
/// next job for ``spinSeconds`` after finishing one (with `pause`, yielding the processor every
/// 64 polls), then sleep on a semaphore: the same call returns after 51–53 µs when the caller comes
/// back within the spin, 75–94 µs after 1–5 ms of serial work. They poll only while the pool has
/// fewer threads than the machine has processors, and stop at once before OpenBLAS runs
/// (``Threads/releaseCores()``).
///
/// One job at a time: `busy` is taken by the caller for the whole job. The job word packs a
/// generation number with the job's worker count, so a worker reads both in one atomic load;
/// workers with an index at or past the count skip the job without touching its other fields.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// How long an idle worker polls before it sleeps.
    static let spinSeconds = 200e-6
    private static let processors = ProcessInfo.processInfo.activeProcessorCount

    private final class Worker: Sendable {
        let index: Int
        /// True while the worker is (about to be) asleep on `wake`; cleared by whoever wakes it.
        let sleeping = Atomic<Bool>(false)
        let wake = DispatchSemaphore(value: 0)
        init(index: Int) { self.index = index }
    }

    private static let workerBits = 16
    private let busy = Atomic<Bool>(false)
    /// `(generation << workerBits) | workers` of the latest job.
    private let job = Atomic<Int>(0)
    /// Participating pool workers that have not finished the current job.
    private let pending = Atomic<Int>(0)
    /// Bumped by ``park()``: spinning workers that see it change go to sleep.
    private let parkRequests = Atomic<Int>(0)

    // Written by the caller holding `busy` before the job word is published (release), read by the
    // participating workers after they load it (acquire).
    private var body: ((Int) -> Void)? = nil
    private var count = 0
    private var callerCPU: Int32 = -1
    /// Threads started so far (read by the workers to decide whether to spin).
    private let threadCount = Atomic<Int>(0)
    // Touched only by the caller holding `busy`.
    private var workers: [Worker] = []
    private var generation = 0

    /// Runs the job on the calling thread and `workers − 1` pool threads; false (nothing run) when
    /// the pool is busy.
    func run(_ count: Int, workers: Int, _ body: (Int) -> Void) -> Bool {
        guard workers < 1 << Self.workerBits,
              busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        addWorkers(upTo: workers - 1)
        withoutActuallyEscaping(body) { body in
            self.body = body
            self.count = count
            callerCPU = ck_current_cpu()
            pending.store(workers - 1, ordering: .relaxed)
            generation += 1
            job.store(generation << Self.workerBits | workers, ordering: .sequentiallyConsistent)
            for w in self.workers.prefix(workers - 1) where w.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
                w.wake.signal()
            }
            for i in Threads.block(0, of: workers, count: count) { body(i) }
            var polls = 0
            while pending.load(ordering: .acquiring) != 0 {
                polls += 1
                if polls < 1 << 10 { ck_cpu_relax() } else { sched_yield() }
            }
            self.body = nil
        }
        return true
    }

    /// Ends the current spin of every idle worker.
    func park() { parkRequests.wrappingAdd(1, ordering: .relaxed) }

    private func addWorkers(upTo total: Int) {
        while workers.count < total {
            let worker = Worker(index: workers.count + 1)
            let start = job.load(ordering: .relaxed)
            let thread = Thread { [self] in self.serve(worker, from: start) }
            thread.stackSize = 8 << 20
            thread.name = "SpatialAttention worker \(worker.index)"
            thread.start()
            workers.append(worker)
            threadCount.store(workers.count, ordering: .relaxed)
        }
    }

    private func serve(_ worker: Worker, from start: Int) -> Never {
        var seen = start
        while true {
            seen = next(after: seen, worker)
            let workers = seen & (1 << Self.workerBits - 1)
            guard worker.index < workers else { continue }
            // A worker that shares the caller's processor moves: the scheduler placed the first
            // worker there and left both on one processor for the first 0.1 s (500 calls) here,
            // so that each call ran its blocks one after the other.
            if workers <= Self.processors, callerCPU >= 0, ck_current_cpu() == callerCPU { ck_leave_cpu(callerCPU) }
            runShare(worker.index, of: workers)
            pending.subtract(1, ordering: .releasing)
        }
    }

    // Out of line, so that the worker's reference to `body` is released before `pending` drops and
    // the caller's `withoutActuallyEscaping` checks that the closure did not escape.
    @inline(never)
    private func runShare(_ worker: Int, of workers: Int) {
        guard let body else { return }
        for i in Threads.block(worker, of: workers, count: count) { body(i) }
    }

    /// Waits for a job word other than `seen`: polls for up to ``spinSeconds`` (while the pool fits
    /// the processors and no park is requested), then sleeps until a caller wakes it.
    private func next(after seen: Int, _ worker: Worker) -> Int {
        let spins = threadCount.load(ordering: .relaxed) < Self.processors
        let parks = parkRequests.load(ordering: .relaxed)
        let deadline = spins ? DispatchTime.now().uptimeNanoseconds + UInt64(Self.spinSeconds * 1e9) : 0
        var polls = 0
        while spins {
            let current = job.load(ordering: .acquiring)
            if current != seen { return current }
            ck_cpu_relax()
            polls += 1
            if polls & 63 == 0 {
                if DispatchTime.now().uptimeNanoseconds > deadline || parkRequests.load(ordering: .relaxed) != parks { break }
                // A thread waiting for this processor (the caller, when the scheduler put both on
                // one) runs first: without this, a new worker sharing the caller's processor held it
                // for the whole spin after each job (300 µs calls instead of 52 in the first 0.1 s).
                sched_yield()
            }
        }
        while true {
            worker.sleeping.store(true, ordering: .sequentiallyConsistent)
            let current = job.load(ordering: .sequentiallyConsistent)
            if current != seen {
                // A caller that published a job after the store above clears `sleeping` and
                // signals; if the flag is still ours, nobody will.
                if worker.sleeping.exchange(false, ordering: .sequentiallyConsistent) { return current }
                worker.wake.wait()
                return current
            }
            worker.wake.wait()
            let woken = job.load(ordering: .acquiring)
            if woken != seen { return woken }
            // A signal meant for an earlier sleep: the caller, still waking the workers of the job
            // this worker has just run, found its flag set again for this sleep. Returning the same
            // job word would run that job twice (a 2-core run with 8 workers did, and the closure
            // outlived `withoutActuallyEscaping`). Sleep again.
        }
    }
}
