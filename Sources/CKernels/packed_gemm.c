#include "CKernels.h"
#include <math.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

// A GEMM for convolutions: C = act(A·B + bias + residual) with A (the filters) packed once when the
// model is built, B (the input pixels, or im2col columns) packed per call, and the epilogue applied
// while the last block of C is stored. Against cblas_sgemm plus a separate epilogue pass this drops
// the per-call packing of the filters, OpenBLAS's zeroing pass over C (beta = 0 is a memset), and
// the epilogue's read and write of C.
//
// Layout (BLIS style): A is cut into CK_KC-deep blocks and CK_MR-row panels, each panel stored
// k-major (CK_MR consecutive values per k, zero rows past M). B is packed per (CK_KC × nc) block
// into CK_NR-wide panels, k-major, zero columns past N. The micro-kernel keeps an CK_MR × CK_NR
// tile of C in 16 zmm registers: per k, two loads of B and eight broadcasts of A feed 16 FMAs.
//
// B column j of the batch is pixel j % P of image j / P, so one call covers a whole batch: B
// element (k, j) is at b[(j / P)·bImageStride + k·bRowStride + j % P], and C element (r, j) at
// c[(j / P)·cImageStride + r·cRowStride + j % P] (the residual is laid out like C).

#include "packed_layout.h"
#ifndef CK_NC
#define CK_NC 384
#endif
#ifndef CK_MC
#define CK_MC 128
#endif

ptrdiff_t ck_packed_weights_count(int m, int k) {
    const ptrdiff_t panels = (m + CK_MR - 1) / CK_MR;
    return panels * CK_MR * (ptrdiff_t)k;
}

ptrdiff_t ck_packed_gemm_workspace_count(void) { return (ptrdiff_t)CK_KC * CK_NC; }

int ck_packed_gemm_vectorized(void) {
#if defined(__AVX512F__)
    return 1;
#else
    return 0;
#endif
}

// Block pc (depth k0 ..< k0+kc), panel i: offset k0·Mpad + i·CK_MR·kc.
void ck_pack_weights(const float *a, int m, int k, float *packed) {
    const int panels = (m + CK_MR - 1) / CK_MR;
    for (int k0 = 0; k0 < k; k0 += CK_KC) {
        const int kc = k - k0 < CK_KC ? k - k0 : CK_KC;
        float *block = packed + (ptrdiff_t)k0 * panels * CK_MR;
        for (int i = 0; i < panels; i++) {
            float *panel = block + (ptrdiff_t)i * CK_MR * kc;
            for (int p = 0; p < kc; p++) {
                for (int r = 0; r < CK_MR; r++) {
                    const int row = i * CK_MR + r;
                    panel[p * CK_MR + r] = row < m ? a[(ptrdiff_t)row * k + k0 + p] : 0.0f;
                }
            }
        }
    }
}

// dst[q] = src[q] for lo <= q < hi, 0 for the other q < CK_NR: one row of a B panel. A call to
// memcpy per run cost as much as the micro-kernel on 64-channel layers (packing is amortised over
// only M / 8 row tiles there), so the AVX-512 build copies with two masked loads and stores. The
// masked-out lanes are never read, so src may be "before" the array for lo > 0.
static inline void copy_panel_row(float *dst, const float *src, int lo, int hi) {
#if defined(__AVX512F__)
    const unsigned bits = hi <= lo ? 0u : (unsigned)((hi >= 32 ? 0xFFFFFFFFull : ((1ull << hi) - 1)) & ~((1ull << lo) - 1));
    const __m512 v0 = _mm512_maskz_loadu_ps((__mmask16)(bits & 0xFFFF), src);
    const __m512 v1 = _mm512_maskz_loadu_ps((__mmask16)(bits >> 16), src + 16);
    _mm512_storeu_ps(dst, v0);
    _mm512_storeu_ps(dst + 16, v1);
#else
    for (int q = 0; q < CK_NR; q++) dst[q] = q >= lo && q < hi ? src[q] : 0.0f;
#endif
}

