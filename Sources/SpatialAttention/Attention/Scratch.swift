import Foundation
import Synchronization

/// Reusable scratch memory for the attention kernels.
///
/// The attention modules need several megabytes of temporaries per call (projections, logits).
/// Fresh `[Float]` arrays of that size come from `mmap` in glibc, so every call pays a page fault per
/// 4 KiB and a `memset`: 4–5 ms of a 19 ms GSA call at 56×56 (measured with `perf`). The pool keeps
/// freed buffers for the next call instead. Buffers are 64-byte aligned and *uninitialised*: kernels
/// write every element they read (GEMMs with `beta = 0`).
///
/// At most ``cachedLimit`` bytes stay cached; larger or surplus buffers are freed on return.
public enum Scratch {
    /// The most bytes the pool keeps between calls (256 MiB).
    public static let cachedLimit = 256 << 20

    private struct Buffer: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
        let bytes: Int
    }

    /// The cached buffers behind a pthread mutex (`NSLock`). Not `Synchronization.Mutex`: on Linux
    /// it locks with futex calls that ThreadSanitizer does not see, so concurrent callers (the
    /// concurrency tests under `make test-tsan`) were reported as racing on the list.
    private final class Cache: @unchecked Sendable {
        private let lock = NSLock()
        private var buffers: [Buffer] = []

        func withLock<R>(_ body: (inout [Buffer]) -> R) -> R {
            lock.lock()
            defer { lock.unlock() }
            return body(&buffers)
        }
    }

    private static let pool = Cache()
    private static let poisoning = Atomic<Bool>(false)

    /// When true, every scratch buffer and every kernel output array of the attention modules, and
    /// every output tensor a layer allocates without initialising (convolution, BN, pooling, linear,
    /// channel attention, SPSA), is filled with NaN before the kernel writes it, so that a test sees
    /// any element a kernel fails to write (a reused buffer could otherwise still hold a correct
    /// value from an earlier call). Off by default (it costs a pass over each buffer); the kernel
    /// tests turn it on.
    public static var poisonsBuffers: Bool {
        get { poisoning.load(ordering: .relaxed) }
        set { poisoning.store(newValue, ordering: .relaxed) }
    }

    /// Calls `body` with `count` uninitialised floats, taken from the pool when a cached buffer is
    /// large enough, and returns them to the pool afterwards.
    static func withFloats<R>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        let bytes = max(64, (count * 4 + 63) & ~63)
        let buffer = take(bytes) ?? Buffer(pointer: UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64),
                                           bytes: bytes)
        defer { give(buffer) }
        let floats = buffer.pointer.bindMemory(to: Float.self, capacity: buffer.bytes / 4)
        if poisonsBuffers { floats.update(repeating: .nan, count: buffer.bytes / 4) }
        return try body(floats)
    }

    /// Frees every cached buffer (for memory measurements, or to return memory after a large call).
    public static func purge() {
        let buffers = pool.withLock { list -> [Buffer] in
            defer { list.removeAll() }
            return list
        }
        for b in buffers { b.pointer.deallocate() }
    }

    /// The bytes currently cached.
    public static var cachedBytes: Int { pool.withLock { $0.reduce(0) { $0 + $1.bytes } } }

    private static func take(_ bytes: Int) -> Buffer? {
        pool.withLock { list in
            // The smallest cached buffer that fits, so large buffers stay for large requests.
            var best: Int? = nil
            for (i, b) in list.enumerated() where b.bytes >= bytes && b.bytes <= 2 * bytes + (1 << 20) {
                if best == nil || b.bytes < list[best!].bytes { best = i }
            }
            return best.map { list.remove(at: $0) }
        }
    }

    private static func give(_ buffer: Buffer) {
        let surplus = pool.withLock { list -> [Buffer] in
            list.append(buffer)
            var total = list.reduce(0) { $0 + $1.bytes }
            var freed: [Buffer] = []
            // Drop the oldest buffers beyond the limit.
            while total > cachedLimit, !list.isEmpty {
                let b = list.removeFirst()
                total -= b.bytes
                freed.append(b)
            }
            return freed
        }
        for b in surplus { b.pointer.deallocate() }
    }
}

/// An array of `count` floats whose elements the caller initialises completely in `body` (no memset;
/// NaN-filled first when ``Scratch/poisonsBuffers`` is on).
@inline(__always)
func uninitializedFloats(_ count: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
    [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        if let base = buffer.baseAddress {
            if Scratch.poisonsBuffers { base.update(repeating: .nan, count: count) }
            body(base)
        }
        initialized = count
    }
}
