import Foundation
import SpatialAttention
import XCTest

/// Asserts that `body` throws exactly `FileFormatError(path: path, problem)`.
func assertThrowsFileFormatError<T>(
    _ body: @autoclosure () throws -> T, path: String = "<memory>", _ problem: FileFormatError.Problem,
    file: StaticString = #filePath, line: UInt = #line
) {
    do {
        _ = try body()
        XCTFail("expected \(FileFormatError(path: path, problem)), got a value", file: file, line: line)
    } catch let error as FileFormatError {
        XCTAssertEqual(error, FileFormatError(path: path, problem), file: file, line: line)
    } catch {
        XCTFail("expected a FileFormatError, got \(error)", file: file, line: line)
    }
}

/// A fresh empty folder under the system's temporary directory, removed by the returned closure.
func makeScratchFolder(_ name: String) -> (path: String, remove: () -> Void) {
    let path = NSTemporaryDirectory() + "spatial-io-\(name)-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return (path, { try? FileManager.default.removeItem(atPath: path) })
}

/// The names of the entries in `folder`, sorted.
func folderContents(_ folder: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
}

/// Little-endian bytes of `value`.
func littleEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    (0..<(T.bitWidth / 8)).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
}
