/*
 * Convolution passes, written once for float and double (included by
 * conv.c with T and FN(name) defined).  Every pass works on chunks of output
 * rows (the flattened n, oh, ow; see conv_chunk_rows): im2col of the chunk,
 * then one GEMM per group, or, for thin groups (conv_thin_impl.h), direct
 * loops over the chunk.  Chunks are spread over threads; the backward-
 * filter reduction keeps one partial per slot and adds the slots in a fixed
 * order; backward-data scatters into dx, so it gives each thread whole images.
 */

/* Output row m -> image n and output pixel (oy, ox). */
#define ROW_PIXEL(d, m, n, oy, ox)                       \
    const int64_t n = (m) / ((d)->oh * (d)->ow);          \
    const int64_t oy = (m) % ((d)->oh * (d)->ow) / (d)->ow; \
    const int64_t ox = (m) % (d)->ow

/* Gathers the (kh, kw, cig) patches of output rows [m0, m0 + rows) for one group.
 * With one group and no dilation, a kernel row's taps are kw * c_in contiguous
 * input values: one copy per kernel row instead of one per tap (which costs
 * most of the time when c_in is 1-16). */
void FN(im2col)(const pycnn_conv2d_desc *d, int64_t cig, int64_t group,
                const T *x, int64_t m0, int64_t rows, T *col)
{
    const int64_t k = d->kh * d->kw * cig, run = d->kw * cig;
    const int contiguous_taps = cig == d->c_in && d->dilation_w == 1;
    /* Walk the pixels in order instead of dividing m for each (LeNet's first
     * layer has 5-element patch rows, where the divisions would dominate). */
    ROW_PIXEL(d, m0, n_first, oy_first, ox_first);
    int64_t n = n_first, oy = oy_first, ox = ox_first;
    for (int64_t r = 0; r < rows; r++) {
        const T *image = x + n * d->h * d->w * d->c_in + group * cig;
        const int64_t ix0 = ox * d->stride_w - d->pad_left;
        int64_t j_lo, j_hi;
        conv_taps_inside(d, ix0, &j_lo, &j_hi);
        T *dst = col + r * k;
        for (int64_t i = 0; i < d->kh; i++, dst += run) {
            const int64_t iy = oy * d->stride_h - d->pad_top + i * d->dilation_h;
            if (iy < 0 || iy >= d->h) {
                for (int64_t e = 0; e < run; e++)
                    dst[e] = 0;
                continue;
            }
            for (int64_t e = 0; e < j_lo * cig; e++)
                dst[e] = 0;
            for (int64_t e = j_hi * cig; e < run; e++)
                dst[e] = 0;
            /* pixel offset of tap j: only formed for taps inside the image */
            const int64_t row_at = iy * d->w + ix0;
            if (contiguous_taps) {
                const int64_t begin = j_lo * cig, count = (j_hi - j_lo) * cig;
                if (count == 0)
                    continue;
                const T *src = image + (row_at + j_lo) * d->c_in;
                if (count >= 32) {
                    memcpy(dst + begin, src, (size_t)count * sizeof(T));
                } else {   /* a library call costs more than a short copy */
                    for (int64_t e = 0; e < count; e++)
                        dst[begin + e] = src[e];
                }
                continue;
            }
            for (int64_t j = j_lo; j < j_hi; j++) {
                /* a plain loop: cig is often 1-3, where a memcpy call costs more */
                const T *tap = image + (row_at + j * d->dilation_w) * d->c_in;
                for (int64_t c = 0; c < cig; c++)
                    dst[j * cig + c] = tap[c];
            }
        }
        if (++ox == d->ow) {
            ox = 0;
            if (++oy == d->oh) {
                oy = 0;
                n++;
            }
        }
    }
}

/* im2col stored transposed, col_t[k, rows] (row stride `rows`), for one input
 * channel and stride_w 1: for tap (i, j), consecutive output pixels of an
 * output row read consecutive input values, so each tap's row is built from
 * runs of x (LeNet's first layer: 25 runs of 28 values per output row instead
 * of 140 patch rows of 5). */
