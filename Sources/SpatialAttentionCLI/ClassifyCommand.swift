import ArgumentParser
import Foundation
import SpatialAttention

/// `spatial-attention classify`: top-k classes of a batch of images under a model of the registry.
struct ClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Classify a batch of images (.npy) with a registry model and torchvision-named weights.",
        discussion: """
        Prints, per image, the top-k class indices with their logits (and names with --labels). The \
        weights are a safetensors file of the model's PyTorch state_dict (docs/io.md); --seed builds \
        seeded random weights instead (for checks and timing). Images are [N, 3, H, W] float32 (or \
        float64, float16), normalised as the model expects; --layout nhwc for [N, H, W, 3]. Progress \
        goes to stderr.
        """
    )

    @Option(help: "Model name, e.g. resnet50, resnet50+spsa, resnet50+se (see `info --list`).")
    var model: String

    @Option(help: "Safetensors file of the model's state_dict. Excludes --seed.")
    var weights: String?

    @Option(help: "Seeded random weights instead of --weights.")
    var seed: UInt64?

    @Flag(help: "Ignore tensors of the weights file that the model does not have.")
    var nonStrict = false

    @Option(help: "Images: a 4-D .npy array.")
    var input: String

    @Option(help: "Memory order of the images: nchw or nhwc.")
    var layout: Layout = .nchw

    @Option(help: "Classes to print per image.")
    var top: Int = 5

    @Option(help: "Also write the logits, [N, classes] float32, to this .npy file.")
    var logits: String?

    @Option(help: "A text file of class names, one per line (class 0 first).")
    var labels: String?

    @Option(help: "Images per forward pass.")
    var batchSize: Int = 16

    @Option(help: "Worker threads (default: SPATIAL_ATTENTION_THREADS or the processor count).")
    var threads: Int?

    func validate() throws {
        guard (weights == nil) != (seed == nil) else { throw ValidationError("give exactly one of --weights and --seed") }
        guard top >= 1, batchSize >= 1 else { throw ValidationError("--top and --batch-size must be at least 1") }
    }

    func run() throws {
        try reportingErrors {
            let name = try ModelName(model)
            var start = now()
            let network: Model
            if let weights {
                do {
                    network = try Model(name: name, weightsFile: weights, strict: !nonStrict)
                } catch let error as ParameterError {
                    throw CommandError("\(weights): \(error)")
                }
                printError("classify: loaded \(name) from \(weights) (\(network.parameterNames.count) tensors) in \(elapsed(since: start))")
            } else {
                network = Model(name: name, seed: seed!)
                printError("classify: built \(name) with seeded random weights (seed \(seed!))")
            }
            let names = try labels.map(readLabels)
            let images = try readImageBatch(input, layout: layout)
            let (N, imageSize) = (images.shape.batch, images.shape.count / max(1, images.shape.batch))
            var allLogits: [Float] = []
            var classes = 0
            for first in stride(from: 0, to: N, by: batchSize) {
                let count = min(batchSize, N - first)
                start = now()
                let batch = try Tensor(shape: Shape(count, images.shape.channels, images.shape.height, images.shape.width),
                                       layout: layout,
                                       scalars: Array(images.scalars[(first * imageSize)..<((first + count) * imageSize)]))
                let output: Tensor
                do {
                    output = try network(batch, threads: threads)
                } catch let error as ShapeError {
                    throw ShapeError("\(input) (shape \(images.shape)): \(error.message)")
                }
                classes = output.shape.channels
                allLogits += output.nchwScalars
                printError("classify: images \(first + 1)–\(first + count) of \(N) in \(elapsed(since: start))")
                for i in 0..<count {
                    let row = Array(output.nchwScalars[(i * classes)..<((i + 1) * classes)])
                    print("image \(first + i): " + topClasses(row, names: names))
                }
            }
            if let logits { try NPY.write(NDArray(shape: [N, classes], values: allLogits), to: logits) }
        }
    }

    private func topClasses(_ row: [Float], names: [String]?) -> String {
        let order = row.indices.sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }
        return order.prefix(top).map { index in
            let label = names.flatMap { index < $0.count ? " \($0[index])" : nil } ?? ""
            return "\(index)\(label) (\(row[index]))"
        }.joined(separator: ", ")
    }

    private func readLabels(_ path: String) throws -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw FileFormatError(path: path, FileManager.default.fileExists(atPath: path) ? .readFailed(reason: "not UTF-8 text") : .fileNotFound)
        }
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { String($0) }
    }
}

/// `"1.23 s"` since `start`.
func elapsed(since start: Double) -> String {
    let seconds = now() - start
    return seconds < 1 ? "\(Int(seconds * 1000)) ms" : "\((seconds * 100).rounded() / 100) s"
}
