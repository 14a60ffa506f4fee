import Foundation
import SpatialAttention

extension Naive {
    /// Full self-attention (002 Eq. 1–2, the non-local block) in Double, holding the whole `P×P` matrix:
    /// `A = softmax_rows(scale·Q·Kᵀ)`, `O = A·V` per head, then `O·W_Oᵀ + b_O` and the residual when `module`
    /// has them. The weights are `module`'s; the computation shares no code with the fast kernel.
    public static func attention(_ x: Tensor, module: NonLocal) throws -> ReferenceTensor {
        let outShape = try module.outputShape(for: x.shape)
        let (N, C, H, W) = (x.shape.batch, module.channels, x.shape.height, x.shape.width)
        let P = H * W, (heads, dk, dv) = (module.heads, module.keyChannelsPerHead, module.valueChannelsPerHead)
        var out = ReferenceTensor(shape: outShape)
        for n in 0..<N {
            // 1. Projections: Q[p][c] = Σ_d W_Q[c][d]·x[d, p] + b_Q[c], likewise K and V.
            func project(_ weight: [Float], _ bias: [Float], _ rows: Int) -> [[Double]] {
                (0..<P).map { p in
                    (0..<rows).map { c in
                        var sum = bias.isEmpty ? 0 : Double(bias[c])
                        for d in 0..<C { sum += Double(weight[c * C + d]) * Double(x[n, d, p / W, p % W]) }
                        return sum
                    }
                }
            }
            let Q = project(module.queryWeight, module.queryBias, module.keyChannels)
            let K = project(module.keyWeight, module.keyBias, module.keyChannels)
            let V = project(module.valueWeight, module.valueBias, module.valueChannels)
            // 2. Per head: the P×P logits, a row softmax (max subtracted), O = A·V.
            var O = [[Double]](repeating: [Double](repeating: 0, count: module.valueChannels), count: P)
            for h in 0..<heads {
                for p in 0..<P {
                    var logits = [Double](repeating: 0, count: P)
                    for j in 0..<P {
                        var dot = 0.0
                        for c in 0..<dk { dot += Q[p][h * dk + c] * K[j][h * dk + c] }
                        logits[j] = Double(module.scale) * dot
                    }
                    let m = logits.max() ?? 0
                    let e = logits.map { Foundation.exp($0 - m) }
                    let z = e.reduce(0, +)
                    for c in 0..<dv {
                        var sum = 0.0
                        for j in 0..<P { sum += e[j] / z * V[j][h * dv + c] }
                        O[p][h * dv + c] = sum
                    }
                }
            }
            // 3. Output projection, bias, residual.
            for p in 0..<P {
                for c in 0..<outShape.channels {
                    var z: Double
                    if module.outputWeight.isEmpty {
                        z = O[p][c]
                    } else {
                        z = Double(module.outputBias[c])
                        for v in 0..<module.valueChannels { z += Double(module.outputWeight[c * module.valueChannels + v]) * O[p][v] }
                    }
                    if module.residual { z += Double(x[n, c, p / W, p % W]) }
                    out[n, c, p / W, p % W] = z
                }
            }
        }
        return out
    }
}
