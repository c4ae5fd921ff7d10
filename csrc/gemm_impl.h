/* GEMM driver template: included by gemm.c with T, FN(name) and UKERNEL set. */

/* Packs the kb x nb row-major block src (rows ld apart) into W-column panels
 * (row p of a panel at p * W, panels kb * W apart), zero-padded: B as stored,
 * and A when stored transposed.  PACK_ROWS rows at a time, written to every
 * panel in turn: each source row is read once, sequentially, and each panel
 * gets a contiguous run of PACK_ROWS * W values.  Twice as fast as one panel
 * at a time (a stride-ld column walk) and leaves the panels warmer for the
 * kernel (1024^3: +5%, 16 x 1024 x 1024: +13%). */
static void FN(pack_row_panels)(const T *src, int64_t ld, int64_t kb, int64_t nb, int64_t W,
                                T *restrict out)
{
    enum { PACK_ROWS = 8 };
    const int64_t full = nb / W * W;   /* columns in whole panels */
    for (int64_t q = 0; q < kb; q += PACK_ROWS, src += PACK_ROWS * ld) {
        const int64_t rows = min64(PACK_ROWS, kb - q);
        T *dst = out + q * W;
        for (int64_t jr = 0; jr < full; jr += W, dst += kb * W)
            for (int64_t p = 0; p < rows; p++)
                for (int64_t j = 0; j < W; j++)
                    dst[p * W + j] = src[p * ld + jr + j];
        if (full < nb)   /* dst is now the last, partial panel */
            for (int64_t p = 0; p < rows; p++) {
                for (int64_t j = 0; j < nb - full; j++)
                    dst[p * W + j] = src[p * ld + full + j];
                for (int64_t j = nb - full; j < W; j++)
                    dst[p * W + j] = 0;
            }
    }
}

/* Packs the mb x kb block of A at (i0, p0) into MR-row panels, zero-padded. */
static void FN(pack_a)(const gemm_args *g, const T *a, int64_t i0, int64_t p0,
                       int64_t mb, int64_t kb, int64_t MR, T *restrict out)
{
    if (g->trans_a) {   /* A is stored [k, m]: its rows are the panels' rows */
        FN(pack_row_panels)(a + p0 * g->lda + i0, g->lda, kb, mb, MR, out);
        return;
    }
    for (int64_t ir = 0; ir < mb; ir += MR) {
        const int64_t mr = min64(MR, mb - ir);
        if (mr == MR && UKERNEL.pack_a != NULL) {
            UKERNEL.pack_a(kb, a + (i0 + ir) * g->lda + p0, g->lda, out);
            out += MR * kb;
            continue;
        }
        for (int64_t p = 0; p < kb; p++) {
            for (int64_t i = 0; i < mr; i++)
                out[i] = a[(i0 + ir + i) * g->lda + p0 + p];
            for (int64_t i = mr; i < MR; i++)
                out[i] = 0;
            out += MR;
        }
    }
}

/* Packs the kb x nb block of B at (p0, j0) into NR-column panels, zero-padded. */
static void FN(pack_b)(const gemm_args *g, const T *b, int64_t p0, int64_t j0,
                       int64_t kb, int64_t nb, int64_t NR, T *restrict out)
{
    if (!g->trans_b) {
        FN(pack_row_panels)(b + p0 * g->ldb + j0, g->ldb, kb, nb, NR, out);
        return;
    }
    /* B is stored [n, k]: read 8 stored rows side by side, each sequentially,
     * and write 8 adjacent panel entries per step (one row at a time would
     * store with a stride of NR). */
    for (int64_t jr = 0; jr < nb; jr += NR, out += kb * NR) {
        const int64_t nr = min64(NR, nb - jr);
        int64_t j = 0;
        for (; j + 8 <= nr && UKERNEL.transpose8 != NULL; j += 8)
            UKERNEL.transpose8(kb, b + (j0 + jr + j) * g->ldb + p0, g->ldb, out + j, NR);
        for (; j + 8 <= nr; j += 8) {
            const T *src = b + (j0 + jr + j) * g->ldb + p0;
            const int64_t ld = g->ldb;
            for (int64_t p = 0; p < kb; p++) {
                T *dst = out + p * NR + j;
                dst[0] = src[p];
                dst[1] = src[ld + p];
                dst[2] = src[2 * ld + p];
                dst[3] = src[3 * ld + p];
                dst[4] = src[4 * ld + p];
                dst[5] = src[5 * ld + p];
                dst[6] = src[6 * ld + p];
                dst[7] = src[7 * ld + p];
            }
        }
        for (; j < nr; j++) {
            const T *src = b + (j0 + jr + j) * g->ldb + p0;
            for (int64_t p = 0; p < kb; p++)
                out[p * NR + j] = src[p];
        }
        for (int64_t p = 0; p < kb; p++)
            for (int64_t jj = nr; jj < NR; jj++)
                out[p * NR + jj] = 0;
    }
}

/* The small-M loop, portable and (on x86) again with 8-lane AVX2 vectors: the
 * same operations in the same order, so both give identical results. */
#define SMALL_M_TARGET
#define SMALL_M_FN FN(small_m_portable)
#include "gemm_small_m.h"
#undef SMALL_M_TARGET
#undef SMALL_M_FN
#if defined(__x86_64__) && defined(PYCNN_HAVE_X86_KERNELS)
#define SMALL_M_TARGET __attribute__((target("avx2")))
#define SMALL_M_FN FN(small_m_avx2)
#include "gemm_small_m.h"
#undef SMALL_M_TARGET
#undef SMALL_M_FN
#endif