void FN(im2col_by_tap)(const pycnn_conv2d_desc *d, const T *x, int64_t m0, int64_t rows, T *col_t)
{
    ROW_PIXEL(d, m0, n_first, oy_first, ox_first);
    int64_t n = n_first, oy = oy_first, ox = ox_first;
    for (int64_t r = 0; r < rows;) {
        const int64_t span = min64(d->ow - ox, rows - r);   /* pixels left in this output row */
        const T *image = x + n * d->h * d->w;
        for (int64_t i = 0; i < d->kh; i++) {
            const int64_t iy = oy * d->stride_h - d->pad_top + i * d->dilation_h;
            for (int64_t j = 0; j < d->kw; j++) {
                T *dst = col_t + (i * d->kw + j) * rows + r;
                if (iy < 0 || iy >= d->h) {
                    for (int64_t e = 0; e < span; e++)
                        dst[e] = 0;
                    continue;
                }
                /* pixel ox + e reads input column ix0 + e, inside the image for e in [lo, hi) */
                const int64_t ix0 = ox - d->pad_left + j * d->dilation_w;
                const int64_t lo = min64(max64(-ix0, 0), span), hi = max64(min64(d->w - ix0, span), lo);
                for (int64_t e = 0; e < lo; e++)
                    dst[e] = 0;
                if (hi > lo) {
                    const T *src = image + iy * d->w + ix0 + lo;   /* the first input value read */
                    for (int64_t e = lo; e < hi; e++)
                        dst[e] = src[e - lo];
                }
                for (int64_t e = hi; e < span; e++)
                    dst[e] = 0;
            }
        }
        r += span;
        ox += span;
        if (ox == d->ow) {
            ox = 0;
            if (++oy == d->oh) {
                oy = 0;
                n++;
            }
        }
    }
}

/* Adjoint of im2col: adds each patch of rows [m0, m0 + rows) back into x. */
void FN(col2im)(const pycnn_conv2d_desc *d, int64_t cig, int64_t group,
                const T *col, int64_t m0, int64_t rows, T *x)
{
    const int64_t k = d->kh * d->kw * cig;
    const int contiguous_taps = cig == d->c_in && d->dilation_w == 1;
    for (int64_t m = m0; m < m0 + rows; m++) {
        ROW_PIXEL(d, m, n, oy, ox);
        T *image = x + n * d->h * d->w * d->c_in + group * cig;
        const int64_t ix0 = ox * d->stride_w - d->pad_left;
        int64_t j_lo, j_hi;
        conv_taps_inside(d, ix0, &j_lo, &j_hi);
        const T *src = col + (m - m0) * k;
        for (int64_t i = 0; i < d->kh; i++, src += d->kw * cig) {
            const int64_t iy = oy * d->stride_h - d->pad_top + i * d->dilation_h;
            if (iy < 0 || iy >= d->h)
                continue;
            const int64_t row_at = iy * d->w + ix0;   /* see im2col */
            if (contiguous_taps) {
                if (j_hi == j_lo)
                    continue;
                T *restrict dst = image + (row_at + j_lo) * d->c_in;
                const T *restrict add = src + j_lo * cig;
                for (int64_t e = 0; e < (j_hi - j_lo) * cig; e++)
                    dst[e] += add[e];
                continue;
            }
            for (int64_t j = j_lo; j < j_hi; j++) {
                T *tap = image + (row_at + j * d->dilation_w) * d->c_in;
                for (int64_t c = 0; c < cig; c++)
                    tap[c] += src[j * cig + c];
            }
        }
    }
}

/* flipped[i, j, o, g*cig + c] = w[kh-1-i, kw-1-j, c, g*cog + o]: the filters of
 * the forward convolution that computes a stride-1 backward-data pass.  Each
 * tap's (cig x cog) blocks are transposed 8 rows at a time in registers (VGG's
 * 9 MB of filters: 3 ms with 32 x 32 scalar tiles, a quarter of the pass). */
