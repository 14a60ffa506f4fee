#include "CKernels.h"

// Row sums for SPSA's key pass. Written with clang's portable vector extensions so that one piece
// of code compiles to AVX-512 in the native build and SSE in the baseline one, with the same
// arithmetic in both. (The Swift version spent most of its time widening SIMD16<Float> to Double
// element by element: Swift's SIMD conversion initialisers are not vectorised.)

typedef float ck_f16 __attribute__((vector_size(64)));
typedef float ck_f16_unaligned __attribute__((vector_size(64), aligned(4)));
typedef float ck_f8 __attribute__((vector_size(32)));
typedef double ck_d8 __attribute__((vector_size(64)));
typedef int ck_i16 __attribute__((vector_size(64)));
#define CK_LANE_INDEX ((ck_i16){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})

// Macros rather than functions: a function taking or returning a 64-byte vector draws -Wpsabi in
// builds without AVX-512 (its calling convention would depend on the target).
#define CK_LOAD16(p) (*(const ck_f16_unaligned *)(p))

// The 16 lanes of `a` in Double, folded to 8 (low half + high half).
#define CK_WIDEN(a)                                                                           \
    (__builtin_convertvector(__builtin_shufflevector((a), (a), 0, 1, 2, 3, 4, 5, 6, 7), ck_d8) + \
     __builtin_convertvector(__builtin_shufflevector((a), (a), 8, 9, 10, 11, 12, 13, 14, 15), ck_d8))

// Σ (row_i[p] − shift[i]) over p < count for ROWS rows of `count` floats, one after another, in
// lockstep: the rows' dependency chains interleave (short rows one at a time were latency-bound;
// measured in docs/kernels.md). Each row's arithmetic is the same whatever the grouping: four Float
// accumulators of 16 lanes, added together in Float and widened to Double once per block (runs of at
// most block/16 values a lane); a row's last count mod 16 values go into the first accumulator as one
// masked vector, in Double one by one only in rows shorter than 16.
#define CK_SHIFTED_SUMS(ROWS, x, count, shift, block, sums)                                          \
    do {                                                                                            \
        ck_f16 s_[ROWS];                                                                            \
        ck_d8 lanes_[ROWS];                                                                         \
        double tail_[ROWS];                                                                         \
        for (int i = 0; i < ROWS; i++) {                                                            \
            s_[i] = (ck_f16){0} + (shift)[i];                                                       \
            lanes_[i] = (ck_d8){0};                                                                 \
            tail_[i] = 0;                                                                           \
        }                                                                                           \
        for (ptrdiff_t start = 0; start < (count);) {                                               \
            const ptrdiff_t end = (count) - start > (block) ? start + (block) : (count);            \
            ck_f16 a0[ROWS], a1[ROWS], a2[ROWS], a3[ROWS];                                          \
            for (int i = 0; i < ROWS; i++) a0[i] = a1[i] = a2[i] = a3[i] = (ck_f16){0};             \
            ptrdiff_t p = start;                                                                    \
            for (; p + 64 <= end; p += 64) {                                                        \
                for (int i = 0; i < ROWS; i++) {                                                    \
                    const float *r_ = (x) + i * (count) + p;                                        \
                    a0[i] += CK_LOAD16(r_) - s_[i];                                                 \
                    a1[i] += CK_LOAD16(r_ + 16) - s_[i];                                            \
                    a2[i] += CK_LOAD16(r_ + 32) - s_[i];                                            \
                    a3[i] += CK_LOAD16(r_ + 48) - s_[i];                                            \
                }                                                                                   \
            }                                                                                       \
            for (; p + 16 <= end; p += 16)                                                          \
                for (int i = 0; i < ROWS; i++) a0[i] += CK_LOAD16((x) + i * (count) + p) - s_[i];   \
            if (p < end && (count) >= 16) {                                                         \
                /* The row's last 16 values, those already added masked out (the tail of a row   \
                   is in its last block, end == count). */                                          \
                const ck_i16 keep_ = CK_LANE_INDEX >= (int)(16 - (end - p));                        \
                for (int i = 0; i < ROWS; i++)                                                      \
                    a0[i] += (ck_f16)((ck_i16)(CK_LOAD16((x) + i * (count) + end - 16) - s_[i]) & keep_); \
                p = end;                                                                            \
            }                                                                                       \
            for (int i = 0; i < ROWS; i++) {                                                        \
                /* a1…a3 stay zero in a block shorter than 64 */                                    \
                lanes_[i] += CK_WIDEN(end - start >= 64 ? (a0[i] + a1[i]) + (a2[i] + a3[i]) : a0[i]); \
            }                                                                                       \
            for (; p < end; p++) /* rows shorter than 16 */                                         \
                for (int i = 0; i < ROWS; i++) tail_[i] += (double)((x)[i * (count) + p] - (shift)[i]); \
            start = end;                                                                            \
        }                                                                                           \
        for (int i = 0; i < ROWS; i++) {                                                            \
            const ck_d8 l = lanes_[i];                                                              \
            (sums)[i] = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])) + tail_[i]; \
        }                                                                                           \
    } while (0)

double ck_shifted_sum(const float *row, ptrdiff_t count, float shift, ptrdiff_t block) {
    double sum;
    CK_SHIFTED_SUMS(1, row, count, &shift, block, &sum);
    return sum;
}

// Four rows at a time (see CK_SHIFTED_SUMS).
static inline __attribute__((always_inline)) void ck_shifted_sums4(const float *x, ptrdiff_t count, const float *shift, ptrdiff_t block, double *sums) {
    CK_SHIFTED_SUMS(4, x, count, shift, block, sums);
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

// The shift of a row: the mean of its first 16 values (its first value when shorter); none in exact
// mode, where every value is added in Double.
static inline float ck_row_shift(const float *row, ptrdiff_t count, int exact) {
    return exact ? 0.0f : (count >= 16 ? ck_tree_sum16(row) / 16 : row[0]);
}

void ck_shifted_means(const float *x, ptrdiff_t rows, ptrdiff_t count, int exact, double *means) {
    // Blocks of 1024 values: Float runs of up to 64 shifted values a lane (rounding of order
    // 64·|x − s|·2⁻²⁴ a run, far below the tolerance once divided by the row's length), widened once
    // per block. Blocks of 256 spent a third of the key pass's time widening (docs/kernels.md).
    const ptrdiff_t block = exact ? 16 : 1024;
    ptrdiff_t r = 0;
    // Rows of 256 values and more have enough independent sums of their own (four accumulators),
    // and four of them at once need more vector registers than SSE has.
    for (; count < 256 && r + 4 <= rows; r += 4) {
        float shift[4];
        double sum[4];
        for (int i = 0; i < 4; i++) shift[i] = ck_row_shift(x + (r + i) * count, count, exact);
        ck_shifted_sums4(x + r * count, count, shift, block, sum);
        for (int i = 0; i < 4; i++) means[r + i] = (double)shift[i] + sum[i] / (double)count;
    }
    for (; r < rows; r++) {
        const float *row = x + r * count;
        const float shift = ck_row_shift(row, count, exact);
        means[r] = (double)shift + ck_shifted_sum(row, count, shift, block) / (double)count;
    }
}
