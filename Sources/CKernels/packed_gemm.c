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
// Layout (BLIS style): A is cut into CK_KC-deep blocks and CK_MP-row panels, each panel stored
// k-major (CK_MP consecutive values per k, zero rows past M). B is packed per (CK_KC × nc) block
// into CK_NR-wide panels, k-major, zero columns past N. The micro-kernel keeps an CK_MR × CK_NR
// tile of C in 16 zmm registers: per k, two loads of B and eight broadcasts of A (half a panel)
// feed 16 FMAs. Few columns take the channels-in-lanes path instead (packed_gemm_column_tiles).
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
// Workspace floats of the channels-in-lanes path: column tiles and partial sums.
#define CK_TILE_WORKSPACE 262144

ptrdiff_t ck_packed_weights_count(int m, int k) {
    const ptrdiff_t panels = (m + CK_MP - 1) / CK_MP;
    return panels * CK_MP * (ptrdiff_t)k;
}

// One packed block of B (CK_KC × CK_NC), or the column tiles of packed_gemm_column_tiles.
ptrdiff_t ck_packed_gemm_workspace_count(void) {
    const ptrdiff_t block = (ptrdiff_t)CK_KC * CK_NC;
    return block > CK_TILE_WORKSPACE ? block : CK_TILE_WORKSPACE;
}

int ck_packed_gemm_vectorized(void) {
#if defined(__AVX512F__)
    return 1;
#else
    return 0;
#endif
}

