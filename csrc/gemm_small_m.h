/* C (+)= A B for at most GEMM_SMALL_M rows of C, B row-major: included by
 * gemm_impl.h with T, FN, SMALL_M_FN (the function's name) and SMALL_M_TARGET
 * (empty, or a target attribute for a vector build of the same loops). */
static SMALL_M_TARGET void SMALL_M_FN(const gemm_args *g, const T *a, const T *b, T *c)
{
    for (int64_t i = 0; i < g->m && !g->accumulate; i++)
        for (int64_t j = 0; j < g->n; j++)
            c[i * g->ldc + j] = 0;
    /* Four rows of B per sweep over C: four streams in flight, a quarter of the C updates. */
#define A_AT(i, p) (g->trans_a ? a[(p) * g->lda + (i)] : a[(i) * g->lda + (p)])
    int64_t p = 0;
    for (; p + 4 <= g->k; p += 4) {
        const T *restrict b0 = b + p * g->ldb, *restrict b1 = b0 + g->ldb;
        const T *restrict b2 = b1 + g->ldb, *restrict b3 = b2 + g->ldb;
        for (int64_t i = 0; i < g->m; i++) {
            const T a0 = A_AT(i, p), a1 = A_AT(i, p + 1), a2 = A_AT(i, p + 2), a3 = A_AT(i, p + 3);
            T *restrict c_row = c + i * g->ldc;
            for (int64_t j = 0; j < g->n; j++)
                c_row[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j];
        }
    }
    for (; p < g->k; p++) {
        const T *restrict b_row = b + p * g->ldb;
        for (int64_t i = 0; i < g->m; i++) {
            const T a_ip = A_AT(i, p);
            T *restrict c_row = c + i * g->ldc;
            for (int64_t j = 0; j < g->n; j++)
                c_row[j] += a_ip * b_row[j];
        }
    }
#undef A_AT
}
