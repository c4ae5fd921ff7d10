/* Pooling family: max and average pooling, forward and backward, and max pooling with stored argmax indices. */
#include <string.h>

#include "internal.h"

/* Vectors of channels whose max-pool windows are processed together (registers). */
#define POOL_GROUP_VECS 4

/* Window cells (times channels) between interrupt polls inside one image. */
#define POOL_POLL_CELLS (1 << 20)

/* Max-pool rule, per channel: a NaN already held stays; otherwise a NaN or a
 * strictly larger value replaces the held one (so the first maximum wins).
 * Bitwise & and | (not && and ||) keep it branch-free, so it vectorizes. */
#define MAX_TAKES(held, v) (((held) == (held)) & (((v) > (held)) | ((v) != (v))))

/* The window and row code is copied per constant channel count and window (pool_rows). */
#define POOL_ALWAYS_INLINE __attribute__((always_inline))
#define POOL_INLINE static inline POOL_ALWAYS_INLINE POOL_TARGET

/* Windows overlap: backward adds several gradients into one dx cell. */
static int windows_overlap(const pycnn_pool2d_desc *d)
{
    return d->stride_h < d->kh || d->stride_w < d->kw;
}

/* Backward: the first dx row owned by the band of output rows
 * starting at oy (its first window row, or the image edge), so that the gap
 * rows no window covers belong to exactly one band. */
static int64_t band_first_row(const pycnn_pool2d_desc *d, int64_t oy)
{
    if (oy == 0)
        return 0;
    if (oy >= d->oh)
        return d->h;
    return min64(max64(oy * d->stride_h - d->pad_top, 0), d->h);
}

/* Bands of output rows per image: 1 when there are at least as many images
 * as threads, else enough for every thread (a single large image).  Bands
 * never change any arithmetic (see pool_rows). */
static int64_t image_bands(const pycnn_pool2d_desc *d)
{
    const int64_t threads = pycnn_get_num_threads(), n = max64(d->n, 1);
    return n >= threads ? 1 : max64(1, min64((threads + n - 1) / n, d->oh));
}

/* Joining two half vectors (narrow channel groups) needs __builtin_shufflevector. */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define POOL_HAVE_SHUFFLEVECTOR 1
#endif

/* Portable code: 16-byte vectors (SSE2, the x86-64 baseline).  Only float32,
 * the fast path, gets the copies for constant channel counts and windows
 * (they cost most of this file's compile time). */
#define POOL_TARGET
#define POOL_VEC_BYTES 16
#define POOL_SPECIALIZE 1
#define T float
#define TI int32_t
#define FN(name) name##_f32
#ifdef POOL_HAVE_SHUFFLEVECTOR
#define POOL_JOIN 0, 1, 2, 3   /* lane lists for joining and splitting half vectors */
#define POOL_LOW 0, 1
#define POOL_HIGH 2, 3
#endif
#include "pool_impl.h"
#undef T
#undef TI
#undef FN
#undef POOL_JOIN
#undef POOL_LOW
#undef POOL_HIGH

#undef POOL_SPECIALIZE
#define POOL_SPECIALIZE 0
#define T double
#define TI int64_t
#define FN(name) name##_f64
#include "pool_impl.h"
#undef T
#undef TI
#undef FN
#undef POOL_TARGET
#undef POOL_VEC_BYTES
#undef POOL_SPECIALIZE

#if defined(__x86_64__) && defined(PYCNN_HAVE_X86_KERNELS)
/* float32 again for AVX2, used whenever the GEMM's ISA (pycnn_isa, so also
 * PYCNN_ISA) is avx2 or avx512: the same C with 8-lane vectors, so the same
 * results.  (AVX-512 code from this C measured slower than AVX2 here.) */
#define POOL_TARGET __attribute__((target("avx2")))
#define POOL_VEC_BYTES 32
#define POOL_SPECIALIZE 1
#define T float
#define TI int32_t
#define FN(name) name##_f32_avx2
#ifdef POOL_HAVE_SHUFFLEVECTOR
#define POOL_JOIN 0, 1, 2, 3, 4, 5, 6, 7
#define POOL_LOW 0, 1, 2, 3
#define POOL_HIGH 4, 5, 6, 7
#endif
#include "pool_impl.h"
#undef T
#undef TI
#undef FN
#undef POOL_JOIN
#undef POOL_LOW
#undef POOL_HIGH
#undef POOL_TARGET
#undef POOL_VEC_BYTES
#undef POOL_SPECIALIZE
#endif

