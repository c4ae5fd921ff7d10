/* AVX2 + FMA GEMM micro-kernels (compiled with -mavx2 -mfma only for this file).
 * float32: 6 x 16 tile, 12 ymm accumulators (two vectors per row). */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "gemm_tiles.h"
#include "gemm_transpose8.h"

#define MR 6
#define NR 16

/* The 12 accumulators are named variables, not arrays: gcc kept arrays on
 * the stack and stored them on every step (about 35% of peak instead of 85%). */
#define ROW_FMA(i, lo, hi)                                   \
    do {                                                     \
        const __m256 ai = _mm256_broadcast_ss(a + (i));      \
        lo = _mm256_fmadd_ps(ai, b0, lo);                    \
        hi = _mm256_fmadd_ps(ai, b1, hi);                    \
    } while (0)

static void ukernel_f32(int64_t k, const float *restrict a, const float *restrict b, float *restrict c,
                        int64_t ldc, int accumulate, int64_t mr, int64_t nr)
{
    __m256 l0 = _mm256_setzero_ps(), h0 = l0, l1 = l0, h1 = l0, l2 = l0, h2 = l0;
    __m256 l3 = l0, h3 = l0, l4 = l0, h4 = l0, l5 = l0, h5 = l0;
    for (int64_t p = 0; p < k; p++, a += MR, b += NR) {
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        ROW_FMA(0, l0, h0);
        ROW_FMA(1, l1, h1);
        ROW_FMA(2, l2, h2);
        ROW_FMA(3, l3, h3);
        ROW_FMA(4, l4, h4);
        ROW_FMA(5, l5, h5);
    }
    float tile[MR][NR];
    _mm256_storeu_ps(tile[0], l0), _mm256_storeu_ps(tile[0] + 8, h0);
    _mm256_storeu_ps(tile[1], l1), _mm256_storeu_ps(tile[1] + 8, h1);
    _mm256_storeu_ps(tile[2], l2), _mm256_storeu_ps(tile[2] + 8, h2);
    _mm256_storeu_ps(tile[3], l3), _mm256_storeu_ps(tile[3] + 8, h3);
    _mm256_storeu_ps(tile[4], l4), _mm256_storeu_ps(tile[4] + 8, h4);
    _mm256_storeu_ps(tile[5], l5), _mm256_storeu_ps(tile[5] + 8, h5);
    if (mr == MR && nr == NR) {
        for (int i = 0; i < MR; i++) {
            float *row = c + i * ldc;
            __m256 lo = _mm256_loadu_ps(tile[i]), hi = _mm256_loadu_ps(tile[i] + 8);
            if (accumulate) {
                lo = _mm256_add_ps(lo, _mm256_loadu_ps(row));
                hi = _mm256_add_ps(hi, _mm256_loadu_ps(row + 8));
            }
            _mm256_storeu_ps(row, lo);
            _mm256_storeu_ps(row + 8, hi);
        }
        return;
    }
    /* Edge tile: copy the mr x nr corner. */
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nr; j++)
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + tile[i][j] : tile[i][j];
}

/* Packs a full 6-row block of A: 8 x 8 transposes (rows 6 and 7 zero) whose
 * columns are stored 6 lanes at a time. */
static void pack_a_f32(int64_t k, const float *a, int64_t lda, float *out)
{
    const __m256i six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
    int64_t p = 0;
    for (; p + 8 <= k; p += 8, out += 8 * MR) {
        __m256 r[8], col[8];
        for (int i = 0; i < MR; i++)
            r[i] = _mm256_loadu_ps(a + i * lda + p);
        r[6] = r[7] = _mm256_setzero_ps();
        transpose8_ps(r, col);
        for (int j = 0; j < 8; j++)
            _mm256_maskstore_ps(out + j * MR, six, col[j]);
    }
    for (; p < k; p++, out += MR)
        for (int i = 0; i < MR; i++)
            out[i] = a[i * lda + p];
}

#define T double
#define UKERNEL_NAME ukernel_f64
#define UKERNEL_MR 6
#define UKERNEL_NR 8
#include "gemm_ukernel.h"

const ukernel_f32_info pycnn_gemm_ukernel_avx2_f32 = {ukernel_f32, MR, NR, pack_a_f32, transpose8_block};
const ukernel_f64_info pycnn_gemm_ukernel_avx2_f64 = {ukernel_f64, 6, 8, NULL, NULL};
