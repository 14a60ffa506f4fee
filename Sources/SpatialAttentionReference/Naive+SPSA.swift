import Foundation
import SpatialAttention

extension Naive {
    /// SPSA, transcribed from the paper's PyTorch code (001 A.1) with one head per group of
    /// `channelsPerHead` channels, in Double:
    ///
    /// ```
    /// k   = x.mean(dim=[-1,-2])                                   # N,C,1,1
    /// kd  = sqrt(((k - k.mean(dim=1))**2).sum(dim=1))              # N,1,1,1
    /// Qd  = sqrt(((x - x.mean(dim=1))**2).sum(dim=1))              # N,1,H,W
    /// C   = ((x - x.mean(dim=1)) * (k - k.mean(dim=1))).sum(dim=1) / (Qd * kd)
    /// A   = (1 - sigmoid(C)) ** alpha                              # or sigmoid(C) ** alpha
    /// out = x * A
    /// ```
    ///
    /// The degenerate rule the paper's code lacks: where `Qd = 0` or `kd = 0`, `C = 0`, unless the
    /// head's key is NaN (a NaN or ±Inf in the head's input), which propagates. With `.cosine`
    /// the means are not subtracted.
    public static func spsa(_ x: Tensor, alpha: Float = 2, channelsPerHead: Int = 64, reverse: Bool = true,
                            similarity: SPSA.Similarity = .correlation) -> ReferenceTensor {
        let s = x.shape
        let (N, C, H, W) = (s.batch, s.channels, s.height, s.width)
        let cph = channelsPerHead, heads = C / channelsPerHead
        let centered = similarity == .correlation
        var out = ReferenceTensor(shape: s)
        for n in 0..<N {
            for g in 0..<heads {
                let channels = (g * cph)..<((g + 1) * cph)
                // 1. k = GAP(x) over the head's channels.
                var k = [Double](repeating: 0, count: cph)
                for (j, c) in channels.enumerated() {
                    var sum = 0.0
                    for h in 0..<H { for w in 0..<W { sum += Double(x[n, c, h, w]) } }
                    k[j] = sum / Double(H * W)
                }
                // 2. kc = k − mean(k), kd = ‖kc‖.
                let kMean = centered ? k.reduce(0, +) / Double(cph) : 0
                let kc = k.map { $0 - kMean }
                let kd = kc.reduce(0) { $0 + $1 * $1 }.squareRoot()
                for h in 0..<H {
                    for w in 0..<W {
                        // 3. Per pixel: xc = x − mean_c(x), Qd = ‖xc‖, corr = xc·kc / (Qd·kd).
                        var xMean = 0.0
                        if centered {
                            for c in channels { xMean += Double(x[n, c, h, w]) }
                            xMean /= Double(cph)
                        }
                        var dot = 0.0, qd = 0.0
                        for (j, c) in channels.enumerated() {
                            let xc = Double(x[n, c, h, w]) - xMean
                            dot += xc * kc[j]
                            qd += xc * xc
                        }
                        qd = qd.squareRoot()
                        var corr = dot / (qd * kd)
                        if (qd == 0 || kd == 0) && !kd.isNaN { corr = 0 }
                        // 4. A = (1 − σ(corr))^α or σ(corr)^α.
                        let sigmoid = 1 / (1 + exp(-corr))
                        let a = pow(reverse ? 1 - sigmoid : sigmoid, Double(alpha))
                        // 5. out = A ∘ x.
                        for c in channels { out[n, c, h, w] = Double(x[n, c, h, w]) * a }
                    }
                }
            }
        }
        return out
    }

    /// SPSA with a fixed number of heads; see ``spsa(_:alpha:channelsPerHead:reverse:similarity:)``.
    public static func spsa(_ x: Tensor, alpha: Float = 2, heads: Int, reverse: Bool = true,
                            similarity: SPSA.Similarity = .correlation) -> ReferenceTensor {
        spsa(x, alpha: alpha, channelsPerHead: x.shape.channels / heads, reverse: reverse, similarity: similarity)
    }
}
