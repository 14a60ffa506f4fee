import CKernels
import Foundation

// The fused SPSA kernel.
//
// Cost model: SPSA is memory-bound. The kernel reads x once for the keys (pass 1, SPSA+Key.swift),
// then, per chunk of pixels small enough to stay in L1, computes the per-pixel moments and writes the
// scaled output (pass 2): x is read twice and the output written once (3 × bytes of x, the
// "effective bandwidth" of the benchmark). Both passes run block by block (``SPSAPlan/Tuning``) so
// that out of cache the second read comes from the last-level cache; there the output is written
// row by row over each tile, through non-temporal stores (ck_scale_rows_stream) for large NCHW
// outputs, so that writing it does not first read it.
//
// Numerics: moments are shifted sums. The key of channel c is accumulated as Σ_p (x[c,p] − s_c), s_c
// the mean of the channel's first 16 pixels, and each pixel's moments over d = x[c,p] − x[c0,p], so a
// large common offset (x + 1000) cancels exactly in the subtraction instead of swamping the sums, and
// a constant pixel gives exactly zero deviations: the degenerate rule `‖xc‖ = 0 ⇒ corr = 0` is exact,
// not a threshold.

/// The work of one SPSA call: shape, heads and options resolved, ready to run on raw storage.
struct SPSAPlan {
    let shape: Shape
    let layout: Layout
    let heads: Int
    let alpha: Float
    let reverse: Bool
    /// Correlation (true) or cosine (false).
    let centered: Bool

    var channelsPerHead: Int { shape.channels / heads }

    /// Memory-system choices, measured on this machine (docs/kernels.md); tests override them to
    /// run every path on small tensors.
    var tuning = Tuning.default

    /// 16-float vectors per NCHW chunk (measured in docs/kernels.md).
    static let chunkVectors = Int(ProcessInfo.processInfo.environment["SPSA_VECTORS"] ?? "") ?? 4
    /// Pixels per NCHW work item: enough to amortise the item's set-up and, out of cache, to make
    /// each channel row's prefetch and streaming-store run 4 KB long. 1024 against 512, alternating
    /// on `[8, 256, 112, 112]` (docs/kernels.md): 2 threads 13.1–16.8 against 14.6–17.4 ms, 1 thread
    /// 34.3–37.7 against 36.8–42.9 ms; the in-cache shapes no slower.
    static let tilePixels = 1024
    /// Pixels per NHWC work item.
    static let pixelGroup = 64
    /// Below this many elements one thread does the whole call: waking a sleeping worker costs
    /// 20–40 µs on this VM (docs/kernels.md), more than it saves on a ~100 µs call.
    static let parallelThreshold = 1 << 19

    /// Where the kernel changes how it uses the memory system. Environment variables override the
    /// defaults for experiments (`SPSA_STREAM`, `SPSA_PREFETCH`, `SPSA_BLOCK`, in bytes).
    struct Tuning {
        /// NCHW outputs of at least this many bytes are written with non-temporal stores, row by row
        /// over each tile. Measured on this VM (docs/kernels.md): 20–35% faster than ordinary stores
        /// at 12.8 MB and more, 15–25% slower at 3.2 MB (the output fits the last-level cache), and
        /// 4× slower when they were written a 64-pixel chunk at a time. NHWC never streams: its
        /// per-pixel writes ran 2× slower with them.
        var streamingBytes: Int
        /// Tensors larger than this are assumed out of L2 and get software prefetch.
        var prefetchBytes: Int
        /// The keys and outputs are computed block by block, a block being as many (image, head)
        /// units (NCHW) or images (NHWC) as fit in this many bytes: pass 2 then re-reads x from the
        /// last-level cache instead of DRAM.
        var blockBytes: Int

        static let `default` = Tuning(streamingBytes: environment("SPSA_STREAM") ?? 8 << 20,
                                      prefetchBytes: environment("SPSA_PREFETCH") ?? 2 << 20,
                                      blockBytes: environment("SPSA_BLOCK") ?? 8 << 20)

        private static func environment(_ name: String) -> Int? {
            Int(ProcessInfo.processInfo.environment[name] ?? "")
        }
    }

    /// The units blocks are made of: (image, head) pairs for NCHW, images for NHWC.
    var unitCount: Int { layout == .nchw ? shape.batch * heads : shape.batch }

