import SpatialAttention
import SpatialAttentionReference
import TestSupport
import XCTest

/// Parameter counts written out per block from the architectures' definitions (torchvision), not
/// read from the code under test.
enum ClosedForm {
    /// conv weight + BN weight and bias.
    static func convBN(_ c: Int, _ k: Int, kernel: Int, groups: Int = 1) -> Int { k * (c / groups) * kernel * kernel + 2 * k }

    static func resnet(blocks: [Int], groups: Int = 1, widthPerGroup: Int = 64, se: Bool = false, eca: Bool = false) -> Int {
        var total = convBN(3, 64, kernel: 7)
        var input = 64
        for (s, count) in blocks.enumerated() {
            let planes = 64 << s
            let width = planes * widthPerGroup / 64 * groups
            let output = planes * 4
            for i in 0..<count {
                total += convBN(input, width, kernel: 1) + convBN(width, width, kernel: 3, groups: groups) +
                    convBN(width, output, kernel: 1)
                if i == 0 { total += convBN(input, output, kernel: 1) }
                if se { total += 2 * output * (output / 16) }
                if eca { total += [3, 5, 5, 7][s] }
                input = output
            }
        }
        return total + 2048 * 1000 + 1000
    }

    static func mobileNetV2() -> Int {
        var total = convBN(3, 32, kernel: 3)
        var input = 32
        for (t, c, n) in [(1, 16, 1), (6, 24, 2), (6, 32, 3), (6, 64, 4), (6, 96, 3), (6, 160, 3), (6, 320, 1)] {
            for _ in 0..<n {
                let hidden = input * t
                if t != 1 { total += convBN(input, hidden, kernel: 1) }
                total += convBN(hidden, hidden, kernel: 3, groups: hidden) + convBN(hidden, c, kernel: 1)
                input = c
            }
        }
        return total + convBN(320, 1280, kernel: 1) + 1280 * 1000 + 1000
    }

    static func shuffleNetV2() -> Int {
        var total = convBN(3, 24, kernel: 3)
        var input = 24
        for (repeats, output) in [(4, 116), (8, 232), (4, 464)] {
            let half = output / 2
            for i in 0..<repeats {
                if i == 0 {
                    total += convBN(input, input, kernel: 3, groups: input) + convBN(input, half, kernel: 1)
                    total += convBN(input, half, kernel: 1)
                } else {
                    total += convBN(half, half, kernel: 1)
                }
                total += convBN(half, half, kernel: 3, groups: half) + convBN(half, half, kernel: 1)
                input = output
            }
        }
        return total + convBN(464, 1024, kernel: 1) + 1024 * 1000 + 1000
    }

    static func parameters(_ name: ModelName) -> Int {
        let se = name.channelAttention == .se, eca = name.channelAttention == .eca
        switch name.backbone {
        case .resnet50: return resnet(blocks: [3, 4, 6, 3], se: se, eca: eca)
        case .resnet101: return resnet(blocks: [3, 4, 23, 3], se: se, eca: eca)
        case .resnet152: return resnet(blocks: [3, 8, 36, 3], se: se, eca: eca)
        case .resnext50: return resnet(blocks: [3, 4, 6, 3], groups: 32, widthPerGroup: 4)
        case .mobilenetv2: return mobileNetV2()
        case .shufflenetv2: return shuffleNetV2()
        }
    }
}

/// Network end to end against naive compositions in Double: Float32 rounding through ~50 layers of
/// O(1) activations, BN folded (one extra rounding per weight), SPSA amplifying by at most α/(1−σ).
/// Measured (native build) on the test networks, whose logits have a standard deviation of 0.04–0.46:
/// worst absolute error 6.6e-7 (ResNet-50+SPSA, 64×64), 4.8e-7 (ResNet-50+SE), 3.6e-7 (ResNeXt-50),
/// 5.3e-7 (SASA-ResNet-26), 7e-8 (MobileNetV2), 3e-8 (ShuffleNetV2). 1e-4 absolute + 1e-4 relative
/// leaves a margin of ~150×; by estimate it still fails a subtly wrong layer (a BN ε of 1e-3 instead
/// of 1e-5 rescales a BN by ~5e-4, ~2e-4 on logits of spread 0.4). The previous 2e-3 was ~3,000× the
/// error and 0.5–5% of the logits' spread.
extension Tolerance {
    static let network = Tolerance(absolute: 1e-4, relative: 1e-4)
}

final class ResNetTests: XCTestCase {
    // Scratch buffers and uninitialised outputs start as NaN: an element a kernel fails to write shows up.
    override func setUp() { Scratch.poisonsBuffers = true }
    override func tearDown() { Scratch.poisonsBuffers = false }

