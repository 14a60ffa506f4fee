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

// SwiftPM compiles C at -O2, where clang, on AVX-512 targets tuned to prefer 256-bit vectors
// (Skylake-X to Sapphire Rapids), splits these 64-byte vectors into two ymm halves: twice the
// instructions. A function that asks for 512-bit vectors gets zmm registers; elsewhere it is a no-op.
#define CK_WIDE __attribute__((min_vector_width(512)))

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

CK_WIDE double ck_shifted_sum(const float *row, ptrdiff_t count, float shift, ptrdiff_t block) {
    double sum;
    CK_SHIFTED_SUMS(1, row, count, &shift, block, &sum);
    return sum;
}

// Four rows at a time (see CK_SHIFTED_SUMS).
CK_WIDE static inline __attribute__((always_inline)) void ck_shifted_sums4(const float *x, ptrdiff_t count, const float *shift, ptrdiff_t block, double *sums) {
    CK_SHIFTED_SUMS(4, x, count, shift, block, sums);
}

typedef float ck_f4 __attribute__((vector_size(16)));

// Σ of p[0..<16] as a balanced tree: exact for 16 equal values.
CK_WIDE static inline float ck_tree_sum16(const float *p) {
    const ck_f16 v = CK_LOAD16(p);
    ck_f8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
              __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    ck_f4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
    return (b[0] + b[2]) + (b[1] + b[3]);
}

// The shift of a row: the mean of its first 16 values (its first value when shorter); none in exact
// mode, where every value is added in Double.
CK_WIDE static inline float ck_row_shift(const float *row, ptrdiff_t count, int exact) {
    return exact ? 0.0f : (count >= 16 ? ck_tree_sum16(row) / 16 : row[0]);
}

typedef double ck_d8_unaligned __attribute__((vector_size(64), aligned(8)));
#define CK_HSUM8(l) ((((l)[0] + (l)[1]) + ((l)[2] + (l)[3])) + (((l)[4] + (l)[5]) + ((l)[6] + (l)[7])))

// One level of ck_lane_totals16: `a` and `b` hold groups of G lanes, each group one row's partial sums;
// the result holds groups of G/2, a's rows then b's, each group the sum of its halves.
#define CK_FOLD(a, b, LO, HI) (__builtin_shufflevector((a), (b), LO) + __builtin_shufflevector((a), (b), HI))
#define CK_FOLD16_LO 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define CK_FOLD16_HI 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
#define CK_FOLD8_LO 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27
#define CK_FOLD8_HI 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31
#define CK_FOLD4_LO 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29
#define CK_FOLD4_HI 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31
#define CK_FOLD2_LO 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30
#define CK_FOLD2_HI 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31

// totals[i] = the sum of v[i]'s 16 lanes, i < 16, in 15 vector adds for all 16 (a row's own
// horizontal sum costs 4 adds and 4 shuffles on a dependency chain). Every row is summed by the same
// tree wherever it sits, (l_j + l_{j+8}), then j and j+4, j+2, j+1: the tree of ck_tree_sum16, exact
// for 16 equal values.
CK_WIDE static inline __attribute__((always_inline)) void ck_lane_totals16(const ck_f16 *v, ck_f16 *totals) {
    ck_f16 a[8], b[4], c[2];
    for (int i = 0; i < 8; i++) a[i] = CK_FOLD(v[2 * i], v[2 * i + 1], CK_FOLD16_LO, CK_FOLD16_HI);
    for (int i = 0; i < 4; i++) b[i] = CK_FOLD(a[2 * i], a[2 * i + 1], CK_FOLD8_LO, CK_FOLD8_HI);
    for (int i = 0; i < 2; i++) c[i] = CK_FOLD(b[2 * i], b[2 * i + 1], CK_FOLD4_LO, CK_FOLD4_HI);
    *totals = CK_FOLD(c[0], c[1], CK_FOLD2_LO, CK_FOLD2_HI);
}