    func run(source x: UnsafePointer<Float>, destination out: UnsafeMutablePointer<Float>, threads requested: Int) {
        let threads = shape.count < Self.parallelThreshold ? 1 : requested
        let streaming = layout == .nchw && shape.count * 4 >= tuning.streamingBytes
        let keys = SPSAKeys(plan: self)
        let power = SPSAPower(alpha: alpha)
        let unitBytes = shape.count / unitCount * 4
        let unitsPerBlock = max(1, tuning.blockBytes / unitBytes)
        var first = 0
        while first < unitCount {
            let units = first..<min(unitCount, first + unitsPerBlock)
            keys.compute(x, units: units, threads: threads)
            switch (layout, Self.chunkVectors) {
            case (.nhwc, _):
                runChannelsLast(x, out, images: units, keys: keys, power: power, threads: threads)
            case (.nchw, 1):
                runChannelsFirst(OneVector.self, x, out, units: units, keys: keys, power: power, threads: threads, streaming: streaming)
            case (.nchw, 2):
                runChannelsFirst(TwoVectors.self, x, out, units: units, keys: keys, power: power, threads: threads, streaming: streaming)
            case (.nchw, _):
                runChannelsFirst(FourVectors.self, x, out, units: units, keys: keys, power: power, threads: threads, streaming: streaming)
            }
            first = units.upperBound
        }
        if streaming { ck_store_fence() }
    }

    // MARK: NCHW: vectorised over pixels, a head's channel planes strided by H·W.

