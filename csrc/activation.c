/* Element-wise activations: relu, leaky_relu, sigmoid, tanh and clamp, forward and backward,
 * and the same loops in place as the convolution epilogue. */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "activation.h"

/* Work split.  Element-wise results do not depend on it, so it may follow the
 * thread count: each thread gets equal blocks of at most ACTIVATION_MAX_BLOCK
 * elements (the interrupt poll runs between blocks), multiples of 16 elements
 * so that every block starts at the same cache-line offset. */
#define ACTIVATION_MIN_BLOCK ((int64_t)1 << 14)
#define ACTIVATION_MAX_BLOCK ((int64_t)1 << 18)

#define T float
#define FN(name) pycnn_activation_##name##_ref_f32
#include "activation_loops.h"
#undef T
#undef FN

#define T double
#define FN(name) pycnn_activation_##name##_ref_f64
#include "activation_loops.h"
#undef T
#undef FN

/* The AVX2 build of the loops whenever the GEMM kernel is a SIMD one
 * (PYCNN_ISA=ref forces the portable loops too); both give identical results. */
static activation_block_fn block_fn(pycnn_dtype dtype)
{
#if defined(__x86_64__) && defined(PYCNN_HAVE_X86_KERNELS)
    if (strcmp(pycnn_isa(), "ref") != 0)
        return dtype == PYCNN_FLOAT32 ? pycnn_activation_block_avx2_f32 : pycnn_activation_block_avx2_f64;
#endif
    return dtype == PYCNN_FLOAT32 ? pycnn_activation_block_ref_f32 : pycnn_activation_block_ref_f64;
}

activation_epilogue_fn activation_epilogue_for(pycnn_dtype dtype)
{
#if defined(__x86_64__) && defined(PYCNN_HAVE_X86_KERNELS)
    if (strcmp(pycnn_isa(), "ref") != 0)
        return dtype == PYCNN_FLOAT32 ? pycnn_activation_epilogue_avx2_f32 : pycnn_activation_epilogue_avx2_f64;
#endif
    return dtype == PYCNN_FLOAT32 ? pycnn_activation_epilogue_ref_f32 : pycnn_activation_epilogue_ref_f64;
}

/* Clamp bounds: ordered numbers (infinite ones included). */
static int clamp_bounds_ok(double lo, double hi)
{
    return lo == lo && hi == hi && lo <= hi;
}

pycnn_status activation_epilogue_check(const pycnn_epilogue *e)
{
    switch (e->mode) {
    case PYCNN_EPILOGUE_NONE:
    case PYCNN_EPILOGUE_RELU:
    case PYCNN_EPILOGUE_LEAKY_RELU:
        return PYCNN_OK;
    case PYCNN_EPILOGUE_CLAMP:
        return clamp_bounds_ok(e->clamp_lo, e->clamp_hi) ? PYCNN_OK : PYCNN_ERR_BAD_PARAMETER;
    default:
        return PYCNN_ERR_BAD_PARAMETER;
    }
}

pycnn_status pycnn_activation_check(const pycnn_activation_desc *d)
{
    if (d == NULL)
        return PYCNN_ERR_NULL_POINTER;
    if (d->dtype != PYCNN_FLOAT32 && d->dtype != PYCNN_FLOAT64)
        return PYCNN_ERR_BAD_DTYPE;
    if (d->mode != PYCNN_ACTIVATION_RELU && d->mode != PYCNN_ACTIVATION_LEAKY_RELU &&
        d->mode != PYCNN_ACTIVATION_SIGMOID && d->mode != PYCNN_ACTIVATION_TANH &&
        d->mode != PYCNN_ACTIVATION_CLAMP)
        return PYCNN_ERR_BAD_PARAMETER;
    if (d->mode == PYCNN_ACTIVATION_CLAMP && !clamp_bounds_ok(d->clamp_lo, d->clamp_hi))
        return PYCNN_ERR_BAD_PARAMETER;
    if (d->count < 0)
        return PYCNN_ERR_BAD_SHAPE;
    int64_t bytes;
    if (!mul_ok(d->count, (int64_t)dtype_size(d->dtype), &bytes))
        return PYCNN_ERR_OVERFLOW;
    return PYCNN_OK;
}

/* dy == NULL: forward (out = y); otherwise backward (out = dx). */
static pycnn_status run(const pycnn_activation_desc *d, const void *x, const void *dy, void *out,
                        int backward)
{
    pycnn_status st = pycnn_activation_check(d);
    if (st != PYCNN_OK)
        return st;
    if (d->count == 0)
        return PYCNN_OK;
    if (x == NULL || out == NULL || (backward && dy == NULL))
        return PYCNN_ERR_NULL_POINTER;
    const activation_block_fn block = block_fn(d->dtype);
    const int threads = worker_threads(ceil_div64(d->count, ACTIVATION_MIN_BLOCK), d->count);
    const int64_t per_thread = ceil_div64(d->count, threads);
    const int64_t blocks = threads * ceil_div64(per_thread, ACTIVATION_MAX_BLOCK);
    const int64_t block_size = ceil_div64(ceil_div64(d->count, blocks), 16) * 16;
    const int64_t size = (int64_t)dtype_size(d->dtype);
    int stop = 0;
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t b = 0; b < blocks; b++) {
        if (stop_requested(&stop))
            continue;
        const int64_t start = b * block_size, offset = start * size;
        if (start >= d->count)   /* rounding to 16 can leave the last blocks empty */
            continue;
        block(d, min64(block_size, d->count - start), (const char *)x + offset,
              dy == NULL ? NULL : (const char *)dy + offset, (char *)out + offset);
    }
    return stop ? PYCNN_ERR_INTERRUPTED : PYCNN_OK;
}

pycnn_status pycnn_activation_forward(const pycnn_activation_desc *d, const void *x, void *y)
{
    return run(d, x, NULL, y, 0);
}

pycnn_status pycnn_activation_backward(const pycnn_activation_desc *d,
                                       const void *x, const void *dy, void *dx)
{
    return run(d, x, dy, dx, 1);
}
