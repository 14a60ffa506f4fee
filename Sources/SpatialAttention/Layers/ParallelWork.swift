/// How many pieces to cut a memory-bound pass into.
///
/// Waking a second worker costs ~20–40 µs on the 2-core VM (docs/design.md), about the time one
/// core needs for 256 Ki floats of a streaming pass. Smaller passes stay on the calling thread.
enum ParallelWork {
    /// Elements below which a pass is not worth a second thread.
    static let elementsPerThread = 1 << 17

    /// The number of pieces (and threads) for a pass over `elements` values with `threads` allowed.
    static func chunks(elements: Int, threads: Int?) -> Int {
        let allowed = Threads.resolve(threads)
        return max(1, min(allowed, elements / elementsPerThread))
    }
}

extension Tensor {
    /// A tensor whose storage is allocated but not initialised: every element must be written
    /// before it is read. Saves the zero-filling pass of a fresh array for kernel outputs.
    /// NaN-filled when ``Scratch/poisonsBuffers`` is on, so that a test sees an element a kernel
    /// leaves unwritten (freed memory reused by the allocator can otherwise hold the right value
    /// from an earlier call, or zeros).
    static func uninitialized(shape: Shape, layout: Layout = .nchw) -> Tensor {
        let values = [Float](unsafeUninitializedCapacity: shape.count) { buffer, count in
            if Scratch.poisonsBuffers, let base = buffer.baseAddress { base.initialize(repeating: .nan, count: shape.count) }
            count = shape.count
        }
        return Tensor(unchecked: shape, layout: layout, scalars: values)
    }
}
