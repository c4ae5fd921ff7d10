/* Engine-internal helpers shared by the op families (not installed). */
#ifndef PYCNN_INTERNAL_H
#define PYCNN_INTERNAL_H

#include "pycnn.h"

#ifdef _OPENMP
#include <omp.h>
#define THREAD_ID() omp_get_thread_num()
#else
#define THREAD_ID() 0
#endif

/* Overflow-checked int64 arithmetic: return 0 on overflow or a negative result. */
static inline int mul_ok(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_mul_overflow(a, b, out) && *out >= 0;
}
static inline int add_ok(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_add_overflow(a, b, out) && *out >= 0;
}
/* Product of count factors, all >= 0; 0 on overflow. */
int product_ok(const int64_t *factors, int count, int64_t *out);

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t ceil_div64(int64_t a, int64_t b) { return (a + b - 1) / b; }
/* The same for a >= 0 with no intermediate sum: b may be near INT64_MAX (a stride). */
static inline int64_t ceil_div_nonneg64(int64_t a, int64_t b) { return a / b + (a % b != 0); }

static inline size_t dtype_size(pycnn_dtype t) { return t == PYCNN_FLOAT64 ? 8 : 4; }

/* Threads for a loop of `items` independent work items totalling `work`
 * multiply-adds (or elements): 1 below PYCNN_PARALLEL_MIN_WORK, where waking
 * the workers costs more than the loop itself. */
#define PYCNN_PARALLEL_MIN_WORK (1 << 18)
int worker_threads(int64_t items, int64_t work);

/* 1 if the interrupt poll asks to stop (call only from the calling thread). */
int interrupt_requested(void);

/* Inside a parallel loop: thread 0 (the calling thread) polls for Ctrl-C and
 * raises *stop; every thread then skips its remaining items. */
static inline int stop_requested(int *stop)
{
    if (THREAD_ID() == 0 && interrupt_requested())
        __atomic_store_n(stop, 1, __ATOMIC_RELAXED);
    return __atomic_load_n(stop, __ATOMIC_RELAXED);
}

/* Workspace alignment: every sub-buffer starts on a 64-byte boundary. */
#define PYCNN_ALIGN 64
static inline int64_t align_up64(int64_t bytes) { return (bytes + PYCNN_ALIGN - 1) & ~(int64_t)(PYCNN_ALIGN - 1); }

/*
 * GEMM: C[m, n] = A[m, k] * B[k, n] (+ C when accumulate), row-major with
 * leading dimensions; trans_a / trans_b read A as [k, m] / B as [n, k].
 * Single-threaded; callers parallelize over independent calls.  `pack`
 * must hold gemm_pack_bytes() bytes (see gemm.c for the blocking).
 */
typedef struct {
    int trans_a, trans_b, accumulate;
    int64_t m, n, k, lda, ldb, ldc;
} gemm_args;

int64_t gemm_pack_bytes(pycnn_dtype dtype, int64_t m, int64_t n, int64_t k);
void gemm_f32(const gemm_args *g, const float *a, const float *b, float *c, void *pack);
void gemm_f64(const gemm_args *g, const double *a, const double *b, double *c, void *pack);

/*
 * A B shared by several products, packed once: the micro-kernel's NR-column
 * panels (NR = gemm_nr(), a divisor of 32), by blocks of GEMM_KC rows.  Row
 * r, column j of a k x b_cols matrix, with width = b_cols rounded up to NR
 * and kb = min(GEMM_KC, k - p0), p0 = r - r % GEMM_KC, is at
 *     p0 * width + (j - j % NR) * kb + (r - p0) * NR + j % NR,
 * zeros in the padding columns.  gemm_pack_b packs columns [j0, j0 + nb) of
 * the B that g describes (its k, ldb and trans_b; j0 a multiple of NR);
 * gemm_packed_b runs C = A * B[:, j0 : j0 + n] (j0 a multiple of NR; pack:
 * gemm_pack_bytes(dtype, m, n, k)) with the same bits as gemm() gives for
 * more than GEMM_SMALL_M rows.
 */
int64_t gemm_nr(pycnn_dtype dtype);
/* dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols (SIMD where the GEMM has it). */
void gemm_transpose_f32(int64_t rows, int64_t cols, const float *src, int64_t lds, float *dst, int64_t ldd);
void gemm_transpose_f64(int64_t rows, int64_t cols, const double *src, int64_t lds, double *dst, int64_t ldd);

void gemm_pack_b_f32(const gemm_args *g, const float *b, int64_t b_cols, int64_t j0, int64_t nb, float *b_packed);
void gemm_pack_b_f64(const gemm_args *g, const double *b, int64_t b_cols, int64_t j0, int64_t nb, double *b_packed);
void gemm_packed_b_f32(const gemm_args *g, const float *a, const float *b_packed, int64_t b_cols, int64_t j0,
                       float *c, void *pack);
void gemm_packed_b_f64(const gemm_args *g, const double *a, const double *b_packed, int64_t b_cols, int64_t j0,
                       double *c, void *pack);

#endif
