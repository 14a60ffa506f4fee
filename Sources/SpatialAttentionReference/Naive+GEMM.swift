import SpatialAttention

extension Naive {
    /// `op(A)·op(B)` in Double: `C[i][j] = Σ_p op(A)[i][p]·op(B)[p][j]`, row-major, dense.
    public static func gemm(
        _ a: [Float], _ b: [Float], m: Int, n: Int, k: Int,
        transposeA: Bool = false, transposeB: Bool = false
    ) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k {
                    let aip = transposeA ? a[p * m + i] : a[i * k + p]
                    let bpj = transposeB ? b[j * k + p] : b[p * n + j]
                    sum += Double(aip) * Double(bpj)
                }
                c[i * n + j] = sum
            }
        }
        return c
    }

    /// im2col of image `n` of `x`: row `(c·kh + i)·kw + j`, column `oy·W' + ox` holds
    /// `x[n, c, oy·sh − ph + i·dh, ox·sw − pw + j·dw]`, or 0 outside the image.
    public static func im2col(_ x: Tensor, image n: Int, window: WindowGeometry) throws -> [Double] {
        let out = try window.outputSize(height: x.shape.height, width: x.shape.width)
        let (C, H, W) = (x.shape.channels, x.shape.height, x.shape.width)
        let (kh, kw) = (window.kernelHeight, window.kernelWidth)
        var columns = [Double](repeating: .nan, count: C * kh * kw * out.height * out.width)
        for c in 0..<C {
            for i in 0..<kh {
                for j in 0..<kw {
                    let row = (c * kh + i) * kw + j
                    for oy in 0..<out.height {
                        for ox in 0..<out.width {
                            let y = oy * window.strideHeight - window.paddingHeight + i * window.dilationHeight
                            let xx = ox * window.strideWidth - window.paddingWidth + j * window.dilationWidth
                            let inside = y >= 0 && y < H && xx >= 0 && xx < W
                            columns[row * out.height * out.width + oy * out.width + ox] =
                                inside ? Double(x[n, c, y, xx]) : 0
                        }
                    }
                }
            }
        }
        return columns
    }
}
