import ArgumentParser
import SpatialAttention

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A problem with the command's inputs that no library error describes (a tensor missing from a
/// parameter file). The message names the file.
struct CommandError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) { self.description = description }
}

/// Runs `body`; on a library error (bad file, bad shape, bad option value, parameters that do not
/// fit a model) prints `spatial-attention: error: <message>` on stderr and exits with status 1.
/// ArgumentParser's own errors (usage: status 64) pass through.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as FileFormatError {
        throw fail(error.description)
    } catch let error as ShapeError {
        throw fail(error.message)
    } catch let error as ArgumentError {
        throw fail(error.message)
    } catch let error as ParameterError {
        throw fail(error.description)
    } catch let error as ModelNameError {
        throw fail(error.description)
    } catch let error as CommandError {
        throw fail(error.description)
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

/// Seconds since an arbitrary start, for progress messages.
func now() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
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

/// The input and output files of a command that maps one tensor to another, with their layout and
/// the thread count.
struct TensorFileOptions: ParsableArguments {
    @Option(help: "Input .npy file: a 4-D float32 (or float64, float16) array in C order.")
    var input: String

    @Option(help: "Output .npy file (float32, the input's layout).")
    var output: String

    @Option(help: "Memory order of the .npy arrays: nchw ([N, C, H, W]) or nhwc ([N, H, W, C]).")
    var layout: Layout = .nchw

    @Option(help: "Worker threads (default: SPATIAL_ATTENTION_THREADS or the processor count).")
    var threads: Int?

    /// Reads the input, applies `body`, writes the output atomically; a shape error names the input.
    func map(_ body: (Tensor) throws -> Tensor) throws {
        let x = try readImageBatch(input, layout: layout)
        let y: Tensor
        do {
            y = try body(x)
        } catch let error as ShapeError {
            throw ShapeError("\(input) (shape \(x.shape)): \(error.message)")
        }
        try NPY.write(y, to: output)
    }
}

/// Named tensors of a safetensors file, looked up under a prefix.
struct ParameterFile {
    let path: String
    let prefix: String
    let contents: Safetensors

    init(path: String, prefix: String) throws {
        self.path = path
        self.prefix = prefix
        contents = try Safetensors(contentsOf: path)
    }

    /// The tensor `prefix + name`, or nil when absent and `required` is false.
    ///
    /// - Throws: ``CommandError`` naming the file and the tensors it has when a required one is absent.
    func tensor(_ name: String, required: Bool = true) throws -> NDArray? {
        if let array = contents.tensors[prefix + name] { return array }
        guard required else { return nil }
        throw CommandError("\(path): no tensor '\(prefix + name)'; the file has: \(listing)")
    }

    /// The module a library loader (`init(parameters:prefix:…)`) builds from the file's tensors under
    /// the prefix.
    ///
    /// - Throws: what `load` throws; its ``ParameterError`` as a ``CommandError`` naming the file
    ///   and, when a tensor is missing, listing the tensors the file has.
    func module<Module>(_ load: (_ parameters: [String: ParameterTensor], _ prefix: String) throws -> Module) throws -> Module {
        do {
            return try load(contents.tensors.mapValues(ParameterTensor.init), prefix)
        } catch let error as ParameterError {
            throw CommandError("\(path): \(error)" + (error.missing.isEmpty ? "" : "\nthe file has: \(listing)"))
        }
    }

    /// The file's first tensor names (up to 12, then the count), for messages.
    private var listing: String {
        let names = contents.names
        let listed = names.prefix(12).joined(separator: ", ") + (names.count > 12 ? ", … (\(names.count))" : "")
        return listed.isEmpty ? "nothing" : listed
    }
}

extension Layout: ExpressibleByArgument {}
