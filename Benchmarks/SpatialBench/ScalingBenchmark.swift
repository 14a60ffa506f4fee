import ArgumentParser
import CKernels
import Foundation
import SpatialAttention
import SpatialAttentionReference

/// `spatial-bench scaling`: time against image size for the linear-complexity modules (SPSA, GSA,
/// SASA) and the quadratic baseline (full attention), with fitted log-log slopes, CSV and an SVG plot.
struct ScalingBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scaling",
        abstract: "Time vs N = s² for SPSA, GSA content, GSA, SASA and full attention; slopes, CSV, SVG.",
        discussion: """
        Full attention at s = 224 (N = 50176) costs about 1.3 TFLOP per call (≈ 13 s on one core); it is \
        skipped unless --attention-max-side reaches 224, and then timed once. The table notes the estimate \
        from the fitted slope instead.

        Warm samples repeat the call on the same input, so a small image sits in L2 and a large one comes \
        from DRAM: their slope mixes the cache hierarchy into the complexity. Cold samples evict the input \
        (and SPSA's and copy's reused output) from every cache level before each call, so that every side \
        starts from DRAM. The copy row (memcpy of the input) is the memory floor for both.
        """
    )

    @Option(help: "Threads for our kernels and OpenBLAS.") var threads = 1
    @Option(help: "Channels C of the input (and of every module).") var channels = 256
    @Option(help: "Image sides s, comma-separated.", transform: ScalingBenchmark.parseList)
    var sides: [Int] = [7, 14, 28, 56, 112, 224]
    @Option(help: "Modules, comma-separated: \(ScalingModule.allCases.map(\.rawValue).joined(separator: ",")).",
            transform: ScalingBenchmark.parseModules)
    var modules: [ScalingModule] = ScalingModule.available
    @Option(help: "Largest side at which full attention runs (O(N²)); larger sides are estimated.")
    var attentionMaxSide = 112
    @Option(help: "Seconds of samples per case (at least 3 samples).") var seconds = 1.0
    @Option(help: "Cases whose first call takes longer than this many seconds are timed once.") var singleShot = 3.0
    @Option(help: "Samples: warm (the same input again and again), cold (input evicted from every cache level before each call), or both.")
    var cache: CacheState = .both
    @Option(help: "Folder for scaling.csv and scaling.svg.") var results = "results"
    @Flag(help: "Print JSON records on stdout (the table goes to stderr).") var json = false

    static func parseList(_ text: String) throws -> [Int] {
        try text.split(separator: ",").map {
            guard let v = Int($0.trimmingCharacters(in: .whitespaces)), v > 0 else {
                throw ValidationError("'\($0)' is not a positive integer")
            }
            return v
        }
    }

    static func parseModules(_ text: String) throws -> [ScalingModule] {
        try text.split(separator: ",").map {
            guard let m = ScalingModule(rawValue: String($0)) else {
                throw ValidationError("unknown module '\($0)'; known: \(ScalingModule.allCases.map(\.rawValue))")
            }
            return m
        }
    }

    func run() throws {
        BLAS.threads = threads
        note(machineDescription())
        note("scaling: C = \(channels), threads = \(threads), sides \(sides), modules \(modules.map(\.rawValue))")
        for module in modules { try module.validate() }
        var points: [ScalingPoint] = []
        for module in modules {
            for s in sides.sorted() {
                if module == .attention && s > attentionMaxSide {
                    note("  \(module.rawValue) s=\(s): skipped (O(N²); --attention-max-side \(attentionMaxSide))")
                    continue
                }
                let layer = try module.make(channels: channels, side: s)
                let x = try Tensor.random(shape: Shape(1, channels, s, s), seed: UInt64(s))
                Scratch.purge()
                PeakMemory.reset()
                let t0 = now()
                blackHole(try layer.run(x, threads: threads))
                let first = now() - t0
                let peak = PeakMemory.peakBytes()
                // Budget: `seconds` of samples and at least 3 (after a warm-up) while a call takes under
                // `singleShot` seconds; slower cases use the first call as their only sample.
                var warm = Measurement(samples: [first])
                if first < singleShot && cache != .cold {
                    warm = measure(warmup: 1, repetitions: 3, minimumSeconds: seconds,
                                   maximumRepetitions: max(3, Int(seconds / max(first, 1e-6)))) {
                        blackHole(try! layer.run(x, threads: threads))
                    }
                }
                var cold: Measurement?
                if cache != .warm {
                    cold = try measureCold(layer, x, repetitions: first < singleShot ? 3 : 1,
                                           maximumRepetitions: max(3, Int(seconds / max(first, 1e-6))))
                }
                let point = ScalingPoint(module: module, side: s, warm: cache == .cold ? nil : warm, cold: cold,
                                         flops: 2 * Double(try layer.macs(Shape(1, channels, s, s))),
                                         peakBytes: peak)
                note("  \(module.rawValue) s=\(s): " + [("warm", point.warm), ("cold", point.cold)].compactMap { name, m in
                    m.map { "\(name) \(fmt($0.median * 1e3, 3)) ms (\($0.samples.count) samples)" }
                }.joined(separator: ", "))
                points.append(point)
            }
        }
        let report = ScalingReport(points: points, modules: modules, sides: sides, cache: cache,
                                   attentionMaxSide: attentionMaxSide, channels: channels, threads: threads)
        let table = report.table()
        if json {
            note(table)
            print(JSONValue.array(report.records()))
        } else {
            print(table)
        }
        try writeResult(report.csv(), to: results + "/scaling.csv")
        try writeResult(ScalingPlot.svg(report), to: results + "/scaling.svg")
    }

    /// Samples of single calls, each after evicting the layer's input and reused output from every
    /// cache level (`ck_evict`); the eviction is not timed. Nil where the CPU has no eviction
    /// instruction that user code may run.
    func measureCold(_ layer: AnyScalingLayer, _ x: Tensor, repetitions: Int, maximumRepetitions: Int) throws -> Measurement? {
        var samples: [Double] = []
        let start = now()
        while samples.count < repetitions || (now() - start < seconds && samples.count < maximumRepetitions) {
            guard layer.evict(x) else { return nil }
            let t0 = now()
            blackHole(try layer.run(x, threads: threads))
            samples.append(now() - t0)
        }
        return Measurement(samples: samples)
    }
}

