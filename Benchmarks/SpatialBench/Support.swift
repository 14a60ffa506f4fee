import Dispatch
import Foundation
import CKernels
import SpatialAttention

// MARK: - Timing

/// Keeps `value` alive so the optimiser cannot drop the work that produced it.
@inline(never)
func blackHole<T>(_ value: T) {
    withExtendedLifetime(value) {}
}

/// Wall-clock samples of one benchmark case, in seconds.
struct Measurement {
    var samples: [Double]

    var median: Double {
        let s = samples.sorted()
        guard !s.isEmpty else { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
    var minimum: Double { samples.min() ?? .nan }

    /// The sample at fraction `q` of the sorted samples (nearest rank), e.g. 0.9 for the 90th percentile.
    func percentile(_ q: Double) -> Double {
        let s = samples.sorted()
        guard !s.isEmpty else { return .nan }
        return s[min(s.count - 1, max(0, Int((q * Double(s.count)).rounded(.up)) - 1))]
    }
}

/// The clock of every measurement: wall time, or with `SPATIAL_BENCH_CLOCK=cpu` the process's CPU
/// time, which a shared, oversubscribed machine does not inflate by preempting us (meaningful for
/// one-thread runs only: it sums all threads). Reports say which clock they used.
let useCPUClock = ProcessInfo.processInfo.environment["SPATIAL_BENCH_CLOCK"] == "cpu"

@inline(__always)
func now() -> Double {
    if useCPUClock {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }
    return Double(DispatchTime.now().uptimeNanoseconds) * 1e-9
}

/// Times `body`: `warmup` untimed calls, then repetitions until both `repetitions` samples and
/// `minimumSeconds` of samples are collected (capped at `maximumRepetitions`). Each sample times a
/// batch of calls long enough (≥ 200 µs) that the clock's resolution does not matter; the sample
/// is the batch time over its call count. Returns seconds per call.
func measure(
    warmup: Int = 3, repetitions: Int = 15, minimumSeconds: Double = 0.3, maximumRepetitions: Int = 1000,
    _ body: () -> Void
) -> Measurement {
    for _ in 0..<warmup { body() }
    // Calibrate the batch size.
    var batch = 1
    while true {
        let t0 = now()
        for _ in 0..<batch { body() }
        let elapsed = now() - t0
        if elapsed >= 2e-4 || batch >= 1 << 16 { break }
        batch *= 2
    }
    var samples: [Double] = []
    let start = now()
    while samples.count < repetitions || (now() - start < minimumSeconds && samples.count < maximumRepetitions) {
        let t0 = now()
        for _ in 0..<batch { body() }
        samples.append((now() - t0) / Double(batch))
    }
    return Measurement(samples: samples)
}

// MARK: - Output

/// An aligned text table: a header row and string cells, right-aligned numbers.
struct TextTable {
    var headers: [String]
    var rows: [[String]] = []

    init(_ headers: [String]) { self.headers = headers }

    mutating func append(_ row: [String]) { rows.append(row) }

    func render() -> String {
        var widths = headers.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: max(0, widths[i] - cell.count))
                return i == 0 ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }
        var out = [line(headers), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")]
        out += rows.map(line)
        return out.joined(separator: "\n")
    }
}

/// Formats `value` with `digits` decimals.
func fmt(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }

/// A JSON value for benchmark records (keys keep their insertion order).
enum JSONValue: CustomStringConvertible {
    case number(Double), integer(Int), string(String), bool(Bool), array([JSONValue]), object([(String, JSONValue)])

    var description: String {
        switch self {
        case let .number(v): return v.isFinite ? String(format: "%.6g", v) : "null"
        case let .integer(v): return String(v)
        case let .string(s):
            let escaped = s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            return "\"\(escaped)\""
        case let .bool(b): return b ? "true" : "false"
        case let .array(items): return "[" + items.map(\.description).joined(separator: ", ") + "]"
        case let .object(pairs):
            return "{" + pairs.map { "\(JSONValue.string($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
        }
    }
}

/// Writes `text` to `path`, creating the folder; reports the path on stderr.
func writeResult(_ text: String, to path: String) throws {
    let url = URL(fileURLWithPath: path)
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try text.write(to: url, atomically: true, encoding: .utf8)
    FileHandle.standardError.write("wrote \(path)\n".data(using: .utf8)!)
}

/// Prints to stderr (progress and notes that must not mix with JSON on stdout).
func note(_ text: String) {
    FileHandle.standardError.write((text + "\n").data(using: .utf8)!)
}

/// A one-line description of this machine and build for the records.
func machineDescription() -> String {
    var cpu = "unknown CPU"
    if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
       let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
       let name = line.split(separator: ":", maxSplits: 1).last {
        cpu = name.trimmingCharacters(in: .whitespaces)
    }
    #if arch(x86_64)
    let isa = "x86-64"
    #else
    let isa = "arm64"
    #endif
    let clock = useCPUClock ? "process CPU-time clock" : "wall clock"
    return "\(cpu), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(isa), \(BLAS.configuration), \(clock)"
}

// MARK: - Ceilings

/// Ceilings measured in the same run as the kernels they judge.
enum Ceiling {
    /// Plain copy bandwidth (memcpy) in GB/s, counting bytes read + written, over `count` floats,
    /// on `threads` threads (each copies a contiguous slice).
    static func copyGBps(count: Int, threads: Int) -> Double {
        bandwidth(count: count, threads: threads) { dst, src, n in ck_copy(dst, src, n) }
    }

    /// Streaming-store scale bandwidth (`y = a·x` with non-temporal stores) in GB/s, counting bytes
    /// read + written: the most a kernel that reads and writes each byte once can reach.
    static func streamGBps(count: Int, threads: Int) -> Double {
        bandwidth(count: count, threads: threads) { dst, src, n in ck_scale_stream(dst, src, 0.5, n) }
    }

    /// Times `kernel(dst, src, n)` over `count`-float buffers split in `threads` contiguous slices.
    private static func bandwidth(
        count: Int, threads: Int,
        _ kernel: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int) -> Void
    ) -> Double {
        let src = [Float](repeating: 1, count: count)
        var dst = [Float](repeating: 0, count: count)
        let m = src.withUnsafeBufferPointer { s in
            dst.withUnsafeMutableBufferPointer { d in
                let sp = s.baseAddress!, dp = d.baseAddress!
                return measure(minimumSeconds: 0.3) {
                    Threads.forEach(threads, threads: threads) { t in
                        let lo = count * t / threads, hi = count * (t + 1) / threads
                        kernel(dp + lo, sp + lo, hi - lo)
                    }
                    ck_store_fence()
                }
            }
        }
        return Double(2 * 4 * count) / m.median / 1e9
    }

    /// sgemm GFLOP/s (2·m·n·k per call) on row-major `m×k · k×n`, with OpenBLAS's current threads.
    static func sgemmGFLOPs(m: Int, n: Int, k: Int) -> Double {
        let a = [Float](repeating: 0.5, count: m * k)
        let b = [Float](repeating: 0.25, count: k * n)
        var c = [Float](repeating: 0, count: m * n)
        let t = a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    measure(minimumSeconds: 0.3) {
                        GEMM.multiply(m: m, n: n, k: k, a: pa.baseAddress!, lda: k, b: pb.baseAddress!, ldb: n,
                                      c: pc.baseAddress!, ldc: n)
                    }
                }
            }
        }
        return 2 * Double(m) * Double(n) * Double(k) / t.median / 1e9
    }
}
