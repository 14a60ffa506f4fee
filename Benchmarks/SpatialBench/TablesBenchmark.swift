import ArgumentParser
import Foundation
import SpatialAttention

/// `spatial-bench tables`: 001 Table 1 / 002 Table 4 (and 002 Table 6's backbones) on this CPU.
///
/// One table per backbone and thread count: parameters, added parameters and MACs beside the papers'
/// columns, then images per second measured here at each batch size (224×224, seeded weights) with
/// the ratio to the plain backbone, beside the paper's GPU images per second and ratio. A line per
/// SPSA model gives the share of the network's time spent in SPSA.
struct TablesBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tables",
        abstract: "Parameters, MACs and img/s of the model families against 001 Table 1 / 002 Tables 4 and 6."
    )

    @Option(help: "Backbones (all their variants) or model names, comma-separated: \(ModelName.Backbone.allCases.map(\.rawValue).joined(separator: ", ")) or e.g. resnet50+spsa.")
    var model: String = "resnet50"

    @Option(help: "Batch sizes, comma-separated.")
    var batch: String = "1,8"

    @Option(help: "Thread counts, comma-separated (OpenBLAS threads for GEMMs, ours for the rest).")
    var threads: String = "1,2"

    @Option(help: "Timed calls per measurement (median reported).")
    var repetitions: Int = 5

    @Option(help: "Input height and width.")
    var size: Int = 224

    @Option(help: "Write the records as JSON to this path.")
    var json: String?

    func run() throws {
        let batches = try integers(batch, "--batch")
        let threadCounts = try integers(threads, "--threads")
        let groups = try modelGroups(model)
        print("# tables: \(machineDescription())")
        print("# input \(size)×\(size), seeded weights, BN folded; img/s = batch / median of \(repetitions) calls, models timed in alternating rounds")
        var records: [JSONValue] = []
        for (backbone, names) in groups {
            var built: [(ModelName, Model)] = []
            for name in names {
                let start = now()
                built.append((name, Model(name: name, seed: 0)))
                note("built \(name) in \(fmt(now() - start, 2)) s")
            }
            let plainParameters = built.first { $0.0 == $0.0.plain }?.1.parameterCount ?? Model(name: names[0].plain, seed: 0).parameterCount
            for t in threadCounts {
                var speeds: [ModelName: [Int: Double]] = [:]
                for b in batches {
                    let measured = imagesPerSecond(built.map(\.1), batch: b, threads: t)
                    for (i, (name, _)) in built.enumerated() { speeds[name, default: [:]][b] = measured[i] }
                }
                let plainSpeed = speeds[names[0].plain] ?? [:]
                var headers = ["model", "params", "+params", "paper +params", "GMACs", "paper GFLOPs"]
                for b in batches { headers += ["b\(b) img/s", "ratio"] }
                headers += ["paper GPU img/s", "paper ratio"]
                var table = TextTable(headers)
                for (name, network) in built {
                    let paper = PaperFigures.row(name)
                    let macs = try network.multiplyAccumulates(for: Shape(1, 3, 224, 224))
                    var row = [name.description, grouped(network.parameterCount), grouped(network.parameterCount - plainParameters),
                               paper?.addedParameters ?? "—", fmt(Double(macs) / 1e9, 3), paper.map { fmt($0.gigaFLOPs, 2) } ?? "—"]
                    for b in batches {
                        let speed = speeds[name]?[b] ?? .nan
                        row += [fmt(speed, 2), plainSpeed[b].map { fmt(speed / $0, 3) } ?? "—"]
                        records.append(.object([
                            ("model", .string(name.description)), ("backbone", .string(backbone.rawValue)),
                            ("params", .integer(network.parameterCount)),
                            ("added_params", .integer(network.parameterCount - plainParameters)),
                            ("macs", .integer(macs)), ("batch", .integer(b)), ("threads", .integer(t)),
                            ("size", .integer(size)),
                            ("images_per_second", .number(speed)),
                            ("ratio_to_plain", .number(plainSpeed[b].map { speed / $0 } ?? .nan)),
                            ("paper_gpu_images_per_second", paper?.gpuImagesPerSecond.map { .integer($0) } ?? .string("")),
                        ]))
                    }
                    let gpu = paper?.gpuImagesPerSecond
                    let gpuPlain = PaperFigures.row(name.plain)?.gpuImagesPerSecond
                    row += [gpu.map(String.init) ?? "—", gpu.flatMap { g in gpuPlain.map { fmt(Double(g) / Double($0), 3) } } ?? "—"]
                    table.append(row)
                }
                print("\n## \(backbone.rawValue), \(t) thread\(t == 1 ? "" : "s")")
                print(table.render())
                for (name, network) in built where name.spsa {
                    for b in batches {
                        try printSPSAShare(name, network, batch: b, threads: t,
                                           networkSpeed: speeds[name]?[b] ?? .nan,
                                           baseSpeed: speeds[(try? ModelName(backbone: name.backbone, channelAttention: name.channelAttention)) ?? name.plain]?[b])
                    }
                }
            }
        }
        if let json {
            try writeResult(JSONValue.object([("machine", .string(machineDescription())), ("records", .array(records))]).description,
                            to: json)
        }
    }

    /// Median images per second of each network on one seeded batch. The networks are timed in
    /// rounds, one call each per round, so that a change in the machine's load (other processes
    /// share its 2 cores) moves every network's samples alike and the ratios stay meaningful.
    private func imagesPerSecond(_ networks: [Model], batch: Int, threads: Int) -> [Double] {
        let x = try! Tensor.random(shape: Shape(batch, 3, size, size), seed: 1)
        for network in networks { blackHole(try! network(x, threads: threads)) }
        var samples = [[Double]](repeating: [], count: networks.count)
        for _ in 0..<repetitions {
            for (i, network) in networks.enumerated() {
                let start = now()
                blackHole(try! network(x, threads: threads))
                samples[i].append(now() - start)
            }
        }
        return samples.map { Double(batch) / Measurement(samples: $0).median }
    }

    /// SPSA's share of the network's time: every SPSA layer timed alone on its shape, summed, over
    /// the network's time per batch; and the whole-network difference to the model without SPSA.
    private func printSPSAShare(_ name: ModelName, _ network: Model, batch: Int, threads: Int,
                                networkSpeed: Double, baseSpeed: Double?) throws {
        let records = try network.layerTable(for: Shape(batch, 3, size, size)).filter { $0.name.hasSuffix(".spsa") }
        var total = 0.0
        var cache: [String: Double] = [:]
        for record in records {
            // The record's kind is "SPSA α=2 heads×channelsPerHead".
            let heads = Int(record.kind.split(separator: " ").last?.split(separator: "×").first ?? "1") ?? 1
            let key = "\(record.outputShape) \(heads)"
            if cache[key] == nil {
                let spsa = SPSA(alpha: 2, heads: heads)
                let x = try Tensor.random(shape: record.outputShape, seed: 2)
                let m = measure(warmup: 2, repetitions: 7, minimumSeconds: 0.05) {
                    var y = x
                    try! spsa.applyInPlace(&y, threads: threads)
                    blackHole(y)
                }
                cache[key] = m.median
            }
            total += cache[key]!
        }
        let networkTime = Double(batch) / networkSpeed
        var line = "SPSA in \(name), batch \(batch): \(records.count) layers timed alone sum to \(fmt(total * 1e3, 2)) ms " +
            "of \(fmt(networkTime * 1e3, 1)) ms per batch = \(fmt(100 * total / networkTime, 2))% (onnxruntime 5–9%, paper GPU 12.5%)"
        if let baseSpeed {
            line += "; network difference \(fmt(100 * (1 - networkSpeed / baseSpeed), 2))%"
        }
        print(line)
    }
}

