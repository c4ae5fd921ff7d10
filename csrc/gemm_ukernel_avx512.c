/* AVX-512 GEMM micro-kernels (compiled with -mavx512f only for this file).
 * float32: 8 x 32 tile, 16 zmm accumulators (two vectors per row). */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "gemm_tiles.h"
#include "gemm_transpose8.h"

#define MR 8
#define NR 32

static void ukernel_f32(int64_t k, const float *restrict a, const float *restrict b, float *restrict c,
                        int64_t ldc, int accumulate, int64_t mr, int64_t nr)
{
    __m512 lo[MR], hi[MR];
    #pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
        lo[i] = hi[i] = _mm512_setzero_ps();
    /* C rows are ldc apart, which the hardware prefetcher does not follow: fetch
     * the tile's lines (2-3 per row) now, so they arrive during the k loop
     * instead of stalling the final load/store (+5-8% at 1024^3). */
    for (int64_t i = 0; i < mr; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + NR - 1), _MM_HINT_T0);
    }
    for (int64_t p = 0; p < k; p++, a += MR, b += NR) {
        const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        #pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            const __m512 ai = _mm512_set1_ps(a[i]);
            lo[i] = _mm512_fmadd_ps(ai, b0, lo[i]);
            hi[i] = _mm512_fmadd_ps(ai, b1, hi[i]);
        }
    }
    if (mr == MR && nr == NR) {
        #pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            float *row = c + i * ldc;
            if (accumulate) {
                lo[i] = _mm512_add_ps(lo[i], _mm512_loadu_ps(row));
                hi[i] = _mm512_add_ps(hi[i], _mm512_loadu_ps(row + 16));
            }
            _mm512_storeu_ps(row, lo[i]);
            _mm512_storeu_ps(row + 16, hi[i]);
        }
        return;
    }
    /* Edge tile: masked loads and stores touch only the mr x nr corner.  The
     * row loops here and above are fully unrolled over the constant MR, so
     * every lo[i] / hi[i] stays a register: with a loop to mr gcc kept both
     * arrays on the stack, zeroed, stored and reloaded them on every call
     * (GEMM with k = 64: +11% from this). */
    const __mmask16 mask_lo = (__mmask16)(nr >= 16 ? 0xFFFF : (1u << nr) - 1);
    const __mmask16 mask_hi = (__mmask16)(nr <= 16 ? 0 : nr >= 32 ? 0xFFFF : (1u << (nr - 16)) - 1);
    #pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        if (i >= mr)
            break;
        float *row = c + i * ldc;
        if (accumulate) {
            lo[i] = _mm512_add_ps(lo[i], _mm512_maskz_loadu_ps(mask_lo, row));
            hi[i] = _mm512_add_ps(hi[i], _mm512_maskz_loadu_ps(mask_hi, row + 16));
        }
        _mm512_mask_storeu_ps(row, mask_lo, lo[i]);
        _mm512_mask_storeu_ps(row + 16, mask_hi, hi[i]);
    }
}

/* Packs a full 8-row block of A: 8 x 8 tiles transposed in registers. */
static void pack_a_f32(int64_t k, const float *a, int64_t lda, float *out)
{
    transpose8_block(k, a, lda, out, MR);
}

/* float64 keeps the portable kernel, vectorized by the compiler with these flags. */
#define T double
#define UKERNEL_NAME ukernel_f64
#define UKERNEL_MR 8
#define UKERNEL_NR 8
#include "gemm_ukernel.h"

const ukernel_f32_info pycnn_gemm_ukernel_avx512_f32 = {ukernel_f32, MR, NR, pack_a_f32, transpose8_block};
const ukernel_f64_info pycnn_gemm_ukernel_avx512_f64 = {ukernel_f64, 8, 8, NULL, NULL};
