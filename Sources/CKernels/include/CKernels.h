// CKernels: thin wrappers over OpenBLAS and a few memory-bound helpers.
// No stable API: the Swift library is the public interface. Symbols are prefixed ck_.
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Row-major single-precision GEMM: C = alpha * op(A) * op(B) + beta * C.
/// op(A) is m x k, op(B) is k x n, C is m x n; lda/ldb/ldc are row strides in elements.
void ck_sgemm(int transA, int transB, int m, int n, int k,
              float alpha, const float *A, int lda,
              const float *B, int ldb,
              float beta, float *C, int ldc);

/// A spin-wait hint (x86 `pause`): lets the sibling hyperthread and the memory system run while
/// a worker polls for its next job.
static inline void ck_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// The processor the calling thread runs on now, or -1 where unknown (Linux `sched_getcpu`).
int ck_current_cpu(void);
/// Moves the calling thread to another processor it may run on, leaving its affinity unchanged;
/// 1 if it moved, 0 if it could not (no other processor allowed, or not Linux).
int ck_leave_cpu(int cpu);

/// Number of threads OpenBLAS uses for the next calls (0 < threads).
void ck_blas_set_threads(int threads);
/// Threads OpenBLAS currently uses.
int ck_blas_threads(void);
/// OpenBLAS's configuration string (version, core, threading).
const char *ck_blas_config(void);
/// The kernel family OpenBLAS chose for this CPU.
const char *ck_blas_corename(void);
/// 1 if the CPU has AVX-512 F, CD, DQ, BW and VL and the OS saves the zmm state, else 0.
int ck_cpu_supports_avx512(void);
/// Replaces the process by a fresh run of its own executable (`/proc/self/exe`) with `argv` and the
/// current environment. Returns -1 only if that failed; not Linux: returns -1 and does nothing.
int ck_exec_self(char *const argv[]);

/// im2col for one image in CHW layout (PyTorch/Caffe order):
/// columns[(c*kh + i)*kw + j][oy*outW + ox] = x[c][oy*sh - ph + i*dh][ox*sw - pw + j*dw], 0 outside.
/// columns has (channels*kh*kw) rows of (outH*outW) floats.
void ck_im2col(const float *x, int channels, int height, int width,
               int kh, int kw, int padH, int padW, int strideH, int strideW,
               int dilationH, int dilationW, float *columns);

/// dst[r*rowStride + j] = scale[j] * src[r*rowStride + j] for r < rows, j < columns, written with
/// non-temporal stores where the CPU has them (plain stores elsewhere and at unaligned edges).
/// Unless `next` is NULL, the first `nextLines` cache lines of row r of `next` (rowStride floats
/// apart) are fetched into L2 (prefetcht1) before row r is written, so that the next tile's reads
/// overlap this tile's writes.
void ck_scale_rows_stream(float *dst, const float *src, const float *scale,
                          int rows, int columns, ptrdiff_t rowStride,
                          const float *next, int nextLines);

/// dst[i] = src[i] * s for i < count, non-temporal stores where available.
void ck_scale_stream(float *dst, const float *src, float s, ptrdiff_t count);

/// Plain copy through memcpy (used to measure the copy ceiling).
void ck_copy(float *dst, const float *src, ptrdiff_t count);

/// Prefetch `lines` cache lines from each of `rows` rows (rowStride floats apart) into L2
/// (prefetcht1): far enough ahead that L1 could not hold them until use.
void ck_prefetch_rows(const float *p, int rows, ptrdiff_t rowStride, int lines);

/// `Σ_{p < count} (row[p] − shift)` for SPSA's key: Float partial sums in 16 lanes over blocks of
/// `block` values (a multiple of 16; 1024 gives up to 64 values a lane), each block's lanes added
/// into Double, the row's last `count mod 16` values as one masked vector (in Double one by one when
/// `count < 16`) (docs/kernels.md, numerics).
double ck_shifted_sum(const float *row, ptrdiff_t count, float shift, ptrdiff_t block);
/// The means of `rows` contiguous rows of `count` floats, `shift + ck_shifted_sum(row, count, shift,
/// block) / count` with `shift` the mean of the row's first 16 values (its first value when shorter)
/// and `block` 1024; with `exact`, shift 0 and `block` 16 (every value added in Double). Rows of
/// 16–1024 values (not exact) are done 16 rows at a time, their lanes widened and added in Double
/// together; a row's mean never depends on the other rows of the call.
void ck_shifted_means(const float *x, ptrdiff_t rows, ptrdiff_t count, int exact, double *means);
/// The means of `width` ≤ 64 channels of channels-last data: `pixels` rows `stride` floats apart,
/// channel c at `x[p·stride + c]`. `means[c] = shift_c + Σ_p (x[p·stride + c] − shift_c) / pixels`,
/// `shift_c` the balanced sum of the channel's first 16 pixels over 16 (its first pixel when fewer),
/// the shifted values added in Float over runs of 64 pixels, each run widened to Double; with `exact`,
/// shift 0 and every value added in Double. Exact for a constant channel.
void ck_shifted_column_means(const float *x, ptrdiff_t pixels, ptrdiff_t stride, int width, int exact, double *means);
/// Channels-last SPSA moments of `pixels` ≤ 16 pixels, pixel j's `length` channel values at
/// `x + j·stride`: with `v = x − s` (`s` the pixel's first value when `centered`, else 0),
/// `sums[j] = Σv`, `squares[j] = Σv²`, `dots[j] = Σ v·key[c]`, in Float, for j < 16 (0 past `pixels`).
void ck_pixel_moments16(const float *x, ptrdiff_t stride, int pixels, int length, const float *key,
                        int centered, float *sums, float *squares, float *dots);
