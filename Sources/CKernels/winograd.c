#include "CKernels.h"
#include "packed_layout.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

// Winograd F(2×2, 3×3) (Lavin & Gray, 2016) for 3×3, stride-1, dilation-1 convolutions: each 2×2
// output tile is Aᵀ[Σ_c U_c ⊙ V_c]A with U = G g Gᵀ (4×4, from the filter, once at build time) and
// V = Bᵀ d B (4×4, from the tile's 4×4 input patch). The Σ_c is 16 GEMMs, one per position ξ of the
// 4×4 transform, each (K × C)·(C × tiles): 16 multiplies per 4 outputs instead of 36, 2.25× fewer.
//
// Tiles are processed in blocks small enough that the block's V (16·C·tiles) and M (16·K·tiles)
// stay in L2: the input transform writes V straight into the packed-panel layout the GEMM reads
// (no packing pass), and the output transform adds bias and residual and applies the activation
// while it writes the 2×2 tiles. Tile t of the batch is tile t % (tilesH·tilesW) of image
// t / (tilesH·tilesW), row-major within the image.
//
//   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]   G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]   Aᵀ = [1 1 1 0; 0 1 −1 −1]

ptrdiff_t ck_winograd_weights_count(int k, int c) { return 16 * ck_packed_weights_count(k, c); }

void ck_winograd_pack_weights(const float *w, int kCount, int cCount, float *packed) {
    const ptrdiff_t stride = ck_packed_weights_count(kCount, cCount);
    const ptrdiff_t plane = (ptrdiff_t)kCount * cCount;
    float *u = malloc(sizeof(float) * 16 * (size_t)plane);
    if (!u) return;
    for (int k = 0; k < kCount; k++) {
        for (int c = 0; c < cCount; c++) {
            const float *g = w + ((ptrdiff_t)k * cCount + c) * 9;
            double t[4][3], m[4][4];
            for (int j = 0; j < 3; j++) {  // G g
                const double g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
                t[0][j] = g0; t[1][j] = (g0 + g1 + g2) / 2; t[2][j] = (g0 - g1 + g2) / 2; t[3][j] = g2;
            }
            for (int a = 0; a < 4; a++) {  // (G g) Gᵀ
                m[a][0] = t[a][0]; m[a][1] = (t[a][0] + t[a][1] + t[a][2]) / 2;
                m[a][2] = (t[a][0] - t[a][1] + t[a][2]) / 2; m[a][3] = t[a][2];
            }
            for (int xi = 0; xi < 16; xi++) u[xi * plane + (ptrdiff_t)k * cCount + c] = (float)m[xi / 4][xi % 4];
        }
    }
    for (int xi = 0; xi < 16; xi++) ck_pack_weights(u + xi * plane, kCount, cCount, packed + xi * stride);
    free(u);
}

// Tiles per block: 32-wide panels while V and M of the block fit in about 1 MiB.
static int block_tiles(int kCount, int cCount) {
    int panels = 262144 / (16 * (kCount + cCount) * CK_NR);
    if (panels < 1) panels = 1;
    if (panels > 8) panels = 8;
    return panels * CK_NR;
}

ptrdiff_t ck_winograd_workspace_count(int kCount, int cCount) {
    const ptrdiff_t tiles = block_tiles(kCount, cCount);
    return 16 * tiles * ((ptrdiff_t)cCount + kCount) + 64;
}

typedef struct {
    const float *x; int channels, height, width, pad;
    int outH, outW, tilesW, tilesPerImage;
} ck_wino_geometry;

// Offset of element (c, j) of one ξ's V in the packed-panel layout (columns padded to npad).
static inline ptrdiff_t v_offset(int c, int j, int channels, int npad) {
    const int k0 = c / CK_KC * CK_KC;
    const int kc = channels - k0 < CK_KC ? channels - k0 : CK_KC;
    return (ptrdiff_t)k0 * npad + (ptrdiff_t)(j / CK_NR) * kc * CK_NR + (ptrdiff_t)(c - k0) * CK_NR + j % CK_NR;
}

#if defined(__AVX512F__)
static inline __mmask16 lanes(int count) { return count >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << count) - 1); }

