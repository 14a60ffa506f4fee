/// A chunk of `16·count` consecutive pixels held as `count` vectors: the unit of the NCHW kernel.
///
/// The kernel is generic over the chunk width so that one piece of code serves every width; with
/// `count` a constant the loops below unroll and the subscripts fold, leaving the accumulators in
/// registers.
protocol ChunkVectors {
    static var count: Int { get }
    init()
    subscript(_ i: Int) -> FloatVector { get set }
}

extension ChunkVectors {
    /// Pixels in a chunk.
    @inline(__always) static var width: Int { 16 * count }

    @inline(__always)
    init(loading p: UnsafePointer<Float>) {
        self.init()
        for i in 0..<Self.count { self[i] = p.loadVector(16 * i) }
    }

    /// Adds one channel row's shifted value `v = x − shift` to `Σv`, `Σv²` and `Σv·k`.
    @inline(__always)
    static func accumulate(_ row: UnsafePointer<Float>, shift: Self, key: FloatVector,
                           sum: inout Self, squares: inout Self, dots: inout Self) {
        for i in 0..<count {
            let v = row.loadVector(16 * i) - shift[i]
            sum[i] += v
            squares[i] = multiplyAdd(v, v, squares[i])
            dots[i] = multiplyAdd(v, key, dots[i])
        }
    }

    /// Turns the sums into correlations: `‖xc‖² = Σv² − (Σv)²/n`, `xc·kc = Σv·kc − (Σv)(Σkc)/n`.
    @inline(__always)
    static func finish(sum: Self, squares: Self, dots: Self, count n: Int, centered: Bool,
                       key: SPSAKeys.Head, into corr: UnsafeMutablePointer<Float>) {
        let inverse = FloatVector(repeating: 1 / Float(n))
        let keySum = FloatVector(repeating: key.sum)
        for i in 0..<count {
            var q = squares[i], d = dots[i]
            if centered {
                let mean = sum[i] * inverse
                let correction = sum[i] * mean
                // Rounding can leave Σv² − (Σv)²/n slightly negative when the pixel is nearly constant.
                q = (q - correction).replacing(with: 0, where: q .< correction)
                d -= mean * keySum
            }
            corr.storeVector(key.correlation(dot: d, squaredNorm: q), 16 * i)
        }
    }

    /// `out[j] = x[j]·w[j]` for the chunk's pixels of one channel row.
    @inline(__always)
    static func scale(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ w: Self) {
        for i in 0..<count { out.storeVector(x.loadVector(16 * i) * w[i], 16 * i) }
    }
}

struct OneVector: ChunkVectors {
    var v0 = FloatVector()
    @inline(__always) static var count: Int { 1 }
    @inline(__always) subscript(_ i: Int) -> FloatVector {
        get { v0 }
        set { v0 = newValue }
    }
}

struct TwoVectors: ChunkVectors {
    var v0 = FloatVector(), v1 = FloatVector()
    @inline(__always) static var count: Int { 2 }
    @inline(__always) subscript(_ i: Int) -> FloatVector {
        get { i == 0 ? v0 : v1 }
        set { if i == 0 { v0 = newValue } else { v1 = newValue } }
    }
}

struct FourVectors: ChunkVectors {
    var v0 = FloatVector(), v1 = FloatVector(), v2 = FloatVector(), v3 = FloatVector()
    @inline(__always) static var count: Int { 4 }
    @inline(__always) subscript(_ i: Int) -> FloatVector {
        get {
            switch i {
            case 0: return v0
            case 1: return v1
            case 2: return v2
            default: return v3
            }
        }
        set {
            switch i {
            case 0: v0 = newValue
            case 1: v1 = newValue
            case 2: v2 = newValue
            default: v3 = newValue
            }
        }
    }
}
