import Dispatch
import Foundation

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
    /// Each worker takes a contiguous block of indices, so neighbouring items (pixel tiles of one
    /// image) share a worker. With one worker, or one item, the loop runs on the calling thread.
    public static func forEach(_ count: Int, threads: Int, _ body: (Int) -> Void) {
        guard count > 0 else { return }
        let workers = min(max(1, threads), count)
        if workers == 1 {
            for i in 0..<count { body(i) }
            return
        }
        // concurrentPerform's closure is @Sendable; the body only touches disjoint output ranges.
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                let lower = count * worker / workers
                let upper = count * (worker + 1) / workers
                for i in lower..<upper { body(i) }
            }
        }
    }
}
