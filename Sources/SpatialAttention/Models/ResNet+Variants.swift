extension ResNet {
    /// The attention modules added to a ResNet: SPSA at position #2 of 002 Table 1 (after the BN of
    /// the 3×3 convolution, α = 2, 64 channels per head: 1, 2, 4, 8 heads by stage; 2, 4, 8, 16 on
    /// ResNeXt-50) and/or a channel attention on the residual branch before the addition.
    public struct Variant: Sendable, Equatable {
        /// Whether SPSA follows every 3×3 convolution's BN.
        public var spsa: Bool
        /// The channel attention, if any.
        public var channelAttention: ModelName.ChannelAttentionKind?

        public init(spsa: Bool = false, channelAttention: ModelName.ChannelAttentionKind? = nil) {
            self.spsa = spsa
            self.channelAttention = channelAttention
        }

        /// ECA's kernel size by stage on ResNets (the 3, 5, 5, 7: +80 parameters on ResNet-50).
        public static let ecaKernelSizes = [3, 5, 5, 7]

        /// SE's reduction ratio: `C/16` hidden channels, no biases (+2,514,944 on ResNet-50).
        public static let seReduction = 16

        /// The channel attention of block `block` of stage `stage` over `channels`, with its
        /// record name; nil when the variant has none.
        func channelAttention(block: String, stage: Int, channels: Int,
                              source: inout ParameterSource) throws -> ((any ChannelAttention)?, String) {
            switch channelAttention {
            case nil:
                return (nil, "")
            case .se:
                let hidden = channels / Self.seReduction
                let fc1 = source.take("\(block).se.fc1.weight", shape: [hidden, channels], .kaiming(fanIn: channels))
                // Half-scale excitation weights keep the seeded sigmoids away from saturation.
                let bound = (3 / Float(hidden)).squareRoot()
                let fc2 = source.take("\(block).se.fc2.weight", shape: [channels, hidden], .uniform(-bound, bound))
                return (try SqueezeExcitation(channels: channels, hiddenChannels: hidden, reduceWeight: fc1, expandWeight: fc2),
                        "\(block).se")
            case .eca:
                let k = Self.ecaKernelSizes[min(stage, Self.ecaKernelSizes.count - 1)]
                let weight = source.take("\(block).eca.conv.weight", shape: [1, 1, k], .kaiming(fanIn: k))
                return (try EfficientChannelAttention(channels: channels, weight: weight), "\(block).eca")
            }
        }
    }
}
