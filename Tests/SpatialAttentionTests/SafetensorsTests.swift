import Foundation
import SpatialAttention
import TestSupport
import XCTest
import FuzzSupport

/// A hand-built safetensors file: the 8-byte length (`declaredLength`, or the header's real length),
/// the header text exactly as given, then `data`. Independent of the writer under test.
private func safetensorsFile(_ header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    let text = Array(header.utf8)
    return littleEndianBytes(declaredLength ?? UInt64(text.count)) + text + data
}

private func entry(_ name: String, _ dtype: String = "F32", shape: String, offsets: String) -> String {
    "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":\(offsets)}"
}

private func assertHeaderProblem(_ header: String, data: [UInt8] = [], _ detail: String,
                                 file: StaticString = #filePath, line: UInt = #line) {
    assertThrowsFileFormatError(try Safetensors(decoding: safetensorsFile(header, data: data)),
                                .badHeader(detail: detail), file: file, line: line)
}

final class SafetensorsTests: XCTestCase {
    // MARK: Reading valid files

    func testRoundTripsTensorsAndMetadataThroughAFile() throws {
        let folder = makeScratchFolder("safetensors-roundtrip")
        defer { folder.remove() }
        var generator = SeededGenerator(seed: 9)
        func random(_ shape: [Int]) -> NDArray {
            let values = (0..<shape.reduce(1, *)).map { _ in RandomDistribution.normal(mean: 0, standardDeviation: 1).sample(using: &generator) }
            return try! NDArray(shape: shape, values: values)
        }
        let original = Safetensors(tensors: [
            "conv1.weight": random([64, 3, 7, 7]), "bn1.running_var": random([64]), "fc.bias": random([10]),
            "scalar": random([]), "empty": random([0, 3]), "naïve \"quoted\"\\name\n": random([2, 2]),
        ], metadata: ["format": "pt", "note": "ünïcode \"x\""])
        let path = folder.path + "/w.safetensors"
        try original.write(to: path)
        XCTAssertEqual(try Safetensors(contentsOf: path), original)
        XCTAssertEqual(folderContents(folder.path), ["w.safetensors"])
        let bytes = try original.encoded()
        let headerLength = Int(bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        XCTAssertEqual(headerLength % 8, 0, "header padded to 8 bytes")
        XCTAssertEqual(bytes.count, 8 + headerLength + 4 * (64 * 147 + 64 + 10 + 1 + 4))
    }

    func testConvertsEveryDTypeToFloat32() throws {
        let header = "{" + [
            entry("f64", "F64", shape: "[2]", offsets: "[0,16]"),
            entry("f16", "F16", shape: "[2]", offsets: "[16,20]"),
            entry("bf16", "BF16", shape: "[2]", offsets: "[20,24]"),
            entry("i64", "I64", shape: "[1]", offsets: "[24,32]"),
            entry("i8", "I8", shape: "[2]", offsets: "[32,34]"),
            entry("u8", "U8", shape: "[1]", offsets: "[34,35]"),
            entry("bool", "BOOL", shape: "[2]", offsets: "[35,37]"),
            entry("i32", "I32", shape: "[1]", offsets: "[37,41]"),
        ].joined(separator: ",") + "}"
        let data = littleEndianBytes(Double(0.1).bitPattern) + littleEndianBytes(Double(-1e300).bitPattern)
            + littleEndianBytes(UInt16(0x3C00)) + littleEndianBytes(UInt16(0x0001))
            + littleEndianBytes(UInt16(0x3FC0)) + littleEndianBytes(UInt16(0xFF80))
            + littleEndianBytes(Int64(-123_456_789_012)) + [0xFF, 0x7F] + [200] + [0, 1]
            + littleEndianBytes(Int32(16_777_217))
        let file = try Safetensors(decoding: safetensorsFile(header, data: data))
        XCTAssertEqual(file.tensors["f64"]?.values, [Float(0.1), -.infinity])
        XCTAssertEqual(file.tensors["f16"]?.values, [1, 0x1p-24])
        XCTAssertEqual(file.tensors["bf16"]?.values, [1.5, -.infinity])
        XCTAssertEqual(file.tensors["i64"]?.values, [Float(-123_456_789_012)])
        XCTAssertEqual(file.tensors["i8"]?.values, [-1, 127])
        XCTAssertEqual(file.tensors["u8"]?.values, [200])
        XCTAssertEqual(file.tensors["bool"]?.values, [0, 1])
        XCTAssertEqual(file.tensors["i32"]?.values, [16_777_216], "rounded to the nearest Float32")
        XCTAssertEqual(file.names, ["bf16", "bool", "f16", "f64", "i32", "i64", "i8", "u8"])
    }

    func testAcceptsPaddingEscapesAndAnyEntryOrder() throws {
        let header = "{ \"__metadata__\" : {\"k\":\"v\\u00e9\\ud83d\\ude00\"}, "
            + entry("b", shape: "[1]", offsets: "[4,8]") + " , " + entry("a\\u0041", shape: "[1]", offsets: "[0,4]") + "}    "
        let file = try Safetensors(decoding: safetensorsFile(header, data: littleEndianBytes(Float(1).bitPattern) + littleEndianBytes(Float(2).bitPattern)))
        XCTAssertEqual(file.tensors, ["aA": try NDArray(shape: [1], values: [1]), "b": try NDArray(shape: [1], values: [2])])
        XCTAssertEqual(file.metadata, ["k": "vé😀"])
        XCTAssertEqual(try Safetensors(decoding: safetensorsFile("{}")), Safetensors(tensors: [:]))
    }

    // MARK: Malformed files: one test per problem, each with its exact error

    func testTruncatedLengthField() {
        assertThrowsFileFormatError(try Safetensors(decoding: []), .truncated(needed: 8, available: 0))
        assertThrowsFileFormatError(try Safetensors(decoding: [1, 0, 0, 0, 0]), .truncated(needed: 8, available: 5))
    }

    func testHeaderLengthPastTheEndOfTheFile() {
        let bytes = safetensorsFile("{}", declaredLength: 1000)
        assertThrowsFileFormatError(try Safetensors(decoding: bytes), .headerLengthPastEnd(declared: 1000, available: 2))
        let header = "{" + entry("a", shape: "[1]", offsets: "[0,4]") + "}"
        let truncated = Array(safetensorsFile(header, data: [0, 0, 0, 0]).prefix(40))
        assertThrowsFileFormatError(try Safetensors(decoding: truncated), .headerLengthPastEnd(declared: header.utf8.count, available: 32))
    }

    func testHugeHeaderLengthIsRefusedBeforeAllocating() {
        assertThrowsFileFormatError(try Safetensors(decoding: safetensorsFile("{}", declaredLength: 1 << 40)),
                                    .headerTooLarge(declared: 1 << 40, limit: 100_000_000))
        assertThrowsFileFormatError(try Safetensors(decoding: safetensorsFile("{}", declaredLength: .max)),
                                    .headerTooLarge(declared: .max, limit: 100_000_000))
    }

    func testHeaderMustStartWithABrace() {
        assertHeaderProblem(" {}", "the header does not start with '{'")
        assertThrowsFileFormatError(try Safetensors(decoding: safetensorsFile("")), .badHeader(detail: "the header does not start with '{'"))
    }

    func testBadJSON() {
        let cases: [(String, String)] = [
            ("{", "JSON: expected a member name at byte 1"),
            ("{\"a\":{}", "JSON: expected '}' at byte 7"),
            ("{\"a\":{},}", "JSON: expected a member name at byte 8"),
            ("{\"a\" {}}", "JSON: expected ':' at byte 5"),
            ("{\"a\":[1,]}", "JSON: unexpected character 0x5d at byte 8"),
            ("{\"a\":tru}", "JSON: invalid literal at byte 5"),
            ("{\"a\":01}", "JSON: expected '}' at byte 6"),
            ("{\"a\":-}", "JSON: expected a digit at byte 6"),
            ("{\"a\":1.}", "JSON: expected a digit after '.' at byte 7"),
            ("{\"a\":\"\\x\"}", "JSON: invalid escape at byte 8"),
            ("{\"a\":\"\\ud800\"}", "JSON: unpaired surrogate at byte 12"),
            ("{\"a\":\"\u{1}\"}", "JSON: control character in a string at byte 7"),
            ("{\"a\":\"x}", "JSON: unterminated string at byte 8"),
            ("{} {}", "JSON: unexpected bytes after the JSON value at byte 3"),
            ("{\"a\":" + String(repeating: "[", count: 100), "JSON: nesting deeper than 64 at byte 68"),
        ]
        for (header, detail) in cases { assertHeaderProblem(header, detail) }
        // Invalid UTF-8 inside a string.
        let bytes = littleEndianBytes(UInt64(8)) + Array("{\"a".utf8) + [0xFF] + Array("\":1}".utf8)
        assertThrowsFileFormatError(try Safetensors(decoding: bytes), .badHeader(detail: "JSON: string starting at byte 1 is not valid UTF-8"))
    }

    func testMalformedEntries() {
        let cases: [(String, String)] = [
            ("{\"a\":[]}", "tensor 'a': entry is an array, not an object"),
            ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", "tensor 'a': missing field 'data_offsets'"),
            ("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", "tensor 'a': missing field 'dtype'"),
            ("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", "tensor 'a': missing field 'shape'"),
            ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", "tensor 'a': unexpected field 'x'"),
            ("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\"}}", "tensor 'a': field 'dtype' appears twice"),
            ("{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", "tensor 'a': dtype is a number, not a string"),
            ("{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", "tensor 'a': shape is a number, not an array"),
            ("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", "tensor 'a': shape holds something other than a non-negative integer"),
            ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", "tensor 'a': shape holds something other than a non-negative integer"),
            ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", "tensor 'a': data_offsets has 3 elements, not 2"),
            ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,\"4\"]}}", "tensor 'a': data_offsets holds something other than a non-negative integer"),
            ("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", "tensor 'a': shape holds something other than a non-negative integer"),
            ("{\"__metadata__\":[]}", "__metadata__ is an array, not an object"),
            ("{\"__metadata__\":{\"k\":1}}", "__metadata__ value for 'k' is a number, not a string"),
            ("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", "__metadata__ key 'k' appears twice"),
        ]
        for (header, detail) in cases { assertHeaderProblem(header, data: [0, 0, 0, 0], detail) }
    }

