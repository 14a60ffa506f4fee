import ArgumentParser
import SpatialAttention

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `body`; on a library error (bad file, bad shape, bad option value) prints
/// `spatial-attention: error: <message>` on stderr and exits with status 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as FileFormatError {
        throw fail(error.description)
    } catch let error as ShapeError {
        throw fail(error.message)
    } catch let error as ArgumentError {
        throw fail(error.message)
    }
}

private func fail(_ message: String) -> ExitCode {
    printError("spatial-attention: error: \(message)")
    return ExitCode(1)
}

/// Writes `message` and a newline to stderr (progress and errors never go to stdout).
func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// The rank-4 array in the `.npy` file at `path` as an image batch stored in `layout`.
///
/// - Throws: ``FileFormatError`` for a bad file; ``ShapeError`` naming the file when the array is
///   not 4-D.
func readImageBatch(_ path: String, layout: Layout) throws -> Tensor {
    let array = try NPY.read(path)
    guard array.shape.count == 4 else {
        let order = layout == .nchw ? "[N, C, H, W]" : "[N, H, W, C]"
        throw ShapeError("\(path): the input must be a 4-D array \(order), got shape \(array.shape)")
    }
    return try Tensor(array, layout: layout)
}

extension Layout: ExpressibleByArgument {}
