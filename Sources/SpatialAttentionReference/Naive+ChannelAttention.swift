import Foundation
import SpatialAttention

extension Naive {
    /// `s = σ(W₂ · ReLU(W₁ · GAP(x)))`, `y = s ⊙ x`, in Double: the twin of ``SqueezeExcitation``.
    public static func squeezeExcitation(_ x: ReferenceTensor, _ layer: SqueezeExcitation) -> ReferenceTensor {
        let (N, C, R) = (x.shape.batch, layer.channels, layer.hiddenChannels)
        let z = globalAveragePool(x)
        var y = x
        for n in 0..<N {
            // Pass 1: squeeze and the hidden ReLU.
            var hidden = [Double](repeating: 0, count: R)
            for r in 0..<R {
                var sum = 0.0
                for c in 0..<C { sum += Double(layer.reduceWeight[r * C + c]) * z[n, c, 0, 0] }
                hidden[r] = max(sum, 0)
            }
            // Pass 2: excitation and scaling.
            for c in 0..<C {
                var sum = 0.0
                for r in 0..<R { sum += Double(layer.expandWeight[c * R + r]) * hidden[r] }
                let s = 1 / (1 + exp(-sum))
                for h in 0..<x.shape.height { for w in 0..<x.shape.width { y[n, c, h, w] = s * x[n, c, h, w] } }
            }
        }
        return y
    }

    /// `s[n, c] = σ(Σ_j w[j]·z[n, c + j − (k−1)/2])` with `z = GAP(x)` (0 outside the channels),
    /// `y = s ⊙ x`, in Double: the twin of ``EfficientChannelAttention``.
    public static func efficientChannelAttention(_ x: ReferenceTensor, _ layer: EfficientChannelAttention) -> ReferenceTensor {
        let (N, C, k) = (x.shape.batch, layer.channels, layer.kernelSize)
        let z = globalAveragePool(x)
        var y = x
        for n in 0..<N {
            for c in 0..<C {
                var sum = 0.0
                for j in 0..<k {
                    let source = c + j - (k - 1) / 2
                    if source >= 0 && source < C { sum += Double(layer.weight[j]) * z[n, source, 0, 0] }
                }
                let s = 1 / (1 + exp(-sum))
                for h in 0..<x.shape.height { for w in 0..<x.shape.width { y[n, c, h, w] = s * x[n, c, h, w] } }
            }
        }
        return y
    }
}
