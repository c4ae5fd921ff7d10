/*
 * libFuzzer target: pycnn_conv2d_{check, workspace_size, forward,
 * backward_data, backward_filter} (and the forward with filters packed
 * beforehand) on fuzzed descriptors (shapes, strides,
 * paddings, dilations, groups, dtype, hostile int64 values).
 *
 * Byte layout: flags (bit0 float64, bit1 bias, bit2 NaN data, bit3 interrupt),
 * n h w c_in kh kw c_out groups stride_h stride_w dilation_h dilation_w
 * pad_top pad_bottom pad_left pad_right (one byte each, see take_dim),
 * then seed and interrupt-budget bytes, then the fused activation: a mode byte
 * (low 3 bits: 0 none, 1 relu, 2 leaky_relu, 3 clamp, 4-7 invalid modes) and
 * negative_slope, clamp_lo, clamp_hi bytes (see take_param).  Inputs that end
 * before the mode byte have no epilogue, as before it existed.
 */
#include "fuzz_conv_common.h"

typedef struct {
    pycnn_conv2d_desc d;
    int bias, nan, interrupt;
    uint32_t seed;
    int64_t budget;
} conv_case;

static conv_case decode(fuzz_bytes *in)
{
    conv_case c;
    memset(&c, 0, sizeof c);
    const uint8_t flags = take_u8(in);
    pycnn_conv2d_desc *d = &c.d;
    d->dtype = (flags & 1) ? PYCNN_FLOAT64 : PYCNN_FLOAT32;
    c.bias = (flags >> 1) & 1, c.nan = (flags >> 2) & 1, c.interrupt = (flags >> 3) & 1;
    d->n = take_dim(in, 3), d->h = take_dim(in, 9), d->w = take_dim(in, 9), d->c_in = take_dim(in, 6);
    d->kh = take_dim(in, 4), d->kw = take_dim(in, 4), d->c_out = take_dim(in, 6), d->groups = take_dim(in, 3);
    d->stride_h = take_dim(in, 3), d->stride_w = take_dim(in, 3);
    d->dilation_h = take_dim(in, 3), d->dilation_w = take_dim(in, 3);
    d->pad_top = take_dim(in, 3), d->pad_bottom = take_dim(in, 3);
    d->pad_left = take_dim(in, 3), d->pad_right = take_dim(in, 3);
    c.seed = take_u8(in) * 2654435761u;
    c.budget = take_u8(in) % 8;
    take_epilogue(in, &d->epilogue);
    return c;
}

/* Naive float64 convolution and its two gradients (the executable spec). */
static void reference(const pycnn_conv2d_desc *d, const void *x, const void *w, const void *bias,
                      const void *dy, double *y, double *dx, double *dw, double *db,
                      int64_t y_count, int64_t x_count, int64_t w_count)
{
    const pycnn_dtype t = d->dtype;
    const int64_t cig = d->c_in / d->groups, cog = d->c_out / d->groups;
    for (int64_t i = 0; i < y_count; i++)
        y[i] = bias ? get_value(bias, i % d->c_out, t) : 0.0;
    memset(dx, 0, (size_t)x_count * sizeof(double));
    memset(dw, 0, (size_t)w_count * sizeof(double));
    memset(db, 0, (size_t)d->c_out * sizeof(double));
    for (int64_t n = 0; n < d->n; n++)
        for (int64_t oy = 0; oy < d->oh; oy++)
            for (int64_t ox = 0; ox < d->ow; ox++)
                for (int64_t co = 0; co < d->c_out; co++) {
                    const int64_t yi = ((n * d->oh + oy) * d->ow + ox) * d->c_out + co;
                    const int64_t g = co / cog;
                    const double g_out = get_value(dy, yi, t);
                    db[co] += g_out;
                    for (int64_t i = 0; i < d->kh; i++) {
                        const int64_t iy = oy * d->stride_h - d->pad_top + i * d->dilation_h;
                        if (iy < 0 || iy >= d->h)
                            continue;
                        for (int64_t j = 0; j < d->kw; j++) {
                            const int64_t ix = ox * d->stride_w - d->pad_left + j * d->dilation_w;
                            if (ix < 0 || ix >= d->w)
                                continue;
                            for (int64_t ci = 0; ci < cig; ci++) {
                                const int64_t xi = ((n * d->h + iy) * d->w + ix) * d->c_in + g * cig + ci;
                                const int64_t wi = ((i * d->kw + j) * cig + ci) * d->c_out + co;
                                y[yi] += get_value(x, xi, t) * get_value(w, wi, t);
                                dx[xi] += g_out * get_value(w, wi, t);
                                dw[wi] += get_value(x, xi, t) * g_out;
                            }
                        }
                    }
                }
}