// totals = the sums of v[i]'s 16 lanes in Double, rows 0–7 in `low`, 8–15 in `high`: each row's lanes
// widened and folded (l_j + l_{j+8}) as in CK_WIDEN, then 16 rows of 8 lanes reduced together, (j, j+4),
// (j, j+2), (j, j+1). Every row is summed by the same tree wherever it sits.
CK_WIDE static inline __attribute__((always_inline)) void ck_lane_totals16_double(const ck_f16 *v, ck_d8 *low, ck_d8 *high) {
    ck_d8 w[16], a[8], b[4];
    for (int i = 0; i < 16; i++) w[i] = CK_WIDEN(v[i]);
    for (int i = 0; i < 8; i++)
        a[i] = __builtin_shufflevector(w[2 * i], w[2 * i + 1], 0, 1, 2, 3, 8, 9, 10, 11) +
               __builtin_shufflevector(w[2 * i], w[2 * i + 1], 4, 5, 6, 7, 12, 13, 14, 15);
    for (int i = 0; i < 4; i++)
        b[i] = __builtin_shufflevector(a[2 * i], a[2 * i + 1], 0, 1, 4, 5, 8, 9, 12, 13) +
               __builtin_shufflevector(a[2 * i], a[2 * i + 1], 2, 3, 6, 7, 10, 11, 14, 15);
    *low = __builtin_shufflevector(b[0], b[1], 0, 2, 4, 6, 8, 10, 12, 14) +
           __builtin_shufflevector(b[0], b[1], 1, 3, 5, 7, 9, 11, 13, 15);
    *high = __builtin_shufflevector(b[2], b[3], 0, 2, 4, 6, 8, 10, 12, 14) +
            __builtin_shufflevector(b[2], b[3], 1, 3, 5, 7, 9, 11, 13, 15);
}

// ck_shifted_means for rows of 16…1024 values (one block), 16 rows at a time. A row's lanes are
// summed as in CK_SHIFTED_SUMS (four Float accumulators, the tail as one masked vector), then widened
// and added in Double 16 rows together by ck_lane_totals16_double instead of one row at a time: rows of
// 49 values spent most of their time in that horizontal sum and the per-row division
// (docs/kernels.md). Folding the lanes in Float instead measured 3.3e-6 against 1.2e-6 worst relative
// error in the CLI check (5 channels a head). The result does not depend on how rows are grouped:
// absent rows are zero vectors and each row's arithmetic is its own.
CK_WIDE static void ck_shifted_means_short(const float *x, ptrdiff_t rows, ptrdiff_t count, double *means) {
    const ptrdiff_t tail = count % 16;
    const ck_i16 keep = CK_LANE_INDEX >= (int)(16 - tail);
    for (ptrdiff_t r0 = 0; r0 < rows; r0 += 16) {
        const int n = rows - r0 < 16 ? (int)(rows - r0) : 16;
        const float *first = x + r0 * count;
        ck_f16 v[16], shifts;
        for (int i = 0; i < 16; i++) v[i] = i < n ? CK_LOAD16(first + i * count) : (ck_f16){0};
        ck_lane_totals16(v, &shifts);
        shifts /= 16;
        // Read back from memory: indexing the vector made clang store it again in every row, and
        // the per-row load from that fresh 64-byte store stalled (3.3 against 4.0 µs for 512 × 49).
        float shift[16];
        *(ck_f16_unaligned *)shift = shifts;
        for (int i = 0; i < n; i++) {
            const float *row = first + i * count;
            const ck_f16 s = (ck_f16){0} + shift[i];
            ck_f16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            ptrdiff_t p = 0;
            for (; p + 64 <= count; p += 64) {
                a0 += CK_LOAD16(row + p) - s;
                a1 += CK_LOAD16(row + p + 16) - s;
                a2 += CK_LOAD16(row + p + 32) - s;
                a3 += CK_LOAD16(row + p + 48) - s;
            }
            for (; p + 16 <= count; p += 16) a0 += CK_LOAD16(row + p) - s;
            if (tail) a0 += (ck_f16)((ck_i16)(CK_LOAD16(row + count - 16) - s) & keep);
            v[i] = count >= 64 ? (a0 + a1) + (a2 + a3) : a0;
        }
        ck_d8 totalLow, totalHigh;
        ck_lane_totals16_double(v, &totalLow, &totalHigh);
        double out[16];
        const double length = (double)count;
        const ck_d8 low = __builtin_convertvector(__builtin_shufflevector(shifts, shifts, 0, 1, 2, 3, 4, 5, 6, 7), ck_d8) +
                          totalLow / length;
        const ck_d8 high = __builtin_convertvector(__builtin_shufflevector(shifts, shifts, 8, 9, 10, 11, 12, 13, 14, 15), ck_d8) +
                           totalHigh / length;
        if (n == 16) {
            *(ck_d8_unaligned *)(means + r0) = low;
            *(ck_d8_unaligned *)(means + r0 + 8) = high;
        } else {
            *(ck_d8_unaligned *)out = low;
            *(ck_d8_unaligned *)(out + 8) = high;
            for (int i = 0; i < n; i++) means[r0 + i] = out[i];
        }
    }
}

