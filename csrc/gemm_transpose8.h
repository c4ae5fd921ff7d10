/* 8 x 8 float transpose in AVX registers, shared by the SIMD packing routines
 * of the AVX2 and AVX-512 kernel files (each compiled with AVX enabled). */
#ifndef PYCNN_GEMM_TRANSPOSE8_H
#define PYCNN_GEMM_TRANSPOSE8_H
#include <immintrin.h>

/* col[j] = (r[0][j], r[1][j], ..., r[7][j]). */
static inline void transpose8_ps(const __m256 r[8], __m256 col[8])
{
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {   /* rows i, i+1 interleaved */
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    /* u[0..3] hold rows 0-3 and u[4..7] rows 4-7 of columns (0,4), (1,5), (2,6), (3,7). */
    for (int j = 0; j < 4; j++) {
        col[j] = _mm256_permute2f128_ps(u[j], u[j + 4], 0x20);
        col[j + 4] = _mm256_permute2f128_ps(u[j], u[j + 4], 0x31);
    }
}
#endif