/// One SPSA head's key from its `count` channel means: `key[j] = (float)((means[j] − means[0]) − m)`
/// with `m` the mean of `means[j] − means[0]` when `centered` (correlation), `(float)means[j]` otherwise
/// (cosine); `*sum` and `*squares` are `Σ key[j]` and `Σ key[j]²` of the stored Floats, in Double.
/// Relative to the first channel, equal means give exactly zero.
void ck_key_finish(const double *means, ptrdiff_t count, int centered, float *key, double *sum, double *squares);

/// `v[0..<16]` replaced by their square roots (IEEE: correctly rounded, NaN for negatives) in one
/// vector operation, for Swift's kernels: `SIMD16<Float>.squareRoot()` goes lane by lane through a
/// scalar square root with libm's errno check (16 square roots, compares, branches and inserts).
static inline __attribute__((always_inline, min_vector_width(512))) void ck_sqrt16(float *v) {
    typedef float ck_sqrt16_lanes __attribute__((vector_size(64), aligned(4)));
    *(ck_sqrt16_lanes *)v = __builtin_elementwise_sqrt(*(ck_sqrt16_lanes *)v);
}

/// Make pending non-temporal stores visible (sfence on x86).
void ck_store_fence(void);

/// Writes back and evicts the cache lines of `bytes` bytes at `p` from every cache level (clflush on
/// x86-64, `dc civac` on AArch64), then fences, so that the next reads of the range come from DRAM:
/// the "cold" timing of `spatial-bench scaling`. Returns 0, doing nothing, where neither exists.
int ck_evict(const void *p, ptrdiff_t bytes);

/// Epilogue of a convolution GEMM, one pass: for r < rows (channels), j < columns (pixels),
/// dst[r*dstStride + j] = act(src[r*srcStride + j] * scale[r] + bias[r] + residual[r*residualStride + j]).
/// scale, bias and residual may be NULL (1, 0, 0). activation: 0 identity, 1 ReLU, 2 ReLU6 (NaN stays
/// NaN). dst may equal src (in place, same stride); otherwise the ranges must not overlap.
void ck_conv_epilogue(float *dst, ptrdiff_t dstStride, const float *src, ptrdiff_t srcStride,
                      const float *scale, const float *bias,
                      const float *residual, ptrdiff_t residualStride,
                      int rows, ptrdiff_t columns, int activation);

/// Direct depthwise convolution of `channels` CHW planes (one filter per channel, PyTorch's
/// groups == channels): y[c][oy][ox] = act(bias[c] + sum_ij weights[c][i][j] *
/// x[c][oy*strideH - padH + i*dilationH][ox*strideW - padW + j*dilationW]), 0 outside the image.
/// bias may be NULL; activation as in ck_conv_epilogue. y holds channels*outH*outW floats.
void ck_depthwise_conv(const float *x, int channels, int height, int width,
                       const float *weights, const float *bias,
                       int kh, int kw, int padH, int padW, int strideH, int strideW,
                       int dilationH, int dilationW, int activation, float *y);

/// Packed-filter GEMM for convolutions (packed_gemm.c). Floats needed to pack an m x k row-major
/// filter matrix (rows padded to the micro-tile height).
ptrdiff_t ck_packed_weights_count(int m, int k);
/// Packs the m x k row-major matrix a for ck_packed_gemm (once, when a layer is built).
void ck_pack_weights(const float *a, int m, int k, float *packed);
/// Floats of scratch one ck_packed_gemm call needs (one packed block of B, or the column tiles and
/// partial sums of the channels-in-lanes path).
ptrdiff_t ck_packed_gemm_workspace_count(void);
/// 1 when the micro-kernel is vectorised (AVX-512 build), 0 for the portable scalar fallback.
int ck_packed_gemm_vectorized(void);
/// C = act(A * B + bias + residual) for rows rowBegin..<rowEnd (rowBegin a multiple of 8; the
/// channels-in-lanes path for few columns is taken only from a multiple of 16) and
/// columns columnBegin..<columnEnd. Column j is pixel j % pixels of image j / pixels:
/// B(k, j) = b[(j / pixels) * bImageStride + k * bRowStride + j % pixels], C(r, j) and
/// residual(r, j) at [(j / pixels) * cImageStride + r * cRowStride + j % pixels]. bias and residual
/// may be NULL; activation as in ck_conv_epilogue. Writes every element of its range of C once the
/// last depth block is done. workspace holds ck_packed_gemm_workspace_count() floats.
void ck_packed_gemm(const float *packedA, int m, int k,
                    const float *b, ptrdiff_t bImageStride, ptrdiff_t bRowStride, int pixels,
                    float *c, ptrdiff_t cImageStride, ptrdiff_t cRowStride,
                    const float *bias, const float *residual, int activation,
                    int rowBegin, int rowEnd, int columnBegin, int columnEnd, float *workspace);