#define FLIP_ROWS 64   /* input channels per work item (a multiple of 8) */
void FN(flip_filters)(const pycnn_conv2d_desc *d, const conv_plan *p, const T *w, T *flipped)
{
    const int64_t taps = d->kh * d->kw, row_blocks = ceil_div64(p->cig, FLIP_ROWS);
    const int64_t items = taps * d->groups * row_blocks;
    /* A copy, so the split across threads cannot change any value. */
    #pragma omp parallel for schedule(static) num_threads(worker_threads(items, p->k * d->c_out))
    for (int64_t item = 0; item < items; item++) {
        const int64_t t = item / (d->groups * row_blocks), g = item / row_blocks % d->groups;
        const int64_t c0 = item % row_blocks * FLIP_ROWS, i = t / d->kw, j = t % d->kw;
        const T *tap = w + ((d->kh - 1 - i) * d->kw + (d->kw - 1 - j)) * p->cig * d->c_out;
        FN(gemm_transpose)(min64(FLIP_ROWS, p->cig - c0), p->cog, tap + c0 * d->c_out + g * p->cog, d->c_out,
                           flipped + t * p->cog * d->c_in + g * p->cig + c0, d->c_in);
    }
}

/* y[r, c] += bias[c] for every row (rows ld elements apart). */
void FN(add_bias)(T *y, const T *bias, int64_t rows, int64_t channels, int64_t ld)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < channels; c++)
            y[r * ld + c] += bias[c];
}

/* The descriptor's epilogue on rows of y just computed, after their bias
 * (the activation loops' builds, so as fast as and equal to the separate op). */
void FN(apply_epilogue)(const pycnn_conv2d_desc *d, T *y, int64_t rows, int64_t channels, int64_t ld)
{
    if (d->epilogue.mode != PYCNN_EPILOGUE_NONE)
        activation_epilogue_for(d->dtype)(&d->epilogue, y, rows, channels, ld);
}

/* sum[c] += dy[r, c] over the rows (rows ld elements apart).  With few
 * channels, groups of rows are added as one flat vector first (a loop long
 * enough to vectorize; LeNet's 6 channels would not), then folded by channel:
 * a fixed order that depends only on the shape. */
#define ROW_SUM_LANES 64
void FN(add_row_sums)(const T *dy, int64_t rows, int64_t channels, int64_t ld, T *sum)
{
    int64_t r = 0;
    if (ld == channels && channels < ROW_SUM_LANES / 4) {
        const int64_t group = ROW_SUM_LANES / channels, width = group * channels;
        T acc[ROW_SUM_LANES] = {0};
        for (; r + group <= rows; r += group) {
            const T *restrict src = dy + r * channels;
            for (int64_t q = 0; q < width; q++)
                acc[q] += src[q];
        }
        for (int64_t g = 0; g < group; g++)
            for (int64_t c = 0; c < channels; c++)
                sum[c] += acc[g * channels + c];
    }
    for (; r < rows; r++)
        for (int64_t c = 0; c < channels; c++)
            sum[c] += dy[r * ld + c];
}

/* ---- thin groups (depthwise included): the kernels of conv_thin_impl.h ---- */

/* wt[tap][k][ci] = w[tap][ci % cig][(ci / cig) * cog + k]: the filters in the
 * order backward-data's expanded dy rows read them. */
static void FN(thin_transpose_filters)(const pycnn_conv2d_desc *d, const conv_plan *p, const T *w, T *wt)
{
    const int64_t E = p->cig * d->c_out;
    for (int64_t tap = 0; tap < d->kh * d->kw; tap++)
        for (int64_t k = 0; k < p->cog; k++)
            for (int64_t ci = 0; ci < d->c_in; ci++)
                wt[tap * E + k * d->c_in + ci] = w[tap * E + ci % p->cig * d->c_out + ci / p->cig * p->cog + k];
}

/* dx in runs of rows (n, iy), each row computed whole, so the split never
 * changes a result: one row per item in place, else one run per slot (the
 * ring's rows are reused along a run). */
static pycnn_status FN(thin_backward_data)(const pycnn_conv2d_desc *d, const conv_plan *p,
                                           const T *dy, const T *w, T *dx, char *ws)
{
    const int64_t rows = d->n * d->h;
    const int64_t runs = p->expand ? min64(rows, p->slots) : rows;
    const int64_t per_run = ceil_div64(rows, runs);
    const T *wt = w;
    if (p->expand) {
        T *rearranged = (T *)(ws + p->slots * p->slot_bytes);
        FN(thin_transpose_filters)(d, p, w, rearranged);
        wt = rearranged;
    }
    int stop = 0;
    #pragma omp parallel num_threads(worker_threads(min64(runs, p->slots), p->work))
    {
        char *slot = ws + (int64_t)THREAD_ID() * p->slot_bytes;
        #pragma omp for schedule(dynamic, 1)
        for (int64_t run = 0; run < runs; run++) {
            if (stop_requested(&stop))
                continue;
            const int64_t row0 = run * per_run;
            FN(thin_backward_data_rows)(d, p, dy, wt, dx, row0, min64(per_run, rows - row0), slot);
        }
    }
    return stop ? PYCNN_ERR_INTERRUPTED : PYCNN_OK;
}

