import Foundation
import SpatialAttention
import SpatialAttentionReference
import TestSupport
import XCTest

/// `apply gsa`, `apply sasa` and `apply attention` of the `spatial-attention` executable: each output
/// against the module built directly from the same arrays (the explicit-weight initialisers, not the
/// named loader) and against the module's naive twin; then each command's errors.
extension CLITests {
    func testApplyGSAMatchesTheModuleAndItsNaiveTwin() throws {
        let folder = makeScratchFolder("cli-gsa")
        defer { folder.remove() }
        let (input, output, weights) = (folder.path + "/x.npy", folder.path + "/y.npy", folder.path + "/p.safetensors")
        // dk = 4 per head; L = 6 = W (global along rows) > H = 5; the ablation takes L = 4 from --extent.
        let (C, d, heads, L) = (16, 16, 4, 6)
        var random = SeededArrays(seed: 31)
        let t = [
            "layer1.0.gsa.qkv.weight": random([3 * d, C, 1, 1], 0.25),
            "layer1.0.gsa.rel_rows": random([2 * L - 1, d / heads]),
            "layer1.0.gsa.rel_columns": random([2 * L - 1, d / heads]),
            "layer1.0.gsa.norm.weight": random([d], 0.5, 1.5), "layer1.0.gsa.norm.bias": random([d], -0.2, 0.2),
            "layer1.0.gsa.norm.running_mean": random([d], -0.2, 0.2), "layer1.0.gsa.norm.running_var": random([d], 0.5, 1.5),
            "layer1.0.conv1.weight": random([C, C, 1, 1]),  // another layer's: ignored
            "positional.qkv.weight": random([2 * d, C, 1, 1], 0.25),  // query and value rows only
            "positional.rel_rows": random([7, d / heads]), "positional.rel_columns": random([7, d / heads]),
            "positional.norm.weight": random([d], 0.5, 1.5), "positional.norm.bias": random([d], -0.2, 0.2),
            "positional.norm.running_mean": random([d], -0.2, 0.2), "positional.norm.running_var": random([d], 0.5, 1.5),
        ]
        try Safetensors(tensors: t).write(to: weights)
        func normalization(_ p: String) throws -> GSA.Normalization {
            try GSA.Normalization(weight: t[p + "norm.weight"]!.values, bias: t[p + "norm.bias"]!.values,
                                  runningMean: t[p + "norm.running_mean"]!.values,
                                  runningVariance: t[p + "norm.running_var"]!.values)
        }
        let qkv = t["layer1.0.gsa.qkv.weight"]!.values, qv = t["positional.qkv.weight"]!.values, block = d * C
        let full = try GSA(channels: C, heads: heads, extent: L, queryWeight: Array(qkv[0..<block]),
                           keyWeight: Array(qkv[block..<(2 * block)]), valueWeight: Array(qkv[(2 * block)...]),
                           columnEmbedding: t["layer1.0.gsa.rel_rows"]!.values,
                           rowEmbedding: t["layer1.0.gsa.rel_columns"]!.values,
                           normalization: try normalization("layer1.0.gsa."))
        let positional = try GSA(channels: C, heads: heads, extent: 4, components: .positional,
                                 queryWeight: Array(qv[0..<block]), keyWeight: [], valueWeight: Array(qv[block...]),
                                 columnEmbedding: t["positional.rel_rows"]!.values,
                                 rowEmbedding: t["positional.rel_columns"]!.values,
                                 normalization: try normalization("positional."))
        let cases: [(arguments: [String], module: GSA)] = [
            (["--prefix", "layer1.0.gsa."], full),
            (["--prefix", "positional.", "--components", "column+row", "--extent", "4"], positional),
        ]
        try withEvery("layout", in: Layout.allCases) { layout in
            let x = seededTensor(Shape(2, C, 5, 6), layout: layout, seed: 32)
            try NPY.write(x, to: input)
            for (arguments, module) in cases {
                let run = try runCLI(["apply", "gsa", "--input", input, "--output", output, "--layout", layout.rawValue,
                                      "--weights", weights, "--heads", "4", "--threads", "1"] + arguments)
                XCTAssertEqual(run.status, 0, run.stderr)
                let y = try NPY.readTensor(output, layout: layout)
                assertClose(y, try module(x, threads: 1), tolerance: .gsa, "\(arguments)")
                assertClose(y, try Naive.gsa(x, module: module), tolerance: .gsa, "\(arguments)")
            }
        }
    }

