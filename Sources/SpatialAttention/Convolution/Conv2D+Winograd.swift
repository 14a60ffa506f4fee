import CKernels

extension Conv2D {
    /// Whether ``Algorithm/winograd`` computes a layer: 3×3 kernel, stride 1, dilation 1, one group,
    /// the same padding on both axes.
    static func winogradApplies(window: WindowGeometry, groups: Int) -> Bool {
        window.kernelHeight == 3 && window.kernelWidth == 3 && window.strideHeight == 1 && window.strideWidth == 1 &&
            window.dilationHeight == 1 && window.dilationWidth == 1 && window.paddingHeight == window.paddingWidth &&
            groups == 1
    }

    /// The 16 transformed filter matrices `G g Gᵀ`, packed for the GEMMs (`ck_winograd_pack_weights`).
    static func winogradPack(_ weight: [Float], outputChannels: Int, inputChannels: Int) -> [Float] {
        let count = Int(ck_winograd_weights_count(Int32(outputChannels), Int32(inputChannels)))
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            weight.withUnsafeBufferPointer { w in
                ck_winograd_pack_weights(w.baseAddress!, Int32(outputChannels), Int32(inputChannels), out.baseAddress!)
            }
            initialized = count
        }
    }

    /// Winograd F(2×2, 3×3) over the batch's 2×2 output tiles; bias, residual and activation are
    /// applied as the tiles are written. The work splits over the threads in contiguous tile ranges
    /// when every thread gets at least one 32-tile panel, otherwise in ranges of output channels
    /// (each thread then transforms the whole input, a small share of the work).
    ///
    /// Measured on ResNet-50's stride-1 3×3 layers (one thread, batch 1): 20.5 ms against 32.3 ms for
    /// the packed GEMM. On 7×7 planes Winograd is the slower (its 2×2 tiles cover 8×8), so
    /// ``preferredAlgorithm(for:)`` runs them on the packed GEMM.
    func runWinograd(_ x: UnsafePointer<Float>, shape input: Shape, into y: UnsafeMutablePointer<Float>,
                     residual: UnsafePointer<Float>?, threads: Int) {
        let (K, C) = (outputChannels, inputChannels)
        let pad = Int32(window.paddingHeight)
        let tiles = input.batch * Int(ck_winograd_tiles(Int32(input.height), Int32(input.width), pad))
        let splitTiles = tiles >= 32 * threads
        let workers = max(1, min(threads, splitTiles ? tiles / 32 : (K + 7) / 8))
        let scratch = Int(ck_winograd_workspace_count(Int32(K), Int32(C)))
        Scratch.withFloats(workers * scratch) { workspace in
            winogradWeight.withUnsafeBufferPointer { u in
                withOptionalPointer(bias) { bias in
                    Threads.forEach(workers, threads: workers) { worker in
                        var (rows, tileRange) = (0..<K, 0..<tiles)
                        if splitTiles {
                            tileRange = Threads.block(worker, of: workers, count: tiles)
                        } else {
                            let groups = (K + 7) / 8
                            rows = min(K, groups * worker / workers * 8)..<min(K, groups * (worker + 1) / workers * 8)
                        }
                        guard !rows.isEmpty, !tileRange.isEmpty else { return }
                        ck_winograd_conv(u.baseAddress!, Int32(K), Int32(C), x, Int32(input.height), Int32(input.width), pad,
                                         y, bias, residual, activation.kernelCode, Int32(rows.lowerBound), Int32(rows.upperBound),
                                         Int32(tileRange.lowerBound), Int32(tileRange.upperBound), workspace + worker * scratch)
                    }
                }
            }
        }
    }
}
