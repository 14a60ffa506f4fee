import Foundation
import SpatialAttention

extension Naive {
    /// The GSA module of 003, written from Appendix B's Einstein-notation equations (3)–(8) in Double,
    /// with the positional re-indexing done literally through the one-hot tensor `I[x, i, r]` of Eq. (5).
    ///
    /// Index names follow Appendix B: `x, i` rows, `y, j` columns, `n` head, `k` key channel, `v` value
    /// channel, `d` input channel, `r` relative-shift row of the embedding (`r − (L−1)` is the shift).
    /// The weights are `module`'s; the computation shares no code with the fast kernels.
    public static func gsa(_ x: Tensor, module gsa: GSA) throws -> ReferenceTensor {
        let outShape = try gsa.outputShape(for: x.shape)
        let (N, D, h, w) = (x.shape.batch, gsa.channels, x.shape.height, x.shape.width)
        let (heads, dk, dv, L) = (gsa.heads, gsa.keyChannelsPerHead, gsa.valueChannelsPerHead, gsa.extent)
        let parts = gsa.components
        var out = ReferenceTensor(shape: outShape)
        // Flat index helpers for [x][y][n][c] arrays.
        func at(_ xx: Int, _ yy: Int, _ n: Int, _ c: Int, _ width: Int) -> Int { ((xx * w + yy) * heads + n) * width + c }
        for b in 0..<N {
            // 1. KQV layer (Eq. 3): K_xynk = W^K_dnk X_xyd, likewise Q and V.
            func project(_ weight: [Float], _ width: Int) -> [Double] {
                var result = [Double](repeating: 0, count: h * w * heads * width)
                guard !weight.isEmpty else { return result }
                for xx in 0..<h { for yy in 0..<w { for n in 0..<heads { for c in 0..<width {
                    var sum = 0.0
                    for d in 0..<D { sum += Double(weight[(n * width + c) * D + d]) * Double(x[b, d, xx, yy]) }
                    result[at(xx, yy, n, c, width)] = sum
                }}}}
                return result
            }
            let K = project(gsa.keyWeight, dk), Q = project(gsa.queryWeight, dk), V = project(gsa.valueWeight, dv)
            var Y = [Double](repeating: 0, count: h * w * heads * dv)

            // 2. Content attention (Eq. 4): K̂ = σ(K) over (x, y); C_nkv = K̂_xynk V_xynv; Yᶜ_xynv = Q_xynk C_nkv.
            if parts.contains(.content) {
                for n in 0..<heads {
                    var C = [Double](repeating: 0, count: dk * dv)
                    for k in 0..<dk {
                        var m = -Double.infinity
                        for xx in 0..<h { for yy in 0..<w { m = max(m, K[at(xx, yy, n, k, dk)]) } }
                        var z = 0.0
                        for xx in 0..<h { for yy in 0..<w { z += Foundation.exp(K[at(xx, yy, n, k, dk)] - m) } }
                        for v in 0..<dv {
                            var sum = 0.0
                            for xx in 0..<h { for yy in 0..<w {
                                sum += Foundation.exp(K[at(xx, yy, n, k, dk)] - m) / z * V[at(xx, yy, n, v, dv)]
                            }}
                            C[k * dv + v] = sum
                        }
                    }
                    for xx in 0..<h { for yy in 0..<w { for v in 0..<dv {
                        var sum = 0.0
                        for k in 0..<dk { sum += Q[at(xx, yy, n, k, dk)] * C[k * dv + v] }
                        Y[at(xx, yy, n, v, dv)] += sum
                    }}}
                }
            }

            // 3. Positional attention along one axis (Eq. 5–7) for `length` positions, embedding R.
            //    I_{x,i,r} = 1 if i − x = r − (L−1) and |i − x| ≤ L; P_xik = I_xir R_rk.
            func positionEmbeddings(_ R: [Float], length: Int) -> [Double] {
                let shifts = 2 * L - 1
                var I = [Double](repeating: 0, count: length * length * shifts)
                for p in 0..<length { for i in 0..<length { for r in 0..<shifts {
                    if i - p == r - (L - 1) && abs(i - p) <= L { I[(p * length + i) * shifts + r] = 1 }
                }}}
                var P = [Double](repeating: 0, count: length * length * dk)
                for p in 0..<length { for i in 0..<length { for k in 0..<dk {
                    var sum = 0.0
                    for r in 0..<shifts { sum += I[(p * length + i) * shifts + r] * Double(R[r * dk + k]) }
                    P[(p * length + i) * dk + k] = sum
                }}}
                return P
            }
            var values = V
            if parts.contains(.column) {
                // S_xyin = Q_xynk P_xik; Yᴴ_xynv = S_xyin V_iynv.
                let P = positionEmbeddings(gsa.columnEmbedding, length: h)
                var YH = [Double](repeating: 0, count: h * w * heads * dv)
                for xx in 0..<h { for yy in 0..<w { for n in 0..<heads {
                    for i in 0..<h {
                        var S = 0.0
                        for k in 0..<dk { S += Q[at(xx, yy, n, k, dk)] * P[(xx * h + i) * dk + k] }
                        for v in 0..<dv { YH[at(xx, yy, n, v, dv)] += S * V[at(i, yy, n, v, dv)] }
                    }
                }}}
                values = YH
            }
            // 4. BN between the column and row sub-layers (inference: running statistics).
            if parts.contains(.column) && parts.contains(.row), let bn = gsa.normalization {
                for xx in 0..<h { for yy in 0..<w { for n in 0..<heads { for v in 0..<dv {
                    let c = n * dv + v
                    let denominator = (Double(bn.runningVariance[c]) + Double(bn.epsilon)).squareRoot()
                    let i = at(xx, yy, n, v, dv)
                    values[i] = (values[i] - Double(bn.runningMean[c])) / denominator * Double(bn.weight[c])
                        + Double(bn.bias[c])
                }}}}
            }
            var positional = parts.contains(.column) ? values : [Double](repeating: 0, count: Y.count)
            if parts.contains(.row) {
                // Row-only: S_xyjn = Q_xynk P_yjk; Yʷ_xynv = S_xyjn values_xjnv.
                let P = positionEmbeddings(gsa.rowEmbedding, length: w)
                positional = [Double](repeating: 0, count: Y.count)
                for xx in 0..<h { for yy in 0..<w { for n in 0..<heads {
                    for j in 0..<w {
                        var S = 0.0
                        for k in 0..<dk { S += Q[at(xx, yy, n, k, dk)] * P[(yy * w + j) * dk + k] }
                        for v in 0..<dv { positional[at(xx, yy, n, v, dv)] += S * values[at(xx, j, n, v, dv)] }
                    }
                }}}
            }
            // 5. Final fusion (Eq. 8): Y = Yᶜ + Yʷ (or + Yᴴ with the column pass alone).
            for xx in 0..<h { for yy in 0..<w { for n in 0..<heads { for v in 0..<dv {
                let i = at(xx, yy, n, v, dv)
                out[b, n * dv + v, xx, yy] = Y[i] + ((parts.contains(.column) || parts.contains(.row)) ? positional[i] : 0)
            }}}}
        }
        return out
    }
}
