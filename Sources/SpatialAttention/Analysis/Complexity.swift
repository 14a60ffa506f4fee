/// Parameters and multiply-accumulates of a layer or model, in the convention of the papers' tables.
///
/// - Parameters: torchvision's count: convolution and fully connected weights and biases, BN weight
///   and bias (running statistics are buffers), SE and ECA weights. SPSA has none.
/// - MACs: every convolution's `K·(C/G)·kh·kw·H'·W'` and every fully connected layer's `in·out`,
///   plus one per output element of each BN and each ReLU/ReLU6 (whether or not the BN is folded
///   and the ReLU fused); SE and ECA count their own fully connected / 1-D convolution MACs, SE's
///   hidden ReLU, and one per element for their channel scaling. Pooling, additions, sigmoids and
///   SPSA count zero.
///
/// This convention gives ResNet-50 the papers' 4.11 G (4,109,906,944 on 224×224) and reproduces
/// every FLOPs entry of 001 Table 1 / 002 Table 4 to the two decimals printed there;
/// docs/complexity.md compares each column.
public struct Complexity: Sendable, Equatable, CustomStringConvertible {
    /// Learned parameters.
    public let parameters: Int
    /// Multiply-accumulates for the input the value was computed for.
    public let multiplyAccumulates: Int

    public init(parameters: Int, multiplyAccumulates: Int) {
        self.parameters = parameters
        self.multiplyAccumulates = multiplyAccumulates
    }

    /// The parameters and MACs of `layer` on `input`.
    ///
    /// - Throws: ``ShapeError`` when `input` does not fit the layer.
    public init(of layer: some Layer, input: Shape) throws {
        self.init(parameters: layer.parameterCount, multiplyAccumulates: try layer.multiplyAccumulates(for: input))
    }

    /// The totals of a model's ``LayerRecord``s.
    public init(records: [LayerRecord]) {
        self.init(parameters: records.reduce(0) { $0 + $1.parameterCount },
                  multiplyAccumulates: records.reduce(0) { $0 + $1.multiplyAccumulates })
    }

    /// MACs in units of 10⁹, as the papers' "FLOPs" columns print them.
    public var gigaMultiplyAccumulates: Double { Double(multiplyAccumulates) / 1e9 }

    public var description: String {
        "\(Complexity.abbreviated(parameters)) parameters, \(Complexity.abbreviated(multiplyAccumulates)) MACs"
    }

    /// A count as the papers print it: `80`, `2.51M`, `25.56M`, `4.11G` (two decimals, 10³ steps
    /// from M: counts below 10⁶ print whole).
    public static func abbreviated(_ count: Int) -> String {
        let magnitude = abs(Double(count))
        func twoDecimals(_ v: Double) -> String {
            let hundredths = Int((v * 100).rounded())
            let fraction = abs(hundredths % 100)
            return "\(count < 0 ? "-" : "")\(abs(hundredths) / 100).\(fraction < 10 ? "0" : "")\(fraction)"
        }
        if magnitude >= 1e9 { return twoDecimals(magnitude / 1e9) + "G" }
        if magnitude >= 1e6 { return twoDecimals(magnitude / 1e6) + "M" }
        return String(count)
    }
}