// Packs B rows k0 ..< k0+kc, columns j0 ..< j0+nc into CK_NR-wide k-major panels.
static void pack_b(const float *b, ptrdiff_t imageStride, ptrdiff_t rowStride, int pixels,
                   int k0, int kc, int j0, int nc, float *out) {
    // Panels inside one image are filled depth row by depth row across all panels, so that each
    // input row is read front to back (the hardware prefetcher follows it); panel by panel, every
    // 32-float slice came from a different page and the packing ran at L3 latency.
    const float *source[CK_NC / CK_NR];
    int width[CK_NC / CK_NR], simple[CK_NC / CK_NR];
    const int panels = (nc + CK_NR - 1) / CK_NR;
    for (int q = 0; q < panels; q++) {
        const int jp = q * CK_NR, j = j0 + jp, image = j / pixels, pixel = j % pixels;
        width[q] = nc - jp < CK_NR ? nc - jp : CK_NR;
        simple[q] = pixel + width[q] <= pixels;
        source[q] = b + (ptrdiff_t)image * imageStride + (ptrdiff_t)k0 * rowStride + pixel;
    }
    for (int p = 0; p < kc; p++) {
        for (int q = 0; q < panels; q++) {
            if (simple[q]) copy_panel_row(out + (ptrdiff_t)q * CK_NR * kc + p * CK_NR, source[q] + p * rowStride, 0, width[q]);
        }
    }
    for (int q = 0; q < panels; q++) {
        if (simple[q]) continue;
        // Columns from several images: runs inside one image each.
        float *panel = out + (ptrdiff_t)q * CK_NR * kc;
        const int j = j0 + q * CK_NR;
        for (int p = 0; p < kc; p++) memset(panel + p * CK_NR, 0, sizeof(float) * CK_NR);
        int done = 0;
        while (done < width[q]) {
            const int jj = j + done, im = jj / pixels, px = jj % pixels;
            int run = pixels - px;
            if (run > width[q] - done) run = width[q] - done;
            const float *src = b + (ptrdiff_t)im * imageStride + (ptrdiff_t)k0 * rowStride + px;
            for (int p = 0; p < kc; p++) memcpy(panel + p * CK_NR + done, src + p * rowStride, sizeof(float) * (size_t)run);
            done += run;
        }
    }
}

// B straight from CHW images (im2col fused into packing): row k = (c·kh + i)·kw + jj of image
// column j holds x[c][oy·sh − ph + i·dh][ox·sw − pw + jj·dw] (0 outside), (oy, ox) = divmod(j % P, outW).
typedef struct {
    int channels, height, width, kh, kw, padH, padW, strideH, strideW, dilationH, dilationW, outW;
} ck_image_geometry;