static double max_abs(const double *v, int64_t count)
{
    double m = 0;
    for (int64_t i = 0; i < count; i++)
        if (fabs(v[i]) > m)
            m = fabs(v[i]);
    return m;
}

/* The call check_packed_forward repeats with filters packed beforehand. */
typedef struct {
    const pycnn_conv2d_desc *d;
    const void *x, *w, *bias;
    char *ws;
    size_t ws_bytes;
} forward_call;

static pycnn_status packed_size(const void *ctx, size_t *bytes)
{
    return pycnn_conv2d_packed_filters_size(((const forward_call *)ctx)->d, bytes);
}

static pycnn_status pack(const void *ctx, void *packed, size_t bytes)
{
    const forward_call *c = ctx;
    return pycnn_conv2d_pack_filters(c->d, c->w, packed, bytes);
}

static pycnn_status forward_packed(const void *ctx, const void *packed, size_t bytes, void *y)
{
    const forward_call *c = ctx;
    return pycnn_conv2d_forward_packed(c->d, c->x, c->w, packed, bytes, c->bias, y, c->ws, c->ws_bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_bytes in = {data, size, 0};
    conv_case c = decode(&in);
    pycnn_conv2d_desc d = c.d;
    __int128 oh = 0, ow = 0;
    int too_big = 0;
    const int valid_epilogue = epilogue_valid(&c.d.epilogue);
    const int valid = conv_oracle(&c.d, &oh, &ow, &too_big) && valid_epilogue;
    const pycnn_status st = pycnn_conv2d_check(&d);
    size_t ws_bytes = 0;
    if (!valid_epilogue && st != PYCNN_ERR_BAD_PARAMETER)
        FUZZ_FAIL("conv2d_check: invalid epilogue (mode %d, clamp %g..%g) gave '%s', not bad parameter",
                  (int)c.d.epilogue.mode, c.d.epilogue.clamp_lo, c.d.epilogue.clamp_hi, pycnn_status_str(st));
    if (st != PYCNN_OK) {
        if (valid && !too_big)
            FUZZ_FAIL("conv2d_check rejected a valid descriptor: %s", pycnn_status_str(st));
        if (valid && st != PYCNN_ERR_OVERFLOW)
            FUZZ_FAIL("conv2d_check: oversized descriptor gave '%s', not overflow", pycnn_status_str(st));
        /* Every pass must refuse it too, without touching the (NULL) arrays. */
        if (pycnn_conv2d_forward(&c.d, NULL, NULL, NULL, NULL, NULL, 0) == PYCNN_OK ||
            pycnn_conv2d_backward_data(&c.d, NULL, NULL, NULL, NULL, 0) == PYCNN_OK ||
            pycnn_conv2d_backward_filter(&c.d, NULL, NULL, NULL, NULL, NULL, 0) == PYCNN_OK ||
            pycnn_conv2d_workspace_size(&c.d, &ws_bytes) == PYCNN_OK)
            FUZZ_FAIL("a conv2d pass accepted a descriptor that check rejected");
        return 0;
    }
    if (!valid)
        FUZZ_FAIL("conv2d_check accepted an invalid descriptor");
    if (too_big)
        FUZZ_FAIL("conv2d_check accepted sizes whose byte counts overflow int64");
    if (d.oh != oh || d.ow != ow)
        FUZZ_FAIL("conv2d_check: output %lldx%lld, expected %lldx%lld", (long long)d.oh, (long long)d.ow,
                  (long long)oh, (long long)ow);
    const pycnn_status ws_st = pycnn_conv2d_workspace_size(&d, &ws_bytes);
    if (ws_st != PYCNN_OK) {
        if (ws_st != PYCNN_ERR_OVERFLOW)
            FUZZ_FAIL("conv2d_workspace_size: %s", pycnn_status_str(ws_st));
        return 0;
    }

    const int64_t x_dims[] = {d.n, d.h, d.w, d.c_in}, y_dims[] = {d.n, d.oh, d.ow, d.c_out};
    const int64_t w_dims[] = {d.kh, d.kw, d.groups ? d.c_in / d.groups : 0, d.c_out};
    const int64_t x_count = small_count(x_dims, 4), y_count = small_count(y_dims, 4);
    const int64_t w_count = small_count(w_dims, 4);
    if (x_count < 0 || y_count < 0 || w_count < 0 || ws_bytes > FUZZ_MAX_WORKSPACE ||
        (__int128)y_count * d.kh * d.kw * (d.c_in / d.groups) > FUZZ_MAX_WORK)
        return 0;

    void *x = alloc_array(x_count, d.dtype), *w = alloc_array(w_count, d.dtype);
    void *bias = c.bias ? alloc_array(d.c_out, d.dtype) : NULL;
    void *y = alloc_array(y_count, d.dtype), *dy = alloc_array(y_count, d.dtype);
    void *dx = alloc_array(x_count, d.dtype), *dw = alloc_array(w_count, d.dtype);
    void *db = alloc_array(d.c_out, d.dtype);
    char *ws = malloc(ws_bytes ? ws_bytes : 1);
    double *ry = malloc(sizeof(double) * (size_t)(y_count + 1)), *rdx = malloc(sizeof(double) * (size_t)(x_count + 1));
    double *rdw = malloc(sizeof(double) * (size_t)(w_count + 1)), *rdb = malloc(sizeof(double) * (size_t)(d.c_out + 1));
    fill_small(x, x_count, d.dtype, c.seed, c.nan);
    nan_inputs = c.nan;
    fill_small(w, w_count, d.dtype, c.seed + 1, 0);
    fill_small(dy, y_count, d.dtype, c.seed + 2, 0);
    if (bias)
        fill_small(bias, d.c_out, d.dtype, c.seed + 3, 0);
    reference(&d, x, w, bias, dy, ry, rdx, rdw, rdb, y_count, x_count, w_count);
    double slope_scale = 1.0;   /* leaky_relu multiplies the pre-activation's error by |slope| */
    if (d.epilogue.mode != PYCNN_EPILOGUE_NONE) {
        for (int64_t i = 0; i < y_count; i++)
            ry[i] = activate(&d.epilogue, d.dtype, ry[i]);
        if (d.epilogue.mode == PYCNN_EPILOGUE_LEAKY_RELU && isfinite(d.epilogue.negative_slope))
            slope_scale = fmax(1.0, fabs(d.epilogue.negative_slope));
    }
    const double k_terms = (double)d.kh * (double)d.kw * (double)(d.c_in / d.groups) * slope_scale;
    const double scale = 16.0 * (k_terms + 1) * ((double)d.n * (double)d.oh * (double)d.ow + 1);

    pycnn_status s = pycnn_conv2d_forward(&d, x, w, bias, y, ws, ws_bytes);
    if (s != PYCNN_OK)
        FUZZ_FAIL("conv2d_forward: %s", pycnn_status_str(s));
    expect_close("conv2d y", y, ry, y_count, d.dtype, 16.0 * (k_terms + 1));
    if (d.epilogue.mode != PYCNN_EPILOGUE_NONE) {
        /* Fused = unfused forward, then the element-wise op, bit for bit (pycnn.h). */
        pycnn_conv2d_desc plain = d;
        plain.epilogue.mode = PYCNN_EPILOGUE_NONE;
        void *y_plain = alloc_array(y_count, d.dtype), *y_act = alloc_array(y_count, d.dtype);
        const pycnn_activation_desc act = activation_of(&d, y_count);
        if ((s = pycnn_conv2d_forward(&plain, x, w, bias, y_plain, ws, ws_bytes)) != PYCNN_OK ||
            (s = pycnn_activation_forward(&act, y_plain, y_act)) != PYCNN_OK)
            FUZZ_FAIL("conv2d without epilogue, then activation: %s", pycnn_status_str(s));
        const size_t y_bytes = (size_t)y_count * (d.dtype == PYCNN_FLOAT64 ? 8 : 4);
        if (memcmp(y, y_act, y_bytes) != 0)
            FUZZ_FAIL("conv2d epilogue mode %d differs from conv2d then activation_forward",
                      (int)d.epilogue.mode);
        free(y_plain);
        free(y_act);
    }
    const forward_call call = {&d, x, w, bias, ws, ws_bytes};
    const packed_filters_ops packed_ops = {"conv2d", &call, packed_size, pack, forward_packed};
    check_packed_forward(&packed_ops, y, y_count, d.dtype);
    s = pycnn_conv2d_backward_data(&d, dy, w, dx, ws, ws_bytes);
    if (s != PYCNN_OK)
        FUZZ_FAIL("conv2d_backward_data: %s", pycnn_status_str(s));
    expect_close("conv2d dx", dx, rdx, x_count, d.dtype, 16.0 * ((double)d.kh * (double)d.kw * (double)d.c_out + 1));
    s = pycnn_conv2d_backward_filter(&d, x, dy, dw, db, ws, ws_bytes);
    if (s != PYCNN_OK)
        FUZZ_FAIL("conv2d_backward_filter: %s", pycnn_status_str(s));
    expect_close("conv2d dw", dw, rdw, w_count, d.dtype, scale);
    expect_close("conv2d dbias", db, rdb, d.c_out, d.dtype, scale + max_abs(rdb, d.c_out));

    /* The passes must refuse a short workspace, a wrong output size and NULL arrays. */
    if (ws_bytes > 0 && pycnn_conv2d_forward(&d, x, w, bias, y, ws, ws_bytes - 1) != PYCNN_ERR_WORKSPACE_TOO_SMALL)
        FUZZ_FAIL("conv2d_forward accepted a workspace one byte short");
    pycnn_conv2d_desc wrong = d;
    wrong.oh += 1;
    if (pycnn_conv2d_forward(&wrong, x, w, bias, y, ws, ws_bytes) != PYCNN_ERR_BAD_OUTPUT_SIZE)
        FUZZ_FAIL("conv2d_forward accepted a wrong output height");
    if (d.n > 0 && pycnn_conv2d_backward_data(&d, NULL, w, dx, ws, ws_bytes) != PYCNN_ERR_NULL_POINTER)
        FUZZ_FAIL("conv2d_backward_data accepted dy = NULL");

    /* An interrupt mid-op stops it cleanly; a completed run is unchanged. */
    if (c.interrupt) {
        poll_budget = c.budget;
        pycnn_set_interrupt_poll(fuzz_poll);
        s = pycnn_conv2d_forward(&d, x, w, bias, y, ws, ws_bytes);
        const pycnn_status s2 = pycnn_conv2d_backward_filter(&d, x, dy, dw, db, ws, ws_bytes);
        pycnn_set_interrupt_poll(NULL);
        if ((s != PYCNN_OK && s != PYCNN_ERR_INTERRUPTED) || (s2 != PYCNN_OK && s2 != PYCNN_ERR_INTERRUPTED))
            FUZZ_FAIL("interrupted conv2d returned %s / %s", pycnn_status_str(s), pycnn_status_str(s2));
        if (s == PYCNN_OK)
            expect_close("conv2d y (poll set)", y, ry, y_count, d.dtype, 16.0 * (k_terms + 1));
    }
    free(x); free(w); free(bias); free(y); free(dy); free(dx); free(dw); free(db); free(ws);
    free(ry); free(rdx); free(rdw); free(rdb);
    return 0;
}
