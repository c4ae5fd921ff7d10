/* Pooling passes, written once for float and double (included by pool.c). */

/* Channels handled together by the max-pool backward pass (stack arrays). */
#define POOL_CHANNEL_BLOCK 64

/* Max-pool rule, per channel: a NaN already held stays; otherwise a NaN or a
 * strictly larger value replaces the held one (so the first maximum wins).
 * Bitwise & and | (not && and ||) keep it branch-free, so it vectorizes. */
#define MAX_TAKES(held, v) (((held) == (held)) & (((v) > (held)) | ((v) != (v))))

/* One image.  Loops run over the window's cells in row-major order with the
 * channel loop innermost, so they vectorize over the contiguous channels. */
static void FN(pool_image)(const pycnn_pool2d_desc *d, const T *image, const T *dy_image,
                           T *out_image, int backward, int *stop)
{
    const int64_t C = d->c;
    for (int64_t oy = 0; oy < d->oh; oy++) {
        /* Poll per output row too: one large image can take seconds. */
        if (THREAD_ID() == 0 && interrupt_requested())
            __atomic_store_n(stop, 1, __ATOMIC_RELAXED);
        if (__atomic_load_n(stop, __ATOMIC_RELAXED))
            return;
        const int64_t y0 = max64(oy * d->stride_h - d->pad_top, 0);
        const int64_t y1 = min64(oy * d->stride_h - d->pad_top + d->kh, d->h);
        for (int64_t ox = 0; ox < d->ow; ox++) {
            const int64_t x0 = max64(ox * d->stride_w - d->pad_left, 0);
            const int64_t x1 = min64(ox * d->stride_w - d->pad_left + d->kw, d->w);
            T *out = out_image + (oy * d->ow + ox) * C;           /* forward: y row */
            const T *dy = backward ? dy_image + (oy * d->ow + ox) * C : NULL;
            const T inv_cells = (T)1 / (T)((y1 - y0) * (x1 - x0));
            if (d->mode == PYCNN_POOL_AVG) {
                if (!backward)
                    for (int64_t c = 0; c < C; c++)
                        out[c] = 0;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) {
                        const int64_t at = (iy * d->w + ix) * C;
                        if (backward)
                            for (int64_t c = 0; c < C; c++)
                                out_image[at + c] += dy[c] * inv_cells;
                        else
                            for (int64_t c = 0; c < C; c++)
                                out[c] += image[at + c];
                    }
                if (!backward)
                    for (int64_t c = 0; c < C; c++)
                        out[c] *= inv_cells;
            } else if (!backward) {
                const T *first = image + (y0 * d->w + x0) * C;
                for (int64_t c = 0; c < C; c++)
                    out[c] = first[c];
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) {
                        const T *cell = image + (iy * d->w + ix) * C;
                        for (int64_t c = 0; c < C; c++)
                            out[c] = MAX_TAKES(out[c], cell[c]) ? cell[c] : out[c];
                    }
            } else {
                /* Route each dy to its window's winning cell, a block of channels at a time.
                 * The winner is tracked as a 32-bit cell number within the window so that
                 * value and index lanes have the same width (the loop vectorizes). */
                const int64_t window_w = x1 - x0;
                for (int64_t c0 = 0; c0 < C; c0 += POOL_CHANNEL_BLOCK) {
                    const int64_t cn = min64(POOL_CHANNEL_BLOCK, C - c0);
                    T best[POOL_CHANNEL_BLOCK];
                    int32_t cell_of[POOL_CHANNEL_BLOCK];
                    const T *first = image + (y0 * d->w + x0) * C + c0;
                    for (int64_t c = 0; c < cn; c++) {
                        best[c] = first[c];
                        cell_of[c] = 0;
                    }
                    int32_t cell = 0;
                    for (int64_t iy = y0; iy < y1; iy++)
                        for (int64_t ix = x0; ix < x1; ix++, cell++) {
                            const T *v = image + (iy * d->w + ix) * C + c0;
                            for (int64_t c = 0; c < cn; c++) {
                                const int take = MAX_TAKES(best[c], v[c]);
                                best[c] = take ? v[c] : best[c];
                                cell_of[c] = take ? cell : cell_of[c];
                            }
                        }
                    for (int64_t c = 0; c < cn; c++) {
                        const int64_t iy = y0 + cell_of[c] / window_w, ix = x0 + cell_of[c] % window_w;
                        out_image[(iy * d->w + ix) * C + c0 + c] += dy[c0 + c];
                    }
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
    #pragma omp parallel for schedule(static) num_threads(worker_threads(d->n, d->n * in_size))
    for (int64_t n = 0; n < d->n; n++) {
        if (THREAD_ID() == 0 && interrupt_requested())
            __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
        if (__atomic_load_n(&stop, __ATOMIC_RELAXED))
            continue;
        if (backward) {
            memset(out + n * in_size, 0, (size_t)in_size * sizeof(T));
            FN(pool_image)(d, x + n * in_size, dy + n * out_size, out + n * in_size, 1, &stop);
        } else {
            FN(pool_image)(d, x + n * in_size, NULL, out + n * out_size, 0, &stop);
        }
    }
    return stop ? PYCNN_ERR_INTERRUPTED : PYCNN_OK;
}