// `count` ≤ 16 tiles of one tile row, starting at tile (n, ty, tx0), block column j0: V for every c.
static void input_chunk(const ck_wino_geometry *g, int n, int ty, int tx0, int count, float *v, int j0, int npad) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const int x0 = 2 * tx0 - g->pad;              // input column of lane 0's patch
    const int span = 2 * count + 2;                 // input columns the chunk reads
    int lo = -x0; if (lo < 0) lo = 0;
    int hi = g->width - x0; if (hi > span) hi = span;
    const unsigned long long bits = hi <= lo ? 0ull : (((1ull << hi) - 1) & ~((1ull << lo) - 1));
    const __mmask16 m0 = (__mmask16)bits, m1 = (__mmask16)(bits >> 16);
    // Shifted by 2 columns: bits >> 2.
    const unsigned long long sbits = bits >> 2;
    const __mmask16 s0 = (__mmask16)sbits, s1 = (__mmask16)(sbits >> 16);
    const __mmask16 store = lanes(count);
    const ptrdiff_t plane = (ptrdiff_t)g->channels * npad;
    const float *image = g->x + (ptrdiff_t)n * g->channels * g->height * g->width;
    for (int c = 0; c < g->channels; c++) {
        __m512 h[4][4];
        for (int r = 0; r < 4; r++) {
            const int iy = 2 * ty - g->pad + r;
            if (iy < 0 || iy >= g->height || bits == 0) {
                h[r][0] = h[r][1] = h[r][2] = h[r][3] = _mm512_setzero_ps();
                continue;
            }
            const char *row = (const char *)(image + ((ptrdiff_t)c * g->height + iy) * g->width);
            const float *base = (const float *)(row + (ptrdiff_t)x0 * (ptrdiff_t)sizeof(float));
            const __m512 a0 = _mm512_maskz_loadu_ps(m0, base), a1 = _mm512_maskz_loadu_ps(m1, base + 16);
            const __m512 b0 = _mm512_maskz_loadu_ps(s0, base + 2), b1 = _mm512_maskz_loadu_ps(s1, base + 18);
            const __m512 e0 = _mm512_permutex2var_ps(a0, even, a1), e1 = _mm512_permutex2var_ps(a0, odd, a1);
            const __m512 e2 = _mm512_permutex2var_ps(b0, even, b1), e3 = _mm512_permutex2var_ps(b0, odd, b1);
            h[r][0] = _mm512_sub_ps(e0, e2);
            h[r][1] = _mm512_add_ps(e1, e2);
            h[r][2] = _mm512_sub_ps(e2, e1);
            h[r][3] = _mm512_sub_ps(e1, e3);
        }
        float *dst = v + v_offset(c, j0, g->channels, npad);
        for (int b = 0; b < 4; b++) {
            _mm512_mask_storeu_ps(dst + (0 * 4 + b) * plane, store, _mm512_sub_ps(h[0][b], h[2][b]));
            _mm512_mask_storeu_ps(dst + (1 * 4 + b) * plane, store, _mm512_add_ps(h[1][b], h[2][b]));
            _mm512_mask_storeu_ps(dst + (2 * 4 + b) * plane, store, _mm512_sub_ps(h[2][b], h[1][b]));
            _mm512_mask_storeu_ps(dst + (3 * 4 + b) * plane, store, _mm512_sub_ps(h[1][b], h[3][b]));
        }
    }
}

