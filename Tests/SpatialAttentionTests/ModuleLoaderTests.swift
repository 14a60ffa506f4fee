import SpatialAttention
import SpatialAttentionReference
import TestSupport
import XCTest

/// The modules' `init(parameters:prefix:…)` loaders: sizes read from the tensors, weights placed where
/// the explicit initialisers put them, names outside the prefix ignored, and strictness about names
/// under it. (CLITests+Attention checks the loaded modules' outputs against their naive twins.)
final class ModuleLoaderTests: XCTestCase {
    private func tensor(_ shape: [Int], _ values: [Float]) -> ParameterTensor { try! ParameterTensor(shape: shape, values: values) }

    func testGSALoaderReadsItsSizesAndPlacesEveryWeight() throws {
        let source = try GSA(channels: 12, heads: 3, extent: 5, seed: 1)
        let norm = source.normalization!
        var named: [String: ParameterTensor] = [
            "m.qkv.weight": tensor([36, 12, 1, 1], source.queryWeight + source.keyWeight + source.valueWeight),
            "m.rel_rows": tensor([9, 4], source.columnEmbedding), "m.rel_columns": tensor([9, 4], source.rowEmbedding),
            "m.norm.weight": tensor([12], norm.weight), "m.norm.bias": tensor([12], norm.bias),
            "m.norm.running_mean": tensor([12], norm.runningMean), "m.norm.running_var": tensor([12], norm.runningVariance),
            "other.qkv.weight": tensor([1], [0]),
        ]
        let loaded = try GSA(parameters: named, prefix: "m.", heads: 3)
        XCTAssertEqual([loaded.channels, loaded.heads, loaded.keyChannels, loaded.valueChannels, loaded.extent], [12, 3, 12, 12, 5])
        XCTAssertEqual(loaded.queryWeight, source.queryWeight)
        XCTAssertEqual(loaded.keyWeight, source.keyWeight)
        XCTAssertEqual(loaded.valueWeight, source.valueWeight)
        XCTAssertEqual(loaded.columnEmbedding, source.columnEmbedding)
        XCTAssertEqual(loaded.rowEmbedding, source.rowEmbedding)
        XCTAssertEqual(loaded.normalization, norm)
        named["m.extra"] = tensor([1], [0])
        assertParameterError(try GSA(parameters: named, prefix: "m.", heads: 3), missing: [], unexpected: ["m.extra"], misshaped: [])
        XCTAssertNoThrow(try GSA(parameters: named, prefix: "m.", heads: 3, strict: false))
    }

    func testSASALoaderReadsKeyAndValueChannelsFromTheProjections() throws {
        let source = try SASA(channels: 6, heads: 2, keyChannels: 8, valueChannels: 10, kernelSize: 5, seed: 2)
        let named: [String: ParameterTensor] = [
            "query_conv.weight": tensor([8, 6, 1, 1], source.queryWeight), "key_conv.weight": tensor([8, 6, 1, 1], source.keyWeight),
            "value_conv.weight": tensor([10, 6, 1, 1], source.valueWeight),
            "rel_h": tensor([5, 2], source.rowEmbedding), "rel_w": tensor([5, 2], source.columnEmbedding),
        ]
        let loaded = try SASA(parameters: named, heads: 2, kernelSize: 5, boundary: .zeroPadded)
        XCTAssertEqual([loaded.channels, loaded.keyChannels, loaded.valueChannels, loaded.kernelSize], [6, 8, 10, 5])
        XCTAssertEqual(loaded.boundary, .zeroPadded)
        XCTAssertEqual(loaded.queryWeight + loaded.keyWeight + loaded.valueWeight,
                       source.queryWeight + source.keyWeight + source.valueWeight)
        XCTAssertEqual(loaded.rowEmbedding, source.rowEmbedding)
        XCTAssertEqual(loaded.columnEmbedding, source.columnEmbedding)
        // The default k = 7 does not fit the embeddings: both are named with their shapes.
        assertParameterError(try SASA(parameters: named, heads: 2), missing: [], unexpected: [],
                             misshaped: ["rel_h: expected [7, 2], got [5, 2]", "rel_w: expected [7, 2], got [5, 2]"])
    }

    func testNonLocalLoaderTakesOptionalBiasesAndNeedsAllOfTheBatchNorm() throws {
        let source = try NonLocal(channels: 4, heads: 2, keyChannels: 2, valueChannels: 6, seed: 3)
        var named: [String: ParameterTensor] = [
            "theta.weight": tensor([2, 4, 1, 1], source.queryWeight), "phi.weight": tensor([2, 4, 1, 1], source.keyWeight),
            "g.weight": tensor([6, 4, 1, 1], source.valueWeight), "g.bias": tensor([6], [1, 2, 3, 4, 5, 6]),
            "W.0.weight": tensor([4, 6, 1, 1], source.outputWeight), "W.0.bias": tensor([4], source.outputBias),
        ]
        let loaded = try NonLocal(parameters: named, heads: 2)
        XCTAssertEqual([loaded.channels, loaded.keyChannels, loaded.valueChannels, loaded.outputChannels], [4, 2, 6, 4])
        XCTAssertEqual(loaded.scale, 1, "1/√(dk/heads) with dk/heads = 1")
        XCTAssertEqual(loaded.queryBias, [])
        XCTAssertEqual(loaded.valueBias, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(loaded.outputWeight, source.outputWeight)
        XCTAssertEqual(loaded.outputBias, source.outputBias)
        XCTAssertTrue(loaded.residual)
        named["W.1.weight"] = tensor([4], [1, 1, 1, 1])
        named["W.1.running_var"] = tensor([3], [1, 1, 1])
        assertParameterError(try NonLocal(parameters: named, heads: 2), missing: ["W.1.bias", "W.1.running_mean"],
                             unexpected: [], misshaped: ["W.1.running_var: expected [4], got [3]"])
    }

    func testAMissingSizeTensorListsEveryAbsentName() {
        let named = ["gsa.rel_rows": tensor([3, 1], [0, 0, 0])]
        assertParameterError(try GSA(parameters: named, prefix: "gsa.", components: .column), missing: ["gsa.qkv.weight"],
                             unexpected: [], misshaped: [])
        assertParameterError(try NonLocal(parameters: named, outputProjection: false), missing: ["theta.weight", "phi.weight", "g.weight"],
                             unexpected: [], misshaped: [])
    }

    private func assertParameterError<T>(_ body: @autoclosure () throws -> T, missing: [String], unexpected: [String],
                                         misshaped: [String], file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try body()
            XCTFail("expected a ParameterError", file: file, line: line)
        } catch let error as ParameterError {
            XCTAssertEqual(error.missing, missing, file: file, line: line)
            XCTAssertEqual(error.unexpected, unexpected, file: file, line: line)
            XCTAssertEqual(error.misshaped, misshaped, file: file, line: line)
        } catch {
            XCTFail("expected a ParameterError, got \(error)", file: file, line: line)
        }
    }
}
