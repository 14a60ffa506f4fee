// The hand-written C AVX-512 fused SPSA kernel that spatial-bench's SPSA is compared with
// (docs/benchmarks.md): NCHW, one head, alpha = 2. Not robust to a large common offset (no shift)
// and no degenerate rule: a speed reference only. Prints the median of 31 CPU-time samples of 100
// calls for [1, C, H, H].
//
//     gcc -O3 -march=native scripts/spsa_c_reference.c -o spsa_c -lm && ./spsa_c 64 56
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
// Reference-style fused SPSA, NCHW, one head, alpha=2: key pass, then per 16-pixel vector one pass of
// moments over channels, then scale.
static void spsa(const float *x, float *out, int C, int P) {
    float k[4096]; double ks = 0;
    for (int c = 0; c < C; c++) { __m512 a = _mm512_setzero_ps(); int p = 0;
        for (; p + 16 <= P; p += 16) a = _mm512_add_ps(a, _mm512_loadu_ps(x + (size_t)c*P + p));
        float s = _mm512_reduce_add_ps(a); for (; p < P; p++) s += x[(size_t)c*P+p]; k[c] = s / P; ks += k[c]; }
    float km = ks / C; double kk = 0; for (int c = 0; c < C; c++) { k[c] -= km; kk += k[c]*k[c]; }
    float ik = 1 / sqrt(kk);
    for (int p = 0; p + 16 <= P; p += 16) {
        __m512 a = _mm512_setzero_ps(), q = a, d = a;
        for (int c = 0; c < C; c++) { __m512 v = _mm512_loadu_ps(x + (size_t)c*P + p);
            a = _mm512_add_ps(a, v); q = _mm512_fmadd_ps(v, v, q); d = _mm512_fmadd_ps(v, _mm512_set1_ps(k[c]), d); }
        __m512 m = _mm512_mul_ps(a, _mm512_set1_ps(1.0f/C));
        q = _mm512_fnmadd_ps(a, m, q);
        __m512 corr = _mm512_mul_ps(_mm512_div_ps(d, _mm512_sqrt_ps(q)), _mm512_set1_ps(ik));
        float cc[16]; _mm512_storeu_ps(cc, corr);
        for (int j = 0; j < 16; j++) { float r = 1 / (1 + expf(cc[j])); cc[j] = r*r; }
        __m512 w = _mm512_loadu_ps(cc);
        for (int c = 0; c < C; c++) _mm512_storeu_ps(out + (size_t)c*P + p, _mm512_mul_ps(w, _mm512_loadu_ps(x + (size_t)c*P + p)));
    }
}
static double now(void) { struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec*1e-9; }
int main(int argc, char **argv) {
    int C = atoi(argv[1]), H = atoi(argv[2]); int P = H*H;
    float *x = aligned_alloc(64, sizeof(float)*C*P), *o = aligned_alloc(64, sizeof(float)*C*P);
    for (int i = 0; i < C*P; i++) x[i] = (float)rand()/RAND_MAX;
    double best[31]; for (int r = 0; r < 31; r++) { double t0 = now(); for (int i = 0; i < 100; i++) spsa(x, o, C, P); best[r] = (now()-t0)/100; }
    for (int i = 0; i < 31; i++) for (int j = i+1; j < 31; j++) if (best[j] < best[i]) { double t = best[i]; best[i] = best[j]; best[j] = t; }
    printf("C=%d %dx%d: median %.1f us (%.2f ns/elem)\n", C, H, H, best[15]*1e6, best[15]*1e9/(C*P));
}
