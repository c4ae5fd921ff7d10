/* Pooling family: max and average pooling, forward and backward. */
#include <string.h>

#include "internal.h"

#define T float
#define FN(name) name##_f32
#include "pool_impl.h"
#undef T
#undef FN

#define T double
#define FN(name) name##_f64
#include "pool_impl.h"
#undef T
#undef FN

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

static pycnn_status run(const pycnn_pool2d_desc *d, const void *x, const void *dy, void *out,
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
    if (d->n == 0)
        return PYCNN_OK;
    if (x == NULL || out == NULL || (backward && dy == NULL))
        return PYCNN_ERR_NULL_POINTER;
    if (d->dtype == PYCNN_FLOAT32)
        return pool_run_f32(d, x, dy, out, backward);
    return pool_run_f64(d, x, dy, out, backward);
}

pycnn_status pycnn_pool2d_forward(const pycnn_pool2d_desc *d, const void *x, void *y)
{
    return run(d, x, NULL, y, 0);
}

pycnn_status pycnn_pool2d_backward(const pycnn_pool2d_desc *d, const void *x, const void *dy, void *dx)
{
    return run(d, x, dy, dx, 1);
}
