import SpatialAttention

extension Naive {
    /// A ResNet / ResNeXt as a composition of naive kernels in Double, reading torchvision-named
    /// parameters (BN unfolded): the twin of ``Model`` for the ResNet backbones.
    ///
    /// `stem: conv1 → bn1 → ReLU → maxpool 3/2`; each bottleneck
    /// `ReLU(CA(bn3(conv3(ReLU(SPSA(bn2(conv2(ReLU(bn1(conv1 x))))))))) + shortcut)`, stride on conv2,
    /// shortcut `downsample.1(downsample.0(x))` when the parameters have one; `fc(GAP(x))`. Widths come
    /// from the weights' shapes; `groups` is the 3×3 convolutions' (32 for ResNeXt-50 32×4d).
    /// SPSA: α = 2, 64 channels per head; `channelAttention` "se" or "eca" reads `…se.fc1/fc2` or `…eca.conv`.
    public static func resnet(_ x: ReferenceTensor, parameters: [String: ParameterTensor], blocks: [Int],
                              groups: Int = 1, spsa: Bool = false,
                              channelAttention: String? = nil) throws -> ReferenceTensor {
        let p = NamedReader(parameters)
        var y = try p.convolutionBN(x, "conv1", "bn1", window: WindowGeometry(kernel: 7, stride: 2, padding: 3))
        y = activation(y, .relu)
        y = try maxPool(y, window: WindowGeometry(kernel: 3, stride: 2, padding: 1))
        for (s, count) in blocks.enumerated() {
            for i in 0..<count {
                let name = "layer\(s + 1).\(i)"
                let stride = s > 0 && i == 0 ? 2 : 1
                var t = activation(try p.convolutionBN(y, "\(name).conv1", "\(name).bn1", window: WindowGeometry(kernel: 1)), .relu)
                t = try p.convolutionBN(t, "\(name).conv2", "\(name).bn2",
                                        window: WindowGeometry(kernel: 3, stride: stride, padding: 1), groups: groups)
                if spsa { t = spsaDouble(t, channelsPerHead: 64) }
                t = activation(t, .relu)
                t = try p.convolutionBN(t, "\(name).conv3", "\(name).bn3", window: WindowGeometry(kernel: 1))
                switch channelAttention {
                case "se":
                    let fc1 = try p["\(name).se.fc1.weight"], fc2 = try p["\(name).se.fc2.weight"]
                    t = squeezeExcitation(t, try SqueezeExcitation(channels: fc1.shape[1], hiddenChannels: fc1.shape[0],
                                                                   reduceWeight: fc1.values, expandWeight: fc2.values))
                case "eca":
                    let w = try p["\(name).eca.conv.weight"]
                    t = efficientChannelAttention(t, try EfficientChannelAttention(channels: t.shape.channels, weight: w.values))
                default:
                    break
                }
                let shortcut = parameters["\(name).downsample.0.weight"] == nil ? y :
                    try p.convolutionBN(y, "\(name).downsample.0", "\(name).downsample.1", window: WindowGeometry(kernel: 1, stride: stride))
                y = activation(add(t, shortcut), .relu)
            }
        }
        return try p.classifier(globalAveragePool(y), "fc")
    }

    /// MobileNetV2 (torchvision names) as naive kernels in Double; SPSA after each depthwise BN
    /// with `heads` per sequence (1, 1, 2, 3, 4, 8, 15) when `spsa`.
    public static func mobileNetV2(_ x: ReferenceTensor, parameters: [String: ParameterTensor],
                                   spsa: Bool = false) throws -> ReferenceTensor {
        let p = NamedReader(parameters)
        let settings = [(1, 16, 1, 1, 1), (6, 24, 2, 2, 1), (6, 32, 3, 2, 2), (6, 64, 4, 2, 3),
                        (6, 96, 3, 1, 4), (6, 160, 3, 2, 8), (6, 320, 1, 1, 15)]
        var y = activation(try p.convolutionBN(x, "features.0.0", "features.0.1",
                                               window: WindowGeometry(kernel: 3, stride: 2, padding: 1)), .relu6)
        var index = 1
        for (t, c, n, s, heads) in settings {
            for i in 0..<n {
                let name = "features.\(index).conv"
                let stride = i == 0 ? s : 1
                var h = y
                var next = 0
                if t != 1 {
                    h = activation(try p.convolutionBN(h, "\(name).0.0", "\(name).0.1", window: WindowGeometry(kernel: 1)), .relu6)
                    next = 1
                }
                h = try p.convolutionBN(h, "\(name).\(next).0", "\(name).\(next).1",
                                        window: WindowGeometry(kernel: 3, stride: stride, padding: 1), groups: h.shape.channels)
                if spsa { h = spsaDouble(h, channelsPerHead: h.shape.channels / heads) }
                h = activation(h, .relu6)
                h = try p.convolutionBN(h, "\(name).\(next + 1)", "\(name).\(next + 2)", window: WindowGeometry(kernel: 1))
                y = stride == 1 && y.shape.channels == c ? add(h, y) : h
                index += 1
            }
        }
        y = activation(try p.convolutionBN(y, "features.\(index).0", "features.\(index).1", window: WindowGeometry(kernel: 1)), .relu6)
        return try p.classifier(globalAveragePool(y), "classifier.1")
    }