/// Floats of workspace ck_max_pool needs for one call (its row maxima and one de-interleaved row).
int ck_max_pool_workspace_count(int height, int width, int kw, int padW, int strideW, int dilationW);

/// Max pooling of `channels` CHW planes (PyTorch MaxPool2d, floor mode): y[c][oy][ox] = max over
/// the in-image taps x[c][oy*strideH - padH + i*dilationH][ox*strideW - padW + j*dilationW];
/// -inf when no tap is inside; NaN when any tap is NaN. `workspace` holds
/// ck_max_pool_workspace_count floats.
void ck_max_pool(const float *x, int channels, int height, int width,
                 int kh, int kw, int padH, int padW, int strideH, int strideW,
                 int dilationH, int dilationW, float *workspace, float *y);

/// ck_packed_gemm with B the im2col matrix of CHW images, packed straight from the images (no
/// im2col buffer): column j is output pixel j % P of image j / P (image at x + (j / P) * xImageStride),
/// P = outH * outW; depth k = channels * kh * kw in (c, i, j) order. Other arguments as ck_packed_gemm.
void ck_packed_conv(const float *packedA, int m,
                    const float *x, ptrdiff_t xImageStride, int channels, int height, int width,
                    int kh, int kw, int padH, int padW, int strideH, int strideW, int dilationH, int dilationW,
                    float *c, ptrdiff_t cImageStride, ptrdiff_t cRowStride,
                    const float *bias, const float *residual, int activation,
                    int rowBegin, int rowEnd, int columnBegin, int columnEnd, float *workspace);

/// Row-major matrix-vector product y = alpha * A * x + beta * y, A m x n with row stride lda (cblas_sgemv).
void ck_sgemv(int m, int n, float alpha, const float *a, int lda, const float *x, float beta, float *y);

/// C = A * B for rows rowBegin..<rowEnd (a multiple of 8) and columns 0..<n (row stride ldc), with
/// A packed by ck_pack_weights and B already in the packed-panel layout (for each 256-deep depth
/// block starting at k0: 32-wide panels of kc x 32 values at packedB + k0 * npad + panel * kc * 32,
/// npad = n rounded up to 32, zero columns past n). No epilogue. nextA, when not NULL, is the next
/// matrix of the caller (same m, k, layout): its rows rowBegin..<rowEnd are fetched into L2 while this
/// product runs, so that a product whose A comes from memory overlaps the fetch with arithmetic.
void ck_packed_gemm_prepacked(const float *packedA, int m, int k, const float *packedB, int n,
                              float *c, ptrdiff_t ldc, int rowBegin, int rowEnd, const float *nextA);

/// Winograd F(2x2, 3x3) for 3x3 stride-1 dilation-1 convolutions (winograd.c). Floats of the 16
/// transformed, packed K x C filter matrices.
ptrdiff_t ck_winograd_weights_count(int k, int c);
/// Transforms (G g G^T, in double) and packs the [K][C][3][3] filters w.
void ck_winograd_pack_weights(const float *w, int k, int c, float *packed);
/// Floats of scratch one ck_winograd_conv call needs.
ptrdiff_t ck_winograd_workspace_count(int k, int c);
/// 2x2 output tiles of one image: ceil(H'/2) * ceil(W'/2), H' = height + 2 pad - 2.
int ck_winograd_tiles(int height, int width, int pad);
/// y = act(conv3x3(x) + bias + residual) for output channels rowBegin..<rowEnd (rowBegin a multiple
/// of 8) and the batch tiles tileBegin..<tileEnd (tile t is tile t % tiles of image t / tiles).
/// x NCHW [N, C, height, width]; y and residual NCHW [N, K, H', W']. bias and residual may be NULL;
/// activation as in ck_conv_epilogue.
void ck_winograd_conv(const float *packedU, int k, int c,
                      const float *x, int height, int width, int pad,
                      float *y, const float *bias, const float *residual, int activation,
                      int rowBegin, int rowEnd, int tileBegin, int tileEnd, float *workspace);

#ifdef __cplusplus
}
#endif
#endif
