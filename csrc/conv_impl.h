/*
 * Convolution passes, written once for float and double (included by
 * conv.c with T and FN(name) defined).  Every pass works on chunks of whole
 * images: im2col of the chunk, then one GEMM per group.  Chunks are spread
 * over threads; the backward-filter reduction keeps one partial per slot and
 * adds the slots in a fixed order.
 */

/* Gathers the (kh, kw, cig) patches of images [image0, image1) for one group. */
void FN(im2col)(const pycnn_conv2d_desc *d, int64_t cig, int64_t group,
                const T *x, int64_t image0, int64_t image1, T *col)
{
    const int64_t k = d->kh * d->kw * cig;
    T *row = col;
    for (int64_t n = image0; n < image1; n++) {
        const T *image = x + n * d->h * d->w * d->c_in + group * cig;
        for (int64_t oy = 0; oy < d->oh; oy++) {
            for (int64_t ox = 0; ox < d->ow; ox++, row += k) {
                T *dst = row;
                for (int64_t i = 0; i < d->kh; i++) {
                    const int64_t iy = oy * d->stride_h - d->pad_top + i * d->dilation_h;
                    for (int64_t j = 0; j < d->kw; j++, dst += cig) {
                        const int64_t ix = ox * d->stride_w - d->pad_left + j * d->dilation_w;
                        if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w) {
                            memset(dst, 0, (size_t)cig * sizeof(T));
                        } else {
                            memcpy(dst, image + (iy * d->w + ix) * d->c_in, (size_t)cig * sizeof(T));
                        }
                    }
                }
            }
        }
    }
}

/* Adjoint of im2col: adds each patch back into x (x must be zeroed by the caller). */
void FN(col2im)(const pycnn_conv2d_desc *d, int64_t cig, int64_t group,
                const T *col, int64_t image0, int64_t image1, T *x)
{
    const int64_t k = d->kh * d->kw * cig;
    const T *row = col;
    for (int64_t n = image0; n < image1; n++) {
        T *image = x + n * d->h * d->w * d->c_in + group * cig;
        for (int64_t oy = 0; oy < d->oh; oy++) {
            for (int64_t ox = 0; ox < d->ow; ox++, row += k) {
                const T *src = row;
                for (int64_t i = 0; i < d->kh; i++) {
                    const int64_t iy = oy * d->stride_h - d->pad_top + i * d->dilation_h;
                    for (int64_t j = 0; j < d->kw; j++, src += cig) {
                        const int64_t ix = ox * d->stride_w - d->pad_left + j * d->dilation_w;
                        if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w)
                            continue;
                        T *dst = image + (iy * d->w + ix) * d->c_in;
                        for (int64_t c = 0; c < cig; c++)
                            dst[c] += src[c];
                    }
                }
            }
        }
    }
}

/* y[r, c] += bias[c] for every row. */
void FN(add_bias)(T *y, const T *bias, int64_t rows, int64_t channels)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < channels; c++)
            y[r * channels + c] += bias[c];
}

/* sum[c] += dy[r, c] over the rows, in row order. */
void FN(add_row_sums)(const T *dy, int64_t rows, int64_t channels, T *sum)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < channels; c++)
            sum[c] += dy[r * channels + c];
}

static void FN(chunk_images)(const pycnn_conv2d_desc *d, const conv_plan *p, int64_t chunk,
                             int64_t *image0, int64_t *image1)
{
    *image0 = chunk * p->images_per_chunk;
    *image1 = min64(d->n, *image0 + p->images_per_chunk);
}

/* ---- depthwise: groups == c_in, cog = c_out / c_in filters per channel ----
 * Direct loops over output pixels and taps, innermost over channels. */

/* Output pixels of images [image0, image1) for one tap (i, j): calls body with
 * the input pixel, the output pixel and the tap's filter row.  */
#define FOR_EACH_TAP(d, image0, image1, BODY)                                               \
    for (int64_t n = image0; n < image1; n++)                                               \
        for (int64_t oy = 0; oy < (d)->oh; oy++)                                             \
            for (int64_t ox = 0; ox < (d)->ow; ox++)                                         \
                for (int64_t i = 0; i < (d)->kh; i++) {                                      \
                    const int64_t iy = oy * (d)->stride_h - (d)->pad_top + i * (d)->dilation_h; \
                    if (iy < 0 || iy >= (d)->h)                                              \
                        continue;                                                            \
                    for (int64_t j = 0; j < (d)->kw; j++) {                                  \
                        const int64_t ix = ox * (d)->stride_w - (d)->pad_left + j * (d)->dilation_w; \
                        if (ix < 0 || ix >= (d)->w)                                          \
                            continue;                                                        \
                        const int64_t in_at = ((n * (d)->h + iy) * (d)->w + ix) * (d)->c_in;  \
                        const int64_t out_at = ((n * (d)->oh + oy) * (d)->ow + ox) * (d)->c_out; \
                        const int64_t tap_at = (i * (d)->kw + j) * (d)->c_out;               \
                        BODY                                                                 \
                    }                                                                        \
                }