/// The papers' figures: 001 Table 1 / 002 Table 4 (GPU img/s, params, FLOPs) and 002 Table 6.
enum PaperFigures {
    struct Row {
        var addedParameters: String
        var gigaFLOPs: Double
        var gpuImagesPerSecond: Int?
    }

    static func row(_ name: ModelName) -> Row? { rows[name.description] }

    static let rows: [String: Row] = [
        "resnet50": Row(addedParameters: "0 (25.56M)", gigaFLOPs: 4.11, gpuImagesPerSecond: 1879),
        "resnet50+se": Row(addedParameters: "2.51M", gigaFLOPs: 4.12, gpuImagesPerSecond: 1510),
        "resnet50+eca": Row(addedParameters: "80", gigaFLOPs: 4.12, gpuImagesPerSecond: 1769),
        "resnet50+spsa": Row(addedParameters: "0", gigaFLOPs: 4.11, gpuImagesPerSecond: 1644),
        "resnet50+spsa+se": Row(addedParameters: "2.51M", gigaFLOPs: 4.12, gpuImagesPerSecond: 1410),
        "resnet50+spsa+eca": Row(addedParameters: "80", gigaFLOPs: 4.12, gpuImagesPerSecond: 1442),
        "resnet101": Row(addedParameters: "0 (44.55M)", gigaFLOPs: 7.83, gpuImagesPerSecond: 1129),
        "resnet101+se": Row(addedParameters: "4.74M", gigaFLOPs: 7.85, gpuImagesPerSecond: 960),
        "resnet101+eca": Row(addedParameters: "165", gigaFLOPs: 7.84, gpuImagesPerSecond: 1003),
        "resnet101+spsa": Row(addedParameters: "0", gigaFLOPs: 7.83, gpuImagesPerSecond: 968),
        "resnet101+spsa+se": Row(addedParameters: "4.74M", gigaFLOPs: 7.85, gpuImagesPerSecond: 896),
        "resnet101+spsa+eca": Row(addedParameters: "165", gigaFLOPs: 7.84, gpuImagesPerSecond: 934),
        "resnet152": Row(addedParameters: "0 (60.19M)", gigaFLOPs: 11.56, gpuImagesPerSecond: 805),
        "resnet152+se": Row(addedParameters: "6.58M", gigaFLOPs: 11.58, gpuImagesPerSecond: 758),
        "resnet152+eca": Row(addedParameters: "250", gigaFLOPs: 11.57, gpuImagesPerSecond: 785),
        "resnet152+spsa": Row(addedParameters: "0", gigaFLOPs: 11.56, gpuImagesPerSecond: 764),
        // 002 Table 6 gives parameters only.
        "resnext50": Row(addedParameters: "0 (25.03M)", gigaFLOPs: .nan, gpuImagesPerSecond: nil),
        "resnext50+spsa": Row(addedParameters: "0", gigaFLOPs: .nan, gpuImagesPerSecond: nil),
        "mobilenetv2": Row(addedParameters: "0 (3.50M)", gigaFLOPs: .nan, gpuImagesPerSecond: nil),
        "mobilenetv2+spsa": Row(addedParameters: "0", gigaFLOPs: .nan, gpuImagesPerSecond: nil),
        "shufflenetv2": Row(addedParameters: "0 (2.28M)", gigaFLOPs: .nan, gpuImagesPerSecond: nil),
        "shufflenetv2+spsa": Row(addedParameters: "0", gigaFLOPs: .nan, gpuImagesPerSecond: nil),
    ]
}

