#include "CKernels.h"
#include <cblas.h>
#include <stdlib.h>
#if defined(__linux__)
#include <unistd.h>
#endif
#if defined(__x86_64__)
#include <cpuid.h>
#endif

void ck_sgemm(int transA, int transB, int m, int n, int k,
              float alpha, const float *A, int lda,
              const float *B, int ldb,
              float beta, float *C, int ldc) {
    cblas_sgemm(CblasRowMajor,
                transA ? CblasTrans : CblasNoTrans,
                transB ? CblasTrans : CblasNoTrans,
                m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

void ck_blas_set_threads(int threads) { openblas_set_num_threads(threads); }
int ck_blas_threads(void) { return openblas_get_num_threads(); }
const char *ck_blas_config(void) { return openblas_get_config(); }
const char *ck_blas_corename(void) { return openblas_get_corename(); }

int ck_cpu_supports_avx512(void) {
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;  // OSXSAVE: XCR0 is readable
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xE6) != 0xE6) return 0;  // the OS saves the SSE, AVX, opmask and zmm state
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    const unsigned f = 1u << 16, dq = 1u << 17, cd = 1u << 28, bw = 1u << 30, vl = 1u << 31;
    return (b & (f | dq | cd | bw | vl)) == (f | dq | cd | bw | vl);
#else
    return 0;
#endif
}

int ck_exec_self(char *const argv[]) {
#if defined(__linux__)
    execv("/proc/self/exe", argv);
#else
    (void)argv;
#endif
    return -1;
}
