import ArgumentParser
import Dispatch
import Foundation
import SpatialAttention

/// `spatial-bench threads`: what it costs to hand work to other threads. Each call runs `T` items
/// of `work` µs each (busy) on `T` workers, so a perfect split takes `work` µs and the rest is the
/// cost of waking the workers and waiting for them; before each call the caller stays busy for a
/// gap (the serial work between two kernels of a network). The package's ``Threads/forEach``
/// (persistent workers that poll for a while, then sleep) against `DispatchQueue.concurrentPerform`
/// (what it used before), in alternating blocks of calls in one run; each block starts after a
/// 2 ms sleep, so that neither kind's idle workers compete with the other's, and its first call is
/// not counted.
struct ThreadsBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "threads",
        abstract: "Round trip of a parallel call: Threads.forEach against DispatchQueue.concurrentPerform, after idle gaps."
    )

    @Option(help: "Thread counts, comma-separated (1 is skipped: nothing is handed over).")
    var threads: String = "2"

    @Option(help: "Busy gaps before each call, in microseconds, comma-separated.")
    var gaps: String = "0,50,200,1000,5000"

    @Option(help: "Calls of each kind per gap (rounded up to whole blocks of 20).")
    var calls: Int = 200

    @Option(help: "Busy work per item, in microseconds.")
    var work: Int = 50

    @Option(help: "Write the records as JSON to this path.")
    var json: String?

    func run() throws {
        let threadCounts = try integers(threads, "--threads")
        let gapList = try integers(gaps, "--gaps", minimum: 0)
        guard calls > 0, work >= 0 else { throw ValidationError("--calls must be positive and --work ≥ 0, got \(calls), \(work)") }
        print("# threads: \(machineDescription())")
        let block = 20
        let perKind = (calls + block - 1) / block * block
        print("# µs per call of T items × \(work) µs on T workers after a busy gap (ideal: \(work) µs); medians and 90th percentiles of \(perKind) calls of each kind")
        var table = TextTable(["threads", "gap µs", "forEach median", "forEach p90", "Dispatch median", "Dispatch p90",
                               "Dispatch / forEach"])
        let seconds = Double(work) * 1e-6
        let item: @Sendable (Int) -> Void = { _ in
            let until = now() + seconds
            while now() < until {}
        }
        var records: [JSONValue] = []
        for t in threadCounts where t > 1 {
            for gap in gapList {
                var pool: [Double] = [], dispatch: [Double] = []
                while pool.count < calls {
                    for kind in 0..<2 {
                        usleep(2000)
                        for call in 0...block {
                            let until = now() + Double(gap) * 1e-6
                            while now() < until {}
                            let t0 = now()
                            if kind == 0 {
                                Threads.forEach(t, threads: t, item)
                            } else {
                                DispatchQueue.concurrentPerform(iterations: t, execute: item)
                            }
                            let elapsed = now() - t0
                            if call > 0 { kind == 0 ? pool.append(elapsed) : dispatch.append(elapsed) }
                        }
                    }
                }
                let p = Measurement(samples: pool), d = Measurement(samples: dispatch)
                table.append(["\(t)", "\(gap)", fmt(p.median * 1e6, 1), fmt(p.percentile(0.9) * 1e6, 1),
                              fmt(d.median * 1e6, 1), fmt(d.percentile(0.9) * 1e6, 1), fmt(d.median / p.median, 1)])
                records.append(.object([
                    ("threads", .integer(t)), ("gap_us", .integer(gap)), ("work_us", .integer(work)), ("calls", .integer(pool.count)),
                    ("for_each_median_us", .number(p.median * 1e6)), ("for_each_p90_us", .number(p.percentile(0.9) * 1e6)),
                    ("dispatch_median_us", .number(d.median * 1e6)), ("dispatch_p90_us", .number(d.percentile(0.9) * 1e6)),
                ]))
            }
        }
        print(table.render())
        if let json {
            try writeResult(JSONValue.object([("machine", .string(machineDescription())), ("records", .array(records))]).description,
                            to: json)
        }
    }
}
