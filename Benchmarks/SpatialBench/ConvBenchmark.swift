import ArgumentParser
import Foundation
import SpatialAttention
import SpatialAttentionReference

/// `spatial-bench conv`: every distinct convolution of a ResNet (50, 101 or 152: the same shapes,
/// different counts) timed alone with its fused epilogue, as GFLOP/s and as a share of the sgemm
/// GFLOP/s measured in the same run, beside a bare sgemm of the same GEMM shape.
struct ConvBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conv",
        abstract: "Every distinct ResNet-50 convolution: GFLOP/s and share of sgemm peak."
    )

    @Option(help: "resnet50, resnet101 or resnet152 (same convolutions, different counts).")
    var model: String = "resnet50"

    @Option(help: "Images per call.")
    var batch: Int = 1

    @Option(help: "Thread counts, comma-separated.")
    var threads: String = "1"

    @Option(help: "Write the records as JSON to this path.")
    var json: String?

    /// One distinct convolution: shape, window and how many times the network runs it.
    struct Case {
        var layer: String
        var channels: Int, outputs: Int, size: Int
        var window: WindowGeometry
        var count: Int
    }

    /// The distinct convolutions of a torchvision ResNet with `blocks` per stage at 224×224.
    static func cases(blocks: [Int]) -> [Case] {
        func conv(_ k: Int, _ s: Int = 1) -> WindowGeometry { WindowGeometry(kernel: k, stride: s, padding: k / 2) }
        /*                layer                   C     K     H   window      count           */
        var list: [Case] = [
            Case(layer: "conv1 7×7/2",        channels: 3, outputs: 64, size: 224, window: conv(7, 2), count: 1),
            Case(layer: "layer1 conv1 first", channels: 64, outputs: 64, size: 56, window: conv(1), count: 1),
            Case(layer: "layer1 conv1",       channels: 256, outputs: 64, size: 56, window: conv(1), count: blocks[0] - 1),
            Case(layer: "layer1 conv2 3×3",   channels: 64, outputs: 64, size: 56, window: conv(3), count: blocks[0]),
            Case(layer: "layer1 conv3 + ds",  channels: 64, outputs: 256, size: 56, window: conv(1), count: blocks[0] + 1),
        ]
        for s in 1..<4 {
            let width = 64 << s, output = 4 * width, input = 2 * width, h = 56 >> (s - 1)
            let n = blocks[s], name = "layer\(s + 1)"
            list += [
                Case(layer: "\(name) conv1 first",   channels: input, outputs: width, size: h, window: conv(1), count: 1),
                Case(layer: "\(name) conv2 3×3/2",   channels: width, outputs: width, size: h, window: conv(3, 2), count: 1),
                Case(layer: "\(name) downsample /2", channels: input, outputs: output, size: h,
                     window: WindowGeometry(kernel: 1, stride: 2), count: 1),
                Case(layer: "\(name) conv3",         channels: width, outputs: output, size: h / 2, window: conv(1), count: n),
                Case(layer: "\(name) conv1",         channels: output, outputs: width, size: h / 2, window: conv(1), count: n - 1),
                Case(layer: "\(name) conv2 3×3",     channels: width, outputs: width, size: h / 2, window: conv(3), count: n - 1),
            ]
        }
        return list
    }

    func run() throws {
        let blocks: [Int]
        switch model.lowercased() {
        case "resnet50": blocks = [3, 4, 6, 3]
        case "resnet101": blocks = [3, 4, 23, 3]
        case "resnet152": blocks = [3, 8, 36, 3]
        default: throw ValidationError("conv lists the convolutions of resnet50, resnet101 or resnet152, got \(model)")
        }
        let threadCounts = try integers(threads, "--threads")
        print("# conv: \(machineDescription())")
        var records: [JSONValue] = []
        for t in threadCounts {
            BLAS.threads = t
            let peak = Ceiling.sgemmGFLOPs(m: 1024, n: 1024, k: 1024)
            var table = TextTable(["layer", "C→K", "in H×W", "out", "×", "kernel", "GFLOP", "ms", "GFLOP/s",
                                   "% peak", "sgemm GFLOP/s", "conv/sgemm"])
            var total = 0.0, totalFLOP = 0.0
            for c in Self.cases(blocks: blocks) where c.count > 0 {
                let conv = try Conv2D.random(inputChannels: c.channels, outputChannels: c.outputs, window: c.window,
                                             bias: true, activation: .relu, seed: UInt64(c.channels * 7 + c.outputs))
                try validate(conv, c)
                let x = try Tensor.random(shape: Shape(batch, c.channels, c.size, c.size), seed: 3)
                let outShape = try conv.outputShape(for: x.shape)
                var y = try Tensor(shape: outShape, repeating: 0)
                let m = measure(warmup: 2, repetitions: 9, minimumSeconds: 0.2) {
                    try! conv.apply(x, into: &y, threads: t)
                }
                blackHole(y)
                let flop = 2 * Double(try conv.multiplyAccumulates(for: x.shape))
                let gflops = flop / m.median / 1e9
                let gemm = Ceiling.sgemmGFLOPs(m: c.outputs, n: batch * outShape.pixels,
                                               k: c.channels * c.window.kernelHeight * c.window.kernelWidth)
                total += m.median * Double(c.count)
                totalFLOP += flop * Double(c.count)
                table.append([c.layer, "\(c.channels)→\(c.outputs)", "\(c.size)×\(c.size)", "\(outShape.height)×\(outShape.width)",
                              "\(c.count)", conv.preferredAlgorithm(for: x.shape).description, fmt(flop / 1e9, 3), fmt(m.median * 1e3, 3),
                              fmt(gflops, 1), fmt(100 * gflops / peak, 1), fmt(gemm, 1), fmt(gflops / gemm, 2)])
                records.append(.object([
                    ("layer", .string(c.layer)), ("model", .string(model)), ("channels", .integer(c.channels)),
                    ("outputs", .integer(c.outputs)), ("size", .integer(c.size)), ("kernel", .integer(c.window.kernelHeight)),
                    ("stride", .integer(c.window.strideHeight)), ("count", .integer(c.count)), ("batch", .integer(batch)),
                    ("threads", .integer(t)), ("algorithm", .string(conv.preferredAlgorithm(for: x.shape).description)),
                    ("seconds", .number(m.median)), ("gflops", .number(gflops)), ("sgemm_peak_gflops", .number(peak)),
                    ("same_shape_sgemm_gflops", .number(gemm)),
                ]))
            }
            print("\n## \(model) convolutions, batch \(batch), \(t) thread\(t == 1 ? "" : "s"); sgemm peak (1024³) \(fmt(peak, 1)) GFLOP/s")
            print(table.render())
            print("all convolutions × counts: \(fmt(total * 1e3, 1)) ms per batch, \(fmt(totalFLOP / total / 1e9, 1)) GFLOP/s " +
                  "= \(fmt(100 * totalFLOP / total / 1e9 / peak, 1))% of peak")
        }
        if let json {
            try writeResult(JSONValue.object([("machine", .string(machineDescription())), ("records", .array(records))]).description,
                            to: json)
        }
    }

    /// Checks the fast convolution against the naive one on a cropped input (same channels,
    /// window and kernel path; batch 2 so that the batched GEMM runs too) before timing it.
    private func validate(_ conv: Conv2D, _ c: Case) throws {
        let side = min(c.size, c.window.kernelHeight == 7 ? 15 : 9)
        let x = try Tensor.random(shape: Shape(2, c.channels, side, side), seed: 4)
        let expected = try Naive.conv2d(ReferenceTensor(x), conv)
        if let mismatch = Tolerance.convolution.firstMismatch(try conv(x), expected) {
            throw ValidationError("\(c.layer) does not match the naive convolution: \(mismatch)")
        }
    }
}