/* The buffer after the slots (conv_plan.shared_w_bytes). */
static T *FN(shared_w_buffer)(const conv_plan *p, char *ws)
{
    return (T *)(ws + p->slots * p->slot_bytes);
}

/* Every chunk's GEMM B packed once per pass (conv_plan.pack_w) into `packed`
 * (the buffer after the slots, or the caller's pycnn_conv2d_pack_filters):
 * per group w_g [k, cog] for the forward pass or, read transposed, w_g^T
 * [cog, k] for backward-data.  Called by every thread of a parallel region:
 * the column blocks are shared out, and the loop's closing barrier holds the
 * threads until the whole B is packed. */
static const T *FN(pack_weights)(const pycnn_conv2d_desc *d, const conv_plan *p, const T *w, int transposed,
                                 T *packed)
{
    enum { BLOCK_COLS = 64 };   /* a multiple of every kernel's NR */
    const int64_t rows = transposed ? p->cog : p->k, cols = transposed ? p->k : p->cog;
    const int64_t per_group = conv_packed_group(rows, cols, gemm_nr(d->dtype));
    const int64_t blocks = ceil_div64(cols, BLOCK_COLS);
    const gemm_args args = {.trans_b = transposed, .n = cols, .k = rows, .ldb = d->c_out};
    #pragma omp for schedule(static)
    for (int64_t item = 0; item < d->groups * blocks; item++) {
        const int64_t g = item / blocks, j0 = item % blocks * BLOCK_COLS;
        FN(gemm_pack_b)(&args, w + g * p->cog, cols, j0, min64(BLOCK_COLS, cols - j0), packed + g * per_group);
    }
    return packed;
}

/* ---- 1x1, stride 1, no padding: x is its own im2col, so no scatter either ---- */

/* dx[:, cols] = dy * w[cols, :]^T per chunk of rows (or column block of one). */
static pycnn_status FN(direct_backward_data)(const pycnn_conv2d_desc *d, const conv_plan *p,
                                             const T *dy, const T *w, T *dx, char *ws)
{
    const int threads = worker_threads(min64(p->chunks * p->in_col_blocks, p->slots), p->work);
    const int64_t blocks = conv_blocks_for_threads(p->in_col_blocks, p->chunks, threads);
    const int64_t items = p->chunks * blocks;
    int stop = 0;
    #pragma omp parallel num_threads(threads)
    {
        void *pack = ws + (int64_t)THREAD_ID() * p->slot_bytes + p->col_bytes;
        const T *w_packed = p->pack_w ? FN(pack_weights)(d, p, w, 1, FN(shared_w_buffer)(p, ws)) : NULL;
        #pragma omp for schedule(dynamic, 1)
        for (int64_t item = 0; item < items; item++) {
            if (stop_requested(&stop))
                continue;
            int64_t m0, rows, j0, width;
            conv_chunk_rows(p, item / blocks, &m0, &rows);
            conv_column_block(d->c_in, blocks, item % blocks, &j0, &width);
            const gemm_args args = {0, 1, 0, rows, width, d->c_out, d->c_out, d->c_out, d->c_in};
            if (w_packed != NULL)
                FN(gemm_packed_b)(&args, dy + m0 * d->c_out, w_packed, d->c_in, j0, dx + m0 * d->c_in + j0, pack);
            else
                FN(gemm)(&args, dy + m0 * d->c_out, w + j0 * d->c_out, dx + m0 * d->c_in + j0, pack);
        }
    }
    return stop ? PYCNN_ERR_INTERRUPTED : PYCNN_OK;
}

