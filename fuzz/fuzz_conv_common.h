/*
 * Helpers shared by the convolution harnesses (fuzz_conv2d.c and
 * fuzz_conv2d_winograd.c): the fused-activation bytes, and the geometry and
 * epilogue rules written independently of the engine.
 */
#ifndef PYCNN_FUZZ_CONV_COMMON_H
#define PYCNN_FUZZ_CONV_COMMON_H

#include "fuzz_common.h"

/* Modes 4-7 of the mode byte: values outside pycnn_epilogue_mode. */
static const int bad_epilogue_modes[4] = {4, -1, 1000, INT32_MAX};

/* One byte -> an activation parameter: mostly multiples of 1/8 in [-15.5, 15.4],
 * sometimes a value that breaks naive code (NaN, infinities, -0, extremes). */
static double take_param(fuzz_bytes *in)
{
    static const double special[8] = {NAN, -NAN, INFINITY, -INFINITY, -0.0, 1e300, -1e300, 1e-310};
    const uint8_t b = take_u8(in);
    return b >= 248 ? special[b - 248] : ((double)b - 124.0) / 8.0;
}

/* The fused activation: a mode byte (low 3 bits: 0 none, 1 relu, 2 leaky_relu,
 * 3 clamp, 4-7 invalid modes), then negative_slope, clamp_lo and clamp_hi bytes.
 * Absent bytes read as 0: no epilogue. */
static void take_epilogue(fuzz_bytes *in, pycnn_epilogue *e)
{
    const uint8_t mode = take_u8(in) & 7;
    e->mode = (pycnn_epilogue_mode)(mode < 4 ? mode : bad_epilogue_modes[mode - 4]);
    e->negative_slope = take_param(in);
    e->clamp_lo = take_param(in);
    e->clamp_hi = take_param(in);
}

/* The geometry rules, computed independently in 128-bit arithmetic.
 * Returns 1 when the descriptor is valid; fills oh, ow and whether some
 * array's byte size exceeds int64. */
static int conv_oracle(const pycnn_conv2d_desc *d, __int128 *oh, __int128 *ow, int *too_big)
{
    if (d->n < 0 || d->h < 1 || d->w < 1 || d->c_in < 1 || d->kh < 1 || d->kw < 1 || d->c_out < 1 ||
        d->stride_h < 1 || d->stride_w < 1 || d->dilation_h < 1 || d->dilation_w < 1 ||
        d->pad_top < 0 || d->pad_bottom < 0 || d->pad_left < 0 || d->pad_right < 0 ||
        d->groups < 1 || d->c_in % d->groups || d->c_out % d->groups)
        return 0;
    const __int128 eff_h = (__int128)d->dilation_h * (d->kh - 1) + 1;
    const __int128 eff_w = (__int128)d->dilation_w * (d->kw - 1) + 1;
    const __int128 padded_h = (__int128)d->h + d->pad_top + d->pad_bottom;
    const __int128 padded_w = (__int128)d->w + d->pad_left + d->pad_right;
    if (eff_h > INT64_MAX || eff_w > INT64_MAX || padded_h > INT64_MAX || padded_w > INT64_MAX) {
        *too_big = 1;
        return 1;
    }
    if (eff_h > padded_h || eff_w > padded_w)
        return 0;
    *oh = (padded_h - eff_h) / d->stride_h + 1;
    *ow = (padded_w - eff_w) / d->stride_w + 1;
    const __int128 size = d->dtype == PYCNN_FLOAT64 ? 8 : 4;
    /* Each factor is < 2^63, so the products are checked stepwise against 2^63. */
    const __int128 limit = INT64_MAX;
    __int128 x = (__int128)d->n * d->h;
    x = x > limit ? x : x * d->w;
    x = x > limit ? x : x * d->c_in;
    __int128 y = (__int128)d->n * *oh;
    y = y > limit ? y : y * *ow;
    y = y > limit ? y : y * d->c_out;
    __int128 col = *oh * *ow;
    col = col > limit ? col : col * d->kh;
    col = col > limit ? col : col * d->kw;
    col = col > limit ? col : col * d->c_in;
    __int128 wt = (__int128)d->kh * d->kw;
    wt = wt > limit ? wt : wt * d->c_in;
    wt = wt > limit ? wt : wt * d->c_out;
    *too_big = x > limit / size || y > limit / size || col > limit / size || wt > limit / size;
    return 1;
}

/* The epilogue rules, written independently of the engine: a known mode, and
 * for clamp two ordered, non-NaN bounds. */
