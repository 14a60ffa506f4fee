#include "CKernels.h"
#include <cblas.h>

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