/* dw[:, cols] = x^T * dy[:, cols], each column block owned by one thread and
 * accumulated over the chunks in order: no partial sums to reduce. */
static pycnn_status FN(direct_backward_filter)(const pycnn_conv2d_desc *d, const conv_plan *p,
                                               const T *x, const T *dy, T *dw, T *dbias, char *ws)
{
    const int threads = worker_threads(min64(p->filter_col_blocks, p->slots), p->work);
    const int64_t blocks = conv_blocks_for_threads(p->filter_col_blocks, 1, threads);
    int stop = 0;
    #pragma omp parallel num_threads(threads)
    {
        void *pack = ws + (int64_t)THREAD_ID() * p->slot_bytes + p->col_bytes;
        #pragma omp for schedule(dynamic, 1)
        for (int64_t block = 0; block < blocks; block++) {
            int64_t j0, width;
            conv_column_block(d->c_out, blocks, block, &j0, &width);
            if (dbias != NULL)
                for (int64_t c = j0; c < j0 + width; c++)
                    dbias[c] = 0;
            for (int64_t chunk = 0; chunk < p->chunks; chunk++) {
                if (stop_requested(&stop))
                    break;
                int64_t m0, rows;
                conv_chunk_rows(p, chunk, &m0, &rows);
                const gemm_args args = {1, 0, chunk > 0, d->c_in, width, rows, d->c_in, d->c_out, d->c_out};
                FN(gemm)(&args, x + m0 * d->c_in, dy + m0 * d->c_out + j0, dw + j0, pack);
                if (dbias != NULL)
                    FN(add_row_sums)(dy + m0 * d->c_out + j0, rows, width, d->c_out, dbias + j0);
            }
        }
    }
    return stop ? PYCNN_ERR_INTERRUPTED : PYCNN_OK;
}

/* dw[:, cols] = col^T * dy[:, cols] with one im2col buffer shared by the
 * threads: the calling thread fills it for a chunk, then each thread runs the
 * GEMMs of its column blocks, accumulating over the chunks in order. */
static pycnn_status FN(shared_col_backward_filter)(const pycnn_conv2d_desc *d, const conv_plan *p,
                                                   const T *x, const T *dy, T *dw, T *dbias, char *ws)
{
    const int threads = worker_threads(min64(p->filter_col_blocks, p->slots), p->work);
    const int64_t blocks = conv_blocks_for_threads(p->filter_col_blocks, 1, threads);
    T *col = (T *)ws;   /* slot 0's im2col buffer */
    int stop = 0;
    #pragma omp parallel num_threads(threads)
    {
        void *pack = ws + (int64_t)THREAD_ID() * p->slot_bytes + p->col_bytes;
        for (int64_t chunk = 0; chunk < p->chunks; chunk++) {
            int64_t m0, rows;
            conv_chunk_rows(p, chunk, &m0, &rows);
            #pragma omp single
            stop = interrupt_requested();
            if (stop)   /* read after the single's barrier: every thread leaves together */
                break;
            /* Each thread writes a share of the chunk's im2col rows (a copy: no
             * arithmetic, so the split cannot change a bit). */
            #pragma omp for schedule(static)
            for (int64_t part = 0; part < threads; part++) {
                const int64_t r0 = rows * part / threads, r1 = rows * (part + 1) / threads;
                FN(im2col)(d, p->cig, 0, x, m0 + r0, r1 - r0, col + r0 * p->k);
            }
            #pragma omp for schedule(dynamic, 1)
            for (int64_t block = 0; block < blocks; block++) {
                int64_t j0, width;
                conv_column_block(d->c_out, blocks, block, &j0, &width);
                const gemm_args args = {1, 0, chunk > 0, p->k, width, rows, p->k, d->c_out, d->c_out};
                FN(gemm)(&args, col, dy + m0 * d->c_out + j0, dw + j0, pack);
                if (dbias != NULL) {
                    if (chunk == 0)
                        for (int64_t c = j0; c < j0 + width; c++)
                            dbias[c] = 0;
                    FN(add_row_sums)(dy + m0 * d->c_out + j0, rows, width, d->c_out, dbias + j0);
                }
            }   /* the implied barrier keeps col until every block is done */
        }
    }
    return stop ? PYCNN_ERR_INTERRUPTED : PYCNN_OK;
}

