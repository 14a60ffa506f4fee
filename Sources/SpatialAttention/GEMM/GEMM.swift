import CKernels

/// Single-precision matrix multiplication through OpenBLAS (`cblas_sgemm`, row-major).
///
/// `C = alpha · op(A) · op(B) + beta · C` with `op(A)` `m×k`, `op(B)` `k×n`, `C` `m×n`;
/// `lda`, `ldb`, `ldc` are row strides in elements. `op(X)` is `Xᵀ` when `transposeX` is true, so `A`
/// is stored `k×m` then. Matches `Naive` `gemm` within `Tolerance/gemm`.
public enum GEMM {
    /// Multiplies raw row-major matrices. The caller guarantees the pointers cover the extents.
    @inlinable
    public static func multiply(
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
        b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        Threads.releaseCores()
        ck_sgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, Int32(m), Int32(n), Int32(k),
                 alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Multiplies arrays holding dense row-major matrices: returns `op(A)·op(B)` as an `m×n` array.
    ///
    /// - Throws: ``ShapeError`` when an array's count is not the product of its dimensions.
    public static func multiply(
        _ a: [Float], _ b: [Float], m: Int, n: Int, k: Int,
        transposeA: Bool = false, transposeB: Bool = false
    ) throws -> [Float] {
        guard m >= 0, n >= 0, k >= 0 else { throw ShapeError("gemm dimensions m=\(m) n=\(n) k=\(k) must be ≥ 0") }
        guard a.count == m * k else { throw ShapeError("gemm A has \(a.count) elements, expected m·k = \(m)·\(k)") }
        guard b.count == k * n else { throw ShapeError("gemm B has \(b.count) elements, expected k·n = \(k)·\(n)") }
        var c = [Float](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    guard let a = pa.baseAddress, let b = pb.baseAddress, let c = pc.baseAddress else { return }
                    multiply(m: m, n: n, k: k, a: a, lda: transposeA ? m : k, transposeA: transposeA,
                             b: b, ldb: transposeB ? k : n, transposeB: transposeB, c: c, ldc: n)
                }
            }
        }
        return c
    }
}

/// OpenBLAS's own settings.
public enum BLAS {
    /// Threads OpenBLAS uses for GEMM. Setting it calls `openblas_set_num_threads`.
    ///
    /// An OpenBLAS worker keeps spinning for a while after a multithreaded GEMM and steals a core
    /// from the next kernel; `make bench`/`make test` set `OPENBLAS_THREAD_TIMEOUT=4` (see
    /// docs/design.md), which a user's process should set in its environment too.
    public static var threads: Int {
        get { Int(ck_blas_threads()) }
        set { ck_blas_set_threads(Int32(max(1, newValue))) }
    }

    /// OpenBLAS's configuration string and the core type it runs, e.g. `"OpenBLAS 0.3.21 … (Cooperlake)"`.
    public static var configuration: String {
        "\(String(cString: ck_blas_config())) (core \(String(cString: ck_blas_corename())))"
    }
}
