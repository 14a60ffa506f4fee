#include "CKernels.h"
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

// Non-temporal stores skip the read-for-ownership that a plain store of a line not in cache costs:
// an out-of-cache kernel that writes with them moves 2 bytes per byte written instead of 3 (see
// docs/kernels.md). SSE's movntps is in every x86-64 CPU, so the baseline build has it too; the
// write-combining buffers merge 16-byte stores into full lines, so wider stores gain little here.

void ck_store_fence(void) {
#if defined(__x86_64__)
    _mm_sfence();
#endif
}

int ck_evict(const void *p, ptrdiff_t bytes) {
    if (bytes <= 0) return 1;
    const uintptr_t line = 64, first = (uintptr_t)p & ~(line - 1), end = (uintptr_t)p + (uintptr_t)bytes;
#if defined(__x86_64__)
    _mm_mfence();
    for (uintptr_t a = first; a < end; a += line) _mm_clflush((const void *)a);
    _mm_mfence();
    return 1;
#elif defined(__aarch64__)
    __asm__ volatile("dsb ish" ::: "memory");
    for (uintptr_t a = first; a < end; a += line) __asm__ volatile("dc civac, %0" :: "r"(a) : "memory");
    __asm__ volatile("dsb ish" ::: "memory");
    return 1;
#else
    (void)first; (void)end;
    return 0;
#endif
}

void ck_scale_stream(float *dst, const float *src, float s, ptrdiff_t count) {
    ptrdiff_t i = 0;
#if defined(__x86_64__)
    while (i < count && ((uintptr_t)(dst + i) & 15) != 0) { dst[i] = src[i] * s; i++; }
#if defined(__AVX512F__)
    const __m512 v16 = _mm512_set1_ps(s);
    for (; i + 16 <= count && ((uintptr_t)(dst + i) & 63) == 0; i += 16)
        _mm512_stream_ps(dst + i, _mm512_mul_ps(_mm512_loadu_ps(src + i), v16));
#endif
    const __m128 v = _mm_set1_ps(s);
    for (; i + 4 <= count; i += 4)
        _mm_stream_ps(dst + i, _mm_mul_ps(_mm_loadu_ps(src + i), v));
#endif
    for (; i < count; i++) dst[i] = src[i] * s;
}

void ck_scale_rows_stream(float *dst, const float *src, const float *scale,
                          int rows, int columns, ptrdiff_t rowStride,
                          const float *next, int nextLines) {
    // dst[r*rowStride + j] = scale[j] * src[r*rowStride + j]
    for (int r = 0; r < rows; r++) {
        float *d = dst + (ptrdiff_t)r * rowStride;
        const float *x = src + (ptrdiff_t)r * rowStride;
        int j = 0;
#if defined(__x86_64__)
        if (next) {
            const char *line = (const char *)(next + (ptrdiff_t)r * rowStride);
            for (int l = 0; l < nextLines; l++) _mm_prefetch(line + 64 * l, _MM_HINT_T1);
        }
        while (j < columns && ((uintptr_t)(d + j) & 15) != 0) { d[j] = x[j] * scale[j]; j++; }
#if defined(__AVX512F__)
        if ((((uintptr_t)(d + j)) & 63) == 0)
            for (; j + 16 <= columns; j += 16)
                _mm512_stream_ps(d + j, _mm512_mul_ps(_mm512_loadu_ps(x + j), _mm512_loadu_ps(scale + j)));
#endif
        for (; j + 4 <= columns; j += 4)
            _mm_stream_ps(d + j, _mm_mul_ps(_mm_loadu_ps(x + j), _mm_loadu_ps(scale + j)));
#endif
        for (; j < columns; j++) d[j] = x[j] * scale[j];
    }
}

void ck_copy(float *dst, const float *src, ptrdiff_t count) {
    memcpy(dst, src, sizeof(float) * (size_t)count);
}

void ck_prefetch_rows(const float *p, int rows, ptrdiff_t rowStride, int lines) {
#if defined(__x86_64__)
    for (int r = 0; r < rows; r++) {
        const char *row = (const char *)(p + (ptrdiff_t)r * rowStride);
        for (int l = 0; l < lines; l++) _mm_prefetch(row + 64 * l, _MM_HINT_T1);
    }
#else
    (void)p; (void)rows; (void)rowStride; (void)lines;
#endif
}