pycnn_status pycnn_pool2d_check(pycnn_pool2d_desc *d)
{
    if (d == NULL)
        return PYCNN_ERR_NULL_POINTER;
    if (d->dtype != PYCNN_FLOAT32 && d->dtype != PYCNN_FLOAT64)
        return PYCNN_ERR_BAD_DTYPE;
    if (d->mode != PYCNN_POOL_MAX && d->mode != PYCNN_POOL_AVG)
        return PYCNN_ERR_BAD_SHAPE;
    if (d->n < 0 || d->h < 1 || d->w < 1 || d->c < 1 || d->kh < 1 || d->kw < 1)
        return PYCNN_ERR_BAD_SHAPE;
    if (d->stride_h < 1 || d->stride_w < 1)
        return PYCNN_ERR_BAD_STRIDE;
    /* Padding smaller than the window keeps at least one real cell in every window. */
    if (d->pad_top < 0 || d->pad_bottom < 0 || d->pad_left < 0 || d->pad_right < 0 ||
        d->pad_top >= d->kh || d->pad_bottom >= d->kh || d->pad_left >= d->kw || d->pad_right >= d->kw)
        return PYCNN_ERR_BAD_PADDING;
    int64_t padded_h, padded_w;
    if (!add_ok(d->h, d->pad_top, &padded_h) || !add_ok(padded_h, d->pad_bottom, &padded_h) ||
        !add_ok(d->w, d->pad_left, &padded_w) || !add_ok(padded_w, d->pad_right, &padded_w))
        return PYCNN_ERR_OVERFLOW;
    if (d->kh > padded_h || d->kw > padded_w)
        return PYCNN_ERR_KERNEL_TOO_LARGE;
    d->oh = (padded_h - d->kh) / d->stride_h + 1;
    d->ow = (padded_w - d->kw) / d->stride_w + 1;
    int64_t count;
    const int64_t x_dims[] = {d->n, d->h, d->w, d->c, (int64_t)dtype_size(d->dtype)};
    const int64_t y_dims[] = {d->n, d->oh, d->ow, d->c, (int64_t)dtype_size(d->dtype)};
    if (!product_ok(x_dims, 5, &count) || !product_ok(y_dims, 5, &count))
        return PYCNN_ERR_OVERFLOW;
    return PYCNN_OK;
}

/* indices (NULL for the plain passes): written by forward, read by backward
 * instead of x (then NULL). */
static pycnn_status run(const pycnn_pool2d_desc *d, const void *x, const void *dy, void *out, int32_t *indices,
                        int backward)
{
    if (d == NULL)
        return PYCNN_ERR_NULL_POINTER;
    pycnn_pool2d_desc checked = *d;
    pycnn_status st = pycnn_pool2d_check(&checked);
    if (st != PYCNN_OK)
        return st;
    if (checked.oh != d->oh || checked.ow != d->ow)
        return PYCNN_ERR_BAD_OUTPUT_SIZE;
    if (indices != NULL) {
        if (d->mode != PYCNN_POOL_MAX)
            return PYCNN_ERR_BAD_PARAMETER;
        int64_t plane;
        if (!mul_ok(d->h, d->w, &plane) || plane > INT32_MAX)
            return PYCNN_ERR_INDEX_RANGE;
    }
    if (d->n == 0)
        return PYCNN_OK;
    if ((x == NULL && !(backward && indices != NULL)) || out == NULL || (backward && dy == NULL))
        return PYCNN_ERR_NULL_POINTER;
    if (d->dtype == PYCNN_FLOAT32) {
#if defined(__x86_64__) && defined(PYCNN_HAVE_X86_KERNELS)
        if (strcmp(pycnn_isa(), "ref") != 0)
            return pool_run_f32_avx2(d, x, dy, out, indices, backward);
#endif
        return pool_run_f32(d, x, dy, out, indices, backward);
    }
    return pool_run_f64(d, x, dy, out, indices, backward);
}

pycnn_status pycnn_pool2d_forward(const pycnn_pool2d_desc *d, const void *x, void *y)
{
    return run(d, x, NULL, y, NULL, 0);
}

pycnn_status pycnn_pool2d_backward(const pycnn_pool2d_desc *d, const void *x, const void *dy, void *dx)
{
    return run(d, x, dy, dx, NULL, 1);
}

pycnn_status pycnn_pool2d_forward_indices(const pycnn_pool2d_desc *d, const void *x, void *y, int32_t *indices)
{
    if (indices == NULL)
        return PYCNN_ERR_NULL_POINTER;
    return run(d, x, NULL, y, indices, 0);
}

pycnn_status pycnn_pool2d_backward_indices(const pycnn_pool2d_desc *d, const int32_t *indices, const void *dy,
                                           void *dx)
{
    if (indices == NULL)
        return PYCNN_ERR_NULL_POINTER;
    /* The passes share one indices pointer; backward only reads through it. */
    return run(d, NULL, dy, dx, (int32_t *)indices, 1);
}