    func testUnknownDType() {
        for dtype in ["F8_E4M3", "C64", "f32", "X"] {
            assertThrowsFileFormatError(try Safetensors(decoding: safetensorsFile("{" + entry("a", dtype, shape: "[1]", offsets: "[0,4]") + "}", data: [0, 0, 0, 0])),
                                        .unsupportedDType(dtype))
        }
    }

    func testShapeWhoseBytesDoNotMatchTheOffsets() {
        let header = "{" + entry("w", shape: "[2,3]", offsets: "[0,20]") + "}"
        assertThrowsFileFormatError(try Safetensors(decoding: safetensorsFile(header, data: .init(repeating: 0, count: 20))),
                                    .dataSizeMismatch(name: "w", shape: [2, 3], declaredBytes: 24, availableBytes: 20))
    }

    func testHugeDeclaredShapeIsRefusedBeforeAllocating() {
        let huge = "{" + entry("w", shape: "[1099511627776]", offsets: "[0,4]") + "}"
        assertThrowsFileFormatError(try Safetensors(decoding: safetensorsFile(huge, data: [0, 0, 0, 0])),
                                    .dataSizeMismatch(name: "w", shape: [1 << 40], declaredBytes: 1 << 42, availableBytes: 4))
        let overflow = "{" + entry("w", shape: "[4294967296,4294967296]", offsets: "[0,4]") + "}"
        assertThrowsFileFormatError(try Safetensors(decoding: safetensorsFile(overflow, data: [0, 0, 0, 0])),
                                    .elementCountOverflow(name: "w", shape: [1 << 32, 1 << 32]))
        let farOffsets = "{" + entry("w", shape: "[1099511627776]", offsets: "[0,4398046511104]") + "}"
        assertThrowsFileFormatError(try Safetensors(decoding: safetensorsFile(farOffsets, data: [0, 0, 0, 0])),
                                    .offsetsOutOfRange(name: "w", begin: 0, end: 1 << 42, bufferLength: 4))
    }