/// Which samples `spatial-bench scaling` takes.
enum CacheState: String, CaseIterable, ExpressibleByArgument {
    case warm, cold, both
}

/// The modules of the scaling table.
enum ScalingModule: String, CaseIterable, ExpressibleByArgument {
    case copy, spsa, gsaContent = "gsa-content", gsa, sasa, attention

    /// The default module list: all of them.
    static var available: [ScalingModule] { allCases }

    /// The slope of the module's operation count against N: 1 for the linear modules; GSA's
    /// positional passes cost O(N·L) with L = s, so O(N^1.5) (003 §3.1.2) on top of its linear
    /// projections; full attention O(N²).
    var complexity: String {
        switch self {
        case .copy, .spsa, .gsaContent, .sasa: return "1"
        case .gsa: return "1 to 1.5"
        case .attention: return "2"
        }
    }

    /// The module at side `s`: the reference copy (memcpy of the input into a reused output: the
    /// memory floor); SPSA with 4 heads (α = 2, correlation, reverse); GSA with 8 heads and
    /// L = s; SASA k = 7, 8 heads; full attention as the non-local block (C/2 inner channels, one head,
    /// output projection, residual).
    func make(channels C: Int, side s: Int) throws -> AnyScalingLayer {
        switch self {
        case .copy: return AnyScalingLayer.copy
        case .spsa: return AnyScalingLayer(SPSA(heads: 4))
        case .gsaContent: return AnyScalingLayer(try GSA(channels: C, heads: 8, extent: s, components: .content, seed: 1))
        case .gsa: return AnyScalingLayer(try GSA(channels: C, heads: 8, extent: s, seed: 1))
        case .sasa: return AnyScalingLayer(try SASA(channels: C, heads: 8, kernelSize: 7, seed: 1))
        case .attention: return AnyScalingLayer(try NonLocal(channels: C, seed: 1))
        }
    }

