import Foundation
import SpatialAttention
import TestSupport
import XCTest

/// A safetensors file built entry by entry, with any dtype: independent of the writer under test.
private func safetensorsBytes(_ entries: [(name: String, dtype: String, shape: [Int], data: [UInt8])]) -> [UInt8] {
    var fields: [String] = []
    var data: [UInt8] = []
    for entry in entries {
        let shape = entry.shape.map(String.init).joined(separator: ",")
        fields.append("\"\(entry.name)\":{\"dtype\":\"\(entry.dtype)\",\"shape\":[\(shape)],\"data_offsets\":[\(data.count),\(data.count + entry.data.count)]}")
        data += entry.data
    }
    let header = Array(("{" + fields.joined(separator: ",") + "}").utf8)
    return littleEndianBytes(UInt64(header.count)) + header + data
}

private func float32Entry(_ name: String, _ tensor: ParameterTensor) -> (name: String, dtype: String, shape: [Int], data: [UInt8]) {
    // Little-endian host (x86-64, arm64): the Float32 storage is the file's byte order.
    (name, "F32", tensor.shape, tensor.values.withUnsafeBytes { Array($0) })
}

final class WeightsTests: XCTestCase {
    /// One seeded ResNet-50+SE for the whole class: building it is the slow part.
    private static let model = Model(name: try! ModelName("resnet50+se"), seed: 3)

    func testWrittenWeightsLoadBackAsTheSameModel() throws {
        let folder = makeScratchFolder("weights-roundtrip")
        defer { folder.remove() }
        let path = folder.path + "/w.safetensors"
        let model = Self.model
        try model.writeWeights(to: path, metadata: ["note": "test"])
        let file = try Safetensors(contentsOf: path)
        XCTAssertEqual(file.metadata, ["format": "pt", "model": "resnet50+se", "note": "test"])
        XCTAssertEqual(Set(file.names), Set(model.parameterNames))
        XCTAssertEqual(file.names.count, 320 - 53 + 32, "torchvision's 320 keys without 53 num_batches_tracked, plus 16×2 SE weights")
        let loaded = try Model(name: model.name, weightsFile: path)
        XCTAssertEqual(loaded.parameters, model.parameters)
        let x = seededTensor(Shape(1, 3, 32, 32), seed: 5)
        XCTAssertEqual(try loaded(x).scalars.map(\.bitPattern), try model(x).scalars.map(\.bitPattern))
    }

    func testPyTorchStyleFileWithNumBatchesTrackedLoadsStrictly() throws {
        let folder = makeScratchFolder("weights-pytorch")
        defer { folder.remove() }
        let model = Self.model
        var entries = model.parameterNames.map { float32Entry($0, model.parameters[$0]!) }
        // PyTorch's state_dict holds an int64 counter beside every BN's statistics.
        for name in model.parameterNames where name.hasSuffix(".running_var") {
            entries.append((name.replacingOccurrences(of: "running_var", with: "num_batches_tracked"), "I64", [], littleEndianBytes(Int64(7))))
        }
        let path = folder.path + "/pytorch.safetensors"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(safetensorsBytes(entries))))
        XCTAssertEqual(try Model(name: model.name, weightsFile: path, strict: true).parameters, model.parameters)
    }

    func testEveryMissingExtraAndMisshapedNameIsListedInOneError() throws {
        let folder = makeScratchFolder("weights-errors")
        defer { folder.remove() }
        let model = Self.model
        var tensors = model.parameters.mapValues(NDArray.init)
        tensors["layer1.0.conv1.weight"] = nil
        tensors["fc.bias"] = nil
        tensors["layer2.1.se.fc3.weight"] = try NDArray(shape: [1], values: [1])
        tensors["extra"] = try NDArray(shape: [], values: [0])
        tensors["bn1.weight"] = try NDArray(shape: [32], values: .init(repeating: 1, count: 32))
        tensors["layer4.2.se.fc2.weight"] = try NDArray(shape: [128, 2048], values: .init(repeating: 0, count: 128 * 2048))
        let path = folder.path + "/bad.safetensors"
        try Safetensors(tensors: tensors).write(to: path)

        XCTAssertThrowsError(try Model(name: model.name, weightsFile: path)) { error in
            guard let error = error as? ParameterError else { return XCTFail("expected a ParameterError, got \(error)") }
            XCTAssertEqual(error.model, "resnet50+se")
            XCTAssertEqual(error.missing.sorted(), ["fc.bias", "layer1.0.conv1.weight"])
            XCTAssertEqual(error.unexpected, ["extra", "layer2.1.se.fc3.weight"])
            XCTAssertEqual(error.misshaped.sorted(), ["bn1.weight: expected [64], got [32]",
                                                      "layer4.2.se.fc2.weight: expected [2048, 128], got [128, 2048]"])
        }
        // Not strict: extras are ignored, the rest is still reported.
        XCTAssertThrowsError(try Model(name: model.name, weightsFile: path, strict: false)) { error in
            guard let error = error as? ParameterError else { return XCTFail("expected a ParameterError, got \(error)") }
            XCTAssertEqual(error.unexpected, [])
            XCTAssertEqual(error.missing.count, 2)
            XCTAssertEqual(error.misshaped.count, 2)
        }
        // Extras alone load when not strict.
        var extras = model.parameters.mapValues(NDArray.init)
        extras["extra"] = try NDArray(shape: [], values: [0])
        try Safetensors(tensors: extras).write(to: path)
        XCTAssertEqual(try Model(name: model.name, weightsFile: path, strict: false).parameters, model.parameters)
    }

    func testHalfPrecisionWeightsAreConvertedOnLoad() throws {
        let folder = makeScratchFolder("weights-half")
        defer { folder.remove() }
        // The model's weights rounded to bfloat16 (the top half of each float, round-to-nearest-even),
        // stored as BF16: the loaded model holds exactly the rounded values.
        let model = Self.model
        func bfloat16Bits(_ value: Float) -> UInt16 {
            let bits = value.bitPattern
            return UInt16((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16)
        }
        let entries = model.parameterNames.map { name -> (name: String, dtype: String, shape: [Int], data: [UInt8]) in
            let p = model.parameters[name]!
            return (name, "BF16", p.shape, p.values.map(bfloat16Bits).withUnsafeBytes { Array($0) })
        }
        let path = folder.path + "/bf16.safetensors"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(safetensorsBytes(entries))))
        let loaded = try Model(name: model.name, weightsFile: path)
        let name = "layer3.2.conv2.weight"
        XCTAssertEqual(loaded.parameters[name]!.values,
                       model.parameters[name]!.values.map { Float(bitPattern: UInt32(bfloat16Bits($0)) << 16) })
    }

    func testMissingOrMalformedFileIsAFileFormatError() {
        assertThrowsFileFormatError(try Model(name: try ModelName("resnet50"), weightsFile: "/nonexistent/w.safetensors"),
                                    path: "/nonexistent/w.safetensors", .fileNotFound)
    }
}
