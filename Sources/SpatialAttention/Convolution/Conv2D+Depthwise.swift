import CKernels

extension Conv2D {
    /// The depthwise kernel: every `(image, channel)` plane is an independent direct convolution
    /// (`ck_depthwise_conv`), so the work splits over `N·C` planes with the package's threads.
    ///
    /// With 9 MACs per output a GEMM would spend more on im2col than on arithmetic; the direct loop
    /// reads each input row once per tap from L1 and vectorises along the row.
    func runDepthwise(_ x: UnsafePointer<Float>, shape input: Shape, into y: UnsafeMutablePointer<Float>,
                      output: Shape, residual: UnsafePointer<Float>?, threads: Int) {
        let (N, C, inP, P) = (input.batch, inputChannels, input.pixels, output.pixels)
        let planes = N * C
        let chunks = min(planes, ParallelWork.chunks(elements: planes * P * window.kernelHeight * window.kernelWidth / 4,
                                                     threads: threads))
        // With a residual the activation must come after the addition: the kernel writes the
        // biased sum and the epilogue adds the residual and activates.
        let fusedCode = residual == nil ? activation.kernelCode : ActivationFunction.identity.kernelCode
        weight.withUnsafeBufferPointer { w in
            withOptionalPointer(bias) { b in
                Threads.forEach(chunks, threads: chunks) { t in
                    var plane = planes * t / chunks
                    let end = planes * (t + 1) / chunks
                    while plane < end {
                        // Consecutive planes of one image share a call.
                        let n = plane / C, c = plane % C
                        let count = min(end - plane, C - c)
                        ck_depthwise_conv(x + (n * C + c) * inP, Int32(count), Int32(input.height), Int32(input.width),
                                          w.baseAddress! + c * window.kernelHeight * window.kernelWidth,
                                          b.map { $0 + c },
                                          Int32(window.kernelHeight), Int32(window.kernelWidth),
                                          Int32(window.paddingHeight), Int32(window.paddingWidth),
                                          Int32(window.strideHeight), Int32(window.strideWidth),
                                          Int32(window.dilationHeight), Int32(window.dilationWidth),
                                          fusedCode, y + (n * C + c) * P)
                        plane += count
                    }
                }
            }
        }
        if let residual {
            let code = activation.kernelCode
            let total = N * C * P
            let pieces = ParallelWork.chunks(elements: total, threads: threads)
            Threads.forEach(pieces, threads: pieces) { t in
                let lo = total * t / pieces, hi = total * (t + 1) / pieces
                ck_conv_epilogue(y + lo, 0, y + lo, 0, nil, nil, residual + lo, 0, 1, hi - lo, code)
            }
        }
    }
}
