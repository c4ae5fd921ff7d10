/*
 * GEMM micro-kernel template (BLIS contract).  Included once per ISA file
 * with UKERNEL_NAME and T defined; the same portable C source is compiled
 * with each ISA's flags so the compiler vectorizes the NR loop.
 *
 * Contract: a is a packed MR x k panel (column p holds a[p*MR + 0..MR-1]),
 * b a packed k x NR panel (row p holds b[p*NR + 0..NR-1]), both zero-padded
 * to full MR/NR.  Writes the top-left mr x nr corner of the MR x NR product
 * into c (row stride ldc), adding to c when accumulate is set; c is never
 * read when accumulate is 0.
 */
#include "gemm_tiles.h"

void UKERNEL_NAME(int64_t k, const T *restrict a, const T *restrict b,
                  T *restrict c, int64_t ldc, int accumulate, int64_t mr, int64_t nr)
{
    T acc[GEMM_MR][GEMM_NR] = {{0}};
    for (int64_t p = 0; p < k; p++) {
        const T *ap = a + p * GEMM_MR;
        const T *bp = b + p * GEMM_NR;
        for (int i = 0; i < GEMM_MR; i++) {
            const T ai = ap[i];
            for (int j = 0; j < GEMM_NR; j++)
                acc[i][j] += ai * bp[j];
        }
    }
    if (mr == GEMM_MR && nr == GEMM_NR) {
        for (int i = 0; i < GEMM_MR; i++)
            for (int j = 0; j < GEMM_NR; j++)
                c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
        return;
    }
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nr; j++)
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}