/// `"1,8"` → `[1, 8]`; every value at least `minimum` (1 unless given).
func integers(_ text: String, _ flag: String, minimum: Int = 1) throws -> [Int] {
    let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !values.isEmpty, values.allSatisfy({ ($0 ?? minimum - 1) >= minimum }) else {
        let kind = minimum == 1 ? "positive integers" : "integers ≥ \(minimum)"
        throw ValidationError("\(flag) takes \(kind) separated by commas, got \"\(text)\"")
    }
    return values.map { $0! }
}

/// `"resnet50,mobilenetv2+spsa"` → the models by backbone, each group led by its plain backbone.
func modelGroups(_ text: String) throws -> [(ModelName.Backbone, [ModelName])] {
    var groups: [(ModelName.Backbone, [ModelName])] = []
    for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) {
        let names: [ModelName]
        if let backbone = ModelName.Backbone(rawValue: part) {
            names = ModelName.allCases.filter { $0.backbone == backbone }
        } else {
            do {
                let name = try ModelName(part)
                names = name == name.plain ? [name] : [name.plain, name]
            } catch {
                throw ValidationError("\(error)")
            }
        }
        if let i = groups.firstIndex(where: { $0.0 == names[0].backbone }) {
            for name in names where !groups[i].1.contains(name) { groups[i].1.append(name) }
        } else {
            groups.append((names[0].backbone, names))
        }
    }
    return groups
}

/// `25557032` → `"25,557,032"`.
func grouped(_ value: Int) -> String {
    let digits = String(abs(value))
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
        out.append(ch)
    }
    return (value < 0 ? "-" : "") + out
}
