/* Batch normalization over channels_last data seen as [rows, c]: training and
 * inference forward, and the backward pass for both. */
#include <math.h>

#include "internal.h"

/* Statistics and gradient sums run over blocks of rows.  A block's partial sums
 * are kept in the data type, so its rows are capped (BN_MAX_BLOCK_ROWS) to bound
 * their rounding; BN_BLOCK_ELEMS keeps a block in L1 for the second pass over it.
 * Blocks, and then chunks of BN_CHUNK_BLOCKS blocks (the work items), are merged
 * in double in a fixed order: results depend on the shape only, not on threads. */
#define BN_BLOCK_ELEMS 8192
#define BN_MIN_BLOCK_ROWS 8
#define BN_MAX_BLOCK_ROWS 256
#define BN_CHUNK_BLOCKS 8
#define BN_CHANNELS 256           /* channels per stack array of partial sums */

enum { BN_NORMALIZE, BN_DX, BN_DX_SCALED };

/* Work split and workspace layout, fixed by the descriptor. */
typedef struct {
    int64_t block_rows, chunk_rows, chunks;
    int64_t partials_offset;      /* double [max(chunks, 1)][2][c]: per-chunk sums */
    int64_t scale_offset, shift_offset, k_offset;   /* T [c] per-channel factors  */
    int64_t bytes;
} bn_plan;

/* Chan et al.'s pairwise update: merge a group of nb values with sum sum_b and sum of
 * squared deviations m2_b into the running (na values, *sum, *m2).  Sums rather than
 * means are carried so that an infinite value gives an infinite mean, as NumPy's. */
static inline void merge_moments(double *sum, double *m2, double na, double nb, double sum_b, double m2_b)
{
    if (na == 0) {
        *sum = sum_b;
        *m2 = m2_b;
        return;
    }
    const double delta = sum_b / nb - *sum / na;
    *m2 += m2_b + delta * delta * (na * nb / (na + nb));
    *sum += sum_b;
}

#define T float
#define FN(name) name##_f32
#include "batchnorm_impl.h"
#undef T
#undef FN

#define T double
#define FN(name) name##_f64
#include "batchnorm_impl.h"
#undef T
#undef FN

pycnn_status pycnn_batch_norm_check(const pycnn_batch_norm_desc *d)
{
    if (d == NULL)
        return PYCNN_ERR_NULL_POINTER;
    if (d->dtype != PYCNN_FLOAT32 && d->dtype != PYCNN_FLOAT64)
        return PYCNN_ERR_BAD_DTYPE;
    if (d->rows < 0 || d->c < 1)
        return PYCNN_ERR_BAD_SHAPE;
    if (!(d->epsilon > 0))   /* also rejects NaN */
        return PYCNN_ERR_BAD_PARAMETER;
    int64_t bytes;
    const int64_t dims[] = {d->rows, d->c, 8};
    if (!product_ok(dims, 3, &bytes))
        return PYCNN_ERR_OVERFLOW;
    return PYCNN_OK;
}

static pycnn_status make_plan(const pycnn_batch_norm_desc *d, bn_plan *p)
{
    pycnn_status st = pycnn_batch_norm_check(d);
    if (st != PYCNN_OK)
        return st;
    p->block_rows = max64(BN_MIN_BLOCK_ROWS, min64(BN_MAX_BLOCK_ROWS, BN_BLOCK_ELEMS / d->c));
    p->chunk_rows = p->block_rows * BN_CHUNK_BLOCKS;
    p->chunks = ceil_div64(d->rows, p->chunk_rows);
    int64_t partial_bytes, factor_bytes;
    const int64_t partial_dims[] = {max64(p->chunks, 1), 2, d->c, 8};
    if (!product_ok(partial_dims, 4, &partial_bytes) ||
        !mul_ok(d->c, (int64_t)dtype_size(d->dtype), &factor_bytes) ||
        !add_ok(partial_bytes, PYCNN_ALIGN, &partial_bytes) || !add_ok(factor_bytes, PYCNN_ALIGN, &factor_bytes))
        return PYCNN_ERR_OVERFLOW;
    partial_bytes = align_up64(partial_bytes - PYCNN_ALIGN);
    factor_bytes = align_up64(factor_bytes - PYCNN_ALIGN);
    p->partials_offset = 0;
    p->scale_offset = partial_bytes;
    if (!add_ok(p->scale_offset, factor_bytes, &p->shift_offset) ||
        !add_ok(p->shift_offset, factor_bytes, &p->k_offset) ||
        !add_ok(p->k_offset, factor_bytes, &p->bytes))
        return PYCNN_ERR_OVERFLOW;
    return PYCNN_OK;
}