/* The forward's B for pycnn_conv2d_pack_filters (the layout pack_weights gives the pass). */
void FN(conv_pack_filters)(const pycnn_conv2d_desc *d, const conv_plan *p, const T *w, T *packed)
{
    #pragma omp parallel num_threads(worker_threads(CONV_SLOTS, p->work))
    FN(pack_weights)(d, p, w, 0, packed);
}

/* prepacked: the forward's B packed by the caller (conv.c passes it where forward_reads_packed), or NULL. */
pycnn_status FN(conv_forward)(const pycnn_conv2d_desc *d, const conv_plan *p,
                              const T *x, const T *w, const T *prepacked, const T *bias, T *y, char *ws)
{
    if (p->low_channel)
        return FN(conv_low_channel_forward)(d, p, x, w, bias, y, ws);
    /* A work item is a chunk of rows, or (one group, few chunks) one column block of one. */
    const int threads = worker_threads(min64(p->chunks * p->out_col_blocks, p->slots), p->work);
    const int64_t blocks = conv_blocks_for_threads(p->out_col_blocks, p->chunks, threads);
    const int64_t items = p->chunks * blocks;
    int stop = 0;
    #pragma omp parallel num_threads(threads)
    {
        char *slot = ws + (int64_t)THREAD_ID() * p->slot_bytes;
        T *col = (T *)slot;
        void *pack = slot + p->col_bytes;
        const T *w_packed = prepacked;
        if (w_packed == NULL && p->pack_w && !p->narrow)
            w_packed = FN(pack_weights)(d, p, w, 0, FN(shared_w_buffer)(p, ws));
        const int64_t group_packed = conv_packed_group(p->k, p->cog, gemm_nr(d->dtype));
        #pragma omp for schedule(dynamic, 1)
        for (int64_t item = 0; item < items; item++) {
            if (stop_requested(&stop))
                continue;
            int64_t m0, rows;
            conv_chunk_rows(p, item / blocks, &m0, &rows);
            if (p->thin) {
                FN(thin_forward_chunk)(d, p, x, w, bias, y, m0, rows, slot);
                FN(apply_epilogue)(d, y + m0 * d->c_out, rows, d->c_out, d->c_out);
                continue;
            }
            T *y_chunk = y + m0 * d->c_out;
            /* The item's output columns: all, or (one group, fewer chunks than
             * threads) a block; each such item then makes its own im2col. */
            int64_t j0, width;
            conv_column_block(d->c_out, blocks, item % blocks, &j0, &width);
            for (int64_t g = 0; g < d->groups; g++) {
                const T *a = x + m0 * d->c_in;   /* the direct case: pixels are rows */
                if (p->col_by_tap) {
                    FN(im2col_by_tap)(d, x, m0, rows, col);
                    a = col;
                } else if (!p->direct) {
                    FN(im2col)(d, p->cig, g, x, m0, rows, col);
                    a = col;
                }
                const int64_t lda = p->direct ? d->c_in : p->k;
                if (p->narrow) {
                    /* y_g^T[cog, rows] = w_g^T[cog, k] * col^T[k, rows], then transposed into y */
                    T *y_t = (T *)(slot + p->col_bytes - p->narrow_bytes);
                    const gemm_args args = {1, !p->col_by_tap, 0, p->cog, rows, p->k, d->c_out,
                                            p->col_by_tap ? rows : lda, rows};
                    FN(gemm)(&args, w + g * p->cog, a, y_t, pack);
                    /* transposed into y, with the bias added on the way (one pass) */
                    T *y_group = y_chunk + g * p->cog;
                    if (bias != NULL) {
                        const T *group_bias = bias + g * p->cog;
                        for (int64_t r = 0; r < rows; r++)
                            for (int64_t c = 0; c < p->cog; c++)
                                y_group[r * d->c_out + c] = y_t[c * rows + r] + group_bias[c];
                    } else {
                        for (int64_t r = 0; r < rows; r++)
                            for (int64_t c = 0; c < p->cog; c++)
                                y_group[r * d->c_out + c] = y_t[c * rows + r];
                    }
                    continue;
                }
                /* y[:, cols] = col * w_g[:, cols], cols the group's or the block's */
                const int64_t first = g * p->cog + j0;
                const gemm_args args = {0, 0, 0, rows, min64(width, p->cog), p->k, lda, d->c_out, d->c_out};
                /* (a caller's B only where the GEMM would pack too: the same bits either way) */
                if (w_packed != NULL && (p->pack_w || rows > GEMM_SMALL_M))
                    FN(gemm_packed_b)(&args, a, w_packed + g * group_packed, p->cog, j0, y_chunk + first, pack);
                else
                    FN(gemm)(&args, a, w + first, y_chunk + first, pack);
            }
            if (bias != NULL && !p->narrow)
                FN(add_bias)(y_chunk + j0, bias + j0, rows, width, d->c_out);
            FN(apply_epilogue)(d, y_chunk + j0, rows, width, d->c_out);
        }
    }
    return stop ? PYCNN_ERR_INTERRUPTED : PYCNN_OK;
}

