/// A fast, seedable random number generator (SplitMix64): the same seed gives the same stream on
/// every platform, so tests, benchmarks and seeded model weights are reproducible.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// Creates a generator whose stream is fixed by `seed`.
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform Float in `[0, 1)` with 24 random bits.
    public mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * 0x1p-24
    }
}

/// A distribution of Float samples for seeded tensors and weights.
public enum RandomDistribution: Sendable, Equatable {
    /// Uniform on `[lower, upper)`.
    case uniform(lower: Float, upper: Float)
    /// Gaussian, by the Box–Muller transform.
    case normal(mean: Float, standardDeviation: Float)

    /// One sample drawn from `generator`.
    public func sample<G: RandomNumberGenerator>(using generator: inout G) -> Float {
        switch self {
        case let .uniform(lower, upper):
            return lower + (upper - lower) * Float(generator.next() >> 40) * 0x1p-24
        case let .normal(mean, standardDeviation):
            // u1 in (0, 1] so that log(u1) is finite.
            let u1 = (Double(generator.next() >> 11) + 1) * 0x1p-53
            let u2 = Double(generator.next() >> 11) * 0x1p-53
            let z = (-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2)
            return mean + standardDeviation * Float(z)
        }
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) private func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#elseif canImport(Darwin)
import Darwin
@inline(__always) private func _log(_ x: Double) -> Double { Darwin.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Darwin.cos(x) }
#endif
