/* Pooling passes, written once for float and double (included by pool.c). */

/* Index (y * w + x) of the window's winning cell: the first maximum in
 * row-major order, or the first NaN, which then wins. */
static int64_t FN(window_argmax)(const pycnn_pool2d_desc *d, const T *image, int64_t c,
                                 int64_t y0, int64_t y1, int64_t x0, int64_t x1)
{
    int64_t best = y0 * d->w + x0;
    T best_value = image[best * d->c + c];
    for (int64_t iy = y0; iy < y1; iy++) {
        for (int64_t ix = x0; ix < x1; ix++) {
            const int64_t at = iy * d->w + ix;
            const T v = image[at * d->c + c];
            if (best_value != best_value)   /* a NaN already won */
                return best;
            if (v != v || v > best_value) {
                best = at;
                best_value = v;
            }
        }
    }
    return best;
}

static void FN(pool_image)(const pycnn_pool2d_desc *d, const T *image, const T *dy_image,
                           T *out_image, int backward)
{
    for (int64_t oy = 0; oy < d->oh; oy++) {
        const int64_t y0 = max64(oy * d->stride_h - d->pad_top, 0);
        const int64_t y1 = min64(oy * d->stride_h - d->pad_top + d->kh, d->h);
        for (int64_t ox = 0; ox < d->ow; ox++) {
            const int64_t x0 = max64(ox * d->stride_w - d->pad_left, 0);
            const int64_t x1 = min64(ox * d->stride_w - d->pad_left + d->kw, d->w);
            const int64_t out_at = (oy * d->ow + ox) * d->c;
            const T cells = (T)((y1 - y0) * (x1 - x0));
            for (int64_t c = 0; c < d->c; c++) {
                if (d->mode == PYCNN_POOL_MAX) {
                    const int64_t at = FN(window_argmax)(d, image, c, y0, y1, x0, x1);
                    if (backward)
                        out_image[at * d->c + c] += dy_image[out_at + c];
                    else
                        out_image[out_at + c] = image[at * d->c + c];
                } else if (backward) {
                    const T share = dy_image[out_at + c] / cells;
                    for (int64_t iy = y0; iy < y1; iy++)
                        for (int64_t ix = x0; ix < x1; ix++)
                            out_image[(iy * d->w + ix) * d->c + c] += share;
                } else {
                    T sum = 0;
                    for (int64_t iy = y0; iy < y1; iy++)
                        for (int64_t ix = x0; ix < x1; ix++)
                            sum += image[(iy * d->w + ix) * d->c + c];
                    out_image[out_at + c] = sum / cells;
                }
            }
        }
    }
}

/* Forward (backward = 0): out = y.  Backward: out = dx, zeroed here. */
static pycnn_status FN(pool_run)(const pycnn_pool2d_desc *d, const T *x, const T *dy, T *out,
                                 int backward)
{
    const int64_t in_size = d->h * d->w * d->c, out_size = d->oh * d->ow * d->c;
    int stop = 0;
    #pragma omp parallel for schedule(static) num_threads(worker_threads(d->n))
    for (int64_t n = 0; n < d->n; n++) {
        if (THREAD_ID() == 0 && interrupt_requested())
            __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
        if (__atomic_load_n(&stop, __ATOMIC_RELAXED))
            continue;
        if (backward) {
            memset(out + n * in_size, 0, (size_t)in_size * sizeof(T));
            FN(pool_image)(d, x + n * in_size, dy + n * out_size, out + n * in_size, 1);
        } else {
            FN(pool_image)(d, x + n * in_size, NULL, out + n * out_size, 0);
        }
    }
    return stop ? PYCNN_ERR_INTERRUPTED : PYCNN_OK;
}
