// STAND-IN for the founder's Naive.spsa (branch models only); `git merge main` replaces it
// (on a conflict, take main's version and delete this one).
import Foundation
import SpatialAttention

extension Naive {
    /// SPSA in Double (stand-in): per head, `A = (1 − σ(corr(x[p], k)))^α`, `out = A ∘ x`.
    public static func spsa(_ x: Tensor, alpha: Float = 2, channelsPerHead: Int = 64, reverse: Bool = true,
                            similarity: SPSA.Similarity = .correlation) -> ReferenceTensor {
        let r = ReferenceTensor(x)
        var y = r
        let s = x.shape
        let d = channelsPerHead
        let heads = s.channels / d
        for n in 0..<s.batch {
            for head in 0..<heads {
                var k = [Double](repeating: 0, count: d)
                for c in 0..<d {
                    for h in 0..<s.height { for w in 0..<s.width { k[c] += r[n, head * d + c, h, w] } }
                    k[c] /= Double(s.pixels)
                }
                let kMean = k.reduce(0, +) / Double(d)
                let kd = k.reduce(0) { $0 + ($1 - kMean) * ($1 - kMean) }.squareRoot()
                for h in 0..<s.height {
                    for w in 0..<s.width {
                        var qMean = 0.0
                        for c in 0..<d { qMean += r[n, head * d + c, h, w] }
                        qMean /= Double(d)
                        var dot = 0.0, qq = 0.0
                        for c in 0..<d {
                            let q = r[n, head * d + c, h, w] - qMean
                            dot += q * (k[c] - kMean)
                            qq += q * q
                        }
                        let sig = 1 / (1 + exp(-dot / (qq.squareRoot() * kd)))
                        let a = pow(reverse ? 1 - sig : sig, Double(alpha))
                        for c in 0..<d { y[n, head * d + c, h, w] = a * r[n, head * d + c, h, w] }
                    }
                }
            }
        }
        return y
    }
}
