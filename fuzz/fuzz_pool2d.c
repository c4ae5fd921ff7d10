/*
 * libFuzzer target: pycnn_pool2d_{check, forward, backward} (max and
 * average) on fuzzed descriptors, including NaN data and hostile sizes, and
 * max pooling with stored indices: pycnn_pool2d_{forward,backward}_indices,
 * also with indices forged by the fuzz bytes.
 *
 * Byte layout: flags (bit0 float64, bit1 average, bit2 NaN data, bit3 interrupt),
 * n h w c kh kw stride_h stride_w pad_top pad_bottom pad_left pad_right
 * (one byte each, see take_dim), then seed and budget bytes, then a count of
 * forged indices (low 2 bits) and per forged index four bytes: element (two,
 * little endian, modulo the count), kind (see forge_index) and a free byte.
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

/* The real cells of the window of output (oy, ox): rows [*y0, *y1), columns [*x0, *x1). */
static void window_cells(const pycnn_pool2d_desc *d, int64_t oy, int64_t ox, int64_t *y0, int64_t *y1,
                         int64_t *x0, int64_t *x1)
{
    *y0 = oy * d->stride_h - d->pad_top, *y1 = *y0 + d->kh;
    *x0 = ox * d->stride_w - d->pad_left, *x1 = *x0 + d->kw;
    *y0 = *y0 < 0 ? 0 : *y0, *x0 = *x0 < 0 ? 0 : *x0;
    *y1 = *y1 > d->h ? d->h : *y1, *x1 = *x1 > d->w ? d->w : *x1;
}

/* A position iy * w + ix is legal for output (oy, ox) when (iy, ix) is one of its window's real cells. */
static int index_legal(const pycnn_pool2d_desc *d, int64_t oy, int64_t ox, int32_t index)
{
    int64_t y0, y1, x0, x1;
    window_cells(d, oy, ox, &y0, &y1, &x0, &x1);
    if (index < 0)
        return 0;
    const int64_t iy = index / d->w, ix = index % d->w;
    return iy >= y0 && iy < y1 && ix >= x0 && ix < x1;
}

/* A forged value for the index of output (oy, ox) whose legal value is `legal`:
 * negative, huge, past the plane, in the plane but outside the window, next to
 * the window, or another cell of the window (legal). */
static int32_t forge_index(const pycnn_pool2d_desc *d, int64_t oy, int64_t ox, int32_t legal, uint8_t kind,
                           uint8_t extra)
{
    int64_t y0, y1, x0, x1;
    window_cells(d, oy, ox, &y0, &y1, &x0, &x1);
    const int64_t plane = d->h * d->w;
    switch (kind % 8) {
    case 0: return -1 - extra;
    case 1: return kind & 8 ? INT32_MIN : INT32_MAX;
    case 2: return (int32_t)(plane + extra % 4);   /* just past the plane */
    case 3: return (int32_t)(extra % plane);        /* anywhere in the plane */
    case 4: return (int32_t)(y0 * d->w + x1);       /* right of the window's first row (may wrap) */
    case 5: return (int32_t)(y1 * d->w + x0);       /* below the window */
    case 6: {   /* next to the legal value, which an earlier forgery may have made INT32_MAX */
        const int64_t near = (int64_t)legal + (kind & 8 ? 1 : -1) * (1 + extra % 3);
        return near > INT32_MAX || near < INT32_MIN ? -1 : (int32_t)near;
    }
    default:                                          /* another real cell of the window */
        return (int32_t)((y0 + extra % (y1 - y0)) * d->w + x0 + (extra / 16) % (x1 - x0));
    }
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
                      int32_t *best_pos, int64_t x_count)
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
                                best = v, best_at = xi, best_pos[yi] = (int32_t)(iy * d->w + ix);
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

/* dx = 0, then dx[n, index, ch] += dy in (oy, ox) order, in the dtype (pycnn.h's
 * definition of backward_indices; exact, so comparable bit for bit). */
static void route_by_indices(const pycnn_pool2d_desc *d, const int32_t *indices, const void *dy, void *dx,
                             int64_t x_count)
{
    memset(dx, 0, (size_t)x_count * (d->dtype == PYCNN_FLOAT64 ? 8 : 4));
    for (int64_t n = 0; n < d->n; n++)
        for (int64_t o = 0; o < d->oh * d->ow; o++)
            for (int64_t ch = 0; ch < d->c; ch++) {
                const int64_t yi = (n * d->oh * d->ow + o) * d->c + ch;
                const int64_t xi = (n * d->h * d->w + indices[yi]) * d->c + ch;
                if (d->dtype == PYCNN_FLOAT64)
                    ((double *)dx)[xi] += ((const double *)dy)[yi];
                else
                    ((float *)dx)[xi] += ((const float *)dy)[yi];
            }
}

