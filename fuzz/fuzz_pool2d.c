/*
 * libFuzzer target: pycnn_pool2d_{check, forward, backward} (max and
 * average) on fuzzed descriptors, including NaN data and hostile sizes.
 *
 * Byte layout: flags (bit0 float64, bit1 average, bit2 NaN data, bit3 interrupt),
 * n h w c kh kw stride_h stride_w pad_top pad_bottom pad_left pad_right
 * (one byte each, see take_dim), then seed and budget bytes.
 */
#include "fuzz_common.h"

typedef struct {
    pycnn_pool2d_desc d;
    int nan, interrupt;
    uint32_t seed;
    int64_t budget;
} pool_case;

static pool_case decode(fuzz_bytes *in)
{
    pool_case c;
    memset(&c, 0, sizeof c);
    const uint8_t flags = take_u8(in);
    pycnn_pool2d_desc *d = &c.d;
    d->dtype = (flags & 1) ? PYCNN_FLOAT64 : PYCNN_FLOAT32;
    d->mode = (flags & 2) ? PYCNN_POOL_AVG : PYCNN_POOL_MAX;
    c.nan = (flags >> 2) & 1, c.interrupt = (flags >> 3) & 1;
    d->n = take_dim(in, 3), d->h = take_dim(in, 9), d->w = take_dim(in, 9), d->c = take_dim(in, 4);
    d->kh = take_dim(in, 4), d->kw = take_dim(in, 4);
    d->stride_h = take_dim(in, 3), d->stride_w = take_dim(in, 3);
    d->pad_top = take_dim(in, 3), d->pad_bottom = take_dim(in, 3);
    d->pad_left = take_dim(in, 3), d->pad_right = take_dim(in, 3);
    c.seed = take_u8(in) * 2654435761u;
    c.budget = take_u8(in) % 8;
    return c;
}

static int oracle(const pycnn_pool2d_desc *d, __int128 *oh, __int128 *ow)
{
    if (d->n < 0 || d->h < 1 || d->w < 1 || d->c < 1 || d->kh < 1 || d->kw < 1 ||
        d->stride_h < 1 || d->stride_w < 1 || d->pad_top < 0 || d->pad_bottom < 0 ||
        d->pad_left < 0 || d->pad_right < 0 || d->pad_top >= d->kh || d->pad_bottom >= d->kh ||
        d->pad_left >= d->kw || d->pad_right >= d->kw)
        return 0;
    const __int128 padded_h = (__int128)d->h + d->pad_top + d->pad_bottom;
    const __int128 padded_w = (__int128)d->w + d->pad_left + d->pad_right;
    if (d->kh > padded_h || d->kw > padded_w)
        return 0;
    *oh = (padded_h - d->kh) / d->stride_h + 1;
    *ow = (padded_w - d->kw) / d->stride_w + 1;
    return 1;
}

/* Naive pooling: windows clipped to the image; max takes the first maximum
 * in row-major order unless a NaN is present (the first NaN wins). */