    func testApplySASAMatchesTheModuleAndItsNaiveTwin() throws {
        let folder = makeScratchFolder("cli-sasa")
        defer { folder.remove() }
        let (input, output, weights) = (folder.path + "/x.npy", folder.path + "/y.npy", folder.path + "/p.safetensors")
        // Two heads, dk = 8, dv = 6 per head (read from the shapes), k = 3 (not the default 7).
        let (C, dk, dv, heads, k) = (16, 8, 6, 2, 3)
        var random = SeededArrays(seed: 33)
        let t = [
            "sasa.query_conv.weight": random([heads * dk, C, 1, 1], 0.25),
            "sasa.key_conv.weight": random([heads * dk, C, 1, 1], 0.25),
            "sasa.value_conv.weight": random([heads * dv, C, 1, 1], 0.25),
            "sasa.rel_h": random([k, dk / 2]), "sasa.rel_w": random([k, dk / 2]),
        ]
        try Safetensors(tensors: t).write(to: weights)
        try withEvery("boundary", in: SASA.Boundary.allCases) { boundary in
            let module = try SASA(channels: C, heads: heads, kernelSize: k, boundary: boundary,
                                  queryWeight: t["sasa.query_conv.weight"]!.values, keyWeight: t["sasa.key_conv.weight"]!.values,
                                  valueWeight: t["sasa.value_conv.weight"]!.values, rowEmbedding: t["sasa.rel_h"]!.values,
                                  columnEmbedding: t["sasa.rel_w"]!.values)
            try withEvery("layout", in: Layout.allCases) { layout in
                let x = seededTensor(Shape(2, C, 5, 4), layout: layout, seed: 34)
                try NPY.write(x, to: input)
                let run = try runCLI(["apply", "sasa", "--input", input, "--output", output, "--layout", layout.rawValue,
                                      "--weights", weights, "--prefix", "sasa.", "--heads", "2", "--kernel-size", "3",
                                      "--boundary", boundary.rawValue, "--threads", "1"])
                XCTAssertEqual(run.status, 0, run.stderr)
                let y = try NPY.readTensor(output, layout: layout)
                XCTAssertEqual(y.shape, Shape(2, heads * dv, 5, 4))
                assertClose(y, try module(x, threads: 1), tolerance: .sasa)
                assertClose(y, try Naive.sasa(x, module: module), tolerance: .sasa)
            }
        }
    }

