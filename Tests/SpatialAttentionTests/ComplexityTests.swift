import SpatialAttention
import SpatialAttentionReference
import TestSupport
import XCTest

/// MACs written out per layer from torchvision's architecture (independently of the model code).
private enum ClosedFormMACs {
    /// conv MACs + one BN MAC per output element (+ one ReLU MAC per output element).
    static func convBN(_ c: Int, _ k: Int, kernel: Int, stride: Int, input h: Int, groups: Int = 1,
                       relu: Bool) -> (macs: Int, size: Int) {
        let out = (h + 2 * (kernel / 2) - kernel) / stride + 1
        let elements = k * out * out
        return (elements * (c / groups) * kernel * kernel + elements + (relu ? elements : 0), out)
    }

    /// ResNet / ResNeXt on 224×224, with SE (`2·C²/16` + hidden ReLU) or ECA (`C·k`) per block.
    static func resnet(blocks: [Int], groups: Int = 1, widthPerGroup: Int = 64, se: Bool = false, eca: Bool = false) -> Int {
        var (total, h) = convBN(3, 64, kernel: 7, stride: 2, input: 224, relu: true)
        h = (h + 2 - 3) / 2 + 1  // max pool 3/2/1: no MACs
        var input = 64
        for (s, count) in blocks.enumerated() {
            let width = (64 << s) * widthPerGroup / 64 * groups, output = 4 * (64 << s)
            for i in 0..<count {
                let stride = s > 0 && i == 0 ? 2 : 1
                let a = convBN(input, width, kernel: 1, stride: 1, input: h, relu: true)
                let b = convBN(width, width, kernel: 3, stride: stride, input: a.size, groups: groups, relu: true)
                let c = convBN(width, output, kernel: 1, stride: 1, input: b.size, relu: false)
                total += a.macs + b.macs + c.macs
                if i == 0 { total += convBN(input, output, kernel: 1, stride: stride, input: h, relu: false).macs }
                total += output * c.size * c.size  // the ReLU after the addition
                // SE and ECA: their own MACs plus one per element for the channel scaling.
                if se { total += 2 * output * (output / 16) + output / 16 + output * c.size * c.size }
                if eca { total += output * [3, 5, 5, 7][s] + output * c.size * c.size }
                input = output
                h = c.size
            }
        }
        return total + 2048 * 1000
    }
}

final class ComplexityTests: XCTestCase {
    private func macs(_ name: String) throws -> Int {
        try ModelName(name).complexity(for: Shape(1, 3, 224, 224)).multiplyAccumulates
    }

    func testArchitectureTableEqualsTheBuiltModelsTable() throws {
        for name in ["resnet50+spsa+se", "mobilenetv2+spsa", "shufflenetv2"] {
            let input = Shape(2, 3, 224, 224)
            XCTAssertEqual(try ModelName(name).layerTable(for: input), try Models.make(name: name, seed: 3).layerTable(for: input))
        }
    }

    func testResNetMACsMatchClosedFormsAndThePapersWithinOnePercent() throws {
        // (name, closed form, the papers' G column: 001 Table 1 / 002 Table 4).
        let cases: [(String, Int, Double)] = [
            ("resnet50", ClosedFormMACs.resnet(blocks: [3, 4, 6, 3]), 4.11),
            ("resnet50+se", ClosedFormMACs.resnet(blocks: [3, 4, 6, 3], se: true), 4.12),
            ("resnet50+eca", ClosedFormMACs.resnet(blocks: [3, 4, 6, 3], eca: true), 4.12),
            ("resnet50+spsa", ClosedFormMACs.resnet(blocks: [3, 4, 6, 3]), 4.11),
            ("resnet50+spsa+se", ClosedFormMACs.resnet(blocks: [3, 4, 6, 3], se: true), 4.12),
            ("resnet101", ClosedFormMACs.resnet(blocks: [3, 4, 23, 3]), 7.83),
            ("resnet101+se", ClosedFormMACs.resnet(blocks: [3, 4, 23, 3], se: true), 7.85),
            ("resnet101+eca", ClosedFormMACs.resnet(blocks: [3, 4, 23, 3], eca: true), 7.84),
            ("resnet152", ClosedFormMACs.resnet(blocks: [3, 8, 36, 3]), 11.56),
            ("resnet152+se", ClosedFormMACs.resnet(blocks: [3, 8, 36, 3], se: true), 11.58),
            ("resnet152+eca", ClosedFormMACs.resnet(blocks: [3, 8, 36, 3], eca: true), 11.57),
        ]
        for (name, closedForm, paper) in cases {
            let measured = try macs(name)
            XCTAssertEqual(measured, closedForm, name)
            XCTAssertEqual(Double(measured) / 1e9, paper, accuracy: paper * 0.01, name)
            // Printed to two decimals as the papers do, every column matches exactly.
            XCTAssertEqual((Double(measured) / 1e7).rounded() / 100, paper, name)
        }
        XCTAssertEqual(try macs("resnet50"), 4_109_906_944)
    }

    func testConvolutionAndLinearMACsMatchTorchvisionFigures() throws {
        // torchvision's published "GFLOPS" are conv + fc MACs: 4.09, 4.23, 0.30, 0.14.
        for (name, published) in [("resnet50", 4.09), ("resnext50", 4.23), ("mobilenetv2", 0.30), ("shufflenetv2", 0.14)] {
            let table = try ModelName(name).layerTable(for: Shape(1, 3, 224, 224))
            let weighted = table.filter { $0.kind.hasPrefix("Conv2d") || $0.kind == "Linear" }
            let giga = Double(weighted.reduce(0) { $0 + $1.multiplyAccumulates }) / 1e9
            XCTAssertEqual(giga, published, accuracy: 0.006, name)
        }
    }

    func testMACsScaleWithBatchAndSPSAAddsNothing() throws {
        let model = try Models.make(name: "resnet50+spsa", seed: 0)
        let one = try model.multiplyAccumulates(for: Shape(1, 3, 224, 224))
        XCTAssertEqual(try model.multiplyAccumulates(for: Shape(4, 3, 224, 224)), 4 * one)
        XCTAssertEqual(Complexity(records: try model.layerTable(for: Shape(1, 3, 224, 224))),
                       try Complexity(of: model, input: Shape(1, 3, 224, 224)))
    }

    func testAbbreviationsPrintLikeThePapers() {
        XCTAssertEqual(Complexity.abbreviated(25_557_032), "25.56M")
        XCTAssertEqual(Complexity.abbreviated(2_514_944), "2.51M")
        XCTAssertEqual(Complexity.abbreviated(80), "80")
        XCTAssertEqual(Complexity.abbreviated(4_109_906_944), "4.11G")
        XCTAssertEqual(Complexity.abbreviated(11_557_229_568), "11.56G")
        XCTAssertEqual(Complexity(parameters: 3_504_872, multiplyAccumulates: 300_774_272).description,
                       "3.50M parameters, 300.77M MACs")
    }
}