static void reference(const pycnn_pool2d_desc *d, const void *x, const void *dy, double *y, double *dx,
                      int64_t x_count)
{
    memset(dx, 0, (size_t)x_count * sizeof(double));
    for (int64_t n = 0; n < d->n; n++)
        for (int64_t oy = 0; oy < d->oh; oy++)
            for (int64_t ox = 0; ox < d->ow; ox++)
                for (int64_t ch = 0; ch < d->c; ch++) {
                    const int64_t yi = ((n * d->oh + oy) * d->ow + ox) * d->c + ch;
                    double sum = 0, best = 0;
                    int64_t cells = 0, best_at = -1;
                    for (int64_t iy = oy * d->stride_h - d->pad_top; iy < oy * d->stride_h - d->pad_top + d->kh; iy++)
                        for (int64_t ix = ox * d->stride_w - d->pad_left; ix < ox * d->stride_w - d->pad_left + d->kw; ix++) {
                            if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w)
                                continue;
                            const int64_t xi = ((n * d->h + iy) * d->w + ix) * d->c + ch;
                            const double v = get_value(x, xi, d->dtype);
                            cells++;
                            sum += v;
                            if (best_at < 0 || (!isnan(best) && (isnan(v) || v > best)))
                                best = v, best_at = xi;
                        }
                    if (cells == 0)
                        FUZZ_FAIL("pool2d_check accepted a window with no real cell");
                    const double g = get_value(dy, yi, d->dtype);
                    if (d->mode == PYCNN_POOL_MAX) {
                        y[yi] = best;
                        dx[best_at] += g;
                    } else {
                        y[yi] = sum / (double)cells;
                        for (int64_t iy = oy * d->stride_h - d->pad_top; iy < oy * d->stride_h - d->pad_top + d->kh; iy++)
                            for (int64_t ix = ox * d->stride_w - d->pad_left; ix < ox * d->stride_w - d->pad_left + d->kw; ix++)
                                if (iy >= 0 && iy < d->h && ix >= 0 && ix < d->w)
                                    dx[((n * d->h + iy) * d->w + ix) * d->c + ch] += g / (double)cells;
                    }
                }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_bytes in = {data, size, 0};
    pool_case c = decode(&in);
    pycnn_pool2d_desc d = c.d;
    __int128 oh = 0, ow = 0;
    const int valid = oracle(&c.d, &oh, &ow);
    const pycnn_status st = pycnn_pool2d_check(&d);
    if (st != PYCNN_OK) {
        if (valid && st != PYCNN_ERR_OVERFLOW)
            FUZZ_FAIL("pool2d_check rejected a valid descriptor: %s", pycnn_status_str(st));
        if (pycnn_pool2d_forward(&c.d, NULL, NULL) == PYCNN_OK || pycnn_pool2d_backward(&c.d, NULL, NULL, NULL) == PYCNN_OK)
            FUZZ_FAIL("a pool2d pass accepted a descriptor that check rejected");
        return 0;
    }
    if (!valid)
        FUZZ_FAIL("pool2d_check accepted an invalid descriptor");
    if (d.oh != oh || d.ow != ow)
        FUZZ_FAIL("pool2d_check: output %lldx%lld, expected %lldx%lld", (long long)d.oh, (long long)d.ow,
                  (long long)oh, (long long)ow);
    const int64_t x_dims[] = {d.n, d.h, d.w, d.c}, y_dims[] = {d.n, d.oh, d.ow, d.c};
    const int64_t x_count = small_count(x_dims, 4), y_count = small_count(y_dims, 4);
    if (x_count < 0 || y_count < 0 || (__int128)y_count * d.kh * d.kw > FUZZ_MAX_WORK)
        return 0;
    void *x = alloc_array(x_count, d.dtype), *dy = alloc_array(y_count, d.dtype);
    void *y = alloc_array(y_count, d.dtype), *dx = alloc_array(x_count, d.dtype);
    double *ry = malloc(sizeof(double) * (size_t)(y_count + 1)), *rdx = malloc(sizeof(double) * (size_t)(x_count + 1));
    fill_small(x, x_count, d.dtype, c.seed, c.nan);
    nan_inputs = 0;   /* pooling must place NaN exactly (max propagates it, padding is skipped) */
    fill_small(dy, y_count, d.dtype, c.seed + 1, 0);
    reference(&d, x, dy, ry, rdx, x_count);
    pycnn_status s = pycnn_pool2d_forward(&d, x, y);
    if (s != PYCNN_OK)
        FUZZ_FAIL("pool2d_forward: %s", pycnn_status_str(s));
    expect_close("pool2d y", y, ry, y_count, d.dtype, 4.0);
    s = pycnn_pool2d_backward(&d, x, dy, dx);
    if (s != PYCNN_OK)
        FUZZ_FAIL("pool2d_backward: %s", pycnn_status_str(s));
    expect_close("pool2d dx", dx, rdx, x_count, d.dtype, 4.0 * (double)(d.kh * d.kw));
    pycnn_pool2d_desc wrong = d;
    wrong.ow += 1;
    if (pycnn_pool2d_forward(&wrong, x, y) != PYCNN_ERR_BAD_OUTPUT_SIZE)
        FUZZ_FAIL("pool2d_forward accepted a wrong output width");
    if (d.n > 0 && pycnn_pool2d_backward(&d, x, NULL, dx) != PYCNN_ERR_NULL_POINTER)
        FUZZ_FAIL("pool2d_backward accepted dy = NULL");
    if (c.interrupt) {
        poll_budget = c.budget;
        pycnn_set_interrupt_poll(fuzz_poll);
        s = pycnn_pool2d_backward(&d, x, dy, dx);
        pycnn_set_interrupt_poll(NULL);
        if (s != PYCNN_OK && s != PYCNN_ERR_INTERRUPTED)
            FUZZ_FAIL("interrupted pool2d returned %s", pycnn_status_str(s));
    }
    free(x); free(dy); free(y); free(dx); free(ry); free(rdx);
    return 0;
}