/* Max pooling with stored indices: forward gives the plain forward's y and the
 * reference's argmax; backward from them gives the recomputing backward's dx
 * (dx, already computed) bit for bit; forged indices are refused unless legal. */
static void check_indices(const pycnn_pool2d_desc *d, fuzz_bytes *in, const void *x, const void *dy,
                          const void *y, const void *dx, const int32_t *best_pos, int64_t x_count,
                          int64_t y_count)
{
    const size_t size = d->dtype == PYCNN_FLOAT64 ? 8 : 4;
    void *y_idx = alloc_array(y_count, d->dtype), *dx_idx = alloc_array(x_count, d->dtype);
    void *dx_ref = alloc_array(x_count, d->dtype);
    int32_t *indices = malloc(sizeof(int32_t) * (size_t)(y_count ? y_count : 1));
    pycnn_status s = pycnn_pool2d_forward_indices(d, x, y_idx, indices);
    if (s != PYCNN_OK)
        FUZZ_FAIL("pool2d_forward_indices: %s", pycnn_status_str(s));
    if (memcmp(y_idx, y, (size_t)y_count * size) != 0)
        FUZZ_FAIL("pool2d_forward_indices: y differs from pool2d_forward");
    for (int64_t i = 0; i < y_count; i++)
        if (indices[i] != best_pos[i])
            FUZZ_FAIL("pool2d indices[%lld] = %d, reference %d", (long long)i, indices[i], best_pos[i]);
    if ((s = pycnn_pool2d_backward_indices(d, indices, dy, dx_idx)) != PYCNN_OK)
        FUZZ_FAIL("pool2d_backward_indices: %s", pycnn_status_str(s));
    if (memcmp(dx_idx, dx, (size_t)x_count * size) != 0)
        FUZZ_FAIL("pool2d_backward_indices: dx differs from pool2d_backward");

    const int forged = take_u8(in) & 3;
    if (forged == 0 || y_count == 0)
        goto done;
    const int64_t per_image = d->oh * d->ow * d->c;
    for (int k = 0; k < forged; k++) {
        const int64_t i = (take_u8(in) | (int64_t)take_u8(in) << 8) % y_count;
        const uint8_t kind = take_u8(in), extra = take_u8(in);
        const int64_t o = i % per_image / d->c;
        indices[i] = forge_index(d, o / d->ow, o % d->ow, indices[i], kind, extra);
    }
    int all_legal = 1;
    for (int64_t i = 0; i < y_count; i++) {
        const int64_t o = i % per_image / d->c;
        all_legal &= index_legal(d, o / d->ow, o % d->ow, indices[i]);
    }
    s = pycnn_pool2d_backward_indices(d, indices, dy, dx_idx);   /* ASan: nothing outside dx */
    if (s != (all_legal ? PYCNN_OK : PYCNN_ERR_BAD_INDEX))
        FUZZ_FAIL("pool2d_backward_indices with %s forged indices: %s", all_legal ? "legal" : "illegal",
                  pycnn_status_str(s));
    if (all_legal) {
        route_by_indices(d, indices, dy, dx_ref, x_count);
        if (memcmp(dx_idx, dx_ref, (size_t)x_count * size) != 0)
            FUZZ_FAIL("pool2d_backward_indices: dx from legal moved indices differs from routing dy");
    }
done:
    free(y_idx); free(dx_idx); free(dx_ref); free(indices);
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
        int32_t unused_index = 0;
        if (pycnn_pool2d_forward(&c.d, NULL, NULL) == PYCNN_OK || pycnn_pool2d_backward(&c.d, NULL, NULL, NULL) == PYCNN_OK ||
            pycnn_pool2d_forward_indices(&c.d, NULL, NULL, &unused_index) == PYCNN_OK ||
            pycnn_pool2d_backward_indices(&c.d, &unused_index, NULL, NULL) == PYCNN_OK)
            FUZZ_FAIL("a pool2d pass accepted a descriptor that check rejected");
        return 0;
    }
    if (!valid)
        FUZZ_FAIL("pool2d_check accepted an invalid descriptor");
    if (d.oh != oh || d.ow != ow)
        FUZZ_FAIL("pool2d_check: output %lldx%lld, expected %lldx%lld", (long long)d.oh, (long long)d.ow,
                  (long long)oh, (long long)ow);
    /* Index passes: average mode and planes past int32 are refused before any
     * array is read (so the NULL arrays here are never touched); n = 0 has nothing to do. */
    {
        int32_t unused_index = 0;
        const pycnn_status want = d.mode != PYCNN_POOL_MAX ? PYCNN_ERR_BAD_PARAMETER
                                  : (__int128)d.h * d.w > INT32_MAX ? PYCNN_ERR_INDEX_RANGE
                                  : d.n == 0 ? PYCNN_OK : PYCNN_STATUS_COUNT;
        if (want != PYCNN_STATUS_COUNT) {
            const pycnn_status f = pycnn_pool2d_forward_indices(&d, NULL, NULL, &unused_index);
            const pycnn_status b = pycnn_pool2d_backward_indices(&d, &unused_index, NULL, NULL);
            if (f != want || b != want)
                FUZZ_FAIL("pool2d index passes gave '%s' / '%s', expected '%s'", pycnn_status_str(f),
                          pycnn_status_str(b), pycnn_status_str(want));
        }
    }
    const int64_t x_dims[] = {d.n, d.h, d.w, d.c}, y_dims[] = {d.n, d.oh, d.ow, d.c};
    const int64_t x_count = small_count(x_dims, 4), y_count = small_count(y_dims, 4);
    if (x_count < 0 || y_count < 0 || (__int128)y_count * d.kh * d.kw > FUZZ_MAX_WORK)
        return 0;
    void *x = alloc_array(x_count, d.dtype), *dy = alloc_array(y_count, d.dtype);
    void *y = alloc_array(y_count, d.dtype), *dx = alloc_array(x_count, d.dtype);
    double *ry = malloc(sizeof(double) * (size_t)(y_count + 1)), *rdx = malloc(sizeof(double) * (size_t)(x_count + 1));
    int32_t *best_pos = malloc(sizeof(int32_t) * (size_t)(y_count + 1));
    fill_small(x, x_count, d.dtype, c.seed, c.nan);
    nan_inputs = 0;   /* pooling must place NaN exactly (max propagates it, padding is skipped) */
    fill_small(dy, y_count, d.dtype, c.seed + 1, 0);
    reference(&d, x, dy, ry, rdx, best_pos, x_count);
    pycnn_status s = pycnn_pool2d_forward(&d, x, y);
    if (s != PYCNN_OK)
        FUZZ_FAIL("pool2d_forward: %s", pycnn_status_str(s));
    expect_close("pool2d y", y, ry, y_count, d.dtype, 4.0);
    s = pycnn_pool2d_backward(&d, x, dy, dx);
    if (s != PYCNN_OK)
        FUZZ_FAIL("pool2d_backward: %s", pycnn_status_str(s));
    expect_close("pool2d dx", dx, rdx, x_count, d.dtype, 4.0 * (double)d.kh * (double)d.kw);
    pycnn_pool2d_desc wrong = d;
    wrong.ow += 1;
    if (pycnn_pool2d_forward(&wrong, x, y) != PYCNN_ERR_BAD_OUTPUT_SIZE)
        FUZZ_FAIL("pool2d_forward accepted a wrong output width");
    if (d.n > 0 && pycnn_pool2d_backward(&d, x, NULL, dx) != PYCNN_ERR_NULL_POINTER)
        FUZZ_FAIL("pool2d_backward accepted dy = NULL");
    if (d.mode == PYCNN_POOL_MAX && (__int128)d.h * d.w <= INT32_MAX)   /* larger planes: n = 0, checked above */
        check_indices(&d, &in, x, dy, y, dx, best_pos, x_count, y_count);
    if (c.interrupt) {
        poll_budget = c.budget;
        pycnn_set_interrupt_poll(fuzz_poll);
        s = pycnn_pool2d_backward(&d, x, dy, dx);
        pycnn_set_interrupt_poll(NULL);
        if (s != PYCNN_OK && s != PYCNN_ERR_INTERRUPTED)
            FUZZ_FAIL("interrupted pool2d returned %s", pycnn_status_str(s));
    }
    free(x); free(dy); free(y); free(dx); free(ry); free(rdx); free(best_pos);
    return 0;
}
