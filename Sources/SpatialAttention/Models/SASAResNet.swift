/// SASA-ResNet's attention layer (004 §3.1): the block's 3×3 convolution replaced by a `k = 7`,
/// 8-head SASA layer over the block's width (``AttentionResNet`` with ``AttentionResNet/Kind/sasa``).
extension AttentionModuleUnit {
    /// The SASA layer of SASA-ResNet: `channels` in and out, 8 heads (`dk = dv = channels/8`), `k = 7`,
    /// border neighbours excluded from the softmax. Parameters `block.sasa.query_conv.weight`,
    /// `key_conv.weight`, `value_conv.weight` `[channels, channels, 1, 1]` (the names of the common
    /// PyTorch port) and `block.sasa.rel_h` / `rel_w` `[7, dk/2]` (row- and column-offset embeddings,
    /// shared across heads; docs/sasa.md explains how they differ from that port's).
    static func sasa(block: String, channels C: Int, source: inout ParameterSource) throws -> AttentionModuleUnit {
        let name = "\(block).sasa", k = 7, half = C / 8 / 2
        let q = source.take("\(name).query_conv.weight", shape: [C, C, 1, 1], .kaiming(fanIn: C))
        let key = source.take("\(name).key_conv.weight", shape: [C, C, 1, 1], .kaiming(fanIn: C))
        let v = source.take("\(name).value_conv.weight", shape: [C, C, 1, 1], .kaiming(fanIn: C))
        let bound = (3 / Float(2 * half)).squareRoot()
        let rows = source.take("\(name).rel_h", shape: [k, half], .uniform(-bound, bound))
        let columns = source.take("\(name).rel_w", shape: [k, half], .uniform(-bound, bound))
        let sasa = try SASA(channels: C, heads: 8, kernelSize: k, queryWeight: q, keyWeight: key, valueWeight: v,
                            rowEmbedding: rows, columnEmbedding: columns)
        return AttentionModuleUnit(module: .sasa(sasa), name: name, kind: "SASA k=7 8 heads")
    }
}

extension AttentionResNet {
    /// GSA-ResNet-50 (003's default network) with seeded weights.
    public static func gsaResNet50(seed: UInt64 = 0) -> AttentionResNet { try! AttentionResNet(.gsa, depth: 50, seed: seed) }

    /// SASA-ResNet-50 (004's full-attention network with a conv stem) with seeded weights.
    public static func sasaResNet50(seed: UInt64 = 0) -> AttentionResNet { try! AttentionResNet(.sasa, depth: 50, seed: seed) }
}
