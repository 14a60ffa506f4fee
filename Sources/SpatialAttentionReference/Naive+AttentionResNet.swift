import SpatialAttention

extension Naive {
    /// GSA-ResNet / SASA-ResNet as a composition of naive kernels, reading the named parameters of
    /// ``AttentionResNet`` (BN unfolded): stem `conv1 → bn1 → ReLU → maxpool 3/2`; each block
    /// `ReLU(bn3(conv3(ReLU(bn2(pool?(module(ReLU(bn1(conv1 x)))))))) + shortcut)` with ``gsa(_:module:)``
    /// or ``sasa(_:module:)`` as the module (their inputs rounded to Float32), a 2×2/2 average pool in the
    /// first block of stages 2–4; `fc(GAP(x))`. GSA extents follow the model's rule: the module's input
    /// side at `inputSize`.
    public static func attentionResNet(_ x: ReferenceTensor, parameters p: [String: ParameterTensor],
                                       kind: AttentionResNet.Kind, blocks: [Int], inputSize: Int) throws -> ReferenceTensor {
        func tensor(_ name: String) throws -> ParameterTensor {
            guard let t = p[name] else { throw ShapeError("naive attention ResNet: no parameter \(name)") }
            return t
        }
        func norm(_ y: ReferenceTensor, _ name: String) throws -> ReferenceTensor {
            batchNorm(y, try BatchNorm(weight: try tensor("\(name).weight").values, bias: try tensor("\(name).bias").values,
                                       runningMean: try tensor("\(name).running_mean").values,
                                       runningVariance: try tensor("\(name).running_var").values))
        }
        func convolutionBN(_ y: ReferenceTensor, _ convolution: String, _ bn: String, _ window: WindowGeometry) throws -> ReferenceTensor {
            let w = try tensor("\(convolution).weight")
            return try norm(try conv2d(y, weight: w.values, bias: nil, outputChannels: w.shape[0], window: window), bn)
        }
        func float(_ y: ReferenceTensor) throws -> Tensor {
            try Tensor(shape: y.shape, layout: .nchw, scalars: y.values.map { Float($0) })
        }
        var y = activation(try convolutionBN(x, "conv1", "bn1", WindowGeometry(kernel: 7, stride: 2, padding: 3)), .relu)
        y = try maxPool(y, window: WindowGeometry(kernel: 3, stride: 2, padding: 1))
        var side = ((inputSize + 1) / 2 + 1) / 2
        for (s, count) in blocks.enumerated() {
            for i in 0..<count {
                let name = "layer\(s + 1).\(i)", stride = s > 0 && i == 0 ? 2 : 1
                var t = activation(try convolutionBN(y, "\(name).conv1", "\(name).bn1", WindowGeometry(kernel: 1)), .relu)
                let C = t.shape.channels
                switch kind {
                case .gsa:
                    let qkv = try tensor("\(name).gsa.qkv.weight").values
                    let bn = try GSA.Normalization(
                        weight: try tensor("\(name).gsa.norm.weight").values, bias: try tensor("\(name).gsa.norm.bias").values,
                        runningMean: try tensor("\(name).gsa.norm.running_mean").values,
                        runningVariance: try tensor("\(name).gsa.norm.running_var").values)
                    let module = try GSA(channels: C, heads: 8, extent: side, queryWeight: Array(qkv[0..<(C * C)]),
                                         keyWeight: Array(qkv[(C * C)..<(2 * C * C)]), valueWeight: Array(qkv[(2 * C * C)...]),
                                         columnEmbedding: try tensor("\(name).gsa.rel_rows").values,
                                         rowEmbedding: try tensor("\(name).gsa.rel_columns").values, normalization: bn)
                    t = try gsa(try float(t), module: module)
                case .sasa:
                    let module = try SASA(channels: C, heads: 8, kernelSize: 7,
                                          queryWeight: try tensor("\(name).sasa.query_conv.weight").values,
                                          keyWeight: try tensor("\(name).sasa.key_conv.weight").values,
                                          valueWeight: try tensor("\(name).sasa.value_conv.weight").values,
                                          rowEmbedding: try tensor("\(name).sasa.rel_h").values,
                                          columnEmbedding: try tensor("\(name).sasa.rel_w").values)
                    t = try sasa(try float(t), module: module)
                }
                if stride == 2 { t = try averagePool(t, window: WindowGeometry(kernel: 2, stride: 2)) }
                t = activation(try norm(t, "\(name).bn2"), .relu)
                t = try convolutionBN(t, "\(name).conv3", "\(name).bn3", WindowGeometry(kernel: 1))
                let shortcut = p["\(name).downsample.0.weight"] == nil ? y
                    : try convolutionBN(y, "\(name).downsample.0", "\(name).downsample.1", WindowGeometry(kernel: 1, stride: stride))
                y = activation(add(t, shortcut), .relu)
                if stride == 2 { side /= 2 }
            }
        }
        let fc = try tensor("fc.weight")
        return linear(globalAveragePool(y), try Linear(inputFeatures: fc.shape[1], outputFeatures: fc.shape[0],
                                                       weight: fc.values, bias: try tensor("fc.bias").values))
    }
}
