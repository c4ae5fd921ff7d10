/* 8 x 8 float transpose in AVX registers, shared by the SIMD packing routines
 * of the AVX2 and AVX-512 kernel files (each compiled with AVX enabled). */
#ifndef PYCNN_GEMM_TRANSPOSE8_H
#define PYCNN_GEMM_TRANSPOSE8_H
#include <immintrin.h>
#include <stdint.h>

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

/* Writes the 8 x k block src (rows ld apart) transposed: column p, 8 values,
 * at out + p * out_stride.  Packing A (out_stride MR = 8) and packing a
 * transposed B into NR-wide panels (out_stride NR) both reduce to this. */
static inline void transpose8_block(int64_t k, const float *src, int64_t ld, float *out, int64_t out_stride)
{
    int64_t p = 0;
    for (; p + 8 <= k; p += 8) {
        __m256 r[8], col[8];
        for (int i = 0; i < 8; i++)
            r[i] = _mm256_loadu_ps(src + i * ld + p);
        transpose8_ps(r, col);
        for (int j = 0; j < 8; j++)
            _mm256_storeu_ps(out + (p + j) * out_stride, col[j]);
    }
    for (; p < k; p++)
        for (int i = 0; i < 8; i++)
            out[p * out_stride + i] = src[i * ld + p];
}
#endif
