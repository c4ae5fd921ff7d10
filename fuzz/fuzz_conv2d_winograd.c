/*
 * libFuzzer target: pycnn_conv2d_winograd_{check, workspace_size, forward}
 * (F(2x2, 3x3) and F(4x4, 3x3); also the forward with filters transformed
 * beforehand) on fuzzed descriptors and tiles.
 *
 * Byte layout: flags (bit0 float64, bit1 bias, bit2 NaN data, bit3 wide-range
 * data, bit4 free shape: kernel, stride, dilation and groups from their bytes;
 * otherwise those bytes are read but the shape Winograd runs is used), tile
 * byte (see tiles), n h w c_in kh kw c_out groups stride_h stride_w dilation_h
 * dilation_w pad_top pad_bottom pad_left pad_right (one byte each, see
 * take_dim), seed byte, then the fused activation (see take_epilogue).
 */
#include "fuzz_conv_common.h"

/* Tile byte (low 3 bits) -> tile: the two valid ones twice as often as each hostile one. */
static const int tiles[8] = {2, 4, 2, 4, 0, 3, -1, INT32_MAX};

typedef struct {
    pycnn_conv2d_desc d;
    int tile, bias, nan, wide;
    uint32_t seed;
} wino_case;

static wino_case decode(fuzz_bytes *in)
{
    wino_case c;
    memset(&c, 0, sizeof c);
    const uint8_t flags = take_u8(in);
    pycnn_conv2d_desc *d = &c.d;
    d->dtype = (flags & 1) ? PYCNN_FLOAT64 : PYCNN_FLOAT32;
    c.bias = (flags >> 1) & 1, c.nan = (flags >> 2) & 1, c.wide = (flags >> 3) & 1;
    const int free_shape = (flags >> 4) & 1;
    c.tile = tiles[take_u8(in) & 7];
    d->n = take_dim(in, 3), d->h = take_dim(in, 11), d->w = take_dim(in, 11), d->c_in = take_dim(in, 6);
    d->kh = take_dim(in, 4), d->kw = take_dim(in, 4), d->c_out = take_dim(in, 6), d->groups = take_dim(in, 3);
    d->stride_h = take_dim(in, 3), d->stride_w = take_dim(in, 3);
    d->dilation_h = take_dim(in, 3), d->dilation_w = take_dim(in, 3);
    d->pad_top = take_dim(in, 3), d->pad_bottom = take_dim(in, 3);
    d->pad_left = take_dim(in, 3), d->pad_right = take_dim(in, 3);
    if (!free_shape) {
        d->kh = d->kw = 3;
        d->stride_h = d->stride_w = d->dilation_h = d->dilation_w = d->groups = 1;
    }
    c.seed = take_u8(in) * 2654435761u;
    take_epilogue(in, &d->epilogue);
    return c;
}

/* Small integers (fill_small), each scaled by 2^-6..2^6 in wide mode: a dynamic
 * range that exercises the bound's dependence on the whole tile (scaling is exact). */
static void fill_data(void *buf, int64_t count, pycnn_dtype dtype, uint32_t seed, int with_nan, int wide)
{
    fill_small(buf, count, dtype, seed, with_nan);
    if (!wide)
        return;
    uint32_t s = (seed * 7u) | 1u;
    for (int64_t i = 0; i < count; i++) {
        const double v = ldexp(get_value(buf, i, dtype), (int)(fuzz_rng_next(&s) % 13u) - 6);
        if (dtype == PYCNN_FLOAT32)
            ((float *)buf)[i] = (float)v;
        else
            ((double *)buf)[i] = v;
    }
}

/* Naive float64 y = x (*) w + bias for 3x3, stride 1, dilation 1, one group. */
static void reference(const pycnn_conv2d_desc *d, const void *x, const void *w, const void *bias, double *y)
{
    const pycnn_dtype t = d->dtype;
    for (int64_t n = 0; n < d->n; n++)
        for (int64_t oy = 0; oy < d->oh; oy++)
            for (int64_t ox = 0; ox < d->ow; ox++)
                for (int64_t co = 0; co < d->c_out; co++) {
                    double sum = bias ? get_value(bias, co, t) : 0.0;
                    for (int64_t i = 0; i < 3; i++)
                        for (int64_t j = 0; j < 3; j++) {
                            const int64_t iy = oy - d->pad_top + i, ix = ox - d->pad_left + j;
                            if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w)
                                continue;
                            for (int64_t ci = 0; ci < d->c_in; ci++)
                                sum += get_value(x, ((n * d->h + iy) * d->w + ix) * d->c_in + ci, t) *
                                       get_value(w, ((i * 3 + j) * d->c_in + ci) * d->c_out + co, t);
                        }
                    y[((n * d->oh + oy) * d->ow + ox) * d->c_out + co] = sum;
                }
}