pycnn_status FN(conv_backward_data)(const pycnn_conv2d_desc *d, const conv_plan *p,
                                    const T *dy, const T *w, T *dx, char *ws)
{
    if (p->direct)
        return FN(direct_backward_data)(d, p, dy, w, dx, ws);
    if (p->thin)
        return FN(thin_backward_data)(d, p, dy, w, dx, ws);
    /* col2im scatters into dx across a whole image; no two threads may write
     * one element at once, and the order in which an element gets its pieces
     * must follow from the shape alone (never the thread count).  Windows that
     * do not overlap (stride >= window, U-Net's 2x2 stride-2 up-convolution):
     * every chunk is a unit of its own.  Pieces of an image whose dx rows are
     * apart from the next piece but one's (conv_pieces_apart): every image's
     * even pieces, then its odd ones.  Else a thread owns whole images: a unit
     * is a chunk of images, or every piece of one.  The first two zero dx
     * first, the last each unit's images. */
    const int disjoint = d->stride_h > (d->kh - 1) * d->dilation_h && d->stride_w > (d->kw - 1) * d->dilation_w;
    const int alternate = !disjoint && p->pieces > 1 && conv_pieces_apart(d, p);
    const int64_t half = ceil_div64(p->pieces, 2);   /* (alternate) pieces of one parity per image */
    const int64_t units = disjoint || p->pieces == 1 ? p->chunks : alternate ? d->n * half : d->n;
    const int64_t pieces_per_unit = disjoint || alternate ? 1 : p->pieces;
    if (disjoint || alternate)
        memset(dx, 0, (size_t)(d->n * d->h * d->w * d->c_in) * sizeof(T));
    int stop = 0;
    #pragma omp parallel num_threads(worker_threads(min64(units, p->slots), p->work))
    {
        char *slot = ws + (int64_t)THREAD_ID() * p->slot_bytes;
        T *col = (T *)slot;
        void *pack = slot + p->col_bytes;
        const T *w_packed = p->pack_w ? FN(pack_weights)(d, p, w, 1, FN(shared_w_buffer)(p, ws)) : NULL;
        const int64_t group_packed = conv_packed_group(p->cog, p->k, gemm_nr(d->dtype));
        for (int parity = 0; parity < 1 + alternate; parity++) {
            #pragma omp for schedule(dynamic, 1)
            for (int64_t unit = 0; unit < units; unit++) {
                for (int64_t piece = 0; piece < pieces_per_unit; piece++) {
                    if (stop_requested(&stop))
                        break;
                    int64_t chunk = unit * pieces_per_unit + piece;
                    if (alternate) {   /* piece 2 j + parity of image unit / half */
                        const int64_t image_piece = 2 * (unit % half) + parity;
                        if (image_piece >= p->pieces)
                            continue;
                        chunk = unit / half * p->pieces + image_piece;
                    }
                    int64_t m0, rows;
                    conv_chunk_rows(p, chunk, &m0, &rows);
                    const T *dy_chunk = dy + m0 * d->c_out;
                    if (!disjoint && !alternate && piece == 0) {   /* zero the unit's images before the first scatter */
                        const int64_t image0 = m0 / p->rows_per_image;
                        const int64_t images = p->pieces == 1 ? rows / p->rows_per_image : 1;
                        memset(dx + image0 * d->h * d->w * d->c_in, 0,
                               (size_t)(images * d->h * d->w * d->c_in) * sizeof(T));
                    }
                    for (int64_t g = 0; g < d->groups; g++) {
                        /* dcol[rows, k] = dy_g[rows, cog] * w_g^T, w_g stored [k, cog] */
                        const gemm_args args = {0, 1, 0, rows, p->k, p->cog, d->c_out, d->c_out, p->k};
                        if (w_packed != NULL)
                            FN(gemm_packed_b)(&args, dy_chunk + g * p->cog, w_packed + g * group_packed, p->k, 0, col,
                                              pack);
                        else
                            FN(gemm)(&args, dy_chunk + g * p->cog, w + g * p->cog, col, pack);
                        FN(col2im)(d, p->cig, g, col, m0, rows, dx);
                    }
                }
            }
        }   /* each parity's loop ends at a barrier */
    }
    return stop ? PYCNN_ERR_INTERRUPTED : PYCNN_OK;
}

