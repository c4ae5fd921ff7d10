/* AVX2 + FMA GEMM micro-kernels (compiled with -mavx2 -mfma only for this file).
 * float32: 6 x 16 tile, 12 ymm accumulators (two vectors per row). */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "gemm_tiles.h"

#define MR 6
#define NR 16

static void ukernel_f32(int64_t k, const float *restrict a, const float *restrict b, float *restrict c,
                        int64_t ldc, int accumulate, int64_t mr, int64_t nr)
{
    __m256 lo[MR], hi[MR];
    for (int i = 0; i < MR; i++)
        lo[i] = hi[i] = _mm256_setzero_ps();
    for (int64_t p = 0; p < k; p++, a += MR, b += NR) {
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        for (int i = 0; i < MR; i++) {
            const __m256 ai = _mm256_broadcast_ss(a + i);
            lo[i] = _mm256_fmadd_ps(ai, b0, lo[i]);
            hi[i] = _mm256_fmadd_ps(ai, b1, hi[i]);
        }
    }
    if (mr == MR && nr == NR) {
        for (int i = 0; i < MR; i++) {
            float *row = c + i * ldc;
            if (accumulate) {
                lo[i] = _mm256_add_ps(lo[i], _mm256_loadu_ps(row));
                hi[i] = _mm256_add_ps(hi[i], _mm256_loadu_ps(row + 8));
            }
            _mm256_storeu_ps(row, lo[i]);
            _mm256_storeu_ps(row + 8, hi[i]);
        }
        return;
    }
    /* Edge tile: spill the accumulators and copy the mr x nr corner. */
    float tile[MR][NR];
    for (int i = 0; i < MR; i++) {
        _mm256_storeu_ps(tile[i], lo[i]);
        _mm256_storeu_ps(tile[i] + 8, hi[i]);
    }
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nr; j++)
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + tile[i][j] : tile[i][j];
}

#define T double
#define UKERNEL_NAME ukernel_f64
#define UKERNEL_MR 6
#define UKERNEL_NR 8
#include "gemm_ukernel.h"

const ukernel_f32_info pycnn_gemm_ukernel_avx2_f32 = {ukernel_f32, MR, NR, NULL};
const ukernel_f64_info pycnn_gemm_ukernel_avx2_f64 = {ukernel_f64, 6, 8, NULL};
