import Foundation
import SpatialAttention
import SpatialAttentionReference
import TestSupport
import XCTest

/// `classify`, `info` and `apply` of the `spatial-attention` executable.
extension CLITests {
    func testClassifyLoadsTorchvisionNamedWeightsAndWritesTheModelsLogits() throws {
        let folder = makeScratchFolder("cli-classify")
        defer { folder.remove() }
        let model = Model(name: try ModelName("resnet50+spsa"), seed: 11)
        let (weights, images, logits) = (folder.path + "/w.safetensors", folder.path + "/x.npy", folder.path + "/logits.npy")
        try model.writeWeights(to: weights)
        let x = seededTensor(Shape(3, 3, 32, 32), seed: 12)
        try NPY.write(x, to: images)
        let expected = try model(x, threads: 1)
        let run = try runCLI(["classify", "--model", "resnet50+spsa", "--weights", weights, "--input", images,
                              "--logits", logits, "--top", "2", "--threads", "1"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let written = try NPY.read(logits)
        XCTAssertEqual(written.shape, [3, 1000])
        XCTAssertEqual(written.values.map(\.bitPattern), expected.nchwScalars.map(\.bitPattern), "the same call, bit for bit")
        // The printed top-2 of image 1 are the two largest logits.
        let row = Array(expected.nchwScalars[1000..<2000])
        let best = row.indices.sorted { row[$0] > row[$1] }.prefix(2).map(String.init)
        let line = run.stdout.split(separator: "\n").first { $0.hasPrefix("image 1: ") }.map(String.init) ?? ""
        XCTAssertTrue(line.hasPrefix("image 1: \(best[0]) ("), line)
        XCTAssertTrue(line.contains(", \(best[1]) ("), line)
        XCTAssertTrue(run.stderr.contains("classify: loaded resnet50+spsa"), "progress goes to stderr")
        // One image per pass gives the same logits up to rounding.
        let single = try runCLI(["classify", "--model", "resnet50+spsa", "--weights", weights, "--input", images,
                                 "--logits", logits, "--batch-size", "1"])
        XCTAssertEqual(single.status, 0, single.stderr)
        assertClose(try NPY.read(logits).values, expected.nchwScalars.map(Double.init), tolerance: .convolution)
    }

    func testClassifyRejectsWeightsOfAnotherModelListingTheNames() throws {
        let folder = makeScratchFolder("cli-classify-errors")
        defer { folder.remove() }
        let weights = folder.path + "/w.safetensors", images = folder.path + "/x.npy"
        try Model(name: try ModelName("resnet50"), seed: 1).writeWeights(to: weights)
        try NPY.write(seededTensor(Shape(1, 3, 32, 32), seed: 2), to: images)
        let wrong = try runCLI(["classify", "--model", "resnet50+se", "--weights", weights, "--input", images])
        XCTAssertEqual(wrong.status, 1)
        XCTAssertTrue(wrong.stderr.contains("\(weights): parameters do not fit resnet50+se"), wrong.stderr)
        XCTAssertTrue(wrong.stderr.contains("missing (32): layer1.0.se.fc1.weight"), wrong.stderr)
        let unknown = try runCLI(["classify", "--model", "resnet51", "--seed", "1", "--input", images])
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(unknown.stderr.contains("unknown model \"resnet51\""), unknown.stderr)
        let both = try runCLI(["classify", "--model", "resnet50", "--seed", "1", "--weights", weights, "--input", images])
        XCTAssertEqual(both.status, 64, both.stderr)
        let gray = folder.path + "/gray.npy"
        try NPY.write(seededTensor(Shape(1, 1, 32, 32), seed: 3), to: gray)
        let channels = try runCLI(["classify", "--model", "resnet50", "--seed", "1", "--input", gray])
        XCTAssertEqual(channels.status, 1)
        XCTAssertTrue(channels.stderr.contains("expects 3 input channels"), channels.stderr)
    }

    func testInfoPrintsTheLayerTableAndTotals() throws {
        let run = try runCLI(["info", "--model", "resnet50+se"])
        XCTAssertEqual(run.status, 0, run.stderr)
        // torchvision's ResNet-50 has 25,557,032 parameters; SE (r = 16, no biases) adds 2,514,944.
        XCTAssertTrue(run.stdout.contains("resnet50+se on [1, 3, 224, 224]: 28,071,976 parameters"), run.stdout)
        XCTAssertTrue(run.stdout.contains("layer4.2.se"), run.stdout)
        let list = try runCLI(["info", "--list"])
        XCTAssertTrue(list.stdout.split(separator: "\n").contains("resnet50+spsa"), list.stdout)
    }

    func testApplyModulesMatchTheirNaiveTwins() throws {
        let folder = makeScratchFolder("cli-apply")
        defer { folder.remove() }
        let (input, output, weights) = (folder.path + "/x.npy", folder.path + "/y.npy", folder.path + "/p.safetensors")
        var generator = SeededGenerator(seed: 21)
        func random(_ shape: [Int], scale: Float = 0.5) -> NDArray {
            try! NDArray(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in
                RandomDistribution.uniform(lower: -scale, upper: scale).sample(using: &generator) })
        }
        let C = 32
        try Safetensors(tensors: [
            "block.se.fc1.weight": random([2, C]), "block.se.fc2.weight": random([C, 2]),
            "block.eca.conv.weight": random([1, 1, 5]),
            "conv.weight": random([8, C / 2, 3, 3], scale: 0.1), "conv.bias": random([8]),
        ]).write(to: weights)
        let files = try Safetensors(contentsOf: weights).tensors
        try withEvery("layout", in: Layout.allCases) { layout in
            let x = seededTensor(Shape(2, C, 7, 6), layout: layout, seed: 22)
            try NPY.write(x, to: input)
            let common = ["--input", input, "--output", output, "--layout", layout.rawValue, "--weights", weights]

            XCTAssertEqual(try runCLI(["apply", "se", "--prefix", "block.se."] + common).status, 0)
            let se = try SqueezeExcitation(channels: C, hiddenChannels: 2, reduceWeight: files["block.se.fc1.weight"]!.values,
                                           expandWeight: files["block.se.fc2.weight"]!.values)
            assertClose(try NPY.readTensor(output, layout: layout), Naive.squeezeExcitation(ReferenceTensor(x), se), tolerance: .convolution)

            XCTAssertEqual(try runCLI(["apply", "eca", "--prefix", "block.eca."] + common).status, 0)
            let eca = try EfficientChannelAttention(channels: C, weight: files["block.eca.conv.weight"]!.values)
            assertClose(try NPY.readTensor(output, layout: layout), Naive.efficientChannelAttention(ReferenceTensor(x), eca), tolerance: .convolution)

            XCTAssertEqual(try runCLI(["apply", "conv", "--prefix", "conv.", "--stride", "2", "--padding", "1", "--groups", "2"] + common).status, 0)
            let expected = try Naive.conv2d(ReferenceTensor(x), weight: files["conv.weight"]!.values, bias: files["conv.bias"]!.values,
                                            outputChannels: 8, window: WindowGeometry(kernel: 3, stride: 2, padding: 1), groups: 2)
            assertClose(try NPY.readTensor(output, layout: layout), expected, tolerance: .convolution)

            XCTAssertEqual(try runCLI(["apply", "spsa", "--channels-per-head", "16"] + common.dropLast(2)).status, 0)
            assertClose(try NPY.readTensor(output, layout: layout), Naive.spsa(x, channelsPerHead: 16), tolerance: .spsa)
        }
        // A parameter that is not in the file is named, with what the file has.
        try? FileManager.default.removeItem(atPath: output)
        let missing = try runCLI(["apply", "se", "--input", input, "--output", output, "--weights", weights])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("\(weights): no tensor 'fc1.weight'; the file has: block.eca.conv.weight"), missing.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output))
    }
}