    private func runChannelsFirst<V: ChunkVectors>(
        _ type: V.Type, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, units: Range<Int>,
        keys: SPSAKeys, power: SPSAPower, threads: Int, streaming: Bool
    ) {
        let (P, cph) = (shape.pixels, channelsPerHead)
        // The last tile runs to the end of the plane, so every tile of a plane with ≥ 16 pixels has
        // ≥ 16 pixels and its last 16-pixel group can overlap its own earlier pixels (see below).
        let tiles = max(1, P / Self.tilePixels)
        let prefetch = shape.count * 4 > tuning.prefetchBytes
        // Out of cache, the scaled write goes row by row over the whole tile (the tile, read by the
        // moments, is still in L2): 64 long sequential store streams instead of 64 rows of one
        // chunk at a time, whose reads-for-ownership missed (measured in docs/kernels.md). Streaming
        // stores only pay off in such long runs.
        let rowWise = prefetch || streaming
        // A plane of one tile whose rows do not share an alignment (H·W not a multiple of 16: 14×14,
        // 7×7) is scaled as one flat run over the head's contiguous `cph·H·W` values, its stores
        // 64-byte aligned, once every weight is known: row by row, almost every store straddled two
        // cache lines.
        let flat = !rowWise && tiles == 1 && P % 16 != 0
        // The weights of the whole tile are computed before any output is written.
        let wholeTile = rowWise || flat
        Threads.forEach(units.count * tiles, threads: threads) { item in
            let tile = item % tiles, unit = units.lowerBound + item / tiles
            // Unit n·heads + g starts at channel n·C + g·cph = unit·cph.
            let plane = unit * cph * P
            let (source, destination) = (x + plane, out + plane)
            let key = keys.head(unit)
            // Chunk weights, or the weights of the whole tile (< 2 tiles long, and 16 more for a flat
            // run's wrap-around) and, at its end, one 16-pixel group's.
            let capacity = wholeTile ? 2 * Self.tilePixels + 16 : V.width
            withUnsafeTemporaryAllocation(of: Float.self, capacity: capacity) { weightBuffer in
                let buffer = weightBuffer.baseAddress!
                guard P >= 16 else {
                    smallPlane(source, destination, key: key, power: power, weights: buffer)
                    return
                }
                let start = tile * Self.tilePixels, end = tile == tiles - 1 ? P : start + Self.tilePixels
                // Where the weights of the pixels from `p` on go.
                func weights(at p: Int) -> UnsafeMutablePointer<Float> { wholeTile ? buffer + (p - start) : buffer }
                // The weights of the 16 pixels from `group`, and the scaled output of lanes
                // `lanes` of them (row-wise: their weights into the tile's buffer). The other
                // lanes' weights are computed, from values possibly already scaled in place, and
                // dropped: a pixel's weight depends only on its own channel vector.
                func partialGroup(_ group: Int, lanes: Range<Int>) {
                    let w = wholeTile ? buffer + 2 * Self.tilePixels : buffer
                    correlation(OneVector.self, source + group, stride: P, key: key, into: w)
                    power.weights(w, count: 16, reverse: reverse)
                    if wholeTile {
                        for j in lanes { buffer[group - start + j] = w[j] }
                    } else if lanes.count == 16 {
                        scale(OneVector.self, source + group, destination + group, stride: P, weights: w)
                    } else {
                        scaleColumns(source + group, destination + group, stride: P, weights: w,
                                     from: lanes.lowerBound, to: lanes.upperBound)
                    }
                }
                // The chunks start at the tile's first pixel whose output is 64-byte aligned when
                // every channel row shares its alignment (H·W a multiple of 16): a vector store that
                // straddles two cache lines made the whole call 1.35× slower in the C reference
                // kernel (docs/kernels.md), and Swift arrays are only 16-byte aligned. The `lead`
                // pixels before it are one partial group, done last.
                let lead = P % 16 == 0 ? Self.pixelsToAlignment(destination + start) : 0
                var p = start + lead
                // With streaming stores, the next tile (its first `tilePixels` pixels) is fetched row
                // by row while this tile's output is written, so that reading from DRAM overlaps
                // writing to it; fetched chunk by chunk during the moments instead, the reads and the
                // streamed writes took turns (one thread, `[1, 256, 224, 224]`: 14.3–17.4 ms against
                // 18.7–21.9 ms; docs/kernels.md).
                let fetchWhileWriting = prefetch && streaming && start + 2 * Self.tilePixels <= P
                while end - p >= V.width {
                    if prefetch && !fetchWhileWriting && p + Self.tilePixels + V.width <= P {
                        // Out of cache, a chunk's channel rows are more concurrent streams than the
                        // hardware prefetcher follows: fetch the same chunk of the next tile into L2,
                        // a whole tile of work (~10 µs) ahead of its use. (Prefetching the output
                        // lines with intent to write as well measured slower: docs/kernels.md.)
                        ck_prefetch_rows(source + p + Self.tilePixels, Int32(cph), P, Int32(V.count))
                    }
                    let w = weights(at: p)
                    correlation(V.self, source + p, stride: P, key: key, into: w)
                    power.weights(w, count: V.width, reverse: reverse)
                    if !wholeTile { scale(V.self, source + p, destination + p, stride: P, weights: w) }
                    p += V.width
                }
                while p < end {
                    // 16-pixel groups; the last one ends at the tile's end and may overlap pixels
                    // already written (a tile has at least 16 pixels).
                    let group = min(p, end - 16)
                    partialGroup(group, lanes: (p - group)..<16)
                    p = group + 16
                }
                if lead > 0 { partialGroup(start, lanes: 0..<lead) }
                if flat {
                    scalePlane(source, destination, weights: buffer)
                } else if rowWise {
                    if streaming {
                        ck_scale_rows_stream(destination + start, source + start, buffer, Int32(cph), Int32(end - start), P,
                                             fetchWhileWriting ? source + start + Self.tilePixels : nil,
                                             Int32(Self.tilePixels / 16))
                    } else {
                        for c in 0..<cph {
                            scaleRow(source + c * P + start, destination + c * P + start, weights: buffer, count: end - start)
                        }
                    }
                }
            }
        }
    }

    /// `out[c·P + p] = x[c·P + p]·w[p]` over a head's `cph` contiguous channel rows of `P ≥ 16` pixels,
    /// as one run with 64-byte aligned vector stores; `w` holds `P + 16` floats of room and is made
    /// periodic (`w[P + j] = w[j]`) so that a vector straddling two rows reads its weights in one load.
    @inline(__always)
    private func scalePlane(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, weights w: UnsafeMutablePointer<Float>) {
        let P = shape.pixels, total = channelsPerHead * P
        (w + P).update(from: w, count: 16)
        var i = 0
        while i < min(total, Self.pixelsToAlignment(out)) { out[i] = x[i] * w[i]; i += 1 }
        // Pointers and wrapping adds: the checked index arithmetic and a reloaded base pointer
        // were half the loop's instructions.
        var (source, target, weight) = (x + i, out + i, UnsafePointer(w) + i)  // i < 16 ≤ P
        let (end, wrap) = (out + (total &- 15), UnsafePointer(w) + P)
        while target < end {
            target.storeVector(source.loadVector() * weight.loadVector())
            source += 16
            target += 16
            weight += 16
            if weight >= wrap { weight -= P }
        }
        while target < out + total {
            target.pointee = source.pointee * weight.pointee
            source += 1
            target += 1
            weight += 1
            if weight == wrap { weight -= P }
        }
    }

