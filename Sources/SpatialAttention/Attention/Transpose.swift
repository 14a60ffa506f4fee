/// Layout changes of the attention kernels' `[pixels, channels]` and `[channels, pixels]` matrices.
///
/// Both loop over blocks of 16 channels × 256 pixels: the block's 256 pixel rows (16 floats each, 16 KiB)
/// stay in L1 while the 16 channel rows receive (or give) 1 KiB runs. A loop over pixels with all
/// channels inside touches every channel plane's page once per pixel (measured 4× slower at 56×56×256).
enum Transpose {
    /// `target[c·pixels + p] (=|+=) source[p·channels + c]`: pixel-major into channel planes (NCHW).
    static func pixelsToPlanes(_ source: UnsafePointer<Float>, pixels: Int, channels: Int,
                               into target: UnsafeMutablePointer<Float>, accumulate: Bool, threads: Int) {
        Threads.forEach((channels + 15) / 16, threads: threads) { block in
            let c0 = block * 16, c1 = min(channels, c0 + 16)
            for p0 in stride(from: 0, to: pixels, by: 256) {
                let p1 = min(pixels, p0 + 256)
                for c in c0..<c1 {
                    var s = source + p0 * channels + c
                    let row = target + c * pixels
                    for p in p0..<p1 {
                        row[p] = accumulate ? row[p] + s.pointee : s.pointee
                        s += channels
                    }
                }
            }
        }
    }

    /// `target[p·channels + c] = source[c·pixels + p]`: channel planes into pixel-major rows (NHWC).
    static func planesToPixels(_ source: UnsafePointer<Float>, pixels: Int, channels: Int,
                               into target: UnsafeMutablePointer<Float>, threads: Int) {
        Threads.forEach((pixels + 255) / 256, threads: threads) { block in
            let p0 = block * 256, p1 = min(pixels, p0 + 256)
            for c0 in stride(from: 0, to: channels, by: 16) {
                for c in c0..<min(channels, c0 + 16) {
                    let plane = source + c * pixels
                    var t = target + p0 * channels + c
                    for p in p0..<p1 {
                        t.pointee = plane[p]
                        t += channels
                    }
                }
            }
        }
    }
}