static void FN(depthwise_forward)(const pycnn_conv2d_desc *d, int64_t mult, const T *x, const T *w,
                                  const T *bias, T *y, int64_t image0, int64_t image1)
{
    const int64_t pixels = (image1 - image0) * d->oh * d->ow;
    T *y0 = y + image0 * d->oh * d->ow * d->c_out;
    for (int64_t r = 0; r < pixels; r++)
        for (int64_t c = 0; c < d->c_out; c++)
            y0[r * d->c_out + c] = bias != NULL ? bias[c] : 0;
    FOR_EACH_TAP(d, image0, image1, {
        const T *xp = x + in_at;
        const T *wp = w + tap_at;
        T *yp = y + out_at;
        for (int64_t c = 0; c < d->c_in; c++)
            for (int64_t m = 0; m < mult; m++)
                yp[c * mult + m] += xp[c] * wp[c * mult + m];
    })
}

static void FN(depthwise_backward_data)(const pycnn_conv2d_desc *d, int64_t mult, const T *dy, const T *w,
                                        T *dx, int64_t image0, int64_t image1)
{
    memset(dx + image0 * d->h * d->w * d->c_in, 0,
           (size_t)((image1 - image0) * d->h * d->w * d->c_in) * sizeof(T));
    FOR_EACH_TAP(d, image0, image1, {
        const T *dyp = dy + out_at;
        const T *wp = w + tap_at;
        T *dxp = dx + in_at;
        for (int64_t c = 0; c < d->c_in; c++)
            for (int64_t m = 0; m < mult; m++)
                dxp[c] += dyp[c * mult + m] * wp[c * mult + m];
    })
}

/* Adds this chunk's filter gradient into dw_part [kh * kw, c_out]. */
static void FN(depthwise_backward_filter)(const pycnn_conv2d_desc *d, int64_t mult, const T *x, const T *dy,
                                          T *dw_part, int64_t image0, int64_t image1)
{
    FOR_EACH_TAP(d, image0, image1, {
        const T *xp = x + in_at;
        const T *dyp = dy + out_at;
        T *dwp = dw_part + tap_at;
        for (int64_t c = 0; c < d->c_in; c++)
            for (int64_t m = 0; m < mult; m++)
                dwp[c * mult + m] += xp[c] * dyp[c * mult + m];
    })
}

pycnn_status FN(conv_forward)(const pycnn_conv2d_desc *d, const conv_plan *p,
                              const T *x, const T *w, const T *bias, T *y, char *ws)
{
    int stop = 0;
    #pragma omp parallel num_threads(worker_threads(min64(p->chunks, p->slots), p->work))
    {
        char *slot = ws + (int64_t)THREAD_ID() * p->slot_bytes;
        T *col = (T *)slot;
        void *pack = slot + p->col_bytes;
        #pragma omp for schedule(dynamic, 1)
        for (int64_t chunk = 0; chunk < p->chunks; chunk++) {
            if (THREAD_ID() == 0 && interrupt_requested())
                __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
            if (__atomic_load_n(&stop, __ATOMIC_RELAXED))
                continue;
            int64_t image0, image1;
            FN(chunk_images)(d, p, chunk, &image0, &image1);
            if (p->depthwise) {
                FN(depthwise_forward)(d, p->cog, x, w, bias, y, image0, image1);
                continue;
            }
            const int64_t rows = (image1 - image0) * p->rows_per_image;
            T *y_chunk = y + image0 * p->rows_per_image * d->c_out;
            for (int64_t g = 0; g < d->groups; g++) {
                const T *a = x + image0 * d->h * d->w * d->c_in;
                if (!p->direct) {
                    FN(im2col)(d, p->cig, g, x, image0, image1, col);
                    a = col;
                }
                const gemm_args args = {0, 0, 0, rows, p->cog, p->k,
                                        p->direct ? d->c_in : p->k, d->c_out, d->c_out};
                FN(gemm)(&args, a, w + g * p->cog, y_chunk + g * p->cog, pack);
            }
            if (bias != NULL)
                FN(add_bias)(y_chunk, bias, rows, d->c_out);
        }
    }
    return stop ? PYCNN_ERR_INTERRUPTED : PYCNN_OK;
}

