#include "CKernels.h"
#include <math.h>

// Convolution helpers: the pass that follows a convolution's GEMM, and the depthwise convolution,
// which has too little arithmetic per byte for a GEMM to pay off (k = kh·kw = 9).
//
// Activations clamp with compares rather than fmaxf/fminf so that a NaN stays NaN (PyTorch's
// relu(NaN) is NaN; fmaxf(NaN, 0) would return 0). The compilers vectorise both forms.

static inline float ck_activate(float v, float lo, float hi) {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

static void ck_activation_bounds(int activation, float *lo, float *hi) {
    *lo = activation == 0 ? -INFINITY : 0.0f;
    *hi = activation == 2 ? 6.0f : INFINITY;
}

void ck_conv_epilogue(float *dst, ptrdiff_t dstStride, const float *src, ptrdiff_t srcStride,
                      const float *scale, const float *bias,
                      const float *residual, ptrdiff_t residualStride,
                      int rows, ptrdiff_t columns, int activation) {
    float lo, hi;
    ck_activation_bounds(activation, &lo, &hi);
    for (int r = 0; r < rows; r++) {
        float *d = dst + (ptrdiff_t)r * dstStride;
        const float *s = src + (ptrdiff_t)r * srcStride;
        const float a = scale ? scale[r] : 1.0f;
        const float b = bias ? bias[r] : 0.0f;
        if (residual) {
            const float *x = residual + (ptrdiff_t)r * residualStride;
            for (ptrdiff_t j = 0; j < columns; j++) d[j] = ck_activate(s[j] * a + b + x[j], lo, hi);
        } else if (a == 1.0f) {
            for (ptrdiff_t j = 0; j < columns; j++) d[j] = ck_activate(s[j] + b, lo, hi);
        } else {
            for (ptrdiff_t j = 0; j < columns; j++) d[j] = ck_activate(s[j] * a + b, lo, hi);
        }
    }
}

// One output row of one channel: acc[ox] += w · x[iy][ox·strideW + dx] over the taps of kernel row i.
// The valid ox range of each tap is computed once (as in ck_im2col), so the inner loop has no
// branches; for stride 1 it is a contiguous multiply-add that the compiler vectorises.
void ck_depthwise_conv(const float *x, int channels, int height, int width,
                       const float *weights, const float *bias,
                       int kh, int kw, int padH, int padW, int strideH, int strideW,
                       int dilationH, int dilationW, int activation, float *y) {
    const int outH = (height + 2 * padH - dilationH * (kh - 1) - 1) / strideH + 1;
    const int outW = (width + 2 * padW - dilationW * (kw - 1) - 1) / strideW + 1;
    float lo, hi;
    ck_activation_bounds(activation, &lo, &hi);
    for (int c = 0; c < channels; c++) {
        const float *xc = x + (ptrdiff_t)c * height * width;
        const float *wc = weights + (ptrdiff_t)c * kh * kw;
        float *yc = y + (ptrdiff_t)c * outH * outW;
        const float b = bias ? bias[c] : 0.0f;
        for (int oy = 0; oy < outH; oy++) {
            float *acc = yc + (ptrdiff_t)oy * outW;
            for (int ox = 0; ox < outW; ox++) acc[ox] = b;
            for (int i = 0; i < kh; i++) {
                const int iy = oy * strideH - padH + i * dilationH;
                if (iy < 0 || iy >= height) continue;
                const float *row = xc + (ptrdiff_t)iy * width;
                for (int j = 0; j < kw; j++) {
                    const float w = wc[i * kw + j];
                    const int dx = j * dilationW - padW;
                    int oxLo = dx >= 0 ? 0 : (-dx + strideW - 1) / strideW;
                    int oxHi = (width - dx + strideW - 1) / strideW;
                    if (oxHi > outW) oxHi = outW;
                    if (oxLo > oxHi) oxLo = oxHi;
                    if (strideW == 1) {
                        const float *src = row + dx;
                        for (int ox = oxLo; ox < oxHi; ox++) acc[ox] += w * src[ox];
                    } else {
                        for (int ox = oxLo; ox < oxHi; ox++) acc[ox] += w * row[ox * strideW + dx];
                    }
                }
            }
            for (int ox = 0; ox < outW; ox++) acc[ox] = ck_activate(acc[ox], lo, hi);
        }
    }
}

// Max pooling of `channels` CHW planes in two passes per plane: the horizontal maximum of every
// input row over the kernel's columns (hmax, H × outW), then the vertical maximum over the kernel's
// rows. A strided window (ResNet's 3×3 stride 2) is read through de-interleaved copies of the row
// (phase r holds columns r, r + s, r + 2s, …), so both passes are contiguous loops the compiler
// vectorises: 1.5 ms → ~0.25 ms on ResNet-50's 64×112×112 stem output. Padding never wins (-inf);
// a NaN in a window wins (v != v selects it, and nothing replaces a NaN afterwards).
// Rows of 56 floats: without this clang vectorises 32 at a time and runs the other 24 scalar.
#if defined(__clang__)
#define CK_SHORT_LOOP _Pragma("clang loop vectorize_width(16) interleave_count(1)")
#else
#define CK_SHORT_LOOP
#endif

static inline float ck_max_nan(float current, float v) {
    return (v > current || v != v) && current == current ? v : current;
}

int ck_max_pool_workspace_count(int height, int width, int kw, int padW, int strideW, int dilationW) {
    const int outW = (width + 2 * padW - dilationW * (kw - 1) - 1) / strideW + 1;
    const int phaseLength = (width + strideW - 1) / strideW;
    return height * outW + strideW * phaseLength;
}

void ck_max_pool(const float *x, int channels, int height, int width,
                 int kh, int kw, int padH, int padW, int strideH, int strideW,
                 int dilationH, int dilationW, float *workspace, float *y) {
    const int outH = (height + 2 * padH - dilationH * (kh - 1) - 1) / strideH + 1;
    const int outW = (width + 2 * padW - dilationW * (kw - 1) - 1) / strideW + 1;
    const int phaseLength = (width + strideW - 1) / strideW;
    float *hmax = workspace;  // ck_max_pool_workspace_count floats: hmax, then the phases of one row
    float *phases = hmax + (ptrdiff_t)height * outW;
    // Per kernel column: its phase, its shift within the phase and its valid output range
    // (integer divisions once per call, not per row: they cost as much as the maxima).
    int tapPhase[kw], tapShift[kw], tapLo[kw], tapHi[kw];
    const int taps = kw;
    for (int j = 0; j < taps; j++) {
        const int dx = j * dilationW - padW;
        // Column ox reads row[ox·s + dx] = phase[dx mod s][ox + floor(dx / s)].
        const int r = ((dx % strideW) + strideW) % strideW, shift = (dx - r) / strideW;
        const int count = (width - r + strideW - 1) / strideW;  // valid entries of this phase
        int lo = -shift; if (lo < 0) lo = 0;
        int hi = count - shift; if (hi > outW) hi = outW;
        tapPhase[j] = r; tapShift[j] = shift; tapLo[j] = lo; tapHi[j] = hi;
    }
    for (int c = 0; c < channels; c++) {
        const float *xc = x + (ptrdiff_t)c * height * width;
        float *yc = y + (ptrdiff_t)c * outH * outW;
        for (int iy = 0; iy < height; iy++) {
            const float *row = xc + (ptrdiff_t)iy * width;
            float *h = hmax + (ptrdiff_t)iy * outW;
            if (strideW == 2) {
                // A constant stride lets the compiler de-interleave with vector shuffles.
                float *even = phases, *odd = phases + phaseLength;
                const int pairs = width / 2;
                CK_SHORT_LOOP
                for (int i = 0; i < pairs; i++) { even[i] = row[2 * i]; odd[i] = row[2 * i + 1]; }
                if (width % 2) even[pairs] = row[width - 1];
            } else {
                for (int r = 0; r < strideW; r++)
                    for (int i = 0; i * strideW + r < width; i++) phases[r * phaseLength + i] = row[i * strideW + r];
            }
            for (int ox = 0; ox < outW; ox++) h[ox] = -INFINITY;
            for (int j = 0; j < taps; j++) {
                const float *phase = phases + tapPhase[j] * phaseLength + tapShift[j];
                const int hi = tapHi[j];
                CK_SHORT_LOOP
                for (int ox = tapLo[j]; ox < hi; ox++) h[ox] = ck_max_nan(h[ox], phase[ox]);
            }
        }
        for (int oy = 0; oy < outH; oy++) {
            float *m = yc + (ptrdiff_t)oy * outW;
            for (int ox = 0; ox < outW; ox++) m[ox] = -INFINITY;
            for (int i = 0; i < kh; i++) {
                const int iy = oy * strideH - padH + i * dilationH;
                if (iy < 0 || iy >= height) continue;
                const float *h = hmax + (ptrdiff_t)iy * outW;
                CK_SHORT_LOOP
                for (int ox = 0; ox < outW; ox++) m[ox] = ck_max_nan(m[ox], h[ox]);
            }
        }
    }
}

// Row-major y = alpha * A x + beta * y (A m x n): a fully connected layer on one image. cblas_sgemm
// with one row packs the whole weight matrix first; sgemv streams it once.
#include <cblas.h>
void ck_sgemv(int m, int n, float alpha, const float *a, int lda, const float *x, float beta, float *y) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, m, n, alpha, a, lda, x, 1, beta, y, 1);
}