// Output transform of `count` ≤ 16 tiles of one tile row for every k, with bias, residual, activation.
static void output_chunk(const ck_wino_geometry *g, int kCount, int rowBegin, int rowEnd, const float *m, int mStride,
                         int j0, int n, int ty, int tx0, int count, float *y, const float *bias, const float *residual,
                         int activation) {
    const __m512i lowPairs = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i highPairs = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    const __mmask16 load = lanes(count);
    const int ox0 = 2 * tx0;
    int width = g->outW - ox0; if (width > 2 * count) width = 2 * count;
    const unsigned bits = width >= 32 ? 0xFFFFFFFFu : ((1u << width) - 1);
    const __mmask16 w0 = (__mmask16)bits, w1 = (__mmask16)(bits >> 16);
    const ptrdiff_t outPlane = (ptrdiff_t)g->outH * g->outW;
    const ptrdiff_t xiStride = (ptrdiff_t)kCount * mStride;
    const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
    for (int k = rowBegin; k < rowEnd; k++) {
        const float *mk = m + (ptrdiff_t)k * mStride + j0;
        __m512 v[16];
        for (int xi = 0; xi < 16; xi++) v[xi] = _mm512_maskz_loadu_ps(load, mk + xi * xiStride);
        __m512 s0[4], s1[4];
        for (int b = 0; b < 4; b++) {
            s0[b] = _mm512_add_ps(_mm512_add_ps(v[b], v[4 + b]), v[8 + b]);
            s1[b] = _mm512_sub_ps(_mm512_sub_ps(v[4 + b], v[8 + b]), v[12 + b]);
        }
        const __m512 bk = _mm512_set1_ps(bias ? bias[k] : 0.0f);
        __m512 rows[2][2];
        for (int a = 0; a < 2; a++) {
            const __m512 *s = a == 0 ? s0 : s1;
            const __m512 left = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s[0], s[1]), s[2]), bk);
            const __m512 right = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s[1], s[2]), s[3]), bk);
            rows[a][0] = _mm512_permutex2var_ps(left, lowPairs, right);
            rows[a][1] = _mm512_permutex2var_ps(left, highPairs, right);
        }
        for (int a = 0; a < 2; a++) {
            const int oy = 2 * ty + a;
            if (oy >= g->outH) break;
            const ptrdiff_t at = ((ptrdiff_t)n * kCount + k) * outPlane + (ptrdiff_t)oy * g->outW + ox0;
            __m512 r0 = rows[a][0], r1 = rows[a][1];
            if (residual) {
                r0 = _mm512_add_ps(r0, _mm512_maskz_loadu_ps(w0, residual + at));
                r1 = _mm512_add_ps(r1, _mm512_maskz_loadu_ps(w1, residual + at + 16));
            }
            if (activation) {
                r0 = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(r0, zero, _CMP_LT_OQ), r0, zero);
                r1 = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(r1, zero, _CMP_LT_OQ), r1, zero);
                if (activation == 2) {
                    r0 = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(r0, six, _CMP_GT_OQ), r0, six);
                    r1 = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(r1, six, _CMP_GT_OQ), r1, six);
                }
            }
            _mm512_mask_storeu_ps(y + at, w0, r0);
            _mm512_mask_storeu_ps(y + at + 16, w1, r1);
        }
    }
}
#else
static void input_chunk(const ck_wino_geometry *g, int n, int ty, int tx0, int count, float *v, int j0, int npad) {
    const ptrdiff_t plane = (ptrdiff_t)g->channels * npad;
    const float *image = g->x + (ptrdiff_t)n * g->channels * g->height * g->width;
    for (int c = 0; c < g->channels; c++) {
        for (int l = 0; l < count; l++) {
            float d[4][4], h[4][4];
            for (int r = 0; r < 4; r++) {
                for (int s = 0; s < 4; s++) {
                    const int iy = 2 * ty - g->pad + r, ix = 2 * (tx0 + l) - g->pad + s;
                    d[r][s] = iy >= 0 && iy < g->height && ix >= 0 && ix < g->width
                        ? image[((ptrdiff_t)c * g->height + iy) * g->width + ix] : 0.0f;
                }
                h[r][0] = d[r][0] - d[r][2]; h[r][1] = d[r][1] + d[r][2];
                h[r][2] = d[r][2] - d[r][1]; h[r][3] = d[r][1] - d[r][3];
            }
            float *dst = v + v_offset(c, j0 + l, g->channels, npad);
            for (int b = 0; b < 4; b++) {
                dst[(0 * 4 + b) * plane] = h[0][b] - h[2][b];
                dst[(1 * 4 + b) * plane] = h[1][b] + h[2][b];
                dst[(2 * 4 + b) * plane] = h[2][b] - h[1][b];
                dst[(3 * 4 + b) * plane] = h[1][b] - h[3][b];
            }
        }
    }
}