/* Sum of |x| over the (tile + 2)^2 input tile of output (n, oy, ox), all channels
 * (cells outside the image are zero padding). */
static double tile_abs_sum(const pycnn_conv2d_desc *d, const void *x, int tile, int64_t n, int64_t oy,
                           int64_t ox)
{
    const int64_t y0 = oy / tile * tile - d->pad_top, x0 = ox / tile * tile - d->pad_left;
    double sum = 0;
    for (int64_t iy = y0; iy < y0 + tile + 2; iy++)
        for (int64_t ix = x0; ix < x0 + tile + 2; ix++) {
            if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w)
                continue;
            for (int64_t ci = 0; ci < d->c_in; ci++)
                sum += fabs(get_value(x, ((n * d->h + iy) * d->w + ix) * d->c_in + ci, d->dtype));
        }
    return sum;
}

/* conv_winograd.c's bound gamma(c_in + k) * E, k = 11 or 21, with E over-estimated
 * by K * 9 * max|w| * (tile's sum of |x|) + |bias|, K = 4 or 113.8 (the largest
 * weight of an input-filter pair), then doubled, and times |slope| for leaky_relu:
 * a safe bound that still catches a wrong transform or a misplaced tile. */
static void expect_within_bound(const pycnn_conv2d_desc *d, int tile, const void *x, const void *w,
                                const void *bias, const void *y, const double *ref, int64_t w_count)
{
    const double eps = d->dtype == PYCNN_FLOAT32 ? FLT_EPSILON : DBL_EPSILON;
    const double roundings = (double)d->c_in + (tile == 2 ? 11 : 21), weight = tile == 2 ? 4.0 : 114.0;
    double w_max = 0;
    for (int64_t i = 0; i < w_count; i++)
        w_max = fmax(w_max, fabs(get_value(w, i, d->dtype)));
    double lipschitz = 1.0;
    if (d->epilogue.mode == PYCNN_EPILOGUE_LEAKY_RELU) {
        /* The slope as the engine uses it: 1e300 is infinite in float32. */
        const double slope = d->dtype == PYCNN_FLOAT32 ? (double)(float)d->epilogue.negative_slope
                                                       : d->epilogue.negative_slope;
        if (!isfinite(slope))
            return;   /* inf * (tiny error) is unbounded; the fused-vs-separate check still runs */
        lipschitz = fmax(1.0, fabs(slope));
    }
    for (int64_t n = 0; n < d->n; n++)
        for (int64_t oy = 0; oy < d->oh; oy++)
            for (int64_t ox = 0; ox < d->ow; ox++) {
                const double tile_sum = tile_abs_sum(d, x, tile, n, oy, ox);
                for (int64_t co = 0; co < d->c_out; co++) {
                    const int64_t i = ((n * d->oh + oy) * d->ow + ox) * d->c_out + co;
                    const double got = get_value(y, i, d->dtype);
                    if (isnan(ref[i])) {
                        if (!isnan(got))
                            FUZZ_FAIL("winograd F(%dx%d) y[%lld] = %.17g, reference NaN", tile, tile,
                                      (long long)i, got);
                        continue;
                    }
                    if (got == ref[i] || isnan(tile_sum))   /* equal (infinities too), or NaN in the tile may spread here */
                        continue;
                    const double b = bias ? fabs(get_value(bias, co, d->dtype)) : 0.0;
                    const double gamma = roundings * eps / (1.0 - roundings * eps);
                    const double bound = 2.0 * gamma * (weight * 9.0 * w_max * tile_sum + b) * lipschitz;
                    if (!(fabs(got - ref[i]) <= bound))
                        FUZZ_FAIL("winograd F(%dx%d) y[%lld] = %.17g, reference %.17g, bound %.3g", tile, tile,
                                  (long long)i, got, ref[i], bound);
                }
            }
}

