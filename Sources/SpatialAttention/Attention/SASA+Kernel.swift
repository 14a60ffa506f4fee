/// The SASA forward pass, without unfold: one projection GEMM, zero-padded key and value planes, the
/// positional terms `q·r` by small GEMMs, then a SIMD kernel over 16-pixel row tiles.
///
/// Per head, image row `i` and tile of 16 pixels `j0..<j0+16`, all in registers or L1:
/// 1. `logit[a, b] = Σ_c q_c[i, j0+t]·K_c[i+a−r, j0+t+b−r]` for the `k×k` offsets, 4 column offsets
///    `b` at a time (one load of `q_c` and four unaligned loads of `K_c` per four FMAs), plus the
///    positional terms `U_row[a] + U_col[b]`;
/// 2. a softmax over the `k²` logits in each of the 16 lanes (`−∞` for excluded neighbours);
/// 3. `y_v = Σ_ab e_ab·V_v[i+a−r, j0+t+b−r] / Σ_ab e_ab`, 4 value channels at a time.
///
/// `U_row[a][p] = Σ_{c<dk/2} r^row[a][c]·q_c[p]` and `U_col[b][p] = Σ_{c<dk/2} r^col[b][c]·q_{dk/2+c}[p]`
/// are `[k, P]` GEMMs per head: the embeddings enter as `2k·dk/2` MACs per pixel instead of `k²·dk`.
/// Memory: the `[2·keyChannels + valueChannels, P]` projections, the padded key/value planes and `U`:
/// `O(input + output)`.
extension SASA {
    /// Applies the layer; `threads` workers share the (head, image row) items of the attention kernel,
    /// OpenBLAS's own threads run the GEMMs (never at the same time).
    ///
    /// NaN in `x` reaches every output whose window (or, through the softmax, whose logits) contain it.
    ///
    /// - Throws: ``ShapeError`` when `x` does not have `channels` channels.
    public func callAsFunction(_ x: Tensor, threads: Int?) throws -> Tensor {
        let outShape = try outputShape(for: x.shape)
        guard !outShape.isEmpty else { return try Tensor(shape: outShape, layout: x.layout, repeating: 0) }
        let threads = Threads.resolve(threads)
        let (N, C, H, W) = (x.shape.batch, channels, x.shape.height, x.shape.width)
        let P = H * W, D = 2 * keyChannels + valueChannels, nchw = x.layout == .nchw
        let geometry = PaddedGeometry(height: H, width: W, radius: kernelSize / 2)
        let planes = keyChannels + valueChannels
        let uCount = heads * 2 * kernelSize * P + 16
        let out = x.scalars.withUnsafeBufferPointer { px in
            uninitializedFloats(outShape.count) { po in
                Scratch.withFloats(D * P + planes * geometry.planeSize + uCount + (nchw ? 0 : valueChannels * P)) { buf in
                    let qkv = buf, padded = qkv + D * P, u = padded + planes * geometry.planeSize
                    let channelMajor = u + uCount
                    u.update(repeating: 0, count: uCount)
                    for n in 0..<N {
                        let image = px.baseAddress! + n * C * P
                        projection.withUnsafeBufferPointer { pw in
                            GEMM.multiply(m: D, n: P, k: C, a: pw.baseAddress!, lda: C,
                                          b: image, ldb: nchw ? P : C, transposeB: !nchw, c: qkv, ldc: P)
                        }
                        pad(qkv + keyChannels * P, planes: planes, geometry: geometry, into: padded, threads: threads)
                        positionalTerms(queries: qkv, pixels: P, into: u)
                        let y = nchw ? po + n * valueChannels * P : channelMajor
                        let items = heads * H
                        Threads.forEach(items, threads: threads) { item in
                            attendRow(head: item / H, row: item % H, queries: qkv, padded: padded, terms: u,
                                      geometry: geometry, output: y)
                        }
                        if !nchw {
                            Transpose.planesToPixels(y, pixels: P, channels: valueChannels, into: po + n * valueChannels * P,
                                                     threads: threads)
                        }
                    }
                }
            }
        }
        return try Tensor(shape: outShape, layout: x.layout, scalars: out)
    }

    /// The zero-padded planes: `radius` rows above and below, `radius` columns left, and enough on the
    /// right that a 16-lane tile plus the window (and a 4-wide offset group) never leaves the row.
    struct PaddedGeometry {
        let height: Int, width: Int, radius: Int
        var rowStride: Int { ((width + 15) / 16) * 16 + 2 * radius + 4 }
        var rows: Int { height + 2 * radius }
        var planeSize: Int { rows * rowStride }
    }

    /// Copies `planes` channel planes of `[H, W]` into zero-padded planes.
    private func pad(_ source: UnsafePointer<Float>, planes: Int, geometry g: PaddedGeometry,
                     into target: UnsafeMutablePointer<Float>, threads: Int) {
        let (H, W, r, rowStride) = (g.height, g.width, g.radius, g.rowStride)
        Threads.forEach(planes, threads: threads) { c in
            let plane = target + c * g.planeSize
            plane.update(repeating: 0, count: r * rowStride)
            (plane + (r + H) * rowStride).update(repeating: 0, count: (g.rows - r - H) * rowStride)
            for i in 0..<H {
                let row = plane + (r + i) * rowStride
                row.update(repeating: 0, count: r)
                copyFloats(source + c * H * W + i * W, row + r, count: W)
                (row + r + W).update(repeating: 0, count: rowStride - r - W)
            }
        }
    }

    /// `U[h][0][a][p] = r^row[a]·q_h[0..<dk/2][p]` and `U[h][1][b][p] = r^col[b]·q_h[dk/2..<dk][p]`.
    private func positionalTerms(queries: UnsafePointer<Float>, pixels P: Int, into u: UnsafeMutablePointer<Float>) {
        let (dk, k) = (keyChannelsPerHead, kernelSize), half = dk / 2
        rowEmbedding.withUnsafeBufferPointer { pr in
            columnEmbedding.withUnsafeBufferPointer { pc in
                for h in 0..<heads {
                    let q = queries + h * dk * P, target = u + h * 2 * k * P
                    GEMM.multiply(m: k, n: P, k: half, a: pr.baseAddress!, lda: half, b: q, ldb: P, c: target, ldc: P)
                    GEMM.multiply(m: k, n: P, k: half, a: pc.baseAddress!, lda: half, b: q + half * P, ldb: P,
                                  c: target + k * P, ldc: P)
                }
            }
        }
    }
}
