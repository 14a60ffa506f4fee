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

// Max pooling of `channels` CHW planes, in the same row-and-tap structure as ck_depthwise_conv:
// each output row starts at -inf and takes the maximum of every in-image tap's valid column range,
// so the inner loop is a branch-free compare-and-select the compiler vectorises. A NaN in a window
// wins (v != v selects it, and nothing replaces a NaN afterwards).
void ck_max_pool(const float *x, int channels, int height, int width,
                 int kh, int kw, int padH, int padW, int strideH, int strideW,
                 int dilationH, int dilationW, float *y) {
    const int outH = (height + 2 * padH - dilationH * (kh - 1) - 1) / strideH + 1;
    const int outW = (width + 2 * padW - dilationW * (kw - 1) - 1) / strideW + 1;
    for (int c = 0; c < channels; c++) {
        const float *xc = x + (ptrdiff_t)c * height * width;
        float *yc = y + (ptrdiff_t)c * outH * outW;
        for (int oy = 0; oy < outH; oy++) {
            float *m = yc + (ptrdiff_t)oy * outW;
            for (int ox = 0; ox < outW; ox++) m[ox] = -INFINITY;
            for (int i = 0; i < kh; i++) {
                const int iy = oy * strideH - padH + i * dilationH;
                if (iy < 0 || iy >= height) continue;
                const float *row = xc + (ptrdiff_t)iy * width;
                for (int j = 0; j < kw; j++) {
                    const int dx = j * dilationW - padW;
                    int oxLo = dx >= 0 ? 0 : (-dx + strideW - 1) / strideW;
                    int oxHi = (width - dx + strideW - 1) / strideW;
                    if (oxHi > outW) oxHi = outW;
                    if (oxLo > oxHi) oxLo = oxHi;
                    for (int ox = oxLo; ox < oxHi; ox++) {
                        const float v = row[ox * strideW + dx];
                        const float current = m[ox];
                        m[ox] = (v > current || v != v) && current == current ? v : current;
                    }
                }
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
