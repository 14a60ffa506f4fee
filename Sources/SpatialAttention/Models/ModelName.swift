/// A model of the registry: a backbone and the attention modules added to it.
///
/// The names, shared by `spatial-bench` and the CLI: `resnet50`, `resnet50+se`, `resnet50+eca`,
/// `resnet50+spsa`, `resnet50+spsa+se`, `resnet50+spsa+eca`, the same for `resnet101` and
/// `resnet152`, and `resnext50`, `mobilenetv2`, `shufflenetv2`, each also with `+spsa`.
public struct ModelName: Hashable, Sendable, CustomStringConvertible {
    /// The network the attention modules are added to.
    public enum Backbone: String, Sendable, CaseIterable {
        case resnet50, resnet101, resnet152, resnext50, mobilenetv2, shufflenetv2

        /// True for the ResNets that take a channel attention (SE or ECA).
        public var takesChannelAttention: Bool { self == .resnet50 || self == .resnet101 || self == .resnet152 }
    }

    /// The channel attention modules the papers compare with.
    public enum ChannelAttentionKind: String, Sendable, CaseIterable {
        /// Squeeze-and-excitation, reduction 16 (``SqueezeExcitation``).
        case se
        /// Efficient channel attention, kernels 3, 5, 5, 7 by stage (``EfficientChannelAttention``).
        case eca
    }

    public let backbone: Backbone
    /// Whether SPSA is inserted (002 Table 1 position #2 and A.2).
    public let spsa: Bool
    /// The channel attention, ResNets only.
    public let channelAttention: ChannelAttentionKind?

    /// Creates a name from its parts.
    ///
    /// - Throws: ``ModelNameError`` when a channel attention is asked of a backbone without one.
    public init(backbone: Backbone, spsa: Bool = false, channelAttention: ChannelAttentionKind? = nil) throws {
        guard channelAttention == nil || backbone.takesChannelAttention else {
            var text = backbone.rawValue + (spsa ? "+spsa" : "")
            text += "+" + (channelAttention?.rawValue ?? "")
            throw ModelNameError(name: text)
        }
        self.backbone = backbone
        self.spsa = spsa
        self.channelAttention = channelAttention
    }

    /// Parses a registry name such as `resnet50+spsa+eca` (case-insensitive).
    ///
    /// - Throws: ``ModelNameError`` listing the valid names when `text` is not one of them.
    public init(_ text: String) throws {
        guard let match = Self.allCases.first(where: { $0.description == text.lowercased() }) else {
            throw ModelNameError(name: text)
        }
        self = match
    }

    /// Every name of the registry, backbone by backbone.
    public static let allCases: [ModelName] = Backbone.allCases.flatMap { backbone -> [ModelName] in
        let attentions: [ChannelAttentionKind?] = backbone.takesChannelAttention ? [nil, .se, .eca] : [nil]
        return [false, true].flatMap { spsa in
            attentions.map { try! ModelName(backbone: backbone, spsa: spsa, channelAttention: $0) }
        }
    }

    /// The plain backbone of this model (no attention).
    public var plain: ModelName { try! ModelName(backbone: backbone) }

    /// The registry name, e.g. `resnet50+spsa+se`.
    public var description: String {
        var text = backbone.rawValue
        if spsa { text += "+spsa" }
        if let channelAttention { text += "+\(channelAttention.rawValue)" }
        return text
    }
}

/// A model name that is not in the registry; the message lists the valid names.
public struct ModelNameError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The name asked for.
    public let name: String

    public var description: String {
        "unknown model \"\(name)\"; valid names: " + ModelName.allCases.map(\.description).joined(separator: ", ")
    }
}
