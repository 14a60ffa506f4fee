import Foundation
import SpatialAttention
import SpatialAttentionReference
import TestSupport
import XCTest

/// End-to-end tests of the `spatial-attention` executable: `swift test` builds every product, and
/// the executable sits next to the test bundle in the build products folder.
final class CLITests: XCTestCase {
    /// The built `spatial-attention`, found next to the test bundle (Linux: the `.xctest` executable;
    /// macOS: the `.xctest` bundle) in the build products folder.
    private func executable(file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        var candidates: [URL] = []
        for start in [Bundle.main.bundleURL, URL(fileURLWithPath: CommandLine.arguments[0])] + Bundle.allBundles.map(\.bundleURL) {
            var folder = start.deletingLastPathComponent()
            for _ in 0..<3 {
                candidates.append(folder.appendingPathComponent("spatial-attention"))
                folder = folder.deletingLastPathComponent()
            }
        }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            XCTFail("spatial-attention not found next to the test bundle (looked in \(candidates.map(\.path)))", file: file, line: line)
            throw CocoaError(.fileNoSuchFile)
        }
        return found
    }

    /// Runs the CLI; returns its exit status and stderr.
    private func run(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let result = try runCLI(arguments)
        return (result.status, result.stderr)
    }

    /// Runs the CLI; returns its exit status, stdout and stderr (read to the end before waiting, from
    /// temporary files, so that neither pipe can fill and block the child).
    func runCLI(_ arguments: [String], environment: [String: String] = [:]) throws
        -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = try executable()
        process.arguments = arguments
        // The tests read stderr from its first line: no restart note unless a test asks for one.
        let keep = ["SPATIAL_ATTENTION_BLAS_CORE": "keep"]
        process.environment = ProcessInfo.processInfo.environment.merging(keep.merging(environment) { $1 }) { $1 }
        let capture = NSTemporaryDirectory() + "spatial-cli-\(UUID().uuidString)"
        for path in [capture + ".out", capture + ".err"] {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
            }
        }
        defer {
            try? FileManager.default.removeItem(atPath: capture + ".out")
            try? FileManager.default.removeItem(atPath: capture + ".err")
        }
        process.standardOutput = FileHandle(forWritingAtPath: capture + ".out")
        process.standardError = FileHandle(forWritingAtPath: capture + ".err")
        try process.run()
        process.waitUntilExit()
        let out = FileManager.default.contents(atPath: capture + ".out") ?? Data()
        let err = FileManager.default.contents(atPath: capture + ".err") ?? Data()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    /// The CLI restarts itself with OpenBLAS's AVX-512 kernels when the CPU has AVX-512 and OpenBLAS runs
    /// its AVX2 ones (here forced by `OPENBLAS_CORETYPE=Haswell`), says so on stderr, and does the same work;
    /// `SPATIAL_ATTENTION_BLAS_CORE=keep` keeps OpenBLAS's pick (any other value, or none, lets it restart).
    func testRestartsWithAVX512KernelsWhereOpenBLASLeavesThemUnused() throws {
        let note = "running again with OPENBLAS_CORETYPE=SkylakeX"
        let forced = try runCLI(["info", "--list"],
                                environment: ["OPENBLAS_CORETYPE": "Haswell", "SPATIAL_ATTENTION_BLAS_CORE": "auto"])
        let kept = try runCLI(["info", "--list"],
                              environment: ["OPENBLAS_CORETYPE": "Haswell", "SPATIAL_ATTENTION_BLAS_CORE": "keep"])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        XCTAssertEqual(kept.status, 0, kept.stderr)
        XCTAssertEqual(forced.stdout, kept.stdout)
        XCTAssertTrue(forced.stdout.contains("resnet50"), forced.stdout)
        XCTAssertEqual(forced.stderr.contains(note), BLAS.cpuSupportsAVX512, forced.stderr)
        XCTAssertEqual(forced.stderr.components(separatedBy: note).count, BLAS.cpuSupportsAVX512 ? 2 : 1,
                       "one restart at most: \(forced.stderr)")
        XCTAssertFalse(kept.stderr.contains(note), kept.stderr)
    }

    func testSPSAMatchesNaiveInBothLayoutsAndWithEveryOption() throws {
        let folder = makeScratchFolder("cli-spsa")
        defer { folder.remove() }
        let (input, output) = (folder.path + "/x.npy", folder.path + "/y.npy")
        let shape = Shape(2, 6, 5, 3)
        let options: [(arguments: [String], alpha: Float, cph: Int, reverse: Bool, similarity: SPSA.Similarity)] = [
            (["--channels-per-head", "3"], 2, 3, true, .correlation),
            (["--heads", "3", "--alpha", "2.5", "--no-reverse"], 2.5, 2, false, .correlation),
            (["--channels-per-head", "6", "--alpha", "1", "--similarity", "cosine"], 1, 6, true, .cosine),
            (["--heads", "6", "--alpha", "0"], 0, 1, true, .correlation),
        ]
        try withEvery("layout", in: Layout.allCases) { layout in
            let x = seededTensor(shape, layout: layout, seed: 41, offset: 3)
            try NPY.write(x, to: input)
            for option in options {
                let result = try run(["spsa", "--input", input, "--output", output, "--layout", layout.rawValue] + option.arguments)
                XCTAssertEqual(result.status, 0, result.stderr)
                let y = try NPY.readTensor(output, layout: layout)
                let expected = Naive.spsa(x, alpha: option.alpha, channelsPerHead: option.cph, reverse: option.reverse,
                                          similarity: option.similarity)
                assertClose(y, expected, tolerance: .spsa, "\(option.arguments)")
            }
        }
        XCTAssertEqual(folderContents(folder.path), ["x.npy", "y.npy"])
    }

    func testBadInputsExitNonZeroWithAMessageAndLeaveNoOutput() throws {
        let folder = makeScratchFolder("cli-errors")
        defer { folder.remove() }
        let good = try NDArray(shape: [1, 4, 2, 2], values: (0..<16).map(Float.init))
        let goodBytes = NPY.encode(good)
        func npy(_ header: String, data: [UInt8]) -> [UInt8] {
            [0x93] + Array("NUMPY".utf8) + [1, 0] + littleEndianBytes(UInt16(header.utf8.count)) + Array(header.utf8) + data
        }
        let data = [UInt8](repeating: 0, count: 64)
        let cases: [(name: String, bytes: [UInt8]?, arguments: [String], message: String)] = [
            ("int32", npy("{'descr': '<i4', 'fortran_order': False, 'shape': (1, 4, 2, 2), }\n", data: data), [], "unsupported dtype '<i4'"),
            ("big-endian", npy("{'descr': '>f4', 'fortran_order': False, 'shape': (1, 4, 2, 2), }\n", data: data), [], "big-endian"),
            ("fortran", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 4, 2, 2), }\n", data: data), [], "Fortran"),
            ("bad header", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4, 2, 2), ", data: data), [], "bad header"),
            ("truncated data", Array(goodBytes.dropLast(5)), [], "needs 64 bytes of data, the file has 59"),
            ("not npy", Array("hello".utf8), [], "bad magic"),
            ("3-D", NPY.encode(try NDArray(shape: [4, 2, 2], values: .init(repeating: 1, count: 16))), [], "must be a 4-D array"),
            ("C not a multiple", goodBytes, ["--channels-per-head", "3"], "C = 4 is not a multiple of channelsPerHead = 3"),
            ("zero heads", goodBytes, ["--heads", "0"], "heads must be ≥ 1"),
            ("missing file", nil, [], "no such file"),
        ]
        for item in cases {
            let input = folder.path + "/in.npy"
            try? FileManager.default.removeItem(atPath: input)
            if let bytes = item.bytes { XCTAssertTrue(FileManager.default.createFile(atPath: input, contents: Data(bytes))) }
            let output = folder.path + "/out.npy"
            let result = try run(["spsa", "--input", input, "--output", output] + item.arguments)
            XCTAssertEqual(result.status, 1, "\(item.name): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("spatial-attention: error: "), "\(item.name): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(item.message), "\(item.name): \(result.stderr)")
            if item.name != "C not a multiple" && item.name != "zero heads" {
                XCTAssertTrue(result.stderr.contains(input), "\(item.name) names the file: \(result.stderr)")
            }
            XCTAssertEqual(folderContents(folder.path).filter { $0.hasPrefix("out") }, [], "\(item.name) left an output behind")
        }
        XCTAssertEqual(folderContents(folder.path), [], "the last case removed the input; nothing else may remain")
    }

    func testFailureKeepsAnExistingOutputUntouchedAndUsageErrorsExit64() throws {
        let folder = makeScratchFolder("cli-keep")
        defer { folder.remove() }
        let (input, output) = (folder.path + "/x.npy", folder.path + "/y.npy")
        try NPY.write(NDArray(shape: [1, 4, 2, 2], values: .init(repeating: 1, count: 16)), to: input)
        let previous = try NDArray(shape: [1], values: [42])
        try NPY.write(previous, to: output)
        let failed = try run(["spsa", "--input", input, "--output", output, "--channels-per-head", "3"])
        XCTAssertEqual(failed.status, 1)
        XCTAssertEqual(try NPY.read(output), previous)
        let usage = try run(["spsa", "--input", input, "--output", output, "--heads", "2", "--channels-per-head", "2"])
        XCTAssertEqual(usage.status, 64, usage.stderr)
        XCTAssertEqual(folderContents(folder.path), ["x.npy", "y.npy"])
    }
}
