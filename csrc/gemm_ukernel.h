/*
 * Portable GEMM micro-kernel template (the oracle for the SIMD kernels).
 * Included with T, UKERNEL_NAME, UKERNEL_MR and UKERNEL_NR defined; the
 * contract is in gemm_tiles.h.  Also compiled with ISA flags for float64,
 * where the compiler vectorizes the NR loop.
 */
#include "gemm_tiles.h"

static void UKERNEL_NAME(int64_t k, const T *restrict a, const T *restrict b,
                         T *restrict c, int64_t ldc, int accumulate, int64_t mr, int64_t nr)
{
    T acc[UKERNEL_MR][UKERNEL_NR] = {{0}};
    for (int64_t p = 0; p < k; p++) {
        const T *ap = a + p * UKERNEL_MR;
        const T *bp = b + p * UKERNEL_NR;
        for (int i = 0; i < UKERNEL_MR; i++) {
            const T ai = ap[i];
            for (int j = 0; j < UKERNEL_NR; j++)
                acc[i][j] += ai * bp[j];
        }
    }
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nr; j++)
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}