pycnn_status FN(conv_backward_filter)(const pycnn_conv2d_desc *d, const conv_plan *p,
                                      const T *x, const T *dy, T *dw, T *dbias, char *ws)
{
    /* (An empty batch takes the slot path below, which zeroes dw and dbias.) */
    if (p->low_channel && p->chunks > 0)
        return FN(conv_low_channel_backward_filter)(d, p, x, dy, dw, dbias, ws);
    if (p->filter_col_blocks > 1 && p->chunks > 0)
        return p->direct ? FN(direct_backward_filter)(d, p, x, dy, dw, dbias, ws)
                         : FN(shared_col_backward_filter)(d, p, x, dy, dw, dbias, ws);
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
            if (stop_requested(&stop))
                break;
            int64_t m0, rows;
            conv_chunk_rows(p, chunk, &m0, &rows);
            const T *dy_chunk = dy + m0 * d->c_out;
            if (p->thin) {
                if (first)
                    memset(dw_part, 0, (size_t)w_count * sizeof(T));
                FN(thin_backward_filter_chunk)(d, p, x, dy, dw_part, m0, rows, slot);
            }
            for (int64_t g = 0; g < d->groups && !p->thin; g++) {
                const T *a = x + m0 * d->c_in;   /* the direct case: pixels are rows */
                if (p->col_by_tap) {
                    FN(im2col_by_tap)(d, x, m0, rows, col);
                    a = col;
                } else if (!p->direct) {
                    FN(im2col)(d, p->cig, g, x, m0, rows, col);
                    a = col;
                }
                const int64_t lda = p->direct ? d->c_in : p->k;
                if (p->narrow) {
                    /* dw_g^T[cog, k] (+)= dy_g^T[cog, rows] * col[rows, k]; the slot's
                     * partial is kept transposed, [c_out, k], until the final sum. */
                    const gemm_args args = {1, p->col_by_tap, !first, p->cog, p->k, rows, d->c_out,
                                            p->col_by_tap ? rows : lda, p->k};
                    FN(gemm)(&args, dy_chunk + g * p->cog, a, dw_part + g * p->cog * p->k, pack);
                    continue;
                }
                /* dw_g[k, cog] (+)= col^T[k, rows] * dy_g[rows, cog] */
                const gemm_args args = {1, 0, !first, p->k, p->cog, rows, lda, d->c_out, d->c_out};
                FN(gemm)(&args, a, dy_chunk + g * p->cog, dw_part + g * p->cog, pack);
            }
            if (dbias != NULL)   /* a layer without bias skips the pass over dy */
                FN(add_row_sums)(dy_chunk, rows, d->c_out, d->c_out, db_part);
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
        if (p->narrow) {   /* partial [c_out, k] -> dw [k, c_out] */
            for (int64_t k = 0; k < p->k; k++)
                for (int64_t c = 0; c < d->c_out; c++)
                    dw[k * d->c_out + c] += dw_part[c * p->k + k];
        } else {
            for (int64_t i = 0; i < w_count; i++)
                dw[i] += dw_part[i];
        }
        if (dbias != NULL)
            for (int64_t c = 0; c < d->c_out; c++)
                dbias[c] += dw_part[w_count + c];
    }
    return PYCNN_OK;
}