pycnn_status pycnn_batch_norm_workspace_size(const pycnn_batch_norm_desc *d, size_t *bytes)
{
    if (bytes == NULL)
        return PYCNN_ERR_NULL_POINTER;
    bn_plan p;
    pycnn_status st = make_plan(d, &p);
    if (st == PYCNN_OK)
        *bytes = (size_t)p.bytes;
    return st;
}

/* Validates the descriptor, workspace and the pointers every pass needs. */
static pycnn_status prepare(const pycnn_batch_norm_desc *d, bn_plan *p, const void *x, const void *out,
                            const void *mean, const void *var, const void *workspace, size_t workspace_size)
{
    pycnn_status st = make_plan(d, p);
    if (st != PYCNN_OK)
        return st;
    if ((int64_t)workspace_size < p->bytes)
        return PYCNN_ERR_WORKSPACE_TOO_SMALL;
    if (workspace == NULL || mean == NULL || var == NULL || (d->rows > 0 && (x == NULL || out == NULL)))
        return PYCNN_ERR_NULL_POINTER;
    return PYCNN_OK;
}

pycnn_status pycnn_batch_norm_forward_training(const pycnn_batch_norm_desc *d, const void *x,
                                               const void *gamma, const void *beta,
                                               void *y, void *mean, void *var,
                                               void *workspace, size_t workspace_size)
{
    bn_plan p;
    pycnn_status st = prepare(d, &p, x, y, mean, var, workspace, workspace_size);
    if (st != PYCNN_OK)
        return st;
    if (d->rows == 0)   /* the statistics of no rows are undefined */
        return PYCNN_ERR_BAD_SHAPE;
    if (d->dtype == PYCNN_FLOAT32)
        return forward_training_f32(d, &p, x, gamma, beta, y, mean, var, workspace);
    return forward_training_f64(d, &p, x, gamma, beta, y, mean, var, workspace);
}

pycnn_status pycnn_batch_norm_forward_inference(const pycnn_batch_norm_desc *d, const void *x,
                                                const void *mean, const void *var,
                                                const void *gamma, const void *beta, void *y,
                                                void *workspace, size_t workspace_size)
{
    bn_plan p;
    pycnn_status st = prepare(d, &p, x, y, mean, var, workspace, workspace_size);
    if (st != PYCNN_OK)
        return st;
    if (d->dtype == PYCNN_FLOAT32)
        return forward_inference_f32(d, &p, x, mean, var, gamma, beta, y, workspace);
    return forward_inference_f64(d, &p, x, mean, var, gamma, beta, y, workspace);
}

pycnn_status pycnn_batch_norm_backward(const pycnn_batch_norm_desc *d, int batch_stats,
                                       const void *x, const void *dy,
                                       const void *mean, const void *var, const void *gamma,
                                       void *dx, void *dgamma, void *dbeta,
                                       void *workspace, size_t workspace_size)
{
    bn_plan p;
    pycnn_status st = prepare(d, &p, x, dx, mean, var, workspace, workspace_size);
    if (st != PYCNN_OK)
        return st;
    if (d->rows > 0 && dy == NULL)
        return PYCNN_ERR_NULL_POINTER;
    if (d->dtype == PYCNN_FLOAT32)
        return backward_f32(d, &p, batch_stats, x, dy, mean, var, gamma, dx, dgamma, dbeta, workspace);
    return backward_f64(d, &p, batch_stats, x, dy, mean, var, gamma, dx, dgamma, dbeta, workspace);
}