static void pack_b_image(const float *x, ptrdiff_t imageStride, int pixels, const ck_image_geometry *g,
                         int k0, int kc, int j0, int nc, float *out) {
    const int taps = g->kh * g->kw;
    // Decode each depth row k = (c·kh + i)·kw + jj once per block, not once per panel (four
    // integer divisions per row and panel cost as much as packing the values).
    int rowOffset[CK_KC], rowTap[CK_KC], columnTap[CK_KC];
    for (int p = 0; p < kc; p++) {
        const int k = k0 + p, c = k / taps, tap = k % taps;
        rowOffset[p] = c * g->height;
        rowTap[p] = (tap / g->kw) * g->dilationH - g->padH;
        columnTap[p] = (tap % g->kw) * g->dilationW - g->padW;
    }
    // Runs of each panel's columns inside one output row of one image, found once per block.
    enum { maxPanels = CK_NC / CK_NR };
    int runCount[maxPanels];
    int runStartAll[maxPanels][CK_NR], runLengthAll[maxPanels][CK_NR], runImageAll[maxPanels][CK_NR];
    int runRowAll[maxPanels][CK_NR], runColumnAll[maxPanels][CK_NR];
    const int panels = (nc + CK_NR - 1) / CK_NR;
    for (int q = 0; q < panels; q++) {
        const int jp = q * CK_NR;
        const int width = nc - jp < CK_NR ? nc - jp : CK_NR;
        int runs = 0;
        for (int done = 0; done < width;) {
            const int j = j0 + jp + done, image = j / pixels, pixel = j % pixels;
            const int oy = pixel / g->outW, ox = pixel % g->outW;
            int length = g->outW - ox;
            if (length > width - done) length = width - done;
            runStartAll[q][runs] = done; runLengthAll[q][runs] = length; runImageAll[q][runs] = image;
            runRowAll[q][runs] = oy; runColumnAll[q][runs] = ox;
            runs++;
            done += length;
        }
        runCount[q] = runs;
    }
    // Depth rows outer, panels inner: consecutive panels read consecutive stretches of the same
    // input rows (see pack_b).
    for (int p = 0; p < kc; p++) {
        for (int q = 0; q < panels; q++) {
            float *panel = out + (ptrdiff_t)q * CK_NR * kc;
            const int runs = runCount[q];
            const int *runStart = runStartAll[q], *runLength = runLengthAll[q], *runImage = runImageAll[q];
            const int *runRow = runRowAll[q], *runColumn = runColumnAll[q];
            const int dx = columnTap[p], dy = rowTap[p];
#if defined(__AVX512F__)
            // Each run fills its lanes with a masked load (stride 1) or gather; lanes outside the
            // image stay 0 and are never read.
            __m512 v0 = _mm512_setzero_ps(), v1 = v0;
            const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
            const __m512i even = _mm512_add_epi32(lane, lane);
            for (int r = 0; r < runs; r++) {
                const int iy = runRow[r] * g->strideH + dy;
                if (iy < 0 || iy >= g->height) continue;
                const float *row = x + (ptrdiff_t)runImage[r] * imageStride + ((ptrdiff_t)rowOffset[p] + iy) * g->width;
                const int start = runColumn[r] * g->strideW + dx;  // input column of the run's first lane
                int lo = start >= 0 ? 0 : (-start + g->strideW - 1) / g->strideW;
                int hi = (g->width - start + g->strideW - 1) / g->strideW;
                if (hi > runLength[r]) hi = runLength[r];
                if (hi <= lo) continue;
                lo += runStart[r];
                hi += runStart[r];
                const unsigned long long bits = (hi >= 32 ? 0xFFFFFFFFull : ((1ull << hi) - 1)) & ~((1ull << lo) - 1);
                const __mmask16 m0 = (__mmask16)(bits & 0xFFFF), m1 = (__mmask16)(bits >> 16);
                if (g->strideW == 1) {
                    const float *base = (const float *)((const char *)row + (ptrdiff_t)(start - runStart[r]) * (ptrdiff_t)sizeof(float));
                    v0 = _mm512_mask_loadu_ps(v0, m0, base);
                    v1 = _mm512_mask_loadu_ps(v1, m1, base + 16);
                } else if (g->strideW == 2) {
                    // Every other input column: two contiguous loads per 16 lanes and a permute that
                    // keeps the even ones (a gather costs about twice as much here).
                    const char *base0 = (const char *)row + (ptrdiff_t)(start - 2 * runStart[r]) * (ptrdiff_t)sizeof(float);
                    for (int half = 0; half < 2; half++) {
                        const __mmask16 keep = half == 0 ? m0 : m1;
                        if (!keep) continue;
                        // Input offsets used by lanes lo..<hi: 2·lo ..< 2·hi − 1 (relative to base0).
                        long first = 2L * lo - 32L * half, last = 2L * hi - 1 - 32L * half;
                        if (first < 0) first = 0;
                        if (last > 32) last = 32;
                        const unsigned long long need = last <= first ? 0ull :
                            (((last >= 64 ? ~0ull : (1ull << last) - 1)) & ~((1ull << first) - 1));
                        const float *b = (const float *)(base0 + (ptrdiff_t)half * 32 * (ptrdiff_t)sizeof(float));
                        const __m512 a0 = _mm512_maskz_loadu_ps((__mmask16)(need & 0xFFFF), b);
                        const __m512 a1 = _mm512_maskz_loadu_ps((__mmask16)(need >> 16), b + 16);
                        const __m512 picked = _mm512_permutex2var_ps(a0, even, a1);
                        if (half == 0) v0 = _mm512_mask_mov_ps(v0, keep, picked);
                        else v1 = _mm512_mask_mov_ps(v1, keep, picked);
                    }
                } else {
                    const __m512i stride = _mm512_set1_epi32(g->strideW);
                    const __m512i first = _mm512_set1_epi32(runStart[r]);
                    const __m512i i0 = _mm512_mullo_epi32(_mm512_sub_epi32(lane, first), stride);
                    const __m512i i1 = _mm512_add_epi32(i0, _mm512_mullo_epi32(_mm512_set1_epi32(16), stride));
                    const float *base = row + start;
                    if (m0) v0 = _mm512_mask_i32gather_ps(v0, m0, i0, base, 4);
                    if (m1) v1 = _mm512_mask_i32gather_ps(v1, m1, i1, base, 4);
                }
            }
            _mm512_storeu_ps(panel + p * CK_NR, v0);
            _mm512_storeu_ps(panel + p * CK_NR + 16, v1);
#else
            float *dst = panel + p * CK_NR;
            for (int l = 0; l < CK_NR; l++) dst[l] = 0.0f;
            for (int r = 0; r < runs; r++) {
                const int iy = runRow[r] * g->strideH + dy;
                if (iy < 0 || iy >= g->height) continue;
                const float *row = x + (ptrdiff_t)runImage[r] * imageStride + ((ptrdiff_t)rowOffset[p] + iy) * g->width;
                for (int l = 0; l < runLength[r]; l++) {
                    const int ix = (runColumn[r] + l) * g->strideW + dx;
                    if (ix >= 0 && ix < g->width) dst[runStart[r] + l] = row[ix];
                }
            }
#endif
        }
    }
}