    func testRegistryHasExactlyTheIssueNames() throws {
        var expected: [String] = []
        for depth in ["resnet50", "resnet101", "resnet152"] {
            expected += [depth, "\(depth)+se", "\(depth)+eca", "\(depth)+spsa", "\(depth)+spsa+se", "\(depth)+spsa+eca"]
        }
        for other in ["resnext50", "mobilenetv2", "shufflenetv2"] { expected += [other, "\(other)+spsa"] }
        XCTAssertEqual(Set(Models.names), Set(expected))
        XCTAssertEqual(Models.names.count, expected.count)
        XCTAssertThrowsError(try Models.make(name: "resnet34", seed: 0)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("resnet34"))
            for name in expected { XCTAssertTrue(text.contains(name), "error should list \(name)") }
        }
        XCTAssertThrowsError(try ModelName(backbone: .mobilenetv2, channelAttention: .se))
    }

    /// Every registry model, built once: exact parameter count, logits shape, finite output.
    func testEveryModelParameterCountAndOutputShape() throws {
        // torchvision's published counts for the plain backbones.
        let published: [ModelName.Backbone: Int] = [
            .resnet50: 25_557_032, .resnet101: 44_549_160, .resnet152: 60_192_808,
            .resnext50: 25_028_904, .mobilenetv2: 3_504_872, .shufflenetv2: 2_278_604,
        ]
        let x = seededTensor(Shape(1, 3, 64, 64), seed: 3)
        for name in ModelName.allCases {
            let model = Model(name: name, seed: 1)
            XCTAssertEqual(model.parameterCount, ClosedForm.parameters(name), "\(name)")
            if name == name.plain { XCTAssertEqual(model.parameterCount, published[name.backbone], "\(name)") }
            // The named store holds the same parameters plus two BN buffers per BN.
            let buffers = model.parameters.filter { $0.key.hasSuffix("running_mean") || $0.key.hasSuffix("running_var") }
            let stored = model.parameters.values.reduce(0) { $0 + $1.values.count } - buffers.values.reduce(0) { $0 + $1.values.count }
            XCTAssertEqual(stored, model.parameterCount, "\(name)")
            XCTAssertEqual(try model.outputShape(for: Shape(8, 3, 224, 224)), Shape(8, 1000, 1, 1))
            let y = try model(x, threads: 2)
            XCTAssertEqual(y.shape, Shape(1, 1000, 1, 1), "\(name)")
            XCTAssertTrue(y.scalars.allSatisfy(\.isFinite), "\(name)")
        }
        // The attention modules' additions (001 Table 1): SE 2.51M, ECA 80/165/250, SPSA 0.
        let r50 = ClosedForm.parameters(try ModelName("resnet50"))
        XCTAssertEqual(ClosedForm.parameters(try ModelName("resnet50+se")) - r50, 2_514_944)
        XCTAssertEqual(ClosedForm.parameters(try ModelName("resnet50+eca")) - r50, 80)
        XCTAssertEqual(ClosedForm.parameters(try ModelName("resnet50+spsa")) - r50, 0)
        XCTAssertEqual(ClosedForm.parameters(try ModelName("resnet101+eca")) - ClosedForm.parameters(try ModelName("resnet101")), 165)
        XCTAssertEqual(ClosedForm.parameters(try ModelName("resnet152+eca")) - ClosedForm.parameters(try ModelName("resnet152")), 250)
    }

    func testResNet50AndSPSAMatchNaiveComposition() throws {
        let x = seededTensor(Shape(1, 3, 64, 64), seed: 4)
        for name in ["resnet50", "resnet50+spsa"] {
            let model = try Models.make(name: name, seed: 5)
            let expected = try Naive.resnet(ReferenceTensor(x), parameters: model.parameters, blocks: [3, 4, 6, 3],
                                            spsa: name.contains("spsa"))
            XCTAssertTrue(expected.values.allSatisfy(\.isFinite), "\(name): the naive logits overflowed")
            assertClose(try model(x, threads: 2), expected, tolerance: .network, name)
        }
    }

    func testChannelAttentionVariantsMatchNaiveComposition() throws {
        // The naive convolutions cost per weight as much as per pixel here: one batch of two, one single image.
        for (name, batch) in [("resnet50+se", 2), ("resnet50+spsa+eca", 1)] {
            let x = seededTensor(Shape(batch, 3, 32, 32), seed: 6)
            let model = try Models.make(name: name, seed: 7)
            let expected = try Naive.resnet(ReferenceTensor(x), parameters: model.parameters, blocks: [3, 4, 6, 3],
                                            spsa: name.contains("spsa"), channelAttention: model.name.channelAttention?.rawValue)
            XCTAssertTrue(expected.values.allSatisfy(\.isFinite), "\(name): the naive logits overflowed")
            assertClose(try model(x, threads: 1), expected, tolerance: .network, name)
        }
    }

    func testOtherBackbonesMatchNaiveComposition() throws {
        let x = seededTensor(Shape(1, 3, 64, 64), seed: 8)
        for name in ["resnext50+spsa", "mobilenetv2", "mobilenetv2+spsa", "shufflenetv2", "shufflenetv2+spsa"] {
            let model = try Models.make(name: name, seed: 9)
            let reference = ReferenceTensor(x)
            let spsa = model.name.spsa
            let expected: ReferenceTensor
            switch model.name.backbone {
            case .resnext50: expected = try Naive.resnet(reference, parameters: model.parameters, blocks: [3, 4, 6, 3], groups: 32, spsa: spsa)
            case .mobilenetv2: expected = try Naive.mobileNetV2(reference, parameters: model.parameters, spsa: spsa)
            default: expected = try Naive.shuffleNetV2(reference, parameters: model.parameters, spsa: spsa)
            }
            XCTAssertTrue(expected.values.allSatisfy(\.isFinite), "\(name): the naive logits overflowed")
            assertClose(try model(x, threads: 2), expected, tolerance: .network, name)
        }
    }

    func testBatchAndThreadsDoNotChangeResults() throws {
        let model = try Models.make(name: "resnet50+spsa", seed: 10)
        let x = seededTensor(Shape(3, 3, 64, 64), layout: .nhwc, seed: 11)
        let batched = try model(x, threads: 2)
        XCTAssertEqual(batched.layout, .nhwc)
        let single = try model(x, threads: 1)
        assertClose(batched, single, tolerance: .network)
        // Image 1 alone (one GEMM per image) against the batched GEMMs.
        let one = try Tensor(shape: Shape(1, 3, 64, 64)) { _, c, h, w in x[1, c, h, w] }
        let alone = try model(one, threads: 1)
        for k in 0..<1000 { XCTAssertEqual(alone[0, k, 0, 0], batched[1, k, 0, 0], accuracy: 1e-3) }
    }

    func testNamedParametersRoundTripAndReportEveryProblem() throws {
        let model = try Models.make(name: "resnet50+spsa+se", seed: 12)
        let x = seededTensor(Shape(1, 3, 32, 32), seed: 13)
        var named = model.parameters
        named["layer1.0.bn1.num_batches_tracked"] = try ParameterTensor(shape: [], values: [0])
        let rebuilt = try Model(name: model.name, parameters: named)
        XCTAssertEqual(try rebuilt(x).scalars, try model(x).scalars)
        XCTAssertEqual(rebuilt.parameterNames, model.parameterNames)
        XCTAssertEqual(model.parameterNames.first, "conv1.weight")
        XCTAssertEqual(model.parameterNames.last, "fc.bias")
        XCTAssertEqual(model.parameters["layer1.0.downsample.0.weight"]?.shape, [256, 64, 1, 1])
        XCTAssertEqual(model.parameters["layer1.0.se.fc1.weight"]?.shape, [16, 256])

        named.removeValue(forKey: "layer2.1.bn2.running_var")
        named.removeValue(forKey: "fc.bias")
        named["layer3.0.conv2.weight"] = try ParameterTensor(shape: [256, 256, 1, 3], values: [Float](repeating: 0, count: 256 * 256 * 3))
        named["extra.weight"] = try ParameterTensor(shape: [1], values: [1])
        XCTAssertThrowsError(try Model(name: model.name, parameters: named)) { error in
            guard let error = error as? ParameterError else { return XCTFail("expected ParameterError, got \(error)") }
            XCTAssertEqual(error.missing, ["layer2.1.bn2.running_var", "fc.bias"])
            XCTAssertEqual(error.unexpected, ["extra.weight"])
            XCTAssertEqual(error.misshaped.count, 1)
            XCTAssertTrue(error.description.contains("layer3.0.conv2.weight: expected [256, 256, 3, 3], got [256, 256, 1, 3]"))
        }
        named = model.parameters
        named["extra.weight"] = try ParameterTensor(shape: [1], values: [1])
        XCTAssertNoThrow(try Model(name: model.name, parameters: named, strict: false))
        XCTAssertThrowsError(try Model(name: model.name, parameters: named, strict: true))
    }

    func testLayerTableNamesShapesAndTotals() throws {
        let model = try Models.make(name: "resnet50+spsa+eca", seed: 14)
        let input = Shape(1, 3, 224, 224)
        let table = try model.layerTable(for: input)
        XCTAssertEqual(table.reduce(0) { $0 + $1.parameterCount }, model.parameterCount)
        XCTAssertEqual(table.reduce(0) { $0 + $1.multiplyAccumulates }, try model.multiplyAccumulates(for: input))
        let byName = Dictionary(table.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        XCTAssertEqual(byName["conv1"]?.outputShape, Shape(1, 64, 112, 112))
        XCTAssertEqual(byName["maxpool"]?.outputShape, Shape(1, 64, 56, 56))
        XCTAssertEqual(byName["layer2.0.conv2"]?.outputShape, Shape(1, 128, 28, 28))
        XCTAssertEqual(byName["layer2.0.spsa"]?.outputShape, Shape(1, 128, 28, 28))
        XCTAssertEqual(byName["layer4.2.eca"]?.parameterCount, 7)
        XCTAssertEqual(byName["fc"]?.outputShape, Shape(1, 1000, 1, 1))
        XCTAssertEqual(table.filter { $0.name.hasSuffix(".spsa") }.count, 16)
        XCTAssertEqual(byName["layer1.0.conv2"]?.multiplyAccumulates, 64 * 64 * 9 * 56 * 56)
        assertThrowsShapeError(try model.layerTable(for: Shape(1, 4, 224, 224)), mentioning: ["3", "[1, 4, 224, 224]"])
    }
}