    func testOffsetsOutOfRange() {
        let past = "{" + entry("w", shape: "[2]", offsets: "[4,12]") + "}"
        assertThrowsFileFormatError(try Safetensors(decoding: safetensorsFile(past, data: .init(repeating: 0, count: 8))),
                                    .offsetsOutOfRange(name: "w", begin: 4, end: 12, bufferLength: 8))
        let reversed = "{" + entry("w", shape: "[0]", offsets: "[8,4]") + "}"
        assertThrowsFileFormatError(try Safetensors(decoding: safetensorsFile(reversed, data: .init(repeating: 0, count: 8))),
                                    .offsetsOutOfRange(name: "w", begin: 8, end: 4, bufferLength: 8))
    }

    func testOverlappingOffsets() {
        let header = "{" + entry("a", shape: "[2]", offsets: "[0,8]") + "," + entry("b", shape: "[2]", offsets: "[4,12]") + "}"
        assertThrowsFileFormatError(try Safetensors(decoding: safetensorsFile(header, data: .init(repeating: 0, count: 12))),
                                    .overlappingOffsets(first: "a", second: "b"))
        let same = "{" + entry("a", shape: "[2]", offsets: "[0,8]") + "," + entry("b", shape: "[2]", offsets: "[0,8]") + "}"
        assertThrowsFileFormatError(try Safetensors(decoding: safetensorsFile(same, data: .init(repeating: 0, count: 8))),
                                    .overlappingOffsets(first: "a", second: "b"))
    }