// Stores one finished row segment of C: mode 0 first block (store), 1 middle (add), 2 last block
// (add unless first, then bias, residual, activation).
static inline float ck_act(float v, int activation) {
    if (activation == 0) return v;
    v = v < 0.0f ? 0.0f : v;
    return activation == 2 && v > 6.0f ? 6.0f : v;
}

typedef struct {
    float *c; ptrdiff_t cImageStride, cRowStride;
    const float *residual; const float *bias; int activation;
    int pixels;
} ck_output;

// Scalar path for tiles whose columns cross an image boundary or lack a vector unit.
static void store_tile_scalar(const float *tile, int rows, int row0, int j, int width, int first, int last,
                              const ck_output *o) {
    for (int r = 0; r < rows; r++) {
        for (int q = 0; q < width; q++) {
            const int jj = j + q, image = jj / o->pixels, pixel = jj % o->pixels;
            const ptrdiff_t at = (ptrdiff_t)image * o->cImageStride + (ptrdiff_t)(row0 + r) * o->cRowStride + pixel;
            float v = tile[r * CK_NR + q];
            if (!first) v += o->c[at];
            if (last) {
                if (o->bias) v += o->bias[row0 + r];
                if (o->residual) v += o->residual[at];
                v = ck_act(v, o->activation);
            }
            o->c[at] = v;
        }
    }
}

#if defined(__AVX512F__)
static inline __m512 ck_act512(__m512 v, int activation) {
    if (activation == 0) return v;
    // max(v, 0) with NaN kept: compare-and-blend, as the scalar epilogue.
    const __m512 zero = _mm512_setzero_ps();
    v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v, zero);
    if (activation == 2) {
        const __m512 six = _mm512_set1_ps(6.0f);
        v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, six, _CMP_GT_OQ), v, six);
    }
    return v;
}

