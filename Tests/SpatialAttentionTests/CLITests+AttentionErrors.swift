import Foundation
import SpatialAttention
import SpatialAttentionReference
import TestSupport
import XCTest

/// The errors of `apply gsa`, `apply sasa` and `apply attention`: missing and mis-shaped tensors named
/// with their shapes, options the tensors do not fit, and an input whose shape the module cannot take;
/// each exits with status 1, one message on stderr, and no output.
extension CLITests {
    func testApplyGSAErrorsNameTheTensorsAndTheInputShape() throws {
        let folder = makeScratchFolder("cli-gsa-errors")
        defer { folder.remove() }
        var random = SeededArrays(seed: 41)
        let weights = folder.path + "/p.safetensors"
        try Safetensors(tensors: [
            "good.qkv.weight": random([48, 16, 1, 1]), "good.rel_rows": random([11, 2]), "good.rel_columns": random([11, 2]),
            "good.norm.weight": random([16]), "good.norm.bias": random([16]), "good.norm.running_mean": random([16]),
            "good.norm.running_var": random([16], 0.5, 1.5),
            // rel_columns missing, norm.weight mis-shaped.
            "bad.qkv.weight": random([48, 16, 1, 1]), "bad.rel_rows": random([11, 2]), "bad.norm.weight": random([8]),
            "bad.norm.bias": random([16]), "bad.norm.running_mean": random([16]), "bad.norm.running_var": random([16], 0.5, 1.5),
        ]).write(to: weights)
        try assertApplyFails("gsa", in: folder.path, ["--prefix", "bad."], mentioning: [
            "\(weights): parameters do not fit GSA under 'bad.':", "missing (1): bad.rel_columns",
            "mis-shaped (1): bad.norm.weight: expected [16], got [8]", "the file has: bad.norm.bias"])
        // The extent given disagrees with the embeddings' 2L − 1 = 11 rows.
        try assertApplyFails("gsa", in: folder.path, ["--prefix", "good.", "--extent", "5"], mentioning: [
            "mis-shaped (2): good.rel_rows: expected [9, 2], got [11, 2]; good.rel_columns: expected [9, 2], got [11, 2]"])
        try assertApplyFails("gsa", in: folder.path, ["--prefix", "good.", "--heads", "3"], mentioning: ["multiples of heads 3"])
        try assertApplyFails("gsa", in: folder.path, ["--prefix", "good."], channels: 8, mentioning: [
            "x.npy (shape [1, 8, 5, 6]): GSA expects 16 input channels, got input [1, 8, 5, 6]"])
    }

    func testApplySASAErrorsNameTheTensorsAndTheInputShape() throws {
        let folder = makeScratchFolder("cli-sasa-errors")
        defer { folder.remove() }
        var random = SeededArrays(seed: 42)
        let weights = folder.path + "/p.safetensors"
        try Safetensors(tensors: [
            "good.query_conv.weight": random([16, 16, 1, 1]), "good.key_conv.weight": random([16, 16, 1, 1]),
            "good.value_conv.weight": random([16, 16, 1, 1]), "good.rel_h": random([7, 1]), "good.rel_w": random([7, 1]),
            // key_conv missing, rel_w mis-shaped.
            "bad.query_conv.weight": random([16, 16, 1, 1]), "bad.value_conv.weight": random([16, 16, 1, 1]),
            "bad.rel_h": random([7, 1]), "bad.rel_w": random([7, 2]),
        ]).write(to: weights)
        try assertApplyFails("sasa", in: folder.path, ["--prefix", "bad."], mentioning: [
            "\(weights): parameters do not fit SASA under 'bad.':", "missing (1): bad.key_conv.weight",
            "mis-shaped (1): bad.rel_w: expected [7, 1], got [7, 2]"])
        // No query projection: the sizes cannot be read, every absent tensor is listed.
        try assertApplyFails("sasa", in: folder.path, ["--prefix", "none."], mentioning: [
            "missing (5): none.query_conv.weight, none.key_conv.weight, none.value_conv.weight, none.rel_h, none.rel_w",
            "the file has: bad.query_conv.weight"])
        try assertApplyFails("sasa", in: folder.path, ["--prefix", "good.", "--kernel-size", "4"], mentioning: [
            "SASA kernel size 4 must be odd and positive"])
        try assertApplyFails("sasa", in: folder.path, ["--prefix", "good."], channels: 12, mentioning: [
            "x.npy (shape [1, 12, 5, 6]): SASA expects 16 input channels, got input [1, 12, 5, 6]"])
    }

    func testApplyAttentionErrorsNameTheTensorsAndTheInputShape() throws {
        let folder = makeScratchFolder("cli-attention-errors")
        defer { folder.remove() }
        var random = SeededArrays(seed: 43)
        let weights = folder.path + "/p.safetensors"
        try Safetensors(tensors: [
            "a.theta.weight": random([4, 8, 1, 1]), "a.phi.weight": random([4, 8, 1, 1]), "a.phi.bias": random([5]),
            "a.g.weight": random([6, 8, 1, 1]), "a.W.0.weight": random([8, 6, 1, 1]),
            // A partial BN: running_var missing.
            "a.W.1.weight": random([8]), "a.W.1.bias": random([8]), "a.W.1.running_mean": random([8]),
            "b.theta.weight": random([4, 8, 1, 1]), "b.phi.weight": random([4, 8, 1, 1]), "b.g.weight": random([6, 8, 1, 1]),
        ]).write(to: weights)
        try assertApplyFails("attention", in: folder.path, ["--prefix", "a."], mentioning: [
            "\(weights): parameters do not fit NonLocal under 'a.':", "missing (1): a.W.1.running_var",
            "mis-shaped (1): a.phi.bias: expected [4], got [5]"])
        // Without W.0 the output has dv = 6 channels: no residual onto C = 8.
        try assertApplyFails("attention", in: folder.path, ["--prefix", "b.", "--no-output-projection"], mentioning: [
            "NonLocal residual needs 8 output channels, got 6"])
        try assertApplyFails("attention", in: folder.path, ["--prefix", "b.", "--no-output-projection", "--no-residual"],
                             channels: 3, mentioning: ["x.npy (shape [1, 3, 5, 6]): NonLocal expects 8 input channels"])
    }

    /// Runs `apply <module>` on a seeded `[1, channels, 5, 6]` input with `folder/p.safetensors`; asserts
    /// status 1, a one-message stderr containing every string of `mentioning`, and no output file.
    private func assertApplyFails(_ module: String, in folder: String, _ arguments: [String], channels: Int = 16,
                                  mentioning: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let (input, output) = (folder + "/x.npy", folder + "/y.npy")
        try NPY.write(seededTensor(Shape(1, channels, 5, 6), seed: 44), to: input)
        let run = try runCLI(["apply", module, "--input", input, "--output", output, "--weights", folder + "/p.safetensors"]
                             + arguments)
        XCTAssertEqual(run.status, 1, "\(arguments): \(run.stderr)", file: file, line: line)
        XCTAssertTrue(run.stderr.hasPrefix("spatial-attention: error: "), run.stderr, file: file, line: line)
        for text in mentioning {
            XCTAssertTrue(run.stderr.contains(text), "\(arguments): no '\(text)' in: \(run.stderr)", file: file, line: line)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: output), "\(arguments) left an output", file: file, line: line)
    }
}
