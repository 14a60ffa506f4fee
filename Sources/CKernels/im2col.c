#include "CKernels.h"
#include <string.h>

// Row (c, i, j) of the column matrix holds the input pixels that kernel tap (i, j) of channel c sees
// at every output position. For each output row oy the valid ox range is computed once, so the inner
// loop is a branch-free strided (or, for stride 1, contiguous) copy.
void ck_im2col(const float *x, int channels, int height, int width,
               int kh, int kw, int padH, int padW, int strideH, int strideW,
               int dilationH, int dilationW, float *columns) {
    const int outH = (height + 2 * padH - dilationH * (kh - 1) - 1) / strideH + 1;
    const int outW = (width + 2 * padW - dilationW * (kw - 1) - 1) / strideW + 1;
    const ptrdiff_t plane = (ptrdiff_t)outH * outW;
    for (int c = 0; c < channels; c++) {
        const float *xc = x + (ptrdiff_t)c * height * width;
        for (int i = 0; i < kh; i++) {
            for (int j = 0; j < kw; j++) {
                float *row = columns + ((ptrdiff_t)(c * kh + i) * kw + j) * plane;
                const int dx = j * dilationW - padW;
                // ox valid when 0 <= ox*strideW + dx < width
                int oxLo = dx >= 0 ? 0 : (-dx + strideW - 1) / strideW;
                int oxHi = (width - dx + strideW - 1) / strideW; // exclusive
                if (oxHi > outW) oxHi = outW;
                if (oxLo > outW) oxLo = outW;
                if (oxHi < oxLo) oxHi = oxLo;
                for (int oy = 0; oy < outH; oy++) {
                    float *dst = row + (ptrdiff_t)oy * outW;
                    const int y = oy * strideH + i * dilationH - padH;
                    if (y < 0 || y >= height) {
                        memset(dst, 0, sizeof(float) * (size_t)outW);
                        continue;
                    }
                    const float *src = xc + (ptrdiff_t)y * width;
                    for (int ox = 0; ox < oxLo; ox++) dst[ox] = 0.0f;
                    if (strideW == 1) {
                        if (oxHi > oxLo)
                            memcpy(dst + oxLo, src + oxLo + dx, sizeof(float) * (size_t)(oxHi - oxLo));
                    } else {
                        for (int ox = oxLo; ox < oxHi; ox++) dst[ox] = src[ox * strideW + dx];
                    }
                    for (int ox = oxHi; ox < outW; ox++) dst[ox] = 0.0f;
                }
            }
        }
    }
}
