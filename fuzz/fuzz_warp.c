/*
 * libFuzzer target: pycnn_warp_check and the affine / coordinate-map warps
 * (augmentation) with fuzzed shapes, modes and raw float64 parameters
 * (NaN, Inf, 1e300, denormals: any bit pattern).
 *
 * Byte layout: flags (bit0 float64, bit1 coords map, bit2 NaN data),
 * n h w c oh ow order fill_mode (one byte each, see take_dim), cval
 * (8 raw bytes), a seed byte, then raw doubles for the matrices / map.
 * Property checked: order 0 and "nearest"/"reflect"/"wrap" only copy input
 * values; order 1 gives a convex combination, so every output lies within
 * [min, max] of the input (and cval for "constant").
 */
#include "fuzz_common.h"
#include "augment.h"

static double take_double(fuzz_bytes *in)
{
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        bits |= (uint64_t)take_u8(in) << (8 * i);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_bytes in = {data, size, 0};
    const uint8_t flags = take_u8(&in);
    pycnn_warp_desc d;
    memset(&d, 0, sizeof d);
    d.dtype = (flags & 1) ? PYCNN_FLOAT64 : PYCNN_FLOAT32;
    const int coords = (flags >> 1) & 1, nan = (flags >> 2) & 1;
    d.n = take_dim(&in, 3), d.h = take_dim(&in, 8), d.w = take_dim(&in, 8), d.c = take_dim(&in, 3);
    d.oh = take_dim(&in, 8), d.ow = take_dim(&in, 8);
    d.order = (int)take_dim(&in, 2);
    d.fill_mode = (pycnn_fill_mode)take_dim(&in, 4);
    d.cval = take_double(&in);
    const uint32_t seed = take_u8(&in) * 2654435761u;
    const pycnn_status st = pycnn_warp_check(&d);
    const int valid = d.n >= 0 && d.h >= 1 && d.w >= 1 && d.c >= 1 && d.oh >= 1 && d.ow >= 1 &&
                      (d.order == 0 || d.order == 1) && (int)d.fill_mode >= 0 &&
                      d.fill_mode < PYCNN_FILL_MODE_COUNT && isfinite(d.cval);
    if (st != PYCNN_OK) {
        if (valid && st != PYCNN_ERR_OVERFLOW)
            FUZZ_FAIL("warp_check rejected a valid descriptor: %s", pycnn_status_str(st));
        if (pycnn_affine_warp_forward(&d, NULL, NULL, NULL) == PYCNN_OK ||
            pycnn_coords_warp_forward(&d, NULL, NULL, NULL) == PYCNN_OK)
            FUZZ_FAIL("a warp accepted a descriptor that check rejected");
        return 0;
    }
    if (!valid)
        FUZZ_FAIL("warp_check accepted an invalid descriptor");
    const int64_t x_dims[] = {d.n, d.h, d.w, d.c}, y_dims[] = {d.n, d.oh, d.ow, d.c};
    const int64_t map_dims[] = {d.n, d.oh, d.ow, 2}, matrix_dims[] = {d.n, 6};
    const int64_t x_count = small_count(x_dims, 4), y_count = small_count(y_dims, 4);
    const int64_t p_count = coords ? small_count(map_dims, 4) : small_count(matrix_dims, 2);
    if (x_count < 0 || y_count < 0 || p_count < 0)
        return 0;
    void *x = alloc_array(x_count, d.dtype), *y = alloc_array(y_count, d.dtype);
    double *params = malloc(sizeof(double) * (size_t)(p_count + 1));
    fill_small(x, x_count, d.dtype, seed, nan);
    for (int64_t i = 0; i < p_count; i++)   /* raw bytes, or a small pattern when they run out */
        params[i] = in.pos + 8 <= in.size ? take_double(&in) : (double)((i * 7) % 11) - 3.5;
    const pycnn_status s = coords ? pycnn_coords_warp_forward(&d, x, params, y)
                                   : pycnn_affine_warp_forward(&d, x, params, y);
    if (s != PYCNN_OK)
        FUZZ_FAIL("warp_forward: %s", pycnn_status_str(s));
    if (!nan) {
        /* Input data is in [-4, 4]; cval joins the range only for "constant". */
        double lo = -4.0, hi = 4.0;
        const double cv = d.dtype == PYCNN_FLOAT32 ? (double)(float)d.cval : d.cval;
        if (d.fill_mode == PYCNN_FILL_CONSTANT) {
            lo = fmin(lo, cv);
            hi = fmax(hi, cv);
        }
        const double slack = d.dtype == PYCNN_FLOAT32 ? 1e-5 * (1.0 + fabs(lo) + fabs(hi)) : 1e-12 * (1.0 + fabs(lo) + fabs(hi));
        for (int64_t i = 0; i < y_count; i++) {
            const double v = get_value(y, i, d.dtype);
            if (isinf(cv) && isinf(v))
                continue;   /* float32 cval overflowing to Inf is the caller's value */
            if (!(v >= lo - slack && v <= hi + slack))
                FUZZ_FAIL("warp output %.17g outside the input range [%g, %g]", v, lo, hi);
        }
    }
    free(x); free(y); free(params);
    return 0;
}