CK_WIDE void ck_shifted_means(const float *x, ptrdiff_t rows, ptrdiff_t count, int exact, double *means) {
    if (!exact && count >= 16 && count <= 1024) {
        ck_shifted_means_short(x, rows, count, means);
        return;
    }
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

// The key of one SPSA head from its channel means, 8 channels a vector. The sums run over 8 Double
// lanes added pairwise at the end; channel j's value depends on the others only through `mean`.
CK_WIDE void ck_key_finish(const double *means, ptrdiff_t count, int centered, float *key,
                           double *sum, double *squares) {
    typedef float ck_f8_unaligned __attribute__((vector_size(32), aligned(4)));
    const double origin = centered ? means[0] : 0;
    ck_d8 lanes = {0};
    double rest = 0;
    ptrdiff_t j = 0;
    if (centered) {
        for (; j + 8 <= count; j += 8) lanes += *(const ck_d8_unaligned *)(means + j) - origin;
        for (; j < count; j++) rest += means[j] - origin;
    }
    const double mean = centered ? (CK_HSUM8(lanes) + rest) / (double)count : 0;
    ck_d8 total = {0}, square = {0};
    double totalRest = 0, squareRest = 0;
    for (j = 0; j + 8 <= count; j += 8) {
        const ck_f8 k = __builtin_convertvector(*(const ck_d8_unaligned *)(means + j) - origin - mean, ck_f8);
        *(ck_f8_unaligned *)(key + j) = k;
        const ck_d8 stored = __builtin_convertvector(k, ck_d8);
        total += stored;
        square += stored * stored;
    }
    for (; j < count; j++) {
        key[j] = (float)((means[j] - origin) - mean);
        const double stored = key[j];
        totalRest += stored;
        squareRest += stored * stored;
    }
    *sum = CK_HSUM8(total) + totalRest;
    *squares = CK_HSUM8(square) + squareRest;
}

// Channel means of channels-last data, 16 channels a vector (see CKernels.h). Each lane is one
// channel: its shift is the balanced sum of its first 16 pixels over 16, its shifted values are added
// in Float over runs of 64 pixels and each run's sums widened to Double (16 lanes as two vectors of 8).
CK_WIDE void ck_shifted_column_means(const float *x, ptrdiff_t pixels, ptrdiff_t stride, int width, int exact,
                                     double *means) {
    enum { maxWidth = 64 };
    const ptrdiff_t run = exact ? 1 : 64;
    const int vectors = width / 16;
    float shift[maxWidth];
    for (int c = 0; c < width; c++) {
        if (exact) {
            shift[c] = 0;
        } else if (pixels >= 16) {
            float pair[8];
            for (int i = 0; i < 8; i++) pair[i] = x[2 * i * stride + c] + x[(2 * i + 1) * stride + c];
            shift[c] = (((pair[0] + pair[1]) + (pair[2] + pair[3])) + ((pair[4] + pair[5]) + (pair[6] + pair[7]))) / 16;
        } else {
            shift[c] = x[c];
        }
    }
    ck_d8 low[maxWidth / 16], high[maxWidth / 16];
    double rest[maxWidth];
    for (int v = 0; v < vectors; v++) low[v] = high[v] = (ck_d8){0};
    for (int c = 0; c < width; c++) rest[c] = 0;
    for (ptrdiff_t p0 = 0; p0 < pixels; p0 += run) {
        const ptrdiff_t p1 = pixels - p0 < run ? pixels : p0 + run;
        for (int v = 0; v < vectors; v++) {
            const ck_f16 s = CK_LOAD16(shift + 16 * v);
            ck_f16 a0 = {0}, a1 = {0};
            ptrdiff_t p = p0;
            for (; p + 2 <= p1; p += 2) {
                a0 += CK_LOAD16(x + p * stride + 16 * v) - s;
                a1 += CK_LOAD16(x + (p + 1) * stride + 16 * v) - s;
            }
            if (p < p1) a0 += CK_LOAD16(x + p * stride + 16 * v) - s;
            const ck_f16 a = a0 + a1;
            low[v] += __builtin_convertvector(__builtin_shufflevector(a, a, 0, 1, 2, 3, 4, 5, 6, 7), ck_d8);
            high[v] += __builtin_convertvector(__builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15), ck_d8);
        }
        for (int c = 16 * vectors; c < width; c++) {
            float a = 0;
            for (ptrdiff_t p = p0; p < p1; p++) a += x[p * stride + c] - shift[c];
            rest[c] += a;
        }
    }
    const double count = (double)pixels;
    for (int v = 0; v < vectors; v++)
        for (int i = 0; i < 8; i++) {
            means[16 * v + i] = (double)shift[16 * v + i] + low[v][i] / count;
            means[16 * v + 8 + i] = (double)shift[16 * v + 8 + i] + high[v][i] / count;
        }
    for (int c = 16 * vectors; c < width; c++) means[c] = (double)shift[c] + rest[c] / count;
}

