/// SASA-ResNet's attention layer (004 §3.1): the block's 3×3 convolution replaced by a `k = 7`,
/// 8-head SASA layer over the block's width (``AttentionResNet`` with ``AttentionResNet/Kind/sasa``).
extension AttentionModuleUnit {
    /// The SASA layer of SASA-ResNet: `channels` in and out, 8 heads (`dk = dv = channels/8`), `k = 7`,
    /// border neighbours excluded from the softmax. Parameters `block.sasa.query_conv.weight`,
    /// `key_conv.weight`, `value_conv.weight` `[channels, channels, 1, 1]` (the names of the common
    /// PyTorch port) and `block.sasa.rel_h` / `rel_w` `[7, dk/2]` (row- and column-offset embeddings,
    /// shared across heads; docs/sasa.md explains how they differ from that port's), taken by the
    /// loader of ``SASA/init(parameters:prefix:heads:kernelSize:boundary:strict:)``.
    static func sasa(block: String, channels C: Int, source: inout ParameterSource) throws -> AttentionModuleUnit {
        let name = "\(block).sasa"
        let sasa = try SASA.load(prefix: name + ".", channels: C, keyChannels: C, valueChannels: C, heads: 8,
                                 kernelSize: 7, boundary: .excluded, source: &source)
        return AttentionModuleUnit(module: .sasa(sasa), name: name, kind: "SASA k=7 8 heads")
    }
}

extension AttentionResNet {
    /// GSA-ResNet-50 (003's default network) with seeded weights.
    public static func gsaResNet50(seed: UInt64 = 0) -> AttentionResNet { try! AttentionResNet(.gsa, depth: 50, seed: seed) }

    /// SASA-ResNet-50 (004's full-attention network with a conv stem) with seeded weights.
    public static func sasaResNet50(seed: UInt64 = 0) -> AttentionResNet { try! AttentionResNet(.sasa, depth: 50, seed: seed) }
}