static void output_chunk(const ck_wino_geometry *g, int kCount, int rowBegin, int rowEnd, const float *m, int mStride,
                         int j0, int n, int ty, int tx0, int count, float *y, const float *bias, const float *residual,
                         int activation) {
    const ptrdiff_t outPlane = (ptrdiff_t)g->outH * g->outW;
    const ptrdiff_t xiStride = (ptrdiff_t)kCount * mStride;
    for (int k = rowBegin; k < rowEnd; k++) {
        for (int l = 0; l < count; l++) {
            float v[16], s0[4], s1[4], out[2][2];
            for (int xi = 0; xi < 16; xi++) v[xi] = m[xi * xiStride + (ptrdiff_t)k * mStride + j0 + l];
            for (int b = 0; b < 4; b++) { s0[b] = v[b] + v[4 + b] + v[8 + b]; s1[b] = v[4 + b] - v[8 + b] - v[12 + b]; }
            const float bk = bias ? bias[k] : 0.0f;
            out[0][0] = s0[0] + s0[1] + s0[2] + bk; out[0][1] = s0[1] - s0[2] - s0[3] + bk;
            out[1][0] = s1[0] + s1[1] + s1[2] + bk; out[1][1] = s1[1] - s1[2] - s1[3] + bk;
            for (int a = 0; a < 2; a++) {
                for (int b = 0; b < 2; b++) {
                    const int oy = 2 * ty + a, ox = 2 * (tx0 + l) + b;
                    if (oy >= g->outH || ox >= g->outW) continue;
                    const ptrdiff_t at = ((ptrdiff_t)n * kCount + k) * outPlane + (ptrdiff_t)oy * g->outW + ox;
                    float r = out[a][b] + (residual ? residual[at] : 0.0f);
                    if (activation) { r = r < 0.0f ? 0.0f : r; if (activation == 2 && r > 6.0f) r = 6.0f; }
                    y[at] = r;
                }
            }
        }
    }
}
#endif

void ck_winograd_conv(const float *packedU, int kCount, int cCount,
                      const float *x, int height, int width, int pad,
                      float *y, const float *bias, const float *residual, int activation,
                      int rowBegin, int rowEnd, int tileBegin, int tileEnd, float *workspace) {
    const int outH = height + 2 * pad - 2, outW = width + 2 * pad - 2;
    const int tilesH = (outH + 1) / 2, tilesW = (outW + 1) / 2;
    const ck_wino_geometry g = {x, cCount, height, width, pad, outH, outW, tilesW, tilesH * tilesW};
    const int blockTiles = block_tiles(kCount, cCount);
    const ptrdiff_t uStride = ck_packed_weights_count(kCount, cCount);
    float *v = (float *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    float *m = v + 16 * (ptrdiff_t)cCount * blockTiles;
    for (int t0 = tileBegin; t0 < tileEnd; t0 += blockTiles) {
        const int count = tileEnd - t0 < blockTiles ? tileEnd - t0 : blockTiles;
        const int npad = (count + CK_NR - 1) / CK_NR * CK_NR;
        if (npad != count) memset(v, 0, sizeof(float) * 16 * (size_t)cCount * (size_t)npad);
        // Input transform, in chunks of ≤ 16 tiles of one tile row that stay inside one panel.
        for (int j = 0; j < count;) {
            const int t = t0 + j, n = t / g.tilesPerImage, r = t % g.tilesPerImage, ty = r / tilesW, tx = r % tilesW;
            int chunk = tilesW - tx;
            if (chunk > 16) chunk = 16;
            if (chunk > count - j) chunk = count - j;
            if (chunk > CK_NR - j % CK_NR) chunk = CK_NR - j % CK_NR;
            input_chunk(&g, n, ty, tx, chunk, v, j, npad);
            j += chunk;
        }
        // 16 GEMMs: M_ξ (K × count) = U_ξ (K × C) · V_ξ (C × count).
        for (int xi = 0; xi < 16; xi++) {
            // The next matrix (U_0 again for the next block) is fetched into L2 during this GEMM.
            const float *next = xi < 15 ? packedU + (xi + 1) * uStride : (t0 + blockTiles < tileEnd ? packedU : NULL);
            ck_packed_gemm_prepacked(packedU + xi * uStride, kCount, cCount, v + (ptrdiff_t)xi * cCount * npad, count,
                                     m + (ptrdiff_t)xi * kCount * count, count, rowBegin, rowEnd,
                                     next);
        }
        for (int j = 0; j < count;) {
            const int t = t0 + j, n = t / g.tilesPerImage, r = t % g.tilesPerImage, ty = r / tilesW, tx = r % tilesW;
            int chunk = tilesW - tx;
            if (chunk > 16) chunk = 16;
            if (chunk > count - j) chunk = count - j;
            output_chunk(&g, kCount, rowBegin, rowEnd, m, count, j, n, ty, tx, chunk, y, bias, residual, activation);
            j += chunk;
        }
    }
}

int ck_winograd_tiles(int height, int width, int pad) {
    const int outH = height + 2 * pad - 2, outW = width + 2 * pad - 2;
    return ((outH + 1) / 2) * ((outW + 1) / 2);
}
