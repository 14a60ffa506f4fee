#include "CKernels.h"

// Row sums for SPSA's key pass. Written with clang's portable vector extensions so that one piece
// of code compiles to AVX-512 in the native build and SSE in the baseline one, with the same
// arithmetic in both. (The Swift version spent most of its time widening SIMD16<Float> to Double
// element by element: Swift's SIMD conversion initialisers are not vectorised.)

typedef float ck_f16 __attribute__((vector_size(64)));
typedef float ck_f16_unaligned __attribute__((vector_size(64), aligned(4)));
typedef float ck_f8 __attribute__((vector_size(32)));
typedef double ck_d8 __attribute__((vector_size(64)));

// Macros rather than functions: a function taking or returning a 64-byte vector draws -Wpsabi in
// builds without AVX-512 (its calling convention would depend on the target).
#define CK_LOAD16(p) (*(const ck_f16_unaligned *)(p))

// The 16 lanes of `a` in Double, folded to 8 (low half + high half).
#define CK_WIDEN(a)                                                                           \
    (__builtin_convertvector(__builtin_shufflevector((a), (a), 0, 1, 2, 3, 4, 5, 6, 7), ck_d8) + \
     __builtin_convertvector(__builtin_shufflevector((a), (a), 8, 9, 10, 11, 12, 13, 14, 15), ck_d8))

double ck_shifted_sum(const float *row, ptrdiff_t count, float shift, ptrdiff_t block) {
    const ck_f16 s = (ck_f16){0} + shift;
    ck_d8 lanes = {0};
    double tail = 0;
    for (ptrdiff_t start = 0; start < count;) {
        const ptrdiff_t end = count - start > block ? start + block : count;
        ck_f16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        ptrdiff_t p = start;
        for (; p + 64 <= end; p += 64) {
            a0 += CK_LOAD16(row + p) - s;
            a1 += CK_LOAD16(row + p + 16) - s;
            a2 += CK_LOAD16(row + p + 32) - s;
            a3 += CK_LOAD16(row + p + 48) - s;
        }
        for (; p + 16 <= end; p += 16) a0 += CK_LOAD16(row + p) - s;
        lanes += CK_WIDEN(a0);
        if (end - start >= 64) {  // a1…a3 stay zero in a shorter block
            lanes += CK_WIDEN(a1);
            lanes += CK_WIDEN(a2);
            lanes += CK_WIDEN(a3);
        }
        for (; p < end; p++) tail += (double)(row[p] - shift);
        start = end;
    }
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7])) + tail;
}

typedef float ck_f4 __attribute__((vector_size(16)));

// Σ of p[0..<16] as a balanced tree: exact for 16 equal values.
static inline float ck_tree_sum16(const float *p) {
    const ck_f16 v = CK_LOAD16(p);
    ck_f8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
              __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    ck_f4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
    return (b[0] + b[2]) + (b[1] + b[3]);
}

void ck_shifted_means(const float *x, ptrdiff_t rows, ptrdiff_t count, int exact, double *means) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        const float *row = x + r * count;
        // The shift: the mean of the row's first 16 values (its first value when shorter); none
        // in exact mode, where every value is added in Double.
        const float shift = exact ? 0.0f : (count >= 16 ? ck_tree_sum16(row) / 16 : row[0]);
        const double sum = ck_shifted_sum(row, count, shift, exact ? 16 : 256);
        means[r] = (double)shift + sum / (double)count;
    }
}
