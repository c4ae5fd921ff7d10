/*
 * libFuzzer target: pycnn_conv2d_transpose_{check, workspace_size, forward,
 * backward_data, backward_filter} on fuzzed descriptors.
 *
 * Byte layout: flags (bit0 float64, bit1 bias, bit2 NaN data, bit3 interrupt),
 * n h w c_in kh kw c_out stride_h stride_w dilation_h dilation_w crop_top
 * crop_left oh ow (one byte each, see take_dim), then seed and budget bytes.
 */
#include "fuzz_common.h"

typedef struct {
    pycnn_conv2d_transpose_desc t;
    int bias, nan, interrupt;
    uint32_t seed;
    int64_t budget;
} transpose_case;

static transpose_case decode(fuzz_bytes *in)
{
    transpose_case c;
    memset(&c, 0, sizeof c);
    const uint8_t flags = take_u8(in);
    pycnn_conv2d_transpose_desc *t = &c.t;
    t->dtype = (flags & 1) ? PYCNN_FLOAT64 : PYCNN_FLOAT32;
    c.bias = (flags >> 1) & 1, c.nan = (flags >> 2) & 1, c.interrupt = (flags >> 3) & 1;
    t->n = take_dim(in, 3), t->h = take_dim(in, 6), t->w = take_dim(in, 6), t->c_in = take_dim(in, 5);
    t->kh = take_dim(in, 4), t->kw = take_dim(in, 4), t->c_out = take_dim(in, 5);
    t->stride_h = take_dim(in, 3), t->stride_w = take_dim(in, 3);
    t->dilation_h = take_dim(in, 3), t->dilation_w = take_dim(in, 3);
    t->crop_top = take_dim(in, 3), t->crop_left = take_dim(in, 3);
    t->oh = take_dim(in, 20), t->ow = take_dim(in, 20);
    c.seed = take_u8(in) * 2654435761u;
    c.budget = take_u8(in) % 8;
    return c;
}

/* The transposed convolution by its definition: every input pixel scatters
 * its kernel-weighted values to y[oy * s - crop + i * d]; positions outside
 * [0, oh) are dropped.  Also its two gradients, in float64. */
