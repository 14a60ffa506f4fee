import SpatialAttention

/// An error bound `|actual − expected| ≤ absolute + relative·|expected|`, named for the kernel it
/// covers, with the reason for its size.
public struct Tolerance: Sendable, CustomStringConvertible {
    public var absolute: Double
    public var relative: Double

    public init(absolute: Double, relative: Double) {
        self.absolute = absolute
        self.relative = relative
    }

    public var description: String { "atol \(absolute), rtol \(relative)" }

    /// Exact equality: kernels that only move data (im2col, layout conversion).
    public static let exact = Tolerance(absolute: 0, relative: 0)

    /// sgemm against a Double GEMM: Float32 accumulation over `k` terms of size ~1 grows like
    /// `√k · 2⁻²⁴` relative to the sum's scale; 1e-4 absolute covers k up to ~4096 with unit data.
    public static let gemm = Tolerance(absolute: 1e-4, relative: 1e-4)

    /// SPSA: Float32 moments by shifted sums, the key's channel means in Double. The correlation is
    /// then good to a few ulps of 1 and `A = (1 − σ)^α` amplifies it by at most α; the measured worst
    /// over the test sweeps and 1,600 random CLI cases (α ≤ 4, 2–512 channels a head) is 1.5e-6
    /// relative (docs/kernels.md). 1e-5 relative is the bound issue 2 sets against an independent NumPy transcription;
    /// 1e-6 absolute covers outputs that cross zero.
    public static let spsa = Tolerance(absolute: 1e-6, relative: 1e-5)

    /// Checks `actual` against `expected` element by element (logical NCHW order).
    /// Returns nil when every element is within tolerance; otherwise the first failure.
    /// NaN matches NaN (a NaN input must give NaN) and ±∞ the same infinity; NaN or ∞ against a number fails.
    public func firstMismatch(_ actual: Tensor, _ expected: ReferenceTensor) -> Mismatch? {
        guard actual.shape == expected.shape else {
            return Mismatch(index: [], actual: .nan, expected: .nan, maxAbsolute: .infinity,
                            maxRelative: .infinity, shape: actual.shape,
                            note: "shape \(actual.shape) differs from expected \(expected.shape)")
        }
        let values = actual.converted(to: .nchw).scalars
        var first: Int? = nil
        var maxAbs = 0.0, maxRel = 0.0
        for i in values.indices {
            let a = Double(values[i]), e = expected.values[i]
            if a.isNaN && e.isNaN { continue }
            if a.isInfinite && e.isInfinite && a.sign == e.sign { continue }
            let err = abs(a - e)
            // An infinite expected value is matched only by the same infinity (above): without the
            // isInfinite checks `err ≤ atol + rtol·|e|` reads `∞ ≤ ∞` and a finite (or opposite)
            // result would pass.
            let within = err <= absolute + relative * abs(e)
            if !within || a.isNaN || e.isNaN || a.isInfinite || e.isInfinite {
                if first == nil { first = i }
            }
            if err.isFinite {
                maxAbs = max(maxAbs, err)
                if e != 0 { maxRel = max(maxRel, err / abs(e)) }
            } else {
                maxAbs = .infinity
            }
        }
        guard let i = first else { return nil }
        let s = actual.shape
        let w = i % s.width, h = (i / s.width) % s.height
        let c = (i / s.pixels) % s.channels, n = i / (s.pixels * s.channels)
        return Mismatch(index: [n, c, h, w], actual: Double(values[i]), expected: expected.values[i],
                        maxAbsolute: maxAbs, maxRelative: maxRel, shape: s, note: "")
    }

    /// Checks two flat arrays (matrices, vectors); `shape` only labels the message.
    public func firstMismatch(_ actual: [Float], _ expected: [Double], label: String = "") -> Mismatch? {
        guard actual.count == expected.count else {
            return Mismatch(index: [], actual: .nan, expected: .nan, maxAbsolute: .infinity, maxRelative: .infinity,
                            shape: Shape(1, 1, 1, actual.count),
                            note: "\(label) count \(actual.count) differs from expected \(expected.count)")
        }
        let t = Tensor(flat: actual)
        return firstMismatch(t, ReferenceTensor(shape: t.shape, values: expected))
    }
}

/// The first element outside a tolerance, with the worst errors seen.
public struct Mismatch: Sendable, CustomStringConvertible {
    public let index: [Int]
    public let actual: Double
    public let expected: Double
    public let maxAbsolute: Double
    public let maxRelative: Double
    public let shape: Shape
    public let note: String

    public var description: String {
        if !note.isEmpty { return note }
        return "first mismatch at \(index) of \(shape): actual \(actual), expected \(expected); " +
            "max abs error \(maxAbsolute), max rel error \(maxRelative)"
    }
}

extension Tensor {
    /// A `[1, 1, 1, count]` tensor over a flat array (for comparing matrices).
    init(flat values: [Float]) {
        self = try! Tensor(shape: Shape(1, 1, 1, values.count), layout: .nchw, scalars: values)
    }
}

extension Tolerance {
    /// GSA against its Double twin: Float32 projections (`k = C` terms), the context `K̂ᵀ·V` over `P`
    /// positions and the positional sums over a column then a row (`k = H`, then `k = W`, with BN in
    /// between) each add a few ulps relative to their terms' scale; outputs are sums of O(√(H·W)) terms of
    /// unit size. 2e-4 absolute + 2e-4 relative bounds this with margin at the test sizes (see GSATests).
    public static let gsa = Tolerance(absolute: 2e-4, relative: 2e-4)
}

extension Tolerance {
    /// Full attention against its Double twin: Float32 projections (`k = C`), logits (`k = dk`) and the
    /// online softmax's rescaled partial sums over `P` keys; the weights are a convex combination, so the
    /// attention output's error stays at a few ulps of the values' scale. 1e-4 absolute + 1e-4 relative
    /// covers the output projection and residual at the test sizes with margin.
    public static let attention = Tolerance(absolute: 1e-4, relative: 1e-4)
}

extension Tolerance {
    /// SASA against its Double twin: Float32 projections (`k = C`), logits over `dk` channels, the
    /// polynomial `exp` (2 ulp) and a convex combination of `k²` values; errors stay at a few ulps of the
    /// values' scale times the logits' size. 1e-4 absolute + 1e-4 relative covers the test sizes.
    public static let sasa = Tolerance(absolute: 1e-4, relative: 1e-4)
}
