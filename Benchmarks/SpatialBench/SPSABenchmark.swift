import ArgumentParser
import Foundation
import SpatialAttention
import SpatialAttentionReference

/// `spatial-bench spsa`: the fused SPSA kernel against the memory ceilings measured in the same run.
struct SPSABenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spsa",
        abstract: "Time SPSA on the ResNet-50 shapes (or --shape) against copy and streaming-store bandwidth."
    )

    /// The ResNet-50 stage shapes of 002 §4.2 (64 channels a head), a batch, and one out of cache.
    static let defaultCases: [(shape: Shape, heads: Int, note: String)] = [
        /*        N    C    H    W        heads  layer                          */
        (Shape(1,  64,  56,  56),  1, "conv2_x 3×3 output"),
        (Shape(1, 128,  28,  28),  2, "conv3_x 3×3 output"),
        (Shape(1, 256,  14,  14),  4, "conv4_x 3×3 output"),
        (Shape(1, 512,   7,   7),  8, "conv5_x 3×3 output"),
        (Shape(32, 64,  56,  56),  1, "conv2_x, batch 32"),
        (Shape(8, 256, 112, 112),  4, "out of cache (103 MB)"),
    ]

    /// Tensors of at least this many bytes get their own streaming-store ceiling, measured right
    /// before and after their timing (the `[32, 64, 56, 56]` and out-of-cache rows).
    static let adjacentCeilingBytes = 16 << 20

    @Option(help: "One shape N,C,H,W instead of the default list.")
    var shape: String?

    @Option(help: "Heads for --shape (default: C/64, at least 1).")
    var heads: Int?

    @Option(help: "nchw or nhwc (default: both).")
    var layout: String?

    @Option(help: "Thread count (default: 1 and 2).")
    var threads: Int?

    @Option(help: "Exponent α.")
    var alpha: Float = 2

    @Flag(help: "Print JSON records on stdout instead of the table.")
    var json = false

    mutating func run() throws {
        let cases: [(shape: Shape, heads: Int, note: String)]
        if let text = shape {
            let d = text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard d.count == 4 else { throw ValidationError("--shape needs N,C,H,W, got \(text)") }
            let s = Shape(d[0], d[1], d[2], d[3])
            cases = [(s, heads ?? max(1, s.channels / 64), "")]
        } else {
            cases = Self.defaultCases
        }
        let layouts: [Layout]
        if let l = layout {
            guard let parsed = Layout(rawValue: l) else { throw ValidationError("--layout must be nchw or nhwc") }
            layouts = [parsed]
        } else {
            layouts = Layout.allCases
        }
        let threadCounts = threads.map { [$0] } ?? [1, 2]

        // Ceilings over 2 × 64 MB buffers: out of every cache level of this machine.
        let ceilingCount = 16 << 20
        var copy: [Int: Double] = [:], stream: [Int: Double] = [:]
        for t in threadCounts {
            copy[t] = Ceiling.copyGBps(count: ceilingCount, threads: t)
            stream[t] = Ceiling.streamGBps(count: ceilingCount, threads: t)
        }
        if !json {
            print("SPSA (α = \(alpha)), \(machineDescription())")
            for t in threadCounts {
                print("ceilings, \(t) thread(s): copy \(fmt(copy[t]!)) GB/s, streaming-store scale \(fmt(stream[t]!)) GB/s (bytes read + written)")
            }
        }
        var table = TextTable(["shape", "heads", "layout", "threads", "median µs", "GB/s", "% copy", "% stream", "max rel err", "layer"])
        var records: [JSONValue] = []
        for c in cases {
            for l in layouts {
                let x = try Tensor.random(shape: c.shape, layout: l, seed: 1)
                let layer = SPSA(alpha: alpha, heads: c.heads)
                // Validate against the naive transcription once before timing.
                let reference = Naive.spsa(x, alpha: alpha, heads: c.heads)
                var out = x.nanFilledLike()
                try layer.apply(to: x, into: &out, threads: threadCounts.max())
                if let mismatch = Tolerance.spsa.firstMismatch(out, reference) {
                    throw ValidationError("SPSA \(c.shape) \(l) fails validation: \(mismatch)")
                }
                let relativeError = maximumRelativeError(out, reference)
                for t in threadCounts {
                    // Out of cache the share of the streaming-store ceiling is the figure that matters, and
                    // on a shared host the ceiling measured at the start of the run can be minutes and a
                    // stolen core away from the kernel's timing: measure it again right before and right
                    // after, and take the higher of the two (a ceiling measured while the host stole
                    // time cannot inflate the share).
                    let adjacent = c.shape.count * 4 >= Self.adjacentCeilingBytes
                    let before = adjacent ? Ceiling.streamGBps(count: ceilingCount, threads: t) : stream[t]!
                    let m = measure {
                        try! layer.apply(to: x, into: &out, threads: t)
                        blackHole(out)
                    }
                    let after = adjacent ? Ceiling.streamGBps(count: ceilingCount, threads: t) : stream[t]!
                    let streamCeiling = max(before, after)
                    let seconds = m.median
                    let gbps = 3 * Double(c.shape.count * 4) / seconds / 1e9
                    let note = adjacent ? "\(c.note); stream \(fmt(before, 1)) | \(fmt(after, 1)) GB/s" : c.note
                    table.append([c.shape.description, String(c.heads), l.rawValue, String(t), fmt(seconds * 1e6, 1),
                                  fmt(gbps, 1), fmt(100 * gbps / copy[t]!, 0), fmt(100 * gbps / streamCeiling, 0),
                                  String(format: "%.1e", relativeError), note])
                    records.append(.object([
                        ("module", .string("spsa")), ("shape", .array(c.shape.dimensions.map { .integer($0) })),
                        ("heads", .integer(c.heads)), ("layout", .string(l.rawValue)), ("threads", .integer(t)),
                        ("alpha", .number(Double(alpha))), ("median_us", .number(seconds * 1e6)),
                        ("effective_gbps", .number(gbps)), ("copy_gbps", .number(copy[t]!)),
                        ("stream_gbps", .number(streamCeiling)), ("stream_gbps_before", .number(before)),
                        ("stream_gbps_after", .number(after)), ("max_relative_error", .number(relativeError)),
                    ]))
                }
            }
        }
        if json {
            print(JSONValue.array(records))
        } else {
            print(table.render())
            print("GB/s = 3 × bytes of x / time (x read for the key, read again for the moments, output written once).")
            print("Tensors of 16 MB and more: % stream against the higher of two streaming-store ceilings measured right before and after (last column).")
        }
    }

    /// The largest `|a − e| / |e|` over elements with `|e| > 1e-3` (the rest are judged by atol).
    private func maximumRelativeError(_ actual: Tensor, _ expected: ReferenceTensor) -> Double {
        let a = actual.converted(to: .nchw).scalars
        var worst = 0.0
        for i in a.indices where abs(expected.values[i]) > 1e-3 {
            worst = max(worst, abs(Double(a[i]) - expected.values[i]) / abs(expected.values[i]))
        }
        return worst
    }
}