    /// Pixels from `p` to the first 64-byte aligned one (0 to 15).
    @inline(__always)
    static func pixelsToAlignment(_ p: UnsafeMutablePointer<Float>) -> Int {
        (16 - ((Int(bitPattern: p) >> 2) & 15)) & 15
    }

    /// `out[j] = x[j]·w[j]` for `j < count`.
    @inline(__always)
    private func scaleRow(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                          weights w: UnsafePointer<Float>, count: Int) {
        var j = 0
        while j + 16 <= count { out.storeVector(x.loadVector(j) * w.loadVector(j), j); j += 16 }
        while j < count { out[j] = x[j] * w[j]; j += 1 }
    }

    /// Correlation (or cosine) of the `16·V` pixels of a chunk with the head's key, into `corr`:
    /// one pass of shifted sums over the chunk's `cph` channel rows (see ``ChunkVectors``).
    @inline(__always)
    private func correlation<V: ChunkVectors>(_ type: V.Type, _ x: UnsafePointer<Float>, stride: Int,
                                              key: SPSAKeys.Head, into corr: UnsafeMutablePointer<Float>) {
        var q = V(), d = V(), a = V()
        // The shift is the pixel's own value in the head's first channel (0 for cosine).
        let s = centered ? V(loading: x) : V()
        // Pointer increments, not `x + c·stride`: the checked multiply cost a few percent a row.
        var row = x, k = key.values
        var c = 0
        // Two sets of sums, even and odd channels, added at the end: a 16-pixel group has too few
        // independent sums to hide the add latency with one set. Every chunk width adds in this
        // order, so a pixel's weight does not depend on the chunk it falls in, which moves with the
        // output's alignment: the same input gives the same bits wherever the output lies.
        var q1 = V(), d1 = V(), a1 = V()
        while c + 2 <= channelsPerHead {
            V.accumulate(row, shift: s, key: FloatVector(repeating: k[0]), sum: &a, squares: &q, dots: &d)
            V.accumulate(row + stride, shift: s, key: FloatVector(repeating: k[1]), sum: &a1, squares: &q1, dots: &d1)
            row += 2 * stride
            k += 2
            c += 2
        }
        for i in 0..<V.count {
            a[i] += a1[i]
            q[i] += q1[i]
            d[i] += d1[i]
        }
        while c < channelsPerHead {
            V.accumulate(row, shift: s, key: FloatVector(repeating: k.pointee), sum: &a, squares: &q, dots: &d)
            row += stride
            k += 1
            c += 1
        }
        V.finish(sum: a, squares: q, dots: d, count: channelsPerHead, centered: centered, key: key, into: corr)
    }

    @inline(__always)
    private func scale<V: ChunkVectors>(_ type: V.Type, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                                        stride: Int, weights: UnsafePointer<Float>) {
        let w = V(loading: weights)
        var (row, target) = (x, out)
        for _ in 0..<channelsPerHead {
            V.scale(row, target, w)
            row += stride
            target += stride
        }
    }

    /// Lanes `first..<last` of a group of pixels, one channel row after another.
    private func scaleColumns(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, stride: Int,
                              weights: UnsafePointer<Float>, from first: Int, to last: Int) {
        for c in 0..<channelsPerHead {
            let r = x + c * stride, o = out + c * stride
            for j in first..<last { o[j] = r[j] * weights[j] }
        }
    }

    /// A plane of fewer than 16 pixels (1×1, 1×7): copied row by row into a zero-padded 16-pixel
    /// group so the same moment code runs; the padding's weights are computed and never written.
    private func smallPlane(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, key: SPSAKeys.Head,
                            power: SPSAPower, weights: UnsafeMutablePointer<Float>) {
        let (P, cph) = (shape.pixels, channelsPerHead)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: cph * 16) { padded in
            let pad = padded.baseAddress!
            for c in 0..<cph {
                (pad + c * 16).update(from: x + c * P, count: P)
                (pad + c * 16 + P).initialize(repeating: 0, count: 16 - P)
            }
            correlation(OneVector.self, UnsafePointer(pad), stride: 16, key: key, into: weights)
            power.weights(weights, count: 16, reverse: reverse)
            for c in 0..<cph {
                for j in 0..<P { out[c * P + j] = pad[c * 16 + j] * weights[j] }
            }
        }
    }
}
