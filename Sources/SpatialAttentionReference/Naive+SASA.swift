import Foundation
import SpatialAttention

extension Naive {
    /// SASA (004 Eq. 3, multi-head, 2-D relative embeddings) in Double, pixel by pixel:
    /// `y_ij = Σ_ab softmax_ab(Σ_c q_c·(k_ab,c + r_ab,c))·v_ab` over the `k×k` window, `r_ab` the row-offset
    /// embedding (first `dk/2` channels) concatenated with the column-offset embedding (last `dk/2`).
    /// Outside the image: skipped (`.excluded`) or keys and values 0 (`.zeroPadded`).
    public static func sasa(_ x: Tensor, module: SASA) throws -> ReferenceTensor {
        let outShape = try module.outputShape(for: x.shape)
        let (N, C, H, W) = (x.shape.batch, module.channels, x.shape.height, x.shape.width)
        let (heads, dk, dv, k) = (module.heads, module.keyChannelsPerHead, module.valueChannelsPerHead, module.kernelSize)
        let r = k / 2, half = dk / 2
        var out = ReferenceTensor(shape: outShape)
        for n in 0..<N {
            // 1. 1×1 projections at every pixel.
            func project(_ weight: [Float], _ rows: Int) -> [Double] {
                var result = [Double](repeating: 0, count: rows * H * W)
                for c in 0..<rows { for i in 0..<H { for j in 0..<W {
                    var sum = 0.0
                    for d in 0..<C { sum += Double(weight[c * C + d]) * Double(x[n, d, i, j]) }
                    result[(c * H + i) * W + j] = sum
                }}}
                return result
            }
            let Q = project(module.queryWeight, module.keyChannels), K = project(module.keyWeight, module.keyChannels)
            let V = project(module.valueWeight, module.valueChannels)
            for h in 0..<heads { for i in 0..<H { for j in 0..<W {
                // 2. Logits over the window: q·(k_ab + r_ab), the dot product over the head's dk channels.
                var logits: [Double] = [], neighbours: [(Int, Int)?] = []
                for a in (i - r)...(i + r) { for b in (j - r)...(j + r) {
                    let inside = a >= 0 && a < H && b >= 0 && b < W
                    if !inside && module.boundary == .excluded { continue }
                    var logit = 0.0
                    for c in 0..<dk {
                        let key = inside ? K[((h * dk + c) * H + a) * W + b] : 0
                        let rel = c < half ? Double(module.rowEmbedding[(a - i + r) * half + c])
                                           : Double(module.columnEmbedding[(b - j + r) * half + c - half])
                        logit += Q[((h * dk + c) * H + i) * W + j] * (key + rel)
                    }
                    logits.append(logit)
                    neighbours.append(inside ? (a, b) : nil)
                }}
                // 3. Softmax and the weighted sum of the values (0 outside the image).
                let m = logits.max()!
                let e = logits.map { Foundation.exp($0 - m) }
                let z = e.reduce(0, +)
                for v in 0..<dv {
                    var sum = 0.0
                    for (w, ab) in zip(e, neighbours) {
                        if let (a, b) = ab { sum += w / z * V[((h * dv + v) * H + a) * W + b] }
                    }
                    out[n, h * dv + v, i, j] = sum
                }
            }}}
        }
        return out
    }
}