static void kernel_8x32(int kc, const float *a, const float *b, int rows, int row0, int j, int width,
                        int first, int last, const ck_output *o) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    for (int p = 0; p < kc; p++) {
        const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        __m512 w;
        w = _mm512_set1_ps(a[0]); c00 = _mm512_fmadd_ps(w, b0, c00); c01 = _mm512_fmadd_ps(w, b1, c01);
        w = _mm512_set1_ps(a[1]); c10 = _mm512_fmadd_ps(w, b0, c10); c11 = _mm512_fmadd_ps(w, b1, c11);
        w = _mm512_set1_ps(a[2]); c20 = _mm512_fmadd_ps(w, b0, c20); c21 = _mm512_fmadd_ps(w, b1, c21);
        w = _mm512_set1_ps(a[3]); c30 = _mm512_fmadd_ps(w, b0, c30); c31 = _mm512_fmadd_ps(w, b1, c31);
        w = _mm512_set1_ps(a[4]); c40 = _mm512_fmadd_ps(w, b0, c40); c41 = _mm512_fmadd_ps(w, b1, c41);
        w = _mm512_set1_ps(a[5]); c50 = _mm512_fmadd_ps(w, b0, c50); c51 = _mm512_fmadd_ps(w, b1, c51);
        w = _mm512_set1_ps(a[6]); c60 = _mm512_fmadd_ps(w, b0, c60); c61 = _mm512_fmadd_ps(w, b1, c61);
        w = _mm512_set1_ps(a[7]); c70 = _mm512_fmadd_ps(w, b0, c70); c71 = _mm512_fmadd_ps(w, b1, c71);
        a += CK_MR;
        b += CK_NR;
    }
    __m512 acc[CK_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                            {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
    const int image = j / o->pixels, pixel = j % o->pixels;
    if (pixel + width > o->pixels) {
        float tile[CK_MR * CK_NR];
        for (int r = 0; r < CK_MR; r++) {
            _mm512_storeu_ps(tile + r * CK_NR, acc[r][0]);
            _mm512_storeu_ps(tile + r * CK_NR + 16, acc[r][1]);
        }
        store_tile_scalar(tile, rows, row0, j, width, first, last, o);
        return;
    }
    const __mmask16 m0 = width >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << width) - 1);
    const __mmask16 m1 = width >= 32 ? (__mmask16)0xFFFF : (width > 16 ? (__mmask16)((1u << (width - 16)) - 1) : 0);
    const ptrdiff_t base = (ptrdiff_t)image * o->cImageStride + pixel;
    for (int r = 0; r < rows; r++) {
        float *c = o->c + base + (ptrdiff_t)(row0 + r) * o->cRowStride;
        __m512 v0 = acc[r][0], v1 = acc[r][1];
        if (!first) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, c));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, c + 16));
        }
        if (last) {
            if (o->bias) {
                const __m512 bias = _mm512_set1_ps(o->bias[row0 + r]);
                v0 = _mm512_add_ps(v0, bias);
                v1 = _mm512_add_ps(v1, bias);
            }
            if (o->residual) {
                const float *x = o->residual + base + (ptrdiff_t)(row0 + r) * o->cRowStride;
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, x));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, x + 16));
            }
            v0 = ck_act512(v0, o->activation);
            v1 = ck_act512(v1, o->activation);
        }
        _mm512_mask_storeu_ps(c, m0, v0);
        _mm512_mask_storeu_ps(c + 16, m1, v1);
    }
}
#else
static void kernel_8x32(int kc, const float *a, const float *b, int rows, int row0, int j, int width,
                        int first, int last, const ck_output *o) {
    float tile[CK_MR * CK_NR];
    for (int i = 0; i < CK_MR * CK_NR; i++) tile[i] = 0.0f;
    for (int p = 0; p < kc; p++) {
        for (int r = 0; r < CK_MR; r++) {
            const float w = a[p * CK_MR + r];
            for (int q = 0; q < CK_NR; q++) tile[r * CK_NR + q] += w * b[p * CK_NR + q];
        }
    }
    store_tile_scalar(tile, rows, row0, j, width, first, last, o);
}
#endif

static void packed_gemm(const float *packedA, int m, int k,
                        const float *b, ptrdiff_t bImageStride, ptrdiff_t bRowStride, int pixels,
                        const ck_image_geometry *geometry, const ck_output *o,
                        int rowBegin, int rowEnd, int columnBegin, int columnEnd, float *workspace) {
    const int panels = (m + CK_MR - 1) / CK_MR;
    for (int j0 = columnBegin; j0 < columnEnd; j0 += CK_NC) {
        const int nc = columnEnd - j0 < CK_NC ? columnEnd - j0 : CK_NC;
        for (int k0 = 0; k0 < k; k0 += CK_KC) {
            const int kc = k - k0 < CK_KC ? k - k0 : CK_KC;
            const int first = k0 == 0, last = k0 + kc == k;
            if (geometry) pack_b_image(b, bImageStride, pixels, geometry, k0, kc, j0, nc, workspace);
            else pack_b(b, bImageStride, bRowStride, pixels, k0, kc, j0, nc, workspace);
            const float *block = packedA + (ptrdiff_t)k0 * panels * CK_MR;
            // CK_MC rows of A (128 KiB at kc = 256) stay in L2 while every B panel passes; one B
            // panel (32 KiB) stays in L1 while the A panels of those rows pass.
            for (int i0 = rowBegin; i0 < rowEnd; i0 += CK_MC) {
                const int i1 = rowEnd - i0 < CK_MC ? rowEnd : i0 + CK_MC;
                for (int jp = 0; jp < nc; jp += CK_NR) {
                    const int width = nc - jp < CK_NR ? nc - jp : CK_NR;
                    const float *bp = workspace + (ptrdiff_t)jp * kc;
                    for (int row0 = i0; row0 < i1; row0 += CK_MR) {
                        const int rows = i1 - row0 < CK_MR ? i1 - row0 : CK_MR;
                        kernel_8x32(kc, block + (ptrdiff_t)(row0 / CK_MR) * CK_MR * kc, bp, rows, row0, j0 + jp, width,
                                    first, last, o);
                    }
                }
            }
        }
    }
}