    /// ShuffleNetV2 1.0× (torchvision names) as naive kernels in Double; SPSA after the depthwise BN
    /// of each unit's `branch2` with 2, 4, 8 heads by stage when `spsa`.
    public static func shuffleNetV2(_ x: ReferenceTensor, parameters: [String: ParameterTensor],
                                    spsa: Bool = false) throws -> ReferenceTensor {
        let p = NamedReader(parameters)
        var y = activation(try p.convolutionBN(x, "conv1.0", "conv1.1", window: WindowGeometry(kernel: 3, stride: 2, padding: 1)), .relu)
        y = try maxPool(y, window: WindowGeometry(kernel: 3, stride: 2, padding: 1))
        for (s, count) in [4, 8, 4].enumerated() {
            for i in 0..<count {
                let name = "stage\(s + 2).\(i)"
                let stride = i == 0 ? 2 : 1
                let left: ReferenceTensor, right: ReferenceTensor
                var branch: ReferenceTensor
                if stride == 2 {
                    var b = try p.convolutionBN(y, "\(name).branch1.0", "\(name).branch1.1",
                                                window: WindowGeometry(kernel: 3, stride: 2, padding: 1), groups: y.shape.channels)
                    b = activation(try p.convolutionBN(b, "\(name).branch1.2", "\(name).branch1.3", window: WindowGeometry(kernel: 1)), .relu)
                    left = b
                    branch = y
                } else {
                    left = channels(y, 0..<(y.shape.channels / 2))
                    branch = channels(y, (y.shape.channels / 2)..<y.shape.channels)
                }
                branch = activation(try p.convolutionBN(branch, "\(name).branch2.0", "\(name).branch2.1", window: WindowGeometry(kernel: 1)), .relu)
                branch = try p.convolutionBN(branch, "\(name).branch2.3", "\(name).branch2.4",
                                             window: WindowGeometry(kernel: 3, stride: stride, padding: 1), groups: branch.shape.channels)
                if spsa { branch = spsaDouble(branch, channelsPerHead: branch.shape.channels / [2, 4, 8][s]) }
                right = activation(try p.convolutionBN(branch, "\(name).branch2.5", "\(name).branch2.6", window: WindowGeometry(kernel: 1)), .relu)
                // torch.cat then channel_shuffle(groups = 2): [N, 2, C/2, H, W] → transpose(1, 2) → flatten.
                let concatenated = concatenate(left, right)
                var shuffled = concatenated
                let half = concatenated.shape.channels / 2
                for n in 0..<shuffled.shape.batch {
                    for g in 0..<2 {
                        for c in 0..<half {
                            for h in 0..<shuffled.shape.height {
                                for w in 0..<shuffled.shape.width {
                                    shuffled[n, c * 2 + g, h, w] = concatenated[n, g * half + c, h, w]
                                }
                            }
                        }
                    }
                }
                y = shuffled
            }
        }
        y = activation(try p.convolutionBN(y, "conv5.0", "conv5.1", window: WindowGeometry(kernel: 1)), .relu)
        return try p.classifier(globalAveragePool(y), "fc")
    }

    /// SPSA on a Double tensor through the naive SPSA kernel (its input rounded to Float once).
    private static func spsaDouble(_ x: ReferenceTensor, channelsPerHead: Int) -> ReferenceTensor {
        let tensor = try! Tensor(shape: x.shape, scalars: x.values.map { Float($0) })
        return spsa(tensor, alpha: 2, channelsPerHead: channelsPerHead)
    }

    /// Channels `range` of `x`.
    private static func channels(_ x: ReferenceTensor, _ range: Range<Int>) -> ReferenceTensor {
        let s = x.shape
        var y = ReferenceTensor(shape: Shape(s.batch, range.count, s.height, s.width))
        for n in 0..<s.batch { for (i, c) in range.enumerated() { for h in 0..<s.height { for w in 0..<s.width {
            y[n, i, h, w] = x[n, c, h, w]
        } } } }
        return y
    }

    /// `a ‖ b` along the channels.
    private static func concatenate(_ a: ReferenceTensor, _ b: ReferenceTensor) -> ReferenceTensor {
        let s = a.shape
        var y = ReferenceTensor(shape: Shape(s.batch, s.channels + b.shape.channels, s.height, s.width))
        for n in 0..<s.batch { for h in 0..<s.height { for w in 0..<s.width {
            for c in 0..<s.channels { y[n, c, h, w] = a[n, c, h, w] }
            for c in 0..<b.shape.channels { y[n, s.channels + c, h, w] = b[n, c, h, w] }
        } } }
        return y
    }
}

/// Reads torchvision-named parameters for the naive models.
private struct NamedReader {
    let parameters: [String: ParameterTensor]
    init(_ parameters: [String: ParameterTensor]) { self.parameters = parameters }

    subscript(_ name: String) -> ParameterTensor {
        get throws {
            guard let tensor = parameters[name] else { throw ShapeError("naive model: no parameter \(name)") }
            return tensor
        }
    }

    /// `bn(conv(x))` with the convolution's weight `[K, C/G, kh, kw]` and the BN's four tensors, unfolded.
    func convolutionBN(_ x: ReferenceTensor, _ convolution: String, _ norm: String, window: WindowGeometry,
                       groups: Int = 1) throws -> ReferenceTensor {
        let weight = try self["\(convolution).weight"]
        let y = try Naive.conv2d(x, weight: weight.values, bias: nil, outputChannels: weight.shape[0],
                                 window: window, groups: groups)
        let bn = try BatchNorm(weight: try self["\(norm).weight"].values, bias: try self["\(norm).bias"].values,
                               runningMean: try self["\(norm).running_mean"].values,
                               runningVariance: try self["\(norm).running_var"].values)
        return Naive.batchNorm(y, bn)
    }

    /// `fc(x)` with `name.weight` `[classes, features]` and `name.bias`.
    func classifier(_ x: ReferenceTensor, _ name: String) throws -> ReferenceTensor {
        let weight = try self["\(name).weight"]
        let layer = try Linear(inputFeatures: weight.shape[1], outputFeatures: weight.shape[0], weight: weight.values,
                               bias: try self["\(name).bias"].values)
        return Naive.linear(x, layer)
    }
}