void FN(gemm)(const gemm_args *g, const T *a, const T *b, T *c, void *pack)
{
    if (g->m <= 0 || g->n <= 0)
        return;
    if (g->k <= 0) {   /* empty sum: C = 0, or unchanged when accumulating */
        if (!g->accumulate)
            for (int64_t i = 0; i < g->m; i++)
                for (int64_t j = 0; j < g->n; j++)
                    c[i * g->ldc + j] = 0;
        return;
    }
    if (g->m <= GEMM_SMALL_M && !g->trans_b) {
        /* A few rows (a dense layer at batch 1-4): packing would copy all of B to use it
         * once, so B's rows stream straight into C instead (memory-bound either way). */
#if defined(__x86_64__) && defined(PYCNN_HAVE_X86_KERNELS)
        if (simd_loops) {
            FN(small_m_avx2)(g, a, b, c);
            return;
        }
#endif
        FN(small_m_portable)(g, a, b, c);
        return;
    }
    /* Packed A block, then packed B panel: the layout gemm_pack_bytes() sizes. */
    T *a_pack = (T *)pack;
    T *b_pack = a_pack + packed_rows(g->m) * min64(GEMM_KC, g->k);
    const int64_t MR = UKERNEL.mr, NR = UKERNEL.nr;
    for (int64_t jc = 0; jc < g->n; jc += GEMM_NC) {
        const int64_t nb = min64(GEMM_NC, g->n - jc);
        for (int64_t pc = 0; pc < g->k; pc += GEMM_KC) {
            const int64_t kb = min64(GEMM_KC, g->k - pc);
            const int accumulate = g->accumulate || pc > 0;
            FN(pack_b)(g, b, pc, jc, kb, nb, NR, b_pack);
            for (int64_t ic = 0; ic < g->m; ic += GEMM_MC) {
                const int64_t mb = min64(GEMM_MC, g->m - ic);
                FN(pack_a)(g, a, ic, pc, mb, kb, MR, a_pack);
                for (int64_t jr = 0; jr < nb; jr += NR)
                    for (int64_t ir = 0; ir < mb; ir += MR)
                        UKERNEL.run(kb, a_pack + ir * kb, b_pack + jr * kb,
                                    c + (ic + ir) * g->ldc + jc + jr, g->ldc, accumulate,
                                    min64(MR, mb - ir), min64(NR, nb - jr));
            }
        }
    }
}

/* dst[j * ldd + i] = src[i * lds + j] (i < rows, j < cols): a plain matrix
 * transpose, 8 source rows at a time through the packing's register transpose. */
void FN(gemm_transpose)(int64_t rows, int64_t cols, const T *src, int64_t lds, T *dst, int64_t ldd)
{
    int64_t i = 0;
    for (; i + 8 <= rows && UKERNEL.transpose8 != NULL; i += 8)
        UKERNEL.transpose8(cols, src + i * lds, lds, dst + i, ldd);
    for (; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            dst[j * ldd + i] = src[i * lds + j];
}

/* Columns [j0, j0 + nb) of B, all k rows, into gemm_packed_b's layout for a
 * B of b_cols columns (see gemm_nr() in internal.h); j0 a multiple of NR, and
 * nb too unless the range ends B.  Threads may pack disjoint ranges at once. */
void FN(gemm_pack_b)(const gemm_args *g, const T *b, int64_t b_cols, int64_t j0, int64_t nb, T *b_packed)
{
    const int64_t NR = UKERNEL.nr, b_width = ceil_div64(b_cols, NR) * NR;
    for (int64_t pc = 0; pc < g->k; pc += GEMM_KC) {
        const int64_t kb = min64(GEMM_KC, g->k - pc);
        FN(pack_b)(g, b, pc, j0, kb, nb, NR, b_packed + pc * b_width + j0 * kb);
    }
}

/* C[:, :n] = A * B[:, j0 : j0 + n] from a B packed beforehand, for products
 * that share one B (a convolution's chunks, Winograd's transformed filters):
 * the driver above without packing B, in the same order, so the same bits
 * (beyond GEMM_SMALL_M rows, where the driver packs too). */
void FN(gemm_packed_b)(const gemm_args *g, const T *a, const T *b_packed, int64_t b_cols, int64_t j0,
                       T *c, void *pack)
{
    if (g->m <= 0 || g->n <= 0)
        return;
    if (g->k <= 0) {
        if (!g->accumulate)
            for (int64_t i = 0; i < g->m; i++)
                for (int64_t j = 0; j < g->n; j++)
                    c[i * g->ldc + j] = 0;
        return;
    }
    T *a_pack = (T *)pack;
    const int64_t MR = UKERNEL.mr, NR = UKERNEL.nr;
    const int64_t b_width = ceil_div64(b_cols, NR) * NR;
    for (int64_t jc = 0; jc < g->n; jc += GEMM_NC) {
        const int64_t nb = min64(GEMM_NC, g->n - jc);
        for (int64_t pc = 0; pc < g->k; pc += GEMM_KC) {
            const int64_t kb = min64(GEMM_KC, g->k - pc);
            const int accumulate = g->accumulate || pc > 0;
            const T *b_block = b_packed + pc * b_width + (j0 + jc) * kb;   /* panel (j0 + jc) / NR */
            for (int64_t ic = 0; ic < g->m; ic += GEMM_MC) {
                const int64_t mb = min64(GEMM_MC, g->m - ic);
                FN(pack_a)(g, a, ic, pc, mb, kb, MR, a_pack);
                for (int64_t jr = 0; jr < nb; jr += NR)
                    for (int64_t ir = 0; ir < mb; ir += MR)
                        UKERNEL.run(kb, a_pack + ir * kb, b_block + jr * kb, c + (ic + ir) * g->ldc + jc + jr,
                                    g->ldc, accumulate, min64(MR, mb - ir), min64(NR, nb - jr));
            }
        }
    }
}