/* The call check_packed_forward repeats with filters transformed beforehand. */
typedef struct {
    const pycnn_conv2d_desc *d;
    int tile;
    const void *x, *w, *bias;
    char *ws;
    size_t ws_bytes;
} forward_call;

static pycnn_status transformed_size(const void *ctx, size_t *bytes)
{
    const forward_call *c = ctx;
    return pycnn_conv2d_winograd_filters_size(c->d, c->tile, bytes);
}

static pycnn_status transform(const void *ctx, void *packed, size_t bytes)
{
    const forward_call *c = ctx;
    return pycnn_conv2d_winograd_transform_filters(c->d, c->tile, c->w, packed, bytes);
}

static pycnn_status forward_transformed(const void *ctx, const void *packed, size_t bytes, void *y)
{
    const forward_call *c = ctx;
    return pycnn_conv2d_winograd_forward_packed(c->d, c->tile, c->x, c->w, packed, bytes, c->bias, y, c->ws,
                                                c->ws_bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_bytes in = {data, size, 0};
    wino_case c = decode(&in);
    pycnn_conv2d_desc d = c.d, conv = c.d;
    const int tile = c.tile;
    const pycnn_status conv_st = pycnn_conv2d_check(&conv);
    __int128 oh = 0, ow = 0;
    int too_big = 0;
    const int valid_conv = conv_oracle(&c.d, &oh, &ow, &too_big) && !too_big && epilogue_valid(&c.d.epilogue);
    const int winograd_shape = (tile == 2 || tile == 4) && d.kh == 3 && d.kw == 3 && d.stride_h == 1 &&
                               d.stride_w == 1 && d.dilation_h == 1 && d.dilation_w == 1 && d.groups == 1;
    /* conv2d's verdict first (its own harness checks it), then Winograd's shape rules. */
    const pycnn_status want = conv_st != PYCNN_OK ? conv_st : winograd_shape ? PYCNN_OK : PYCNN_ERR_BAD_PARAMETER;
    const pycnn_status st = pycnn_conv2d_winograd_check(&d, tile);
    if (st != want)
        FUZZ_FAIL("winograd_check(tile %d): '%s', expected '%s'", tile, pycnn_status_str(st), pycnn_status_str(want));
    if (conv_st == PYCNN_OK && !valid_conv)
        FUZZ_FAIL("conv2d_check accepted an invalid descriptor");
    size_t ws_bytes = 0;
    if (st != PYCNN_OK) {
        /* The other entry points must refuse it too, without touching the (NULL) arrays. */
        if (pycnn_conv2d_winograd_workspace_size(&c.d, tile, &ws_bytes) == PYCNN_OK ||
            pycnn_conv2d_winograd_forward(&c.d, tile, NULL, NULL, NULL, NULL, NULL, 0) == PYCNN_OK)
            FUZZ_FAIL("a winograd pass accepted a descriptor that check rejected");
        return 0;
    }
    if (d.oh != oh || d.ow != ow)
        FUZZ_FAIL("winograd_check: output %lldx%lld, expected %lldx%lld", (long long)d.oh, (long long)d.ow,
                  (long long)oh, (long long)ow);
    const pycnn_status ws_st = pycnn_conv2d_winograd_workspace_size(&d, tile, &ws_bytes);
    if (ws_st != PYCNN_OK) {
        if (ws_st != PYCNN_ERR_OVERFLOW)
            FUZZ_FAIL("winograd_workspace_size: %s", pycnn_status_str(ws_st));
        return 0;
    }
    if (ws_bytes == 0)
        FUZZ_FAIL("winograd_workspace_size: 0 bytes for a valid descriptor");
    /* A short workspace is refused before any array is read, whatever the sizes. */
    if (pycnn_conv2d_winograd_forward(&d, tile, NULL, NULL, NULL, NULL, NULL, 0) != PYCNN_ERR_WORKSPACE_TOO_SMALL)
        FUZZ_FAIL("winograd_forward accepted no workspace");

    const int64_t x_dims[] = {d.n, d.h, d.w, d.c_in}, y_dims[] = {d.n, d.oh, d.ow, d.c_out};
    const int64_t w_dims[] = {3, 3, d.c_in, d.c_out};
    const int64_t x_count = small_count(x_dims, 4), y_count = small_count(y_dims, 4);
    const int64_t w_count = small_count(w_dims, 4);
    if (x_count < 0 || y_count < 0 || w_count < 0 || ws_bytes > FUZZ_MAX_WORKSPACE ||
        (__int128)y_count * 9 * d.c_in > FUZZ_MAX_WORK)
        return 0;

    void *x = alloc_array(x_count, d.dtype), *w = alloc_array(w_count, d.dtype);
    void *bias = c.bias ? alloc_array(d.c_out, d.dtype) : NULL;
    void *y = alloc_array(y_count, d.dtype);
    char *ws = malloc(ws_bytes);
    double *ry = malloc(sizeof(double) * (size_t)(y_count + 1));
    fill_data(x, x_count, d.dtype, c.seed, c.nan, c.wide);
    fill_data(w, w_count, d.dtype, c.seed + 1, 0, c.wide);
    if (bias)
        fill_data(bias, d.c_out, d.dtype, c.seed + 2, 0, 0);
    reference(&d, x, w, bias, ry);
    for (int64_t i = 0; i < y_count; i++)
        ry[i] = activate(&d.epilogue, d.dtype, ry[i]);

    pycnn_status s = pycnn_conv2d_winograd_forward(&d, tile, x, w, bias, y, ws, ws_bytes);
    if (s != PYCNN_OK)
        FUZZ_FAIL("winograd_forward: %s", pycnn_status_str(s));
    expect_within_bound(&d, tile, x, w, bias, y, ry, w_count);
    if (d.epilogue.mode != PYCNN_EPILOGUE_NONE) {
        /* Fused = Winograd without epilogue, then the element-wise op, bit for bit. */
        pycnn_conv2d_desc plain = d;
        plain.epilogue.mode = PYCNN_EPILOGUE_NONE;
        void *y_plain = alloc_array(y_count, d.dtype), *y_act = alloc_array(y_count, d.dtype);
        const pycnn_activation_desc act = activation_of(&d, y_count);
        if ((s = pycnn_conv2d_winograd_forward(&plain, tile, x, w, bias, y_plain, ws, ws_bytes)) != PYCNN_OK ||
            (s = pycnn_activation_forward(&act, y_plain, y_act)) != PYCNN_OK)
            FUZZ_FAIL("winograd without epilogue, then activation: %s", pycnn_status_str(s));
        if (memcmp(y, y_act, (size_t)y_count * (d.dtype == PYCNN_FLOAT64 ? 8 : 4)) != 0)
            FUZZ_FAIL("winograd epilogue mode %d differs from winograd then activation_forward",
                      (int)d.epilogue.mode);
        free(y_plain);
        free(y_act);
    }

    const forward_call call = {&d, tile, x, w, bias, ws, ws_bytes};
    const packed_filters_ops transformed_ops = {"winograd", &call, transformed_size, transform, forward_transformed};
    check_packed_forward(&transformed_ops, y, y_count, d.dtype);

    /* One byte short, a wrong output size and NULL arrays are refused. */
    if (pycnn_conv2d_winograd_forward(&d, tile, x, w, bias, y, ws, ws_bytes - 1) != PYCNN_ERR_WORKSPACE_TOO_SMALL)
        FUZZ_FAIL("winograd_forward accepted a workspace one byte short");
    pycnn_conv2d_desc wrong = d;
    wrong.ow += 1;
    if (pycnn_conv2d_winograd_forward(&wrong, tile, x, w, bias, y, ws, ws_bytes) != PYCNN_ERR_BAD_OUTPUT_SIZE)
        FUZZ_FAIL("winograd_forward accepted a wrong output width");
    if (d.n > 0 && pycnn_conv2d_winograd_forward(&d, tile, NULL, w, bias, y, ws, ws_bytes) != PYCNN_ERR_NULL_POINTER)
        FUZZ_FAIL("winograd_forward accepted x = NULL");
    free(x); free(w); free(bias); free(y); free(ws); free(ry);
    return 0;
}
