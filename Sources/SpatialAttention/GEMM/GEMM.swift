import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
        "\(String(cString: ck_blas_config())) (core \(coreName))"
    }

    /// The kernel family OpenBLAS runs, e.g. `"Haswell"` or `"SkylakeX"`; chosen once, when OpenBLAS loads,
    /// from the CPU or from the `OPENBLAS_CORETYPE` environment variable.
    public static var coreName: String { String(cString: ck_blas_corename()) }

    /// The `OPENBLAS_CORETYPE` to run instead of OpenBLAS's own pick, or `nil` when its pick is right.
    ///
    /// OpenBLAS runs AVX2 kernels on an AVX-512 CPU when `OPENBLAS_CORETYPE` names them, as a machine
    /// image did on this project's AMD Zen 5 host (`Haswell`), or when its detection does not know the
    /// CPU. There, sgemm (3136×768×256) measured 116–132 GFLOP/s against 234–260 with
    /// `OPENBLAS_CORETYPE=SkylakeX` (docs/design.md). This is `"SkylakeX"` when the CPU and the OS support
    /// AVX-512 (F, CD, DQ, BW, VL) and OpenBLAS runs a core type without it.
    public static var recommendedCoreType: String? {
        recommendedCoreType(running: coreName, cpuSupportsAVX512: cpuSupportsAVX512)
    }

    /// Whether the CPU has AVX-512 F, CD, DQ, BW and VL and the OS saves the zmm registers (`cpuid`, `xgetbv`).
    public static var cpuSupportsAVX512: Bool { ck_cpu_supports_avx512() != 0 }

    /// ``recommendedCoreType`` for a given running core type and CPU.
    static func recommendedCoreType(running core: String, cpuSupportsAVX512: Bool) -> String? {
        let avx512Cores: Set<String> = ["skylakex", "cooperlake", "sapphirerapids"]
        return cpuSupportsAVX512 && !avx512Cores.contains(core.lowercased()) ? "SkylakeX" : nil
    }

    /// Runs the program again from the start with `OPENBLAS_CORETYPE=`\ ``recommendedCoreType``, so that
    /// OpenBLAS loads its AVX-512 kernels; returns at once when there is no recommendation, when
    /// `SPATIAL_ATTENTION_BLAS_CORE=keep` is in the environment, or when the restart fails.
    ///
    /// OpenBLAS reads `OPENBLAS_CORETYPE` only as it loads, before `main`, hence the restart. It replaces
    /// a core type the environment names too: a machine image set `OPENBLAS_CORETYPE=Haswell` on the
    /// AVX-512 host of docs/benchmarks.md's ninth session, where OpenBLAS alone picks `Cooperlake`.
    /// The note on stderr says what was replaced. Call it first thing in an executable's `main`, before
    /// any other work; this package's executables do. A process that links the library sets the variable
    /// in its own environment instead. Linux only: elsewhere it returns at once.
    public static func restartWithRecommendedCoreIfNeeded(program: String) {
        #if os(Linux)
        let restarted = "SPATIAL_ATTENTION_BLAS_RESTARTED"
        guard let core = recommendedCoreType, getenv(restarted) == nil,
              getenv("SPATIAL_ATTENTION_BLAS_CORE").map({ String(cString: $0) }) != "keep" else { return }
        let previous = getenv("OPENBLAS_CORETYPE").map { String(cString: $0) }
        let source = previous.map { "OPENBLAS_CORETYPE=\($0) in the environment" } ?? "its own detection"
        writeToStandardError("\(program): OpenBLAS runs its \(coreName) kernels (from \(source)) on a CPU with "
            + "AVX-512; running again with OPENBLAS_CORETYPE=\(core) (SPATIAL_ATTENTION_BLAS_CORE=keep keeps them)\n")
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv(restarted, "1", 1)  // one restart at most, whatever OpenBLAS makes of the variable
        _ = ck_exec_self(CommandLine.unsafeArgv)
        // Still here: the environment goes back to what this process runs.
        if let previous { setenv("OPENBLAS_CORETYPE", previous, 1) } else { unsetenv("OPENBLAS_CORETYPE") }
        unsetenv(restarted)
        writeToStandardError("\(program): the restart failed; going on with OpenBLAS's \(coreName) kernels\n")
        #endif
    }

    private static func writeToStandardError(_ text: String) {
        var text = text
        text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}
