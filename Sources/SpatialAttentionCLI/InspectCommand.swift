import ArgumentParser
import SpatialAttention

/// `spatial-attention inspect`: what a `.npy` or safetensors file holds.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "List the arrays of a .npy or .safetensors file: names, shapes, element counts, value ranges.",
        discussion: "The file is fully validated (docs/io.md); a malformed file is an error naming the problem."
    )

    @Argument(help: "A .npy or .safetensors file (chosen by the extension).")
    var file: String

    func run() throws {
        try reportingErrors {
            if file.hasSuffix(".safetensors") {
                let contents = try Safetensors(contentsOf: file)
                let total = contents.tensors.values.reduce(0) { $0 + $1.values.count }
                print("\(file): \(contents.tensors.count) tensors, \(total) values")
                for (key, value) in contents.metadata.sorted(by: { $0.key < $1.key }) { print("  metadata \(key) = \(value)") }
                let width = contents.names.map(\.count).max() ?? 0
                for name in contents.names { print("  " + row(name.padding(toLength: width), contents.tensors[name]!)) }
            } else {
                print(row(file, try NPY.read(file)))
            }
        }
    }

    private func row(_ label: String, _ array: NDArray) -> String {
        let finite = array.values.filter(\.isFinite)
        let range = finite.isEmpty ? "" : "  [\(finite.min()!), \(finite.max()!)]"
        let nonFinite = array.values.count - finite.count
        return "\(label)  \(array.shape)  \(array.values.count) values\(range)" + (nonFinite > 0 ? "  \(nonFinite) non-finite" : "")
    }
}

extension String {
    /// The string padded with spaces on the right to `length` characters.
    func padding(toLength length: Int) -> String { self + String(repeating: " ", count: max(0, length - count)) }
}
