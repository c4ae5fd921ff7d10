/*
 * libFuzzer target: pycnn_im2col_forward / pycnn_col2im_forward on fuzzed
 * descriptors (the patch gather and its adjoint, used by every conv pass).
 *
 * Byte layout: flags (bit0 float64, bit2 NaN data), n h w c_in kh kw
 * stride_h stride_w dilation_h dilation_w pad_top pad_bottom pad_left
 * pad_right oh_delta (one byte each, see take_dim), then a seed byte.
 * oh_delta != 0 asks for a wrong output height, which must be refused.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_bytes in = {data, size, 0};
    const uint8_t flags = take_u8(&in);
    pycnn_conv2d_desc d;
    memset(&d, 0, sizeof d);
    d.dtype = (flags & 1) ? PYCNN_FLOAT64 : PYCNN_FLOAT32;
    const int nan = (flags >> 2) & 1;
    d.n = take_dim(&in, 3), d.h = take_dim(&in, 9), d.w = take_dim(&in, 9), d.c_in = take_dim(&in, 4);
    d.kh = take_dim(&in, 4), d.kw = take_dim(&in, 4);
    d.stride_h = take_dim(&in, 3), d.stride_w = take_dim(&in, 3);
    d.dilation_h = take_dim(&in, 3), d.dilation_w = take_dim(&in, 3);
    d.pad_top = take_dim(&in, 3), d.pad_bottom = take_dim(&in, 3);
    d.pad_left = take_dim(&in, 3), d.pad_right = take_dim(&in, 3);
    const int64_t oh_delta = take_dim(&in, 1);
    const uint32_t seed = take_u8(&in) * 2654435761u;
    /* im2col ignores c_out and groups; hostile values there must not matter. */
    d.c_out = 1, d.groups = 1;
    pycnn_conv2d_desc checked = d;
    if (pycnn_conv2d_check(&checked) != PYCNN_OK) {
        if (pycnn_im2col_forward(&d, NULL, NULL) == PYCNN_OK || pycnn_col2im_forward(&d, NULL, NULL) == PYCNN_OK)
            FUZZ_FAIL("im2col/col2im accepted a descriptor conv2d_check rejected");
        return 0;
    }
    d.oh = checked.oh, d.ow = checked.ow;
    if (oh_delta != 0) {
        pycnn_conv2d_desc wrong = d;
        if (__builtin_add_overflow(wrong.oh, oh_delta, &wrong.oh))
            return 0;
        if (pycnn_im2col_forward(&wrong, NULL, NULL) != PYCNN_ERR_BAD_OUTPUT_SIZE ||
            pycnn_col2im_forward(&wrong, NULL, NULL) != PYCNN_ERR_BAD_OUTPUT_SIZE)
            FUZZ_FAIL("im2col/col2im accepted output height %lld (correct %lld)", (long long)wrong.oh,
                      (long long)d.oh);
        return 0;
    }
    const int64_t k = d.kh * d.kw * d.c_in;
    const int64_t x_dims[] = {d.n, d.h, d.w, d.c_in}, col_dims[] = {d.n, d.oh, d.ow, k};
    const int64_t x_count = small_count(x_dims, 4), col_count = small_count(col_dims, 4);
    if (x_count < 0 || col_count < 0)
        return 0;
    void *x = alloc_array(x_count, d.dtype), *cols = alloc_array(col_count, d.dtype);
    void *back = alloc_array(x_count, d.dtype);
    double *rcols = malloc(sizeof(double) * (size_t)(col_count + 1));
    double *rback = calloc((size_t)x_count + 1, sizeof(double));
    fill_small(x, x_count, d.dtype, seed, nan);
    nan_inputs = 0;   /* im2col copies: NaN goes exactly where the reference puts it */
    /* Reference: row (n, oy, ox), column (i, j, c) holds x at the tap or 0 in the padding;
     * col2im adds every column entry back to its tap. */
    int64_t r = 0;
    for (int64_t n = 0; n < d.n; n++)
        for (int64_t oy = 0; oy < d.oh; oy++)
            for (int64_t ox = 0; ox < d.ow; ox++)
                for (int64_t i = 0; i < d.kh; i++)
                    for (int64_t j = 0; j < d.kw; j++)
                        for (int64_t ch = 0; ch < d.c_in; ch++, r++) {
                            const int64_t iy = oy * d.stride_h - d.pad_top + i * d.dilation_h;
                            const int64_t ix = ox * d.stride_w - d.pad_left + j * d.dilation_w;
                            const int inside = iy >= 0 && iy < d.h && ix >= 0 && ix < d.w;
                            rcols[r] = 0.0;
                            if (inside) {
                                const int64_t xi = ((n * d.h + iy) * d.w + ix) * d.c_in + ch;
                                rcols[r] = get_value(x, xi, d.dtype);
                                rback[xi] += rcols[r];
                            }
                        }
    pycnn_status s = pycnn_im2col_forward(&d, x, cols);
    if (s != PYCNN_OK)
        FUZZ_FAIL("im2col_forward: %s", pycnn_status_str(s));
    expect_close("im2col cols", cols, rcols, col_count, d.dtype, 4.0);
    s = pycnn_col2im_forward(&d, cols, back);
    if (s != PYCNN_OK)
        FUZZ_FAIL("col2im_forward: %s", pycnn_status_str(s));
    expect_close("col2im x", back, rback, x_count, d.dtype, 4.0 * (double)d.kh * (double)d.kw);
    free(x); free(cols); free(back); free(rcols); free(rback);
    return 0;
}
