// STAND-IN for the founder's SPSA (branch models only). It has the API described in
// /work/notes/common.md so that the models compile before SPSA lands on main; when it does,
// `git merge main` replaces this file (on a conflict, take main's version and delete this one).
import Foundation

/// Simple parameter-free self-attention (stand-in): `out = (1 − σ(corr(x[p], k)))^α ∘ x`, `k` = GAP(x).
public struct SPSA: Layer {
    /// How a pixel is compared with the key.
    public enum Similarity: String, Sendable, CaseIterable { case correlation, cosine }

    public let alpha: Float
    public let channelsPerHead: Int?
    public let heads: Int?
    public let reverse: Bool
    public let similarity: Similarity

    public init(alpha: Float = 2, channelsPerHead: Int = 64, reverse: Bool = true, similarity: Similarity = .correlation) {
        self.alpha = alpha; self.channelsPerHead = channelsPerHead; self.heads = nil
        self.reverse = reverse; self.similarity = similarity
    }

    public init(alpha: Float = 2, heads: Int, reverse: Bool = true, similarity: Similarity = .correlation) {
        self.alpha = alpha; self.channelsPerHead = nil; self.heads = heads
        self.reverse = reverse; self.similarity = similarity
    }

    func headCount(_ channels: Int) throws -> Int {
        let h = heads ?? (channels / max(1, channelsPerHead ?? 64))
        guard h > 0, channels % h == 0 else { throw ShapeError("SPSA heads do not divide C in \(channels)") }
        return h
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try callAsFunction(x, threads: nil) }

    public func callAsFunction(_ x: Tensor, threads: Int?) throws -> Tensor {
        var y = x
        try applyInPlace(&y, threads: threads)
        return y
    }

    public func applyInPlace(_ x: inout Tensor, threads: Int? = nil) throws {
        let s = x.shape
        let h = try headCount(s.channels)
        let d = s.channels / h
        var t = x.converted(to: .nchw)
        let P = s.pixels
        t.scalars.withUnsafeMutableBufferPointer { v in
            for n in 0..<s.batch {
                for head in 0..<h {
                    let base = (n * s.channels + head * d) * P
                    var k = [Float](repeating: 0, count: d)
                    for c in 0..<d { var sum: Float = 0; for p in 0..<P { sum += v[base + c * P + p] }; k[c] = sum / Float(P) }
                    let kMean = k.reduce(0, +) / Float(d)
                    let kc = k.map { $0 - kMean }
                    let kd = kc.reduce(0) { $0 + $1 * $1 }.squareRoot()
                    for p in 0..<P {
                        var qMean: Float = 0
                        for c in 0..<d { qMean += v[base + c * P + p] }
                        qMean /= Float(d)
                        var dot: Float = 0, qq: Float = 0
                        for c in 0..<d { let q = v[base + c * P + p] - qMean; dot += q * kc[c]; qq += q * q }
                        let corr = dot / (qq.squareRoot() * kd)
                        let sig = 1 / (1 + Foundation.exp(-corr))
                        let a = Foundation.pow(reverse ? 1 - sig : sig, alpha)
                        for c in 0..<d { v[base + c * P + p] *= a }
                    }
                }
            }
        }
        x = t.converted(to: x.layout)
    }

    public func outputShape(for input: Shape) throws -> Shape { _ = try headCount(input.channels); return input }
    public var parameterCount: Int { 0 }
    public func multiplyAccumulates(for input: Shape) throws -> Int { _ = try outputShape(for: input); return 0 }
}