    func testApplyAttentionFoldsTheBatchNormAndMatchesTheModuleAndItsNaiveTwin() throws {
        let folder = makeScratchFolder("cli-attention")
        defer { folder.remove() }
        let (input, output, weights) = (folder.path + "/x.npy", folder.path + "/y.npy", folder.path + "/p.safetensors")
        // Two heads: dk = 2, dv = 3 per head; biases on every projection; the BN W.1 after W.0.
        let (C, dk, dv, heads) = (8, 4, 6, 2)
        var random = SeededArrays(seed: 35)
        let t = [
            "nl.theta.weight": random([dk, C, 1, 1]), "nl.theta.bias": random([dk], -0.2, 0.2),
            "nl.phi.weight": random([dk, C, 1, 1]), "nl.phi.bias": random([dk], -0.2, 0.2),
            "nl.g.weight": random([dv, C, 1, 1]), "nl.g.bias": random([dv], -0.2, 0.2),
            "nl.W.0.weight": random([C, dv, 1, 1]), "nl.W.0.bias": random([C], -0.2, 0.2),
            "nl.W.1.weight": random([C], 0.5, 1.5), "nl.W.1.bias": random([C], -0.2, 0.2),
            "nl.W.1.running_mean": random([C], -0.2, 0.2), "nl.W.1.running_var": random([C], 0.5, 1.5),
            "nl.W.1.num_batches_tracked": try NDArray(shape: [], values: [7]),  // PyTorch's counter: ignored
            "bare.theta.weight": random([dk, C, 1, 1]), "bare.phi.weight": random([dk, C, 1, 1]),
            "bare.g.weight": random([dv, C, 1, 1]),
        ]
        try Safetensors(tensors: t).write(to: weights)
        // BN after W_O, in Double: z = (o − mean)·γ/√(var + ε) + β, then the residual.
        let (gamma, beta, mean, variance) = (t["nl.W.1.weight"]!.values, t["nl.W.1.bias"]!.values,
                                             t["nl.W.1.running_mean"]!.values, t["nl.W.1.running_var"]!.values)
        let bnScale = (0..<C).map { Double(gamma[$0]) / (Double(variance[$0]) + 1e-5).squareRoot() }
        let unfolded = try NonLocal(channels: C, heads: heads, scale: 0.5, residual: false,
                                    queryWeight: t["nl.theta.weight"]!.values, keyWeight: t["nl.phi.weight"]!.values,
                                    valueWeight: t["nl.g.weight"]!.values, queryBias: t["nl.theta.bias"]!.values,
                                    keyBias: t["nl.phi.bias"]!.values, valueBias: t["nl.g.bias"]!.values,
                                    outputWeight: t["nl.W.0.weight"]!.values, outputBias: t["nl.W.0.bias"]!.values)
        let folded = try NonLocal(channels: C, heads: heads, scale: 0.5, residual: true,
                                  queryWeight: unfolded.queryWeight, keyWeight: unfolded.keyWeight,
                                  valueWeight: unfolded.valueWeight, queryBias: unfolded.queryBias,
                                  keyBias: unfolded.keyBias, valueBias: unfolded.valueBias,
                                  outputWeight: unfolded.outputWeight.indices.map { Float(Double(unfolded.outputWeight[$0]) * bnScale[$0 / dv]) },
                                  outputBias: (0..<C).map { Float((Double(unfolded.outputBias[$0]) - Double(mean[$0])) * bnScale[$0] + Double(beta[$0])) })
        let bare = try NonLocal(channels: C, heads: heads, scale: 1, residual: false, queryWeight: t["bare.theta.weight"]!.values,
                                keyWeight: t["bare.phi.weight"]!.values, valueWeight: t["bare.g.weight"]!.values)
        try withEvery("layout", in: Layout.allCases) { layout in
            let x = seededTensor(Shape(2, C, 4, 5), layout: layout, seed: 36)
            try NPY.write(x, to: input)
            let common = ["--input", input, "--output", output, "--layout", layout.rawValue, "--weights", weights,
                          "--heads", "2", "--threads", "1"]
            // dk/heads = 2: the default scale is 1/√2; 0.5 is given explicitly.
            let run = try runCLI(["apply", "attention", "--prefix", "nl.", "--scale", "0.5"] + common)
            XCTAssertEqual(run.status, 0, run.stderr)
            let y = try NPY.readTensor(output, layout: layout)
            assertClose(y, try folded(x, threads: 1), tolerance: .attention)
            var expected = try Naive.attention(x, module: unfolded)
            let residual = ReferenceTensor(x)
            for i in expected.values.indices {
                let c = i / 20 % C  // NCHW, H·W = 20
                expected.values[i] = (expected.values[i] - Double(mean[c])) * bnScale[c] + Double(beta[c]) + residual.values[i]
            }
            assertClose(y, expected, tolerance: .attention)

            let plain = try runCLI(["apply", "attention", "--prefix", "bare.", "--scale", "1", "--no-output-projection",
                                    "--no-residual"] + common)
            XCTAssertEqual(plain.status, 0, plain.stderr)
            let z = try NPY.readTensor(output, layout: layout)
            XCTAssertEqual(z.shape, Shape(2, dv, 4, 5))
            assertClose(z, try bare(x, threads: 1), tolerance: .attention)
            assertClose(z, try Naive.attention(x, module: bare), tolerance: .attention)
        }
    }
}

/// Seeded uniform arrays for parameter files.
struct SeededArrays {
    var generator: SeededGenerator

    init(seed: UInt64) { generator = SeededGenerator(seed: seed) }

    /// An array of `shape` with values uniform on `[−scale, scale)`.
    mutating func callAsFunction(_ shape: [Int], _ scale: Float = 0.5) -> NDArray { self(shape, -scale, scale) }

    /// An array of `shape` with values uniform on `[lower, upper)`.
    mutating func callAsFunction(_ shape: [Int], _ lower: Float, _ upper: Float) -> NDArray {
        let distribution = RandomDistribution.uniform(lower: lower, upper: upper)
        return try! NDArray(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in distribution.sample(using: &generator) })
    }
}