// Moments of up to 16 pixels' channel vectors (channels-last SPSA, see CKernels.h): each pixel's three
// sums in 16 lanes, then the lanes of 16 pixels folded together by ck_lane_totals16, pixel j in lane j.
CK_WIDE void ck_pixel_moments16(const float *x, ptrdiff_t stride, int pixels, int length, const float *key,
                                int centered, float *sums, float *squares, float *dots) {
    ck_f16 va[16], vq[16], vd[16];
    if (length < 16) {
        for (int j = 0; j < 16; j++) {
            float a = 0, q = 0, d = 0;
            if (j < pixels) {
                const float *row = x + j * stride;
                const float s = centered ? row[0] : 0.0f;
                for (int c = 0; c < length; c++) {
                    const float e = row[c] - s;
                    a += e;
                    q += e * e;
                    d += e * key[c];
                }
            }
            sums[j] = a;
            squares[j] = q;
            dots[j] = d;
        }
        return;
    }
    const int vectors = length / 16, tail = length % 16;
    const ck_i16 keep = CK_LANE_INDEX >= (int)(16 - tail);
    for (int j = 0; j < 16; j++) {
        ck_f16 a = {0}, q = {0}, d = {0};
        if (j < pixels) {
            const float *row = x + j * stride;
            const ck_f16 s = (ck_f16){0} + (centered ? row[0] : 0.0f);
            for (int v = 0; v < vectors; v++) {
                const ck_f16 e = CK_LOAD16(row + 16 * v) - s;
                a += e;
                q += e * e;
                d += e * CK_LOAD16(key + 16 * v);
            }
            if (tail) {
                // The last 16 channels, those already added masked out.
                const ck_f16 e = (ck_f16)((ck_i16)(CK_LOAD16(row + length - 16) - s) & keep);
                a += e;
                q += e * e;
                d += e * CK_LOAD16(key + length - 16);
            }
        }
        va[j] = a;
        vq[j] = q;
        vd[j] = d;
    }
    ck_f16 ta, tq, td;
    ck_lane_totals16(va, &ta);
    ck_lane_totals16(vq, &tq);
    ck_lane_totals16(vd, &td);
    *(ck_f16_unaligned *)sums = ta;
    *(ck_f16_unaligned *)squares = tq;
    *(ck_f16_unaligned *)dots = td;
}