static int epilogue_valid(const pycnn_epilogue *e)
{
    switch ((int)e->mode) {
    case PYCNN_EPILOGUE_NONE:
    case PYCNN_EPILOGUE_RELU:
    case PYCNN_EPILOGUE_LEAKY_RELU:
        return 1;
    case PYCNN_EPILOGUE_CLAMP:
        return !isnan(e->clamp_lo) && !isnan(e->clamp_hi) && e->clamp_lo <= e->clamp_hi;
    default:
        return 0;
    }
}

/* pycnn.h's activation formulas on one pre-activation value, in the dtype's
 * precision (the engine rounds the parameters to it). */
static double activate(const pycnn_epilogue *e, pycnn_dtype dtype, double v)
{
    if (dtype == PYCNN_FLOAT32) {
        const float x = (float)v, slope = (float)e->negative_slope;
        const float lo = (float)e->clamp_lo, hi = (float)e->clamp_hi;
        switch (e->mode) {
        case PYCNN_EPILOGUE_RELU: return isnan(x) ? x : x > 0 ? x : 0.0f;
        case PYCNN_EPILOGUE_LEAKY_RELU: return x > 0 ? x : slope * x;
        case PYCNN_EPILOGUE_CLAMP: return x <= lo ? lo : x >= hi ? hi : x;
        default: return x;
        }
    }
    switch (e->mode) {
    case PYCNN_EPILOGUE_RELU: return isnan(v) ? v : v > 0 ? v : 0.0;
    case PYCNN_EPILOGUE_LEAKY_RELU: return v > 0 ? v : e->negative_slope * v;
    case PYCNN_EPILOGUE_CLAMP: return v <= e->clamp_lo ? e->clamp_lo : v >= e->clamp_hi ? e->clamp_hi : v;
    default: return v;
    }
}

/* The element-wise op equal to an epilogue (pycnn_activation_forward). */
static pycnn_activation_desc activation_of(const pycnn_conv2d_desc *d, int64_t count)
{
    pycnn_activation_desc a = {d->dtype, PYCNN_ACTIVATION_RELU, count, d->epilogue.negative_slope,
                               d->epilogue.clamp_lo, d->epilogue.clamp_hi};
    if (d->epilogue.mode == PYCNN_EPILOGUE_LEAKY_RELU)
        a.mode = PYCNN_ACTIVATION_LEAKY_RELU;
    else if (d->epilogue.mode == PYCNN_EPILOGUE_CLAMP)
        a.mode = PYCNN_ACTIVATION_CLAMP;
    return a;
}

/* One op family's filters made beforehand (pycnn_conv2d_pack_filters, Winograd's
 * transform_filters) for the call in ctx: size, make, and forward with them. */
typedef struct {
    const char *name;
    const void *ctx;
    pycnn_status (*size)(const void *ctx, size_t *bytes);
    pycnn_status (*make)(const void *ctx, void *packed, size_t bytes);
    pycnn_status (*forward)(const void *ctx, const void *packed, size_t bytes, void *y);
} packed_filters_ops;

/* The forward with filters made beforehand gives y's bits; one byte short to make
 * them and a damaged header are refused. */
static void check_packed_forward(const packed_filters_ops *ops, const void *y, int64_t y_count,
                                 pycnn_dtype dtype)
{
    size_t bytes = 0;
    pycnn_status s = ops->size(ops->ctx, &bytes);
    if (s == PYCNN_ERR_OVERFLOW)
        return;
    if (s != PYCNN_OK)
        FUZZ_FAIL("%s: filters size: %s", ops->name, pycnn_status_str(s));
    if (bytes == 0 || bytes > FUZZ_MAX_WORKSPACE)   /* 0: this forward reads the filters themselves */
        return;
    char *packed = malloc(bytes);
    void *y_packed = alloc_array(y_count, dtype);
    if (ops->make(ops->ctx, packed, bytes - 1) != PYCNN_ERR_WORKSPACE_TOO_SMALL)
        FUZZ_FAIL("%s: made the filters in a buffer one byte short", ops->name);
    if ((s = ops->make(ops->ctx, packed, bytes)) != PYCNN_OK ||
        (s = ops->forward(ops->ctx, packed, bytes, y_packed)) != PYCNN_OK)
        FUZZ_FAIL("%s: with filters made beforehand: %s", ops->name, pycnn_status_str(s));
    if (memcmp(y, y_packed, (size_t)y_count * (dtype == PYCNN_FLOAT64 ? 8 : 4)) != 0)
        FUZZ_FAIL("%s: the forward with filters made beforehand differs from the plain forward", ops->name);
    packed[0] ^= 1;
    if (ops->forward(ops->ctx, packed, bytes, y_packed) != PYCNN_ERR_PACKED_MISMATCH)
        FUZZ_FAIL("%s: accepted filters with a damaged header", ops->name);
    free(packed);
    free(y_packed);
}

#endif