static void reference(const pycnn_conv2d_transpose_desc *t, const void *x, const void *w,
                      const void *bias, const void *dy, double *y, double *dx, double *dw, double *db,
                      int64_t y_count, int64_t x_count, int64_t w_count)
{
    const pycnn_dtype dt = t->dtype;
    for (int64_t i = 0; i < y_count; i++)
        y[i] = bias ? get_value(bias, i % t->c_out, dt) : 0.0;
    memset(dx, 0, (size_t)x_count * sizeof(double));
    memset(dw, 0, (size_t)w_count * sizeof(double));
    memset(db, 0, (size_t)t->c_out * sizeof(double));
    for (int64_t i = 0; i < y_count; i++)
        db[i % t->c_out] += get_value(dy, i, dt);
    for (int64_t n = 0; n < t->n; n++)
        for (int64_t oy = 0; oy < t->h; oy++)
            for (int64_t ox = 0; ox < t->w; ox++)
                for (int64_t i = 0; i < t->kh; i++) {
                    const int64_t yy = oy * t->stride_h - t->crop_top + i * t->dilation_h;
                    if (yy < 0 || yy >= t->oh)
                        continue;
                    for (int64_t j = 0; j < t->kw; j++) {
                        const int64_t yx = ox * t->stride_w - t->crop_left + j * t->dilation_w;
                        if (yx < 0 || yx >= t->ow)
                            continue;
                        for (int64_t co = 0; co < t->c_out; co++)
                            for (int64_t ci = 0; ci < t->c_in; ci++) {
                                const int64_t xi = ((n * t->h + oy) * t->w + ox) * t->c_in + ci;
                                const int64_t yi = ((n * t->oh + yy) * t->ow + yx) * t->c_out + co;
                                const int64_t wi = ((i * t->kw + j) * t->c_out + co) * t->c_in + ci;
                                y[yi] += get_value(x, xi, dt) * get_value(w, wi, dt);
                                dx[xi] += get_value(dy, yi, dt) * get_value(w, wi, dt);
                                dw[wi] += get_value(x, xi, dt) * get_value(dy, yi, dt);
                            }
                    }
                }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_bytes in = {data, size, 0};
    transpose_case c = decode(&in);
    pycnn_conv2d_transpose_desc t = c.t;
    size_t ws_bytes = 0;
    const pycnn_status st = pycnn_conv2d_transpose_check(&t);
    if (memcmp(&t, &c.t, sizeof t) != 0)
        FUZZ_FAIL("conv2d_transpose_check modified the caller's descriptor");
    if (st != PYCNN_OK) {
        if (pycnn_conv2d_transpose_forward(&t, NULL, NULL, NULL, NULL, NULL, 0) == PYCNN_OK ||
            pycnn_conv2d_transpose_backward_data(&t, NULL, NULL, NULL, NULL, 0) == PYCNN_OK ||
            pycnn_conv2d_transpose_backward_filter(&t, NULL, NULL, NULL, NULL, NULL, 0) == PYCNN_OK ||
            pycnn_conv2d_transpose_workspace_size(&t, &ws_bytes) == PYCNN_OK)
            FUZZ_FAIL("a conv2d_transpose pass accepted a descriptor that check rejected");
        return 0;
    }
    /* Accepted: the basic rules must hold. */
    if (t.n < 0 || t.h < 1 || t.w < 1 || t.c_in < 1 || t.c_out < 1 || t.kh < 1 || t.kw < 1 ||
        t.oh < 1 || t.ow < 1 || t.stride_h < 1 || t.stride_w < 1 || t.dilation_h < 1 ||
        t.dilation_w < 1 || t.crop_top < 0 || t.crop_left < 0)
        FUZZ_FAIL("conv2d_transpose_check accepted an invalid descriptor");
    const pycnn_status ws_st = pycnn_conv2d_transpose_workspace_size(&t, &ws_bytes);
    if (ws_st != PYCNN_OK) {
        if (ws_st != PYCNN_ERR_OVERFLOW)
            FUZZ_FAIL("conv2d_transpose_workspace_size: %s", pycnn_status_str(ws_st));
        return 0;
    }
    const int64_t x_dims[] = {t.n, t.h, t.w, t.c_in}, y_dims[] = {t.n, t.oh, t.ow, t.c_out};
    const int64_t w_dims[] = {t.kh, t.kw, t.c_out, t.c_in};
    const int64_t x_count = small_count(x_dims, 4), y_count = small_count(y_dims, 4);
    const int64_t w_count = small_count(w_dims, 4);
    if (x_count < 0 || y_count < 0 || w_count < 0 || ws_bytes > FUZZ_MAX_WORKSPACE ||
        (__int128)x_count * t.kh * t.kw * t.c_out > FUZZ_MAX_WORK ||
        (__int128)y_count * t.kh * t.kw * t.c_in > FUZZ_MAX_WORK)
        return 0;

    void *x = alloc_array(x_count, t.dtype), *w = alloc_array(w_count, t.dtype);
    void *bias = c.bias ? alloc_array(t.c_out, t.dtype) : NULL;
    void *y = alloc_array(y_count, t.dtype), *dy = alloc_array(y_count, t.dtype);
    void *dx = alloc_array(x_count, t.dtype), *dw = alloc_array(w_count, t.dtype);
    void *db = alloc_array(t.c_out, t.dtype);
    char *ws = malloc(ws_bytes ? ws_bytes : 1);
    double *ry = malloc(sizeof(double) * (size_t)(y_count + 1)), *rdx = malloc(sizeof(double) * (size_t)(x_count + 1));
    double *rdw = malloc(sizeof(double) * (size_t)(w_count + 1)), *rdb = malloc(sizeof(double) * (size_t)(t.c_out + 1));
    fill_small(x, x_count, t.dtype, c.seed, c.nan);
    nan_inputs = c.nan;
    fill_small(w, w_count, t.dtype, c.seed + 1, 0);
    fill_small(dy, y_count, t.dtype, c.seed + 2, 0);
    if (bias)
        fill_small(bias, t.c_out, t.dtype, c.seed + 3, 0);
    reference(&t, x, w, bias, dy, ry, rdx, rdw, rdb, y_count, x_count, w_count);
    const double scale = 16.0 * ((double)t.kh * (double)t.kw * ((double)t.c_in + (double)t.c_out) + 1) *
                         ((double)t.n * (double)t.oh * (double)t.ow + 1);

    pycnn_status s = pycnn_conv2d_transpose_forward(&t, x, w, bias, y, ws, ws_bytes);
    if (s != PYCNN_OK)
        FUZZ_FAIL("conv2d_transpose_forward: %s", pycnn_status_str(s));
    expect_close("conv2d_transpose y", y, ry, y_count, t.dtype, scale);
    s = pycnn_conv2d_transpose_backward_data(&t, dy, w, dx, ws, ws_bytes);
    if (s != PYCNN_OK)
        FUZZ_FAIL("conv2d_transpose_backward_data: %s", pycnn_status_str(s));
    expect_close("conv2d_transpose dx", dx, rdx, x_count, t.dtype, scale);
    s = pycnn_conv2d_transpose_backward_filter(&t, x, dy, dw, db, ws, ws_bytes);
    if (s != PYCNN_OK)
        FUZZ_FAIL("conv2d_transpose_backward_filter: %s", pycnn_status_str(s));
    expect_close("conv2d_transpose dw", dw, rdw, w_count, t.dtype, scale);
    expect_close("conv2d_transpose dbias", db, rdb, t.c_out, t.dtype, scale);

    if (ws_bytes > 0 &&
        pycnn_conv2d_transpose_forward(&t, x, w, bias, y, ws, ws_bytes - 1) != PYCNN_ERR_WORKSPACE_TOO_SMALL)
        FUZZ_FAIL("conv2d_transpose_forward accepted a workspace one byte short");
    if (c.interrupt) {
        poll_budget = c.budget;
        pycnn_set_interrupt_poll(fuzz_poll);
        s = pycnn_conv2d_transpose_forward(&t, x, w, bias, y, ws, ws_bytes);
        pycnn_set_interrupt_poll(NULL);
        if (s != PYCNN_OK && s != PYCNN_ERR_INTERRUPTED)
            FUZZ_FAIL("interrupted conv2d_transpose returned %s", pycnn_status_str(s));
    }
    free(x); free(w); free(bias); free(y); free(dy); free(dx); free(dw); free(db); free(ws);
    free(ry); free(rdx); free(rdw); free(rdb);
    return 0;
}