pycnn_status FN(conv_backward_data)(const pycnn_conv2d_desc *d, const conv_plan *p,
                                    const T *dy, const T *w, T *dx, char *ws)
{
    int stop = 0;
    #pragma omp parallel num_threads(worker_threads(min64(p->chunks, p->slots), p->work))
    {
        char *slot = ws + (int64_t)THREAD_ID() * p->slot_bytes;
        T *col = (T *)slot;
        void *pack = slot + p->col_bytes;
        #pragma omp for schedule(dynamic, 1)
        for (int64_t chunk = 0; chunk < p->chunks; chunk++) {
            if (THREAD_ID() == 0 && interrupt_requested())
                __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
            if (__atomic_load_n(&stop, __ATOMIC_RELAXED))
                continue;
            int64_t image0, image1;
            FN(chunk_images)(d, p, chunk, &image0, &image1);
            const int64_t rows = (image1 - image0) * p->rows_per_image;
            if (p->depthwise) {
                FN(depthwise_backward_data)(d, p->cog, dy, w, dx, image0, image1);
                continue;
            }
            const T *dy_chunk = dy + image0 * p->rows_per_image * d->c_out;
            T *dx_chunk = dx + image0 * d->h * d->w * d->c_in;
            if (p->direct) {   /* dx = dy * w^T, rows map one to one */
                const gemm_args args = {0, 1, 0, rows, d->c_in, d->c_out, d->c_out, d->c_out, d->c_in};
                FN(gemm)(&args, dy_chunk, w, dx_chunk, pack);
                continue;
            }
            memset(dx_chunk, 0, (size_t)((image1 - image0) * d->h * d->w * d->c_in) * sizeof(T));
            for (int64_t g = 0; g < d->groups; g++) {
                /* dcol[rows, k] = dy_g[rows, cog] * w_g^T, w_g stored [k, cog] */
                const gemm_args args = {0, 1, 0, rows, p->k, p->cog, d->c_out, d->c_out, p->k};
                FN(gemm)(&args, dy_chunk + g * p->cog, w + g * p->cog, col, pack);
                FN(col2im)(d, p->cig, g, col, image0, image1, dx);
            }
        }
    }
    return stop ? PYCNN_ERR_INTERRUPTED : PYCNN_OK;
}

pycnn_status FN(conv_backward_filter)(const pycnn_conv2d_desc *d, const conv_plan *p,
                                      const T *x, const T *dy, T *dw, T *dbias, char *ws)
{
    const int64_t w_count = p->k * d->c_out;   /* kh*kw*cig*c_out */
    const int64_t used_slots = min64(p->slots, p->chunks);
    int stop = 0;
    /* Slot s reduces chunks s, s + slots, ... in order into its own partial. */
    #pragma omp parallel for schedule(dynamic, 1) num_threads(worker_threads(used_slots, p->work))
    for (int64_t s = 0; s < used_slots; s++) {
        char *slot = ws + s * p->slot_bytes;
        T *col = (T *)slot;
        void *pack = slot + p->col_bytes;
        T *dw_part = (T *)(slot + p->col_bytes + p->pack_bytes);
        T *db_part = dw_part + w_count;
        memset(db_part, 0, (size_t)d->c_out * sizeof(T));
        int first = 1;
        for (int64_t chunk = s; chunk < p->chunks; chunk += p->slots) {
            if (THREAD_ID() == 0 && interrupt_requested())
                __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
            if (__atomic_load_n(&stop, __ATOMIC_RELAXED))
                break;
            int64_t image0, image1;
            FN(chunk_images)(d, p, chunk, &image0, &image1);
            const int64_t rows = (image1 - image0) * p->rows_per_image;
            const T *dy_chunk = dy + image0 * p->rows_per_image * d->c_out;
            if (p->depthwise) {
                if (first)
                    memset(dw_part, 0, (size_t)w_count * sizeof(T));
                FN(depthwise_backward_filter)(d, p->cog, x, dy, dw_part, image0, image1);
            }
            for (int64_t g = 0; g < d->groups && !p->depthwise; g++) {
                const T *a = x + image0 * d->h * d->w * d->c_in;
                if (!p->direct) {
                    FN(im2col)(d, p->cig, g, x, image0, image1, col);
                    a = col;
                }
                /* dw_g[k, cog] (+)= col^T[k, rows] * dy_g[rows, cog] */
                const gemm_args args = {1, 0, !first, p->k, p->cog, rows,
                                        p->direct ? d->c_in : p->k, d->c_out, d->c_out};
                FN(gemm)(&args, a, dy_chunk + g * p->cog, dw_part + g * p->cog, pack);
            }
            FN(add_row_sums)(dy_chunk, rows, d->c_out, db_part);
            first = 0;
        }
        if (first)   /* no chunk reached this slot (interrupted): contribute zeros */
            memset(dw_part, 0, (size_t)w_count * sizeof(T));
    }
    if (stop)
        return PYCNN_ERR_INTERRUPTED;
    /* Fixed-order sum of the slot partials. */
    for (int64_t i = 0; i < w_count; i++)
        dw[i] = 0;
    if (dbias != NULL)
        for (int64_t c = 0; c < d->c_out; c++)
            dbias[c] = 0;
    for (int64_t s = 0; s < used_slots; s++) {
        const T *dw_part = (const T *)(ws + s * p->slot_bytes + p->col_bytes + p->pack_bytes);
        for (int64_t i = 0; i < w_count; i++)
            dw[i] += dw_part[i];
        if (dbias != NULL)
            for (int64_t c = 0; c < d->c_out; c++)
                dbias[c] += dw_part[w_count + c];
    }
    return PYCNN_OK;
}