// Block pc (depth k0 ..< k0+kc), panel i: offset k0·Mpad + i·CK_MP·kc.
void ck_pack_weights(const float *a, int m, int k, float *packed) {
    const int panels = (m + CK_MP - 1) / CK_MP;
    for (int k0 = 0; k0 < k; k0 += CK_KC) {
        const int kc = k - k0 < CK_KC ? k - k0 : CK_KC;
        float *block = packed + (ptrdiff_t)k0 * panels * CK_MP;
        for (int i = 0; i < panels; i++) {
            float *panel = block + (ptrdiff_t)i * CK_MP * kc;
            for (int p = 0; p < kc; p++) {
                for (int r = 0; r < CK_MP; r++) {
                    const int row = i * CK_MP + r;
                    panel[p * CK_MP + r] = row < m ? a[(ptrdiff_t)row * k + k0 + p] : 0.0f;
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

// Depth row p = (c·kh + i)·kw + jj of the im2col matrix: channel c, the tap's offsets
// dy = i·dh − ph and dx = jj·dw − pw, and the output columns ox whose input column ox·sw + dx lies
// inside the image, columnLo ..< columnHi (found once per row: two divisions per run and row cost
// a third of the packing of a 3×3 stride-2 layer).
typedef struct { int channel, dy, dx, columnLo, columnHi; } ck_depth_row;

static inline ck_depth_row depth_row(const ck_image_geometry *g, int p) {
    const int taps = g->kh * g->kw, tap = p % taps;
    ck_depth_row d;
    d.channel = p / taps;
    d.dy = (tap / g->kw) * g->dilationH - g->padH;
    d.dx = (tap % g->kw) * g->dilationW - g->padW;
    d.columnLo = d.dx >= 0 ? 0 : (-d.dx + g->strideW - 1) / g->strideW;
    d.columnHi = (g->width - d.dx + g->strideW - 1) / g->strideW;
    return d;
}

static void pack_b_image(const float *x, ptrdiff_t imageStride, int pixels, const ck_image_geometry *g,
                         int k0, int kc, int j0, int nc, float *out) {
    // Decode each depth row once per block, not once per panel (four integer divisions per row
    // and panel cost as much as packing the values).
    int rowOffset[CK_KC], rowTap[CK_KC], columnTap[CK_KC], columnLo[CK_KC], columnHi[CK_KC];
    for (int p = 0; p < kc; p++) {
        const ck_depth_row d = depth_row(g, k0 + p);
        rowOffset[p] = d.channel * g->height;
        rowTap[p] = d.dy;
        columnTap[p] = d.dx;
        columnLo[p] = d.columnLo;
        columnHi[p] = d.columnHi;
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
                int lo = columnLo[p] - runColumn[r], hi = columnHi[p] - runColumn[r];
                if (lo < 0) lo = 0;
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

// Rows row0 ..< row0 + 8 (row0 a multiple of 8) of a packed depth block kc deep.
static inline const float *panel_rows(const float *block, int row0, int kc) {
    return block + (ptrdiff_t)(row0 / CK_MP) * CK_MP * kc + row0 % CK_MP;
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

// The 8 × 32 kernel; with `prefetch` set it also fetches `prefetchLines` 64-byte lines from
// `prefetch` on into L2, one every other depth step (the rest after the loop).
static inline __attribute__((always_inline))
void kernel_8x32_body(int kc, const float *a, const float *b, int rows, int row0, int j, int width,
                      int first, int last, const ck_output *o, const float *prefetch, int prefetchLines) {
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
        a += CK_MP;
        b += CK_NR;
        if (prefetch && prefetchLines > 0 && (p & 1)) {
            _mm_prefetch((const char *)prefetch, _MM_HINT_T1);
            prefetch += 16;
            prefetchLines--;
        }
    }
    if (prefetch) {
        for (; prefetchLines > 0; prefetchLines--, prefetch += 16) _mm_prefetch((const char *)prefetch, _MM_HINT_T1);
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

static void kernel_8x32(int kc, const float *a, const float *b, int rows, int row0, int j, int width,
                        int first, int last, const ck_output *o) {
    kernel_8x32_body(kc, a, b, rows, row0, j, width, first, last, o, NULL, 0);
}

static void kernel_8x32_prefetching(int kc, const float *a, const float *b, int rows, int row0, int j, int width,
                                    int first, int last, const ck_output *o, const float *prefetch, int prefetchLines) {
    kernel_8x32_body(kc, a, b, rows, row0, j, width, first, last, o, prefetch, prefetchLines);
}
#else
static void kernel_8x32(int kc, const float *a, const float *b, int rows, int row0, int j, int width,
                        int first, int last, const ck_output *o) {
    float tile[CK_MR * CK_NR];
    for (int i = 0; i < CK_MR * CK_NR; i++) tile[i] = 0.0f;
    for (int p = 0; p < kc; p++) {
        for (int r = 0; r < CK_MR; r++) {
            const float w = a[p * CK_MP + r];
            for (int q = 0; q < CK_NR; q++) tile[r * CK_NR + q] += w * b[p * CK_NR + q];
        }
    }
    store_tile_scalar(tile, rows, row0, j, width, first, last, o);
}

static void kernel_8x32_prefetching(int kc, const float *a, const float *b, int rows, int row0, int j, int width,
                                    int first, int last, const ck_output *o, const float *prefetch, int prefetchLines) {
    (void)prefetch; (void)prefetchLines;
    kernel_8x32(kc, a, b, rows, row0, j, width, first, last, o);
}
#endif

#if defined(__AVX512F__)
// Channels-in-lanes path. Where the columns leave much of the last 32-wide panel empty (7×7 and
// 14×14 outputs at batch 1: 49 columns are computed as 64, 196 as 224), C is computed in tiles
// of up to 64 rows (four 16-row panels of A, one vector each) by CK_TW columns, the rows in the
// vector lanes and the columns broadcast: 28 accumulators, four loads of A and seven broadcasts
// of B per depth step. Every ResNet output size (112², 56², 28², 14², 7²) is a multiple of 7, so
// no lane is wasted there.
//
// B is packed per column tile for the whole depth (CK_TS floats a depth step: CK_TW values and a
// zero), tiles in blocks that fit the workspace. A is read in 128-deep sub-blocks (64 rows ×
// 128 × 4 B = 32 KiB stay in L1 while the block's tiles pass); the tiles' partial sums wait in
// the workspace between sub-blocks, and each tile is transposed into C once, at the end. The
// workspace need not be aligned (unaligned loads and stores; Conv2D aligns it to 64 bytes anyway).
#define CK_TW 7
#define CK_TS 8
#ifndef CK_TKC
#define CK_TKC 128
#endif
#define CK_TACC (4 * CK_TW * 16)

// acc (CK_TACC floats) = [first ? 0 : acc] + A(np panels, kc deep) · B(kc × CK_TW): vector v of
// column q at acc + (v·CK_TW + q)·16.
static inline __attribute__((always_inline))
void tile_kernel(int np, int kc, const float *a, ptrdiff_t panelStride, const float *b, float *acc, int first) {
    __m512 c[4][CK_TW];
    for (int v = 0; v < np; v++) {
        for (int q = 0; q < CK_TW; q++) c[v][q] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(acc + (v * CK_TW + q) * 16);
    }
    for (int p = 0; p < kc; p++) {
        __m512 w[4];
        for (int v = 0; v < np; v++) w[v] = _mm512_loadu_ps(a + v * panelStride);
        for (int q = 0; q < CK_TW; q++) {
            const __m512 x = _mm512_set1_ps(b[q]);
            for (int v = 0; v < np; v++) c[v][q] = _mm512_fmadd_ps(w[v], x, c[v][q]);
        }
        a += CK_MP;
        b += CK_TS;
    }
    for (int v = 0; v < np; v++) {
        for (int q = 0; q < CK_TW; q++) _mm512_storeu_ps(acc + (v * CK_TW + q) * 16, c[v][q]);
    }
}

// np = 4 written out: through tile_kernel's loops clang shuffled registers and spilled in the
// depth loop (28 accumulators and 4 vectors of A take all 32 zmm registers).
static void tile_kernel4(int kc, const float *a, ptrdiff_t panelStride, const float *b, float *acc, int first) {
    __m512 c[4][CK_TW];
    for (int v = 0; v < 4; v++) {
        for (int q = 0; q < CK_TW; q++) c[v][q] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(acc + (v * CK_TW + q) * 16);
    }
    const float *a0 = a, *a1 = a + panelStride, *a2 = a + 2 * panelStride, *a3 = a + 3 * panelStride;
    for (int p = 0; p < kc; p++) {
        const __m512 w0 = _mm512_loadu_ps(a0), w1 = _mm512_loadu_ps(a1), w2 = _mm512_loadu_ps(a2), w3 = _mm512_loadu_ps(a3);
#define CK_TILE_COLUMN(q) { const __m512 x = _mm512_set1_ps(b[q]); \
        c[0][q] = _mm512_fmadd_ps(w0, x, c[0][q]); c[1][q] = _mm512_fmadd_ps(w1, x, c[1][q]); \
        c[2][q] = _mm512_fmadd_ps(w2, x, c[2][q]); c[3][q] = _mm512_fmadd_ps(w3, x, c[3][q]); }
        CK_TILE_COLUMN(0) CK_TILE_COLUMN(1) CK_TILE_COLUMN(2) CK_TILE_COLUMN(3)
        CK_TILE_COLUMN(4) CK_TILE_COLUMN(5) CK_TILE_COLUMN(6)
#undef CK_TILE_COLUMN
        a0 += CK_MP; a1 += CK_MP; a2 += CK_MP; a3 += CK_MP;
        b += CK_TS;
    }
    for (int v = 0; v < 4; v++) {
        for (int q = 0; q < CK_TW; q++) _mm512_storeu_ps(acc + (v * CK_TW + q) * 16, c[v][q]);
    }
}

static void tile_kernel_np(int np, int kc, const float *a, ptrdiff_t panelStride, const float *b, float *acc, int first) {
    switch (np) {
    case 4: tile_kernel4(kc, a, panelStride, b, acc, first); break;
    case 3: tile_kernel(3, kc, a, panelStride, b, acc, first); break;
    case 2: tile_kernel(2, kc, a, panelStride, b, acc, first); break;
    default: tile_kernel(1, kc, a, panelStride, b, acc, first); break;
    }
}

// Writes rows row0 ..< row0 + rows, columns j ..< j + width of C from a finished tile, with the
// epilogue (bias, residual, activation).
static void store_column_tile(const float *acc, int rows, int row0, int j, int width, const ck_output *o) {
    const int image = j / o->pixels, pixel = j % o->pixels;
    const __m256i index = _mm256_setr_epi32(0, 16, 32, 48, 64, 80, 96, 0);
    const __mmask8 mask = (__mmask8)((1u << width) - 1);
    const int contiguous = pixel + width <= o->pixels;
    for (int r = 0; r < rows; r++) {
        __m256 v = _mm256_mmask_i32gather_ps(_mm256_setzero_ps(), mask, index, acc + (r / 16) * CK_TW * 16 + r % 16, 4);
        if (!contiguous) {  // columns from more than one image
            float value[CK_TS];
            _mm256_storeu_ps(value, v);
            store_tile_scalar(value, 1, row0 + r, j, width, 1, 1, o);
            continue;
        }
        const ptrdiff_t at = (ptrdiff_t)image * o->cImageStride + (ptrdiff_t)(row0 + r) * o->cRowStride + pixel;
        if (o->bias) v = _mm256_add_ps(v, _mm256_set1_ps(o->bias[row0 + r]));
        if (o->residual) v = _mm256_add_ps(v, _mm256_maskz_loadu_ps(mask, o->residual + at));
        v = _mm512_castps512_ps256(ck_act512(_mm512_castps256_ps512(v), o->activation));
        _mm256_mask_storeu_ps(o->c + at, mask, v);
    }
}

// Packs columns j0 ..< j0 + nc, the whole depth k, into column tiles tileStride floats apart:
// tile t holds B(p, j0 + t·CK_TW + q) at p·CK_TS + q, zero for q past the range.
static void pack_column_tiles(const float *b, ptrdiff_t imageStride, ptrdiff_t rowStride, int pixels,
                              const ck_image_geometry *g, int k, int j0, int nc, float *out, ptrdiff_t tileStride) {
    const int tiles = (nc + CK_TW - 1) / CK_TW;
    if (!g) {
        // Pointwise: a tile inside one image is CK_TW consecutive values of each input row.
        for (int p = 0; p < k; p++) {
            for (int t = 0; t < tiles; t++) {
                const int j = j0 + t * CK_TW, width = nc - t * CK_TW < CK_TW ? nc - t * CK_TW : CK_TW;
                const int image = j / pixels, pixel = j % pixels;
                float *dst = out + (ptrdiff_t)t * tileStride + (ptrdiff_t)p * CK_TS;
                if (pixel + width <= pixels) {
                    const float *src = b + (ptrdiff_t)image * imageStride + (ptrdiff_t)p * rowStride + pixel;
                    _mm256_storeu_ps(dst, _mm256_maskz_loadu_ps((__mmask8)((1u << width) - 1), src));
                } else {
                    for (int q = 0; q < CK_TS; q++) {
                        const int jj = j + q;
                        dst[q] = q < width ? b[(ptrdiff_t)(jj / pixels) * imageStride + (ptrdiff_t)p * rowStride + jj % pixels] : 0.0f;
                    }
                }
            }
        }
        return;
    }
    // im2col: lane q of tile t reads x[image][c][oy·sh + dy][ox·sw + dx] for depth row
    // p = (c·kh + i)·kw + jj (depth_row); zero outside the image. A tile inside one output row
    // (every tile of the ResNet layers) reads one input row per depth row: a masked load at
    // stride 1, a load and a permute at stride 2. Other tiles gather, with each lane's image
    // offset, oy·sh and ox·sw decoded once per block.
    const ptrdiff_t plane = (ptrdiff_t)g->height * g->width;
    enum { maxBlockTiles = CK_TILE_WORKSPACE / (16 + CK_TACC) + 1 };  // tileStride >= 16
    int rowTile[maxBlockTiles], tileImage[maxBlockTiles], tileY[maxBlockTiles], tileX[maxBlockTiles], tileWidth[maxBlockTiles];
    int laneY[maxBlockTiles][CK_TS], laneX[maxBlockTiles][CK_TS];
    long long laneImage[maxBlockTiles][CK_TS];
    for (int t = 0; t < tiles; t++) {
        const int j = j0 + t * CK_TW, width = nc - t * CK_TW < CK_TW ? nc - t * CK_TW : CK_TW;
        const int image = j / pixels, pixel = j % pixels;
        tileImage[t] = image;
        tileY[t] = pixel / g->outW * g->strideH;
        tileX[t] = pixel % g->outW;
        tileWidth[t] = width;
        rowTile[t] = pixel % g->outW + width <= g->outW && (g->strideW == 1 || g->strideW == 2);
        for (int q = 0; q < CK_TS; q++) {
            const int jj = j + (q < width ? q : 0), im = jj / pixels, px = jj % pixels;
            laneImage[t][q] = (long long)(im - image) * imageStride;
            laneY[t][q] = q < width ? px / g->outW * g->strideH : -(1 << 28);  // never inside
            laneX[t][q] = px % g->outW * g->strideW;
        }
    }
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (int p = 0; p < k; p++) {
        const ck_depth_row d = depth_row(g, p);
        for (int t = 0; t < tiles; t++) {
            float *dst = out + (ptrdiff_t)t * tileStride + (ptrdiff_t)p * CK_TS;
            const float *image = b + (ptrdiff_t)tileImage[t] * imageStride + d.channel * plane;
            if (rowTile[t]) {
                // Lanes lo ..< hi read inside the image.
                const int iy = tileY[t] + d.dy, sw = g->strideW;
                int lo = d.columnLo - tileX[t], hi = d.columnHi - tileX[t];
                if (lo < 0) lo = 0;
                if (hi > tileWidth[t]) hi = tileWidth[t];
                if (iy < 0 || iy >= g->height || hi <= lo) {
                    _mm256_storeu_ps(dst, _mm256_setzero_ps());
                    continue;
                }
                const float *row = image + (ptrdiff_t)iy * g->width + tileX[t] * sw + d.dx;
                const unsigned lanes = ((1u << hi) - 1) & ~((1u << lo) - 1);
                if (sw == 1) {
                    _mm256_storeu_ps(dst, _mm256_maskz_loadu_ps((__mmask8)lanes, row));
                } else {
                    // Lane q is input column 2q: load the even positions 2·lo ..< 2·hi − 1 and keep every other.
                    const unsigned need = ((1u << (2 * hi - 1)) - 1) & ~((1u << (2 * lo)) - 1);
                    const __m512 wide = _mm512_maskz_loadu_ps((__mmask16)need, row);
                    _mm256_storeu_ps(dst, _mm512_castps512_ps256(_mm512_permutexvar_ps(even, wide)));
                }
                continue;
            }
            // 64-bit indices: a tile may cross images, each lane offset by its own.
            const __m256i iy = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)laneY[t]), _mm256_set1_epi32(d.dy));
            const __m256i ix = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)laneX[t]), _mm256_set1_epi32(d.dx));
            const __mmask8 inside = _mm256_cmplt_epu32_mask(iy, _mm256_set1_epi32(g->height)) &
                                    _mm256_cmplt_epu32_mask(ix, _mm256_set1_epi32(g->width));
            const __m256i inPlane = _mm256_add_epi32(_mm256_mullo_epi32(iy, _mm256_set1_epi32(g->width)), ix);
            const __m512i index = _mm512_add_epi64(_mm512_loadu_si512(laneImage[t]), _mm512_cvtepi32_epi64(inPlane));
            _mm256_storeu_ps(dst, _mm512_mask_i64gather_ps(_mm256_setzero_ps(), inside, index, image, 4));
        }
    }
}

// Whether the channels-in-lanes path should take columns columnBegin ..< columnEnd from row
// rowBegin: it wastes fewer lanes by at least 1/16 of the work, and one tile of the whole depth fits.
static int prefers_column_tiles(int k, int rowBegin, int columnBegin, int columnEnd) {
    const int n = columnEnd - columnBegin;
    if (rowBegin % CK_MP != 0 || n <= 0) return 0;
    if ((ptrdiff_t)k * CK_TS + CK_TACC > CK_TILE_WORKSPACE) return 0;
    const int wide = (n + CK_NR - 1) / CK_NR * CK_NR, narrow = (n + CK_TW - 1) / CK_TW * CK_TW;
    // (wide − n) / wide > (narrow − n) / narrow + 1/16
    return 16.0 * ((double)(wide - n) / wide - (double)(narrow - n) / narrow) > 1.0;
}

static void packed_gemm_column_tiles(const float *packedA, int m, int k,
                                     const float *b, ptrdiff_t bImageStride, ptrdiff_t bRowStride, int pixels,
                                     const ck_image_geometry *geometry, const ck_output *o,
                                     int rowBegin, int rowEnd, int columnBegin, int columnEnd, float *workspace) {
    const int panels = (m + CK_MP - 1) / CK_MP;
    const ptrdiff_t tileStride = ((ptrdiff_t)k * CK_TS + 15) / 16 * 16;
    int tilesPerBlock = (int)(CK_TILE_WORKSPACE / (tileStride + CK_TACC));
    if (tilesPerBlock < 1) tilesPerBlock = 1;
    for (int j0 = columnBegin; j0 < columnEnd; j0 += tilesPerBlock * CK_TW) {
        const int nc = columnEnd - j0 < tilesPerBlock * CK_TW ? columnEnd - j0 : tilesPerBlock * CK_TW;
        const int tiles = (nc + CK_TW - 1) / CK_TW;
        float *acc = workspace + (ptrdiff_t)tiles * tileStride;
        pack_column_tiles(b, bImageStride, bRowStride, pixels, geometry, k, j0, nc, workspace, tileStride);
        for (int row0 = rowBegin; row0 < rowEnd; row0 += 4 * CK_MP) {
            const int rows = rowEnd - row0 < 4 * CK_MP ? rowEnd - row0 : 4 * CK_MP;
            const int np = (rows + CK_MP - 1) / CK_MP;
            for (int k0 = 0; k0 < k; k0 += CK_KC) {
                const int kc = k - k0 < CK_KC ? k - k0 : CK_KC;
                const float *block = packedA + (ptrdiff_t)k0 * panels * CK_MP + (ptrdiff_t)(row0 / CK_MP) * CK_MP * kc;
                for (int s = 0; s < kc; s += CK_TKC) {
                    const int depth = kc - s < CK_TKC ? kc - s : CK_TKC;
                    for (int t = 0; t < tiles; t++) {
                        tile_kernel_np(np, depth, block + (ptrdiff_t)s * CK_MP, (ptrdiff_t)CK_MP * kc,
                                       workspace + (ptrdiff_t)t * tileStride + (ptrdiff_t)(k0 + s) * CK_TS,
                                       acc + (ptrdiff_t)t * CK_TACC, k0 + s == 0);
                    }
                }
            }
            for (int t = 0; t < tiles; t++) {
                const int width = nc - t * CK_TW < CK_TW ? nc - t * CK_TW : CK_TW;
                store_column_tile(acc + (ptrdiff_t)t * CK_TACC, rows, row0, j0 + t * CK_TW, width, o);
            }
        }
    }
}
#endif

static void packed_gemm(const float *packedA, int m, int k,
                        const float *b, ptrdiff_t bImageStride, ptrdiff_t bRowStride, int pixels,
                        const ck_image_geometry *geometry, const ck_output *o,
                        int rowBegin, int rowEnd, int columnBegin, int columnEnd, float *workspace) {
#if defined(__AVX512F__)
    if (prefers_column_tiles(k, rowBegin, columnBegin, columnEnd)) {
        packed_gemm_column_tiles(packedA, m, k, b, bImageStride, bRowStride, pixels, geometry, o,
                                 rowBegin, rowEnd, columnBegin, columnEnd, workspace);
        return;
    }
#endif
    const int panels = (m + CK_MP - 1) / CK_MP;
    for (int j0 = columnBegin; j0 < columnEnd; j0 += CK_NC) {
        const int nc = columnEnd - j0 < CK_NC ? columnEnd - j0 : CK_NC;
        for (int k0 = 0; k0 < k; k0 += CK_KC) {
            const int kc = k - k0 < CK_KC ? k - k0 : CK_KC;
            const int first = k0 == 0, last = k0 + kc == k;
            if (geometry) pack_b_image(b, bImageStride, pixels, geometry, k0, kc, j0, nc, workspace);
            else pack_b(b, bImageStride, bRowStride, pixels, k0, kc, j0, nc, workspace);
            const float *block = packedA + (ptrdiff_t)k0 * panels * CK_MP;
            // CK_MC rows of A (128 KiB at kc = 256) stay in L2 while every B panel passes; one B
            // panel (32 KiB) stays in L1 while the A panels of those rows pass.
            for (int i0 = rowBegin; i0 < rowEnd; i0 += CK_MC) {
                const int i1 = rowEnd - i0 < CK_MC ? rowEnd : i0 + CK_MC;
                for (int jp = 0; jp < nc; jp += CK_NR) {
                    const int width = nc - jp < CK_NR ? nc - jp : CK_NR;
                    const float *bp = workspace + (ptrdiff_t)jp * kc;
                    for (int row0 = i0; row0 < i1; row0 += CK_MR) {
                        const int rows = i1 - row0 < CK_MR ? i1 - row0 : CK_MR;
                        kernel_8x32(kc, panel_rows(block, row0, kc), bp, rows, row0, j0 + jp, width,
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
                              float *c, ptrdiff_t ldc, int rowBegin, int rowEnd, const float *nextA) {
    const int panels = (m + CK_MP - 1) / CK_MP;
    const int columnPanels = (n + CK_NR - 1) / CK_NR;
    const ck_output o = {c, 0, ldc, NULL, NULL, 0, n};
    // nextA: the rows rowBegin ..< rowEnd of each depth block of the next matrix (one 64-byte
    // line per depth step and 16-row panel), fetched into L2 spread over this block's kernel calls.
    const int panelBegin = rowBegin / CK_MP, panelEnd = (rowEnd + CK_MP - 1) / CK_MP;
    const int calls = columnPanels * ((rowEnd - rowBegin + CK_MR - 1) / CK_MR);
    for (int k0 = 0; k0 < k; k0 += CK_KC) {
        const int kc = k - k0 < CK_KC ? k - k0 : CK_KC;
        const int first = k0 == 0, last = k0 + kc == k;
        const float *block = packedA + (ptrdiff_t)k0 * panels * CK_MP;
        const float *bBlock = packedB + (ptrdiff_t)k0 * columnPanels * CK_NR;
        const float *next = nextA ? nextA + (ptrdiff_t)k0 * panels * CK_MP + (ptrdiff_t)panelBegin * CK_MP * kc : NULL;
        const ptrdiff_t lines = (ptrdiff_t)(panelEnd - panelBegin) * kc;
        int call = 0;
        for (int jp = 0; jp < columnPanels; jp++) {
            const int width = n - jp * CK_NR < CK_NR ? n - jp * CK_NR : CK_NR;
            for (int row0 = rowBegin; row0 < rowEnd; row0 += CK_MR, call++) {
                const int rows = rowEnd - row0 < CK_MR ? rowEnd - row0 : CK_MR;
                const float *a = panel_rows(block, row0, kc), *b = bBlock + (ptrdiff_t)jp * kc * CK_NR;
                if (next) {
                    const ptrdiff_t lo = lines * call / calls, hi = lines * (call + 1) / calls;
                    kernel_8x32_prefetching(kc, a, b, rows, row0, jp * CK_NR, width, first, last, &o,
                                            next + lo * CK_MP, (int)(hi - lo));
                } else {
                    kernel_8x32(kc, a, b, rows, row0, jp * CK_NR, width, first, last, &o);
                }
            }
        }
    }
}