    /// Checks the fast module against its naive twin once, at C = 16, 7×7.
    func validate() throws {
        let x = try Tensor.random(shape: Shape(1, 16, 7, 7), seed: 99)
        let mismatch: Mismatch?
        switch self {
        case .copy:
            mismatch = Tolerance.exact.firstMismatch(try AnyScalingLayer.copy.run(x, threads: 1), ReferenceTensor(x))
        case .spsa:
            let m = SPSA(heads: 4)
            mismatch = Tolerance.spsa.firstMismatch(try m(x), Naive.spsa(x, heads: 4))
        case .gsaContent, .gsa:
            let g = try GSA(channels: 16, heads: 8, extent: 7, components: self == .gsa ? .all : .content, seed: 1)
            mismatch = Tolerance.gsa.firstMismatch(try g(x), try Naive.gsa(x, module: g))
        case .sasa:
            let m = try SASA(channels: 16, heads: 8, seed: 1)
            mismatch = Tolerance.sasa.firstMismatch(try m(x), try Naive.sasa(x, module: m))
        case .attention:
            let m = try NonLocal(channels: 16, seed: 1)
            mismatch = Tolerance.attention.firstMismatch(try m(x), try Naive.attention(x, module: m))
        }
        if let mismatch { throw ValidationError("\(rawValue) disagrees with its naive twin: \(mismatch)") }
    }
}

/// A layer with a thread count, type-erased for the benchmark loop, and the eviction of its input
/// (and of the output it reuses, if any) for cold samples.
struct AnyScalingLayer {
    let run: (Tensor, Int) throws -> Tensor
    let macs: (Shape) throws -> Int
    let evict: (Tensor) -> Bool

    init(run: @escaping (Tensor, Int) throws -> Tensor, macs: @escaping (Shape) throws -> Int,
         reused output: ReusedOutput? = nil) {
        self.run = run
        self.macs = macs
        evict = { x in
            guard AnyScalingLayer.evict(x) else { return false }
            if let tensor = output?.tensor { _ = AnyScalingLayer.evict(tensor) }
            return true
        }
    }

    init(_ g: GSA) { self.init(run: { try g($0, threads: $1) }, macs: g.multiplyAccumulates) }
    /// SPSA counts 0 MACs in the papers' convention: its GFLOP/s column shows "–". It writes into
    /// an output reused from call to call (`apply(to:into:)`, as a network reuses its activation
    /// buffers): a fresh 51 MB array at s = 224 cost more in page faults than the kernel itself.
    init(_ s: SPSA) {
        let output = ReusedOutput()
        self.init(run: { x, threads in
            output.prepare(like: x)
            try s.apply(to: x, into: &output.tensor!, threads: threads)
            return output.tensor!
        }, macs: s.multiplyAccumulates, reused: output)
    }
    init(_ s: SASA) { self.init(run: { try s($0, threads: $1) }, macs: s.multiplyAccumulates) }
    init(_ a: NonLocal) { self.init(run: { try a($0, threads: $1) }, macs: a.multiplyAccumulates) }

    /// The memory floor: memcpy of the input into a reused output (0 MACs).
    static var copy: AnyScalingLayer {
        let output = ReusedOutput()
        return AnyScalingLayer(run: { x, _ in
            output.prepare(like: x)
            x.scalars.withUnsafeBufferPointer { source in
                output.tensor!.scalars.withUnsafeMutableBufferPointer {
                    ck_copy($0.baseAddress, source.baseAddress, source.count)
                }
            }
            return output.tensor!
        }, macs: { _ in 0 }, reused: output)
    }

    /// Evicts the tensor's storage from every cache level; false where the CPU cannot.
    static func evict(_ tensor: Tensor) -> Bool {
        tensor.scalars.withUnsafeBytes { ck_evict($0.baseAddress, $0.count) != 0 }
    }

    func run(_ x: Tensor, threads: Int) throws -> Tensor { try run(x, threads) }
}

/// An output tensor kept from call to call, as a network keeps its activation buffers.
final class ReusedOutput {
    var tensor: Tensor?

    /// Replaces the kept tensor by a NaN-filled one of `x`'s shape and layout when it differs.
    func prepare(like x: Tensor) {
        if tensor?.shape != x.shape || tensor?.layout != x.layout { tensor = x.nanFilledLike() }
    }
}

/// One module at one side: its warm and cold samples (either may be absent, per `--cache`).
struct ScalingPoint {
    let module: ScalingModule
    let side: Int
    let warm: Measurement?
    let cold: Measurement?
    let flops: Double
    let peakBytes: Int
    var n: Int { side * side }

    /// The headline time: the warm median, or the cold one in a cold-only run.
    var seconds: Double { (warm ?? cold)?.median ?? .nan }
}