    func testHolesAndTrailingBytesAreRefused() {
        let hole = "{" + entry("a", shape: "[1]", offsets: "[0,4]") + "," + entry("b", shape: "[1]", offsets: "[8,12]") + "}"
        assertThrowsFileFormatError(try Safetensors(decoding: safetensorsFile(hole, data: .init(repeating: 0, count: 12))),
                                    .uncoveredData(begin: 4, end: 8))
        let leading = "{" + entry("a", shape: "[1]", offsets: "[4,8]") + "}"
        assertThrowsFileFormatError(try Safetensors(decoding: safetensorsFile(leading, data: .init(repeating: 0, count: 8))),
                                    .uncoveredData(begin: 0, end: 4))
        let trailing = "{" + entry("a", shape: "[1]", offsets: "[0,4]") + "}"
        assertThrowsFileFormatError(try Safetensors(decoding: safetensorsFile(trailing, data: .init(repeating: 0, count: 5))),
                                    .uncoveredData(begin: 4, end: 5))
    }

    func testDuplicateTensorName() {
        let header = "{" + entry("a", shape: "[1]", offsets: "[0,4]") + "," + entry("a", shape: "[1]", offsets: "[4,8]") + "}"
        assertThrowsFileFormatError(try Safetensors(decoding: safetensorsFile(header, data: .init(repeating: 0, count: 8))),
                                    .duplicateName("a"))
    }

    // MARK: The file system and writing

    func testMissingFileAndDirectory() {
        assertThrowsFileFormatError(try Safetensors(contentsOf: "/nonexistent/w.safetensors"), path: "/nonexistent/w.safetensors", .fileNotFound)
        let folder = makeScratchFolder("safetensors-dir")
        defer { folder.remove() }
        assertThrowsFileFormatError(try Safetensors(contentsOf: folder.path), path: folder.path, .notARegularFile)
    }

    func testReservedNameAndFailedWriteLeaveNoFile() throws {
        let folder = makeScratchFolder("safetensors-write")
        defer { folder.remove() }
        let path = folder.path + "/w.safetensors"
        let reserved = Safetensors(tensors: ["__metadata__": try NDArray(shape: [1], values: [1])])
        assertThrowsFileFormatError(try reserved.write(to: path), path: path, .badHeader(detail: "the tensor name '__metadata__' is reserved"))
        XCTAssertThrowsError(try Safetensors(tensors: [:]).write(to: folder.path + "/absent/w.safetensors"))
        XCTAssertEqual(folderContents(folder.path), [])
    }

    // MARK: Seeded mutation fuzzing (spatial-fuzz / `make fuzz` run the same engine much longer)

    func testSeededMutationsNeverCrashAndAlwaysThrowFileFormatErrors() {
        let summary = runMutations(format: .safetensors, count: 20_000, seed: 20_251_121)
        XCTAssertEqual(summary.executions, 20_000)
        XCTAssertEqual(summary.violations.map(\.description), [])
        // The mutations reach every validation stage, and some mutants still parse.
        XCTAssertGreaterThan(summary.parsed, 100)
        for kind in ["badHeader", "headerLengthPastEnd", "headerTooLarge", "uncoveredData", "offsetsOutOfRange", "overlappingOffsets", "duplicateName", "dataSizeMismatch"] {
            XCTAssertGreaterThan(summary.rejections[kind] ?? 0, 0, "no mutant was rejected with \(kind)")
        }
    }
}
