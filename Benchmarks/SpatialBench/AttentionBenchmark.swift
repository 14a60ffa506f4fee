import ArgumentParser
import Foundation
import SpatialAttention
import SpatialAttentionReference

/// `spatial-bench attention`: the timing targets for GSA (content path and full module at
/// d = 256, 56×56) and full attention (s = 112, with peak memory), against the sgemm ceiling
/// measured in the same run.
struct AttentionBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "GSA content/full and full self-attention timings against the sgemm ceiling (issue 4 targets)."
    )

    @Option(help: "Threads for our kernels and OpenBLAS.") var threads = 1
    @Option(help: "Channels C (= d).") var channels = 256
    @Option(help: "GSA side s (s×s image).") var gsaSide = 56
    @Option(help: "Full-attention side s; 0 skips it.") var attentionSide = 112
    @Option(help: "Full attention: queries per block.") var queryBlock = 256
    @Option(help: "Full attention: keys per block of the online softmax.") var keyBlock = 1024
    @Option(help: "Full attention inner widths (key = value channels), comma-separated; default C/2 and C.")
    var inner: String = ""
    @Flag(help: "Skip the GSA cases.") var noGSA = false
    @Option(help: "Only these GSA cases (comma-separated names), e.g. gsa,gsa-content.") var only: String = ""
    @Flag(help: "Print JSON records on stdout.") var json = false
    @Flag(inversion: .prefixedNo, help: "Print the GSA-/SASA-ResNet complexity table (003 Tables 3 and 6).")
    var complexity = true

    func run() throws {
        BLAS.threads = threads
        note(machineDescription())
        if complexity { print(try AttentionBenchmark.complexityTable()) }
        let C = channels, s = gsaSide, P = s * s
        let ceiling = Ceiling.sgemmGFLOPs(m: P, n: 3 * C, k: C)
        note("sgemm ceiling (\(P)×\(3 * C)×\(C)): \(fmt(ceiling)) GFLOP/s")
        var table = TextTable(["case", "ms", "GEMM GFLOP/s", "% of sgemm", "note"])
        var records: [JSONValue] = []
        func record(_ name: String, ms: Double, gemmFLOPs: Double?, note text: String, extra: [(String, JSONValue)] = []) {
            let rate = gemmFLOPs.map { $0 / (ms * 1e-3) / 1e9 }
            table.append([name, fmt(ms, 2), rate.map { fmt($0) } ?? "–", rate.map { fmt(100 * $0 / ceiling) } ?? "–", text])
            var pairs: [(String, JSONValue)] = [("case", .string(name)), ("median_ms", .number(ms)),
                                                ("sgemm_gflops", .number(ceiling))]
            if let rate { pairs.append(("gemm_gflops", .number(rate))) }
            records.append(.object(pairs + extra))
        }

        // GSA variants at d = C, 8 heads, L = s.
        let variants: [(String, GSA.Components, GSA.PositionalKernel)] = [
            ("gsa-content", .content, .fused), ("gsa", .all, .fused), ("gsa (sgemm positional)", .all, .gemm),
            ("gsa-positional", .positional, .fused), ("gsa-column", .column, .fused), ("gsa-row", .row, .fused),
        ]
        let chosen = Set(only.split(separator: ",").map(String.init))
        for (name, parts, kernel) in variants where !noGSA && (chosen.isEmpty || chosen.contains(name)) {
            var gsa = try GSA(channels: C, heads: 8, extent: s, components: parts, seed: 1)
            gsa.positionalKernel = kernel
            var small = try GSA(channels: 32, heads: 8, extent: 9, components: parts, seed: 1)
            small.positionalKernel = kernel
            try validateGSA(gsa: small)
            let x = try Tensor.random(shape: Shape(1, C, s, s), seed: 2)
            let m = measure(warmup: 2, repetitions: 9, minimumSeconds: 1) { blackHole(try! gsa(x, threads: threads)) }
            // The projection GEMMs alone (same shapes, measured next to the module): what is left of the
            // module's time is its attention work.
            let rows = parts == .content ? 3 * gsa.keyChannels
                : gsa.keyChannels * (parts.contains(.content) ? 2 : 1) + gsa.valueChannels
            let projection = AttentionBenchmark.gemmSeconds(m: rows, n: P, k: C)
            let flops = GSABenchmarkFLOPs.gemm(gsa, height: s, width: s)
            record(name, ms: m.median * 1e3, gemmFLOPs: flops,
                   note: "projection GEMM alone \(fmt(projection * 1e3, 2)) ms, rest \(fmt((m.median - projection) * 1e3, 2)) ms",
                   extra: [("projection_ms", .number(projection * 1e3)),
                           ("rest_ms", .number((m.median - projection) * 1e3))])
        }
        // Full attention at s = attentionSide: the non-local default (C/2 inner channels) and inner = C.
        if attentionSide > 0 {
            let a = attentionSide
            let widths = inner.isEmpty ? [C / 2, C] : try ScalingBenchmark.parseList(inner)
            for inner in widths {
                var module = try NonLocal(channels: C, keyChannels: inner, valueChannels: inner, seed: 1)
                module.queryBlock = queryBlock
                module.keyBlock = keyBlock
                let small = try NonLocal(channels: 16, keyChannels: inner * 16 / C, valueChannels: inner * 16 / C, seed: 1)
                let xs = try Tensor.random(shape: Shape(1, 16, 9, 7), seed: 3)
                if let mismatch = Tolerance.attention.firstMismatch(try small(xs), try Naive.attention(xs, module: small)) {
                    throw ValidationError("NonLocal disagrees with Naive.attention: \(mismatch)")
                }
                let x = try Tensor.random(shape: Shape(1, C, a, a), seed: 4)
                Scratch.purge()
                let before = PeakMemory.residentBytes()
                PeakMemory.reset()
                let m = measure(warmup: 1, repetitions: 3, minimumSeconds: 0, maximumRepetitions: 3) {
                    blackHole(try! module(x, threads: threads))
                }
                let peak = PeakMemory.peakBytes()
                let P = Double(a * a)
                let flops = 2 * (P * Double(C) * Double(3 * inner) + P * P * Double(2 * inner) + P * Double(inner * C))
                record("attention s=\(a) inner=\(inner) blocks \(queryBlock)×\(keyBlock)", ms: m.median * 1e3,
                       gemmFLOPs: flops,
                       note: "peak RSS \(fmt(Double(peak) / 1e6)) MB (\(fmt(Double(before) / 1e6)) MB before the call)",
                       extra: [("peak_mb", .number(Double(peak) / 1e6)), ("rss_before_mb", .number(Double(before) / 1e6))])
            }
        }
        print(table.render())
        if json { print(JSONValue.array(records)) }
    }

    /// Parameters and FLOPs (2 per MAC, 003 counts multiplications and additions separately) of the
    /// attention ResNets at 224×224 against 003 Table 6 (GSA) and Table 3 (SASA-ResNet-50).
    static func complexityTable() throws -> String {
        let paper: [(AttentionResNet.Kind, Int, Double, Double)] = [
            (.gsa, 38, 14.2, 5.9), (.gsa, 50, 18.1, 7.2), (.gsa, 101, 30.4, 12.2), (.sasa, 50, 18.0, 7.0),
        ]
        var t = TextTable(["model", "params (M)", "paper", "GFLOPs", "paper", "GMACs"])
        for (kind, depth, params, flops) in paper {
            let model = try AttentionResNet(kind, depth: depth, seed: 1)
            let macs = Double(try model.multiplyAccumulates(for: Shape(1, 3, 224, 224)))
            t.append(["\(kind.rawValue)-resnet\(depth)", fmt(Double(model.parameterCount) / 1e6, 2), fmt(params),
                      fmt(2 * macs / 1e9, 2), fmt(flops), fmt(macs / 1e9, 3)])
        }
        return "Attention ResNets at 224×224 (FLOPs = 2 × MACs)\n" + t.render() + "\n"
    }

    /// Median seconds of one `m×k · k×n` sgemm (row-major, no transposes) on seeded data.
    static func gemmSeconds(m: Int, n: Int, k: Int) -> Double {
        let a = (0..<(m * k)).map { Float($0 % 7) * 0.01 }, b = (0..<(k * n)).map { Float($0 % 5) * 0.01 }
        var c = [Float](repeating: 0, count: m * n)
        return a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    measure(warmup: 2, repetitions: 9, minimumSeconds: 0.3) {
                        GEMM.multiply(m: m, n: n, k: k, a: pa.baseAddress!, lda: k, b: pb.baseAddress!, ldb: n,
                                      c: pc.baseAddress!, ldc: n)
                    }.median
                }
            }
        }
    }

    /// Checks the fast module against its naive twin once (small shape) before timing.
    func validateGSA(gsa: GSA) throws {
        let x = try Tensor.random(shape: Shape(1, gsa.channels, 9, 7), seed: 3)
        if let mismatch = Tolerance.gsa.firstMismatch(try gsa(x), try Naive.gsa(x, module: gsa)) {
            throw ValidationError("GSA \(gsa.components) disagrees with Naive.gsa: \(mismatch)")
        }
    }
}

/// The FLOPs (2 per multiply-add) of the GEMMs a GSA forward pass issues, as implemented.
enum GSABenchmarkFLOPs {
    static func gemm(_ gsa: GSA, height H: Int, width W: Int) -> Double {
        let (P, C, dkT, dvT, heads) = (Double(H * W), Double(gsa.channels), Double(gsa.keyChannels),
                                       Double(gsa.valueChannels), Double(gsa.heads))
        let (dk, dv) = (dkT / heads, dvT / heads)
        if gsa.components == .content {
            // K = W_K·X, G = K̂·Xᵀ, C_h = G_h·W_V,hᵀ, M_h = C_hᵀ·W_Q,h, Y = M·X.
            return 2 * (dkT * C * P + dkT * C * P + heads * dk * dv * C * 2 + dvT * C * P)
        }
        var macs = P * C * (dkT + dvT)
        if gsa.components.contains(.content) { macs += P * C * dkT + 2 * P * dk * dv * heads }
        if gsa.components.contains(.column) { macs += P * Double(H) * (dk + dv) * heads }
        if gsa.components.contains(.row) { macs += P * Double(W) * (dk + dv) * heads }
        return 2 * macs
    }
}
