import ArgumentParser
import SpatialAttention

/// `spatial-attention info`: a model's layer table with parameters and MACs.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print a registry model's layers with output shapes, parameters and MACs (papers' convention).",
        discussion: "`info --list` prints the registry's model names."
    )

    @Option(help: "Model name, e.g. resnet50+spsa.")
    var model: String?

    @Option(help: "Input height and width.")
    var size: Int = 224

    @Option(help: "Images in the batch (MACs scale with it).")
    var batch: Int = 1

    @Flag(help: "List the model names and exit.")
    var list = false

    func validate() throws {
        guard list || model != nil else { throw ValidationError("give --model NAME or --list") }
    }

    func run() throws {
        if list {
            print(Models.names.joined(separator: "\n"))
            return
        }
        try reportingErrors {
            let network = Model(name: try ModelName(model!), seed: 0)
            let input = Shape(batch, 3, size, size)
            let rows = try network.layerTable(for: input)
            let table = [["layer", "kind", "output", "params", "MACs"]] + rows.map {
                [$0.name, $0.kind, "\($0.outputShape)", grouped($0.parameterCount), grouped($0.multiplyAccumulates)]
            }
            let widths = (0..<5).map { column in table.map { $0[column].count }.max() ?? 0 }
            for (i, row) in table.enumerated() {
                let cells = row.enumerated().map { column, text in
                    column >= 3 ? String(repeating: " ", count: widths[column] - text.count) + text
                                : text.padding(toLength: widths[column])
                }
                print(cells.joined(separator: "  "))
                if i == 0 { print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
            }
            let macs = try network.multiplyAccumulates(for: input)
            print("\(network.name) on \(input): \(grouped(network.parameterCount)) parameters, " +
                  "\(grouped(macs)) MACs (\((Double(macs) / 1e7).rounded() / 100) G)")
        }
    }
}

/// `25557032` as `25,557,032`.
func grouped(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var out = ""
    for (i, digit) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(digit)
    }
    return (value < 0 ? "-" : "") + out
}
