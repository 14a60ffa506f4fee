import Foundation
import SpatialAttention
import TestSupport
import XCTest
import FuzzSupport

/// A hand-built `.npy` file: magic, version, header length (2 bytes for v1, 4 for v2/v3), the header
/// text exactly as given, then `data`. Built independently of the writer under test.
private func npyFile(_ header: String, version: UInt8 = 1, data: [UInt8] = []) -> [UInt8] {
    let text = Array(header.utf8)
    let length = version == 1 ? littleEndianBytes(UInt16(text.count)) : littleEndianBytes(UInt32(text.count))
    return [0x93] + Array("NUMPY".utf8) + [version, 0] + length + text + data
}

private func header(descr: String = "<f4", fortran: String = "False", shape: String) -> String {
    "{'descr': '\(descr)', 'fortran_order': \(fortran), 'shape': \(shape), }\n"
}

private func float32Data(_ values: [Float]) -> [UInt8] { values.flatMap { littleEndianBytes($0.bitPattern) } }

final class NPYTests: XCTestCase {
    // MARK: Reading valid files

    func testEncodedHeaderIsByteForByteWhatNumPyWrites() {
        // np.save(f, np.zeros((2, 3, 4), np.float32)) writes this 118-byte header (128 with the prefix).
        let numpy = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }"
            + String(repeating: " ", count: 55) + "\n"
        let bytes = NPY.encode(try! NDArray(shape: [2, 3, 4], values: [Float](repeating: 0, count: 24)))
        XCTAssertEqual(Array(bytes.prefix(128)), npyFile(numpy))
        XCTAssertEqual(bytes.count, 128 + 96)
    }

    func testRoundTripsEveryRankFrom0To4ThroughAFile() throws {
        let folder = makeScratchFolder("npy-roundtrip")
        defer { folder.remove() }
        var generator = SeededGenerator(seed: 5)
        try withEvery("shape", in: [[], [7], [1], [0], [3, 5], [2, 3, 4], [2, 3, 1, 17], [2, 0, 3, 3]]) { shape in
            let count = shape.reduce(1, *)
            let values = (0..<count).map { _ in RandomDistribution.normal(mean: 0, standardDeviation: 3).sample(using: &generator) }
            let array = try! NDArray(shape: shape, values: values)
            let path = folder.path + "/a.npy"
            XCTAssertNoThrow(try NPY.write(array, to: path))
            XCTAssertEqual(try? NPY.read(path), array)
            XCTAssertEqual(Int(try! FileManager.default.attributesOfItem(atPath: path)[.size] as! UInt64) % 64, (4 * count) % 64)
        }
        XCTAssertEqual(folderContents(folder.path), ["a.npy"], "no temporary file left behind")
    }

    func testReadsFloat32SpecialValuesBitExactly() throws {
        let values: [Float] = [0, -0.0, .infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1.5, -3]
        let array = try NPY.decode(npyFile(header(shape: "(8,)"), data: float32Data(values)))
        XCTAssertEqual(array.values.map(\.bitPattern), values.map(\.bitPattern))
        let nan = try NPY.decode(npyFile(header(shape: "(1,)"), data: float32Data([.nan])))
        XCTAssertTrue(nan.values[0].isNaN)
    }

    func testReadsFloat64RoundedToNearestFloat32() throws {
        let doubles: [Double] = [0.1, -1e-3, 1e300, -1e300, 1e-50, 3.0]
        let data = doubles.flatMap { littleEndianBytes($0.bitPattern) }
        let array = try NPY.decode(npyFile(header(descr: "<f8", shape: "(2, 3)"), data: data))
        XCTAssertEqual(array.shape, [2, 3])
        XCTAssertEqual(array.values, [Float(0.1), Float(-1e-3), .infinity, -.infinity, 0, 3])
    }

    func testReadsFloat16ExactlyIncludingSubnormalsAndInfinities() throws {
        let bits: [UInt16] = [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x8000, 0x7C00, 0xFC00, 0x3555, 0x0400]
        let expected: [Float] = [1, -2, 65504, 0x1p-24, -0.0, .infinity, -.infinity, 0x1.554p-2, 0x1p-14]
        let array = try NPY.decode(npyFile(header(descr: "<f2", shape: "(9,)"), data: bits.flatMap(littleEndianBytes)))
        XCTAssertEqual(array.values.map(\.bitPattern), expected.map(\.bitPattern))
        let nan = try NPY.decode(npyFile(header(descr: "<f2", shape: "(1,)"), data: littleEndianBytes(UInt16(0x7E00))))
        XCTAssertTrue(nan.values[0].isNaN)
    }

    func testReadsVersion2And3Headers() throws {
        for version: UInt8 in [2, 3] {
            let array = try NPY.decode(npyFile(header(shape: "(2,)"), version: version, data: float32Data([4, 5])))
            XCTAssertEqual(array, try NDArray(shape: [2], values: [4, 5]), "version \(version)")
        }
    }

    func testAcceptsEveryHeaderSpellingPythonReprCanProduce() throws {
        let spellings = [
            "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2, 1)}",
            "{'shape': (2, 1), 'fortran_order': False, 'descr': '<f4'}   \n",
            "{ 'descr' : '<f4' , 'fortran_order' : False , 'shape' : ( 2 , 1 , ) , }\n",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }\0\0\0\n",
        ]
        withEvery("header", in: spellings) { text in
            XCTAssertEqual(try? NPY.decode(npyFile(text, data: float32Data([1, 2]))), try! NDArray(shape: [2, 1], values: [1, 2]))
        }
        let scalar = try NPY.decode(npyFile(header(shape: "()"), data: float32Data([7])))
        XCTAssertEqual(scalar, try NDArray(shape: [], values: [7]))
    }

    func testTensorMappingByRankAndLayout() throws {
        let values = (0..<24).map(Float.init)
        let rank4 = try NDArray(shape: [1, 2, 3, 4], values: values)
        XCTAssertEqual(try Tensor(rank4, layout: .nchw).shape, Shape(1, 2, 3, 4))
        let nhwc = try Tensor(rank4, layout: .nhwc)
        XCTAssertEqual(nhwc.shape, Shape(1, 4, 2, 3))
        XCTAssertEqual(nhwc[0, 1, 0, 2], 9, "NHWC element (h 0, w 2, c 1) sits at (0·3 + 2)·4 + 1")
        XCTAssertEqual(NDArray(nhwc), rank4, "writing an NHWC tensor gives back [N, H, W, C]")
        XCTAssertEqual(try Tensor(NDArray(shape: [2, 3, 4], values: values), layout: .nchw).shape, Shape(1, 2, 3, 4))
        XCTAssertEqual(try Tensor(NDArray(shape: [2, 3, 4], values: values), layout: .nhwc).shape, Shape(1, 4, 2, 3))
        XCTAssertEqual(try Tensor(NDArray(shape: [6, 4], values: values)).shape, Shape(6, 4, 1, 1))
        XCTAssertEqual(try Tensor(NDArray(shape: [24], values: values)).shape, Shape(1, 24, 1, 1))
        assertThrowsShapeError(try Tensor(NDArray(shape: [1, 2, 3, 4, 1], values: values)), mentioning: ["[1, 2, 3, 4, 1]", "rank 5"])
        assertThrowsShapeError(try Tensor(NDArray(shape: [], values: [1])), mentioning: ["rank 0"])
    }

    func testReadTensorNamesTheFileOnARankError() throws {
        let folder = makeScratchFolder("npy-rank")
        defer { folder.remove() }
        let path = folder.path + "/five.npy"
        try NPY.write(NDArray(shape: [1, 1, 1, 1, 2], values: [1, 2]), to: path)
        assertThrowsShapeError(try NPY.readTensor(path), mentioning: [path, "rank 5"])
    }

    // MARK: Malformed files: one test per problem, each with its exact error

    func testEmptyFileIsTruncated() {
        assertThrowsFileFormatError(try NPY.decode([]), .truncated(needed: 10, available: 0))
    }

    func testFileEndingInsideTheLengthFieldIsTruncated() {
        assertThrowsFileFormatError(try NPY.decode(Array(npyFile(header(shape: "(1,)")).prefix(9))), .truncated(needed: 10, available: 9))
        assertThrowsFileFormatError(try NPY.decode(Array(npyFile(header(shape: "(1,)"), version: 2).prefix(11))), .truncated(needed: 12, available: 11))
    }

    func testBadMagicIsRefused() {
        assertThrowsFileFormatError(try NPY.decode(Array("PK\u{3}\u{4} not numpy at all".utf8)), .badMagic)
        assertThrowsFileFormatError(try NPY.decode([0x93, 0x4E, 0x55, 0x58]), .badMagic)
    }

    func testUnknownVersionIsRefused() {
        assertThrowsFileFormatError(try NPY.decode(npyFile(header(shape: "(1,)"), version: 4)), .unsupportedVersion(major: 4, minor: 0))
        var minor = npyFile(header(shape: "(1,)"), data: float32Data([1]))
        minor[7] = 1
        assertThrowsFileFormatError(try NPY.decode(minor), .unsupportedVersion(major: 1, minor: 1))
    }

    func testHeaderLengthPastTheEndOfTheFile() {
        var bytes = npyFile(header(shape: "(1,)"), data: float32Data([1]))
        bytes[8] = 0xFF; bytes[9] = 0xFF
        assertThrowsFileFormatError(try NPY.decode(bytes), .headerLengthPastEnd(declared: 65535, available: bytes.count - 10))
        // Version 2 with a 4 GiB header length in a tiny file.
        var v2 = npyFile(header(shape: "(1,)"), version: 2)
        v2.replaceSubrange(8..<12, with: [0xFF, 0xFF, 0xFF, 0xFF])
        assertThrowsFileFormatError(try NPY.decode(v2), .headerLengthPastEnd(declared: 4_294_967_295, available: v2.count - 12))
    }

    func testInt32DTypeIsRefused() {
        assertThrowsFileFormatError(try NPY.decode(npyFile(header(descr: "<i4", shape: "(1,)"), data: [1, 0, 0, 0])), .unsupportedDType("<i4"))
    }

    func testBigEndianFloat32IsRefusedAndSaysSo() {
        assertThrowsFileFormatError(try NPY.decode(npyFile(header(descr: ">f4", shape: "(1,)"), data: [0, 0, 0x80, 0x3F])), .unsupportedDType(">f4"))
        XCTAssertTrue(FileFormatError(path: "x.npy", .unsupportedDType(">f4")).description.contains("big-endian"))
    }

    func testStructuredDTypeIsRefused() {
        let text = "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }\n"
        assertThrowsFileFormatError(try NPY.decode(npyFile(text, data: [0, 0, 0, 0])), .unsupportedDType("structured (record) dtype"))
    }

    func testFortranOrderIsRefused() {
        assertThrowsFileFormatError(try NPY.decode(npyFile(header(fortran: "True", shape: "(2, 3)"), data: float32Data(.init(repeating: 1, count: 6)))), .fortranOrder)
    }

    func testMalformedHeaderDictionaries() {
        let cases: [(String, String)] = [
            ("'descr': '<f4'", "expected '{' at byte 0"),
            ("{'descr': '<f4', 'fortran_order': False}", "missing key 'shape'"),
            ("{'descr': '<f4', 'shape': (1,)}", "missing key 'fortran_order'"),
            ("{'fortran_order': False, 'shape': (1,)}", "missing key 'descr'"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", "unexpected key 'extra' at byte 56"),
            ("{'descr': '<f4', 'descr': '<f4'}", "key 'descr' appears twice"),
            ("{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}", "expected ',' or '}' at byte 17"),
            ("{'descr': '<f4", "unterminated string starting at byte 10"),
            ("{'descr': '<f4', 'fortran_order': false, 'shape': (1,)}", "expected True or False at byte 34"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1)}", "shape at byte 50 is a parenthesised integer, not a tuple (write '(n,)')"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': [1]}", "expected '(' at byte 50"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", "negative dimension at byte 51"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (01,)}", "integer with a leading zero at byte 51"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", "dimension at byte 51 does not fit in Int"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1 2)}", "expected ',' or ')' in the shape at byte 53"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x", "unexpected byte 0x78 after the dictionary at byte 56"),
            ("{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}", "expected ',' or '}' at byte 16"),
            ("{'descr': '<f\u{e9}4', 'fortran_order': False, 'shape': (1,)}", "unsupported character 0xc3 in a string at byte 13"),
            ("", "expected '{' at byte 0"),
        ]
        for (text, detail) in cases {
            assertThrowsFileFormatError(try NPY.decode(npyFile(text, data: [0, 0, 0, 0])), .badHeader(detail: detail))
        }
    }

    func testDataShorterThanTheShapeNeeds() {
        assertThrowsFileFormatError(try NPY.decode(npyFile(header(shape: "(2, 3)"), data: float32Data([1, 2, 3, 4, 5]))),
                                    .dataSizeMismatch(name: nil, shape: [2, 3], declaredBytes: 24, availableBytes: 20))
        assertThrowsFileFormatError(try NPY.decode(npyFile(header(shape: "(2, 3)"), data: [1, 2, 3] + float32Data([1, 2, 3, 4, 5]))),
                                    .dataSizeMismatch(name: nil, shape: [2, 3], declaredBytes: 24, availableBytes: 23))
    }

    func testTrailingBytesAfterTheDataAreRefused() {
        assertThrowsFileFormatError(try NPY.decode(npyFile(header(descr: "<f8", shape: "(1,)"), data: [UInt8](repeating: 0, count: 9))),
                                    .dataSizeMismatch(name: nil, shape: [1], declaredBytes: 8, availableBytes: 9))
    }

    func testHugeDeclaredSizeIsRefusedBeforeAllocating() {
        // 2⁴⁰ float32 elements (4 TiB) in a 70-byte file: checked against the file size, not allocated.
        assertThrowsFileFormatError(try NPY.decode(npyFile(header(shape: "(1099511627776,)"), data: [0, 0, 0, 0])),
                                    .dataSizeMismatch(name: nil, shape: [1 << 40], declaredBytes: 1 << 42, availableBytes: 4))
        // Element counts and byte counts that overflow Int.
        assertThrowsFileFormatError(try NPY.decode(npyFile(header(shape: "(4294967296, 4294967296)"))),
                                    .elementCountOverflow(name: nil, shape: [1 << 32, 1 << 32]))
        assertThrowsFileFormatError(try NPY.decode(npyFile(header(shape: "(2305843009213693952,)"))),
                                    .elementCountOverflow(name: nil, shape: [1 << 61]))
    }

    // MARK: The file system

    func testMissingFile() {
        assertThrowsFileFormatError(try NPY.read("/nonexistent/spatial/x.npy"), path: "/nonexistent/spatial/x.npy", .fileNotFound)
    }

    func testDirectoryAndFIFOAreNotRegularFilesAndDoNotHang() {
        let folder = makeScratchFolder("npy-special")
        defer { folder.remove() }
        assertThrowsFileFormatError(try NPY.read(folder.path), path: folder.path, .notARegularFile)
        let fifo = folder.path + "/pipe.npy"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        assertThrowsFileFormatError(try NPY.read(fifo), path: fifo, .notARegularFile)
    }

    func testErrorMessageNamesFileAndProblem() {
        let error = FileFormatError(path: "weights/x.npy", .fortranOrder)
        XCTAssertTrue(error.description.hasPrefix("weights/x.npy: "))
        XCTAssertTrue(error.description.contains("Fortran"))
    }

    func testFailedWriteLeavesNoFileAndKeepsTheOldOne() throws {
        let folder = makeScratchFolder("npy-write")
        defer { folder.remove() }
        let array = try NDArray(shape: [2], values: [1, 2])
        let missingFolder = folder.path + "/absent/y.npy"
        XCTAssertThrowsError(try NPY.write(array, to: missingFolder)) { error in
            guard case .writeFailed = (error as? FileFormatError)?.problem else { return XCTFail("\(error)") }
        }
        // Writing over a directory fails at the rename: the directory survives, no temporary remains.
        try FileManager.default.createDirectory(atPath: folder.path + "/occupied", withIntermediateDirectories: false)
        XCTAssertTrue(FileManager.default.createFile(atPath: folder.path + "/occupied/keep", contents: Data([1])))
        XCTAssertThrowsError(try NPY.write(array, to: folder.path + "/occupied"))
        XCTAssertEqual(folderContents(folder.path), ["occupied"])
        // A successful write replaces an existing file whole.
        let path = folder.path + "/y.npy"
        try NPY.write(NDArray(shape: [3], values: [7, 8, 9]), to: path)
        try NPY.write(array, to: path)
        XCTAssertEqual(try NPY.read(path), array)
        XCTAssertEqual(folderContents(folder.path), ["occupied", "y.npy"])
    }

    // MARK: Seeded mutation fuzzing (spatial-fuzz / `make fuzz` run the same engine much longer)

    func testSeededMutationsNeverCrashAndAlwaysThrowFileFormatErrors() {
        let summary = runMutations(format: .npy, count: 20_000, seed: 20_251_121)
        XCTAssertEqual(summary.executions, 20_000)
        XCTAssertEqual(summary.violations.map(\.description), [])
        // The mutations reach every validation stage, and some mutants still parse.
        XCTAssertGreaterThan(summary.parsed, 100)
        for kind in ["badHeader", "headerLengthPastEnd", "dataSizeMismatch", "unsupportedDType", "badMagic", "fortranOrder"] {
            XCTAssertGreaterThan(summary.rejections[kind] ?? 0, 0, "no mutant was rejected with \(kind)")
        }
    }
}