void ck_packed_gemm(const float *packedA, int m, int k,
                    const float *b, ptrdiff_t bImageStride, ptrdiff_t bRowStride, int pixels,
                    float *c, ptrdiff_t cImageStride, ptrdiff_t cRowStride,
                    const float *bias, const float *residual, int activation,
                    int rowBegin, int rowEnd, int columnBegin, int columnEnd, float *workspace) {
    const ck_output o = {c, cImageStride, cRowStride, residual, bias, activation, pixels};
    packed_gemm(packedA, m, k, b, bImageStride, bRowStride, pixels, NULL, &o,
                rowBegin, rowEnd, columnBegin, columnEnd, workspace);
}

void ck_packed_conv(const float *packedA, int m,
                    const float *x, ptrdiff_t xImageStride, int channels, int height, int width,
                    int kh, int kw, int padH, int padW, int strideH, int strideW, int dilationH, int dilationW,
                    float *c, ptrdiff_t cImageStride, ptrdiff_t cRowStride,
                    const float *bias, const float *residual, int activation,
                    int rowBegin, int rowEnd, int columnBegin, int columnEnd, float *workspace) {
    const int outH = (height + 2 * padH - dilationH * (kh - 1) - 1) / strideH + 1;
    const int outW = (width + 2 * padW - dilationW * (kw - 1) - 1) / strideW + 1;
    const ck_image_geometry g = {channels, height, width, kh, kw, padH, padW, strideH, strideW, dilationH, dilationW, outW};
    const int pixels = outH * outW;
    const ck_output o = {c, cImageStride, cRowStride, residual, bias, activation, pixels};
    packed_gemm(packedA, m, channels * kh * kw, x, xImageStride, 0, pixels, &g, &o,
                rowBegin, rowEnd, columnBegin, columnEnd, workspace);
}

void ck_packed_gemm_prepacked(const float *packedA, int m, int k, const float *packedB, int n,
                              float *c, ptrdiff_t ldc, int rowBegin, int rowEnd) {
    const int panels = (m + CK_MR - 1) / CK_MR;
    const int columnPanels = (n + CK_NR - 1) / CK_NR;
    const ck_output o = {c, 0, ldc, NULL, NULL, 0, n};
    for (int k0 = 0; k0 < k; k0 += CK_KC) {
        const int kc = k - k0 < CK_KC ? k - k0 : CK_KC;
        const int first = k0 == 0, last = k0 + kc == k;
        const float *block = packedA + (ptrdiff_t)k0 * panels * CK_MR;
        const float *bBlock = packedB + (ptrdiff_t)k0 * columnPanels * CK_NR;
        for (int jp = 0; jp < columnPanels; jp++) {
            const int width = n - jp * CK_NR < CK_NR ? n - jp * CK_NR : CK_NR;
            for (int row0 = rowBegin; row0 < rowEnd; row0 += CK_MR) {
                const int rows = rowEnd - row0 < CK_MR ? rowEnd - row0 : CK_MR;
                kernel_8x32(kc, block + (ptrdiff_t)(row0 / CK_MR) * CK_MR * kc, bBlock + (ptrdiff_t)jp * kc * CK_NR,
                            rows, row0, jp * CK_NR, width, first, last, &o);
            }
        }
    }
}
