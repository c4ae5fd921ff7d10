/*
 * Winograd convolution forward, written once for float and double (included
 * by conv_winograd.c with T and FN(name) defined; the matrices are documented
 * there).  Per group of output channels: U = G g G^T for every (c_in, c_out)
 * pair of the group; then blocks of
 * tiles, each independent of the others (so any thread may run any block and
 * the result is the same): V = B^T d B for the block's tiles, one GEMM per
 * point a of the alpha x alpha grid, M[a] = V[a] * U[a], and Y = A^T M A plus
 * the bias into y, clipped at the bottom and right edges.
 *
 * The transforms work on runs of channels (NHWC keeps a pixel's channels
 * together), so every formula below is a loop over channels that vectorizes.
 */

/* A pixel outside the image reads these zeros instead of x. */
static const T FN(wino_zeros)[WINO_CHANNEL_CHUNK];

/* out_i = (B^T in)_i over `count` channels, F(2x2, 3x3). */
static inline void FN(input_1d_2)(const T *restrict d0, const T *restrict d1, const T *restrict d2,
                                  const T *restrict d3, T *restrict o0, T *restrict o1, T *restrict o2,
                                  T *restrict o3, int64_t count)
{
    for (int64_t c = 0; c < count; c++) {
        o0[c] = d0[c] - d2[c];
        o1[c] = d1[c] + d2[c];
        o2[c] = d2[c] - d1[c];
        o3[c] = d1[c] - d3[c];
    }
}

/* out_i = (B^T in)_i over `count` channels, F(4x4, 3x3); equal sub-sums shared.
 * (restrict parameters: gcc vectorizes these loops only when it knows the
 * twelve runs do not overlap.) */
static inline void FN(input_1d_4)(const T *restrict d0, const T *restrict d1, const T *restrict d2,
                                  const T *restrict d3, const T *restrict d4, const T *restrict d5,
                                  T *restrict o0, T *restrict o1, T *restrict o2, T *restrict o3,
                                  T *restrict o4, T *restrict o5, int64_t count)
{
    for (int64_t c = 0; c < count; c++) {
        const T a = d4[c] - d2[c], b = d3[c] - d1[c];
        const T e = d4[c] + d3[c], f = d1[c] + d2[c];
        o0[c] = ((T)4 * d0[c] - (T)5 * d2[c]) + d4[c];
        o1[c] = e - (T)4 * f;
        o2[c] = (d4[c] - d3[c]) + (T)4 * (d1[c] - d2[c]);
        o3[c] = a + (T)2 * b;
        o4[c] = a - (T)2 * b;
        o5[c] = ((T)4 * d1[c] - (T)5 * d3[c]) + d5[c];
    }
}

static inline void FN(input_1d)(int m, const T *const *in, T *const *out, int64_t count)
{
    if (m == 2)
        FN(input_1d_2)(in[0], in[1], in[2], in[3], out[0], out[1], out[2], out[3], count);
    else
        FN(input_1d_4)(in[0], in[1], in[2], in[3], in[4], in[5], out[0], out[1], out[2], out[3], out[4], out[5],
                       count);
}

/* out_i = (A^T in)_i over `count` channels. */
static inline void FN(output_1d_2)(const T *restrict m0, const T *restrict m1, const T *restrict m2,
                                   const T *restrict m3, T *restrict o0, T *restrict o1, int64_t count)
{
    for (int64_t c = 0; c < count; c++) {
        o0[c] = (m0[c] + m1[c]) + m2[c];
        o1[c] = (m1[c] - m2[c]) - m3[c];
    }
}

static inline void FN(output_1d_4)(const T *restrict m0, const T *restrict m1, const T *restrict m2,
                                   const T *restrict m3, const T *restrict m4, const T *restrict m5,
                                   T *restrict o0, T *restrict o1, T *restrict o2, T *restrict o3, int64_t count)
{
    for (int64_t c = 0; c < count; c++) {
        const T s12 = m1[c] + m2[c], d12 = m1[c] - m2[c];
        const T s34 = m3[c] + m4[c], d34 = m3[c] - m4[c];
        o0[c] = (m0[c] + s12) + s34;
        o1[c] = d12 + (T)2 * d34;
        o2[c] = s12 + (T)4 * s34;
        o3[c] = (d12 + (T)8 * d34) + m5[c];
    }
}

static inline void FN(output_1d)(int m, const T *const *in, T *const *out, int64_t count)
{
    if (m == 2)
        FN(output_1d_2)(in[0], in[1], in[2], in[3], out[0], out[1], count);
    else
        FN(output_1d_4)(in[0], in[1], in[2], in[3], in[4], in[5], out[0], out[1], out[2], out[3], count);
}

/* out_i = (G in)_i over `count` channels: F(2x2) (2 roundings per output) or
 * F(4x4) (4: two additions, the rounded -1/6 or 1/24, the product), with
 * (G in)_3,4 = (g0 + 4 g2 +- 2 g1) / 24 so the powers of two stay exact. */
static inline void FN(filter_1d_2)(const T *restrict g0, const T *restrict g1, const T *restrict g2,
                                   T *restrict o0, T *restrict o1, T *restrict o2, T *restrict o3, int64_t count)
{
    for (int64_t c = 0; c < count; c++) {
        const T s = g0[c] + g2[c];
        o0[c] = g0[c];
        o1[c] = (s + g1[c]) * (T)0.5;
        o2[c] = (s - g1[c]) * (T)0.5;
        o3[c] = g2[c];
    }
}

static inline void FN(filter_1d_4)(const T *restrict g0, const T *restrict g1, const T *restrict g2,
                                   T *restrict o0, T *restrict o1, T *restrict o2, T *restrict o3,
                                   T *restrict o4, T *restrict o5, int64_t count)
{
    const T sixth = (T)(-1.0 / 6), twenty_fourth = (T)(1.0 / 24);
    for (int64_t c = 0; c < count; c++) {
        const T s = g0[c] + g2[c], t = g0[c] + (T)4 * g2[c], g1x2 = (T)2 * g1[c];
        o0[c] = g0[c] * (T)0.25;
        o1[c] = (s + g1[c]) * sixth;
        o2[c] = (s - g1[c]) * sixth;
        o3[c] = (t + g1x2) * twenty_fourth;
        o4[c] = (t - g1x2) * twenty_fourth;
        o5[c] = g2[c];
    }
}

static inline void FN(filter_1d)(int m, const T *const *in, T *const *out, int64_t count)
{
    if (m == 2)
        FN(filter_1d_2)(in[0], in[1], in[2], out[0], out[1], out[2], out[3], count);
    else
        FN(filter_1d_4)(in[0], in[1], in[2], out[0], out[1], out[2], out[3], out[4], out[5], count);
}

/* U[a] = (G g G^T)[a] for g = w[:, :, ci, g0 + j], every input channel ci and
 * j < width (the output channels of one group), stored packed for the GEMM
 * (gemm_packed_b's layout, U[a] at u + a * c_in * u_cols).  Independent per
 * input channel, so threads split them. */
static void FN(transform_filters)(const pycnn_conv2d_desc *d, const wino_plan *p, const T *w,
                                  int64_t g0, int64_t width, T *u)
{
    const int alpha = p->alpha, m = p->m;
    const int64_t c_in = d->c_in, c_out = d->c_out, points = (int64_t)alpha * alpha;
    const int64_t nr = gemm_nr(d->dtype), packed_width = ceil_div64(width, nr) * nr;
    #pragma omp parallel for schedule(static) num_threads(worker_threads(c_in, p->work / max64(p->tiles, 1)))
    for (int64_t ci = 0; ci < c_in; ci++) {
        T left[18 * WINO_CHANNEL_CHUNK];   /* G g, [alpha][3][chunk] */
        T full[36 * WINO_CHANNEL_CHUNK];   /* G g G^T, [alpha][alpha][chunk] */
        const T *in[3];
        T *out[6];
        /* Row ci of every packed U[a]: its block of GEMM_KC rows, row within the block. */
        const int64_t p0 = ci - ci % GEMM_KC, kb = min64(GEMM_KC, c_in - p0);
        const int64_t row_at = p0 * packed_width + (ci - p0) * nr;
        for (int64_t co0 = 0; co0 < width; co0 += WINO_CHANNEL_CHUNK) {
            const int64_t count = min64(WINO_CHANNEL_CHUNK, width - co0);
            for (int l = 0; l < 3; l++) {      /* columns: left[:, l] = G g[:, l] */
                for (int k = 0; k < 3; k++)
                    in[k] = w + ((k * 3 + l) * c_in + ci) * c_out + g0 + co0;
                for (int i = 0; i < alpha; i++)
                    out[i] = left + (i * 3 + l) * WINO_CHANNEL_CHUNK;
                FN(filter_1d)(m, in, out, count);
            }
            for (int i = 0; i < alpha; i++) {  /* rows: full[i][:] = left[i, :] G^T */
                for (int l = 0; l < 3; l++)
                    in[l] = left + (i * 3 + l) * WINO_CHANNEL_CHUNK;
                for (int j = 0; j < alpha; j++)
                    out[j] = full + (i * alpha + j) * WINO_CHANNEL_CHUNK;
                FN(filter_1d)(m, in, out, count);
            }
            /* Into the NR-column panels (co0 is a multiple of 64, so of NR), zeros past width. */
            for (int64_t a = 0; a < points; a++) {
                T *row = u + a * c_in * p->u_cols + row_at;
                const T *src = full + a * WINO_CHANNEL_CHUNK;
                for (int64_t j = 0; j < count; j += nr) {
                    T *panel = row + (co0 + j) * kb;
                    const int64_t run = min64(nr, count - j);
                    for (int64_t c = 0; c < run; c++)
                        panel[c] = src[j + c];
                    for (int64_t c = run; c < nr; c++)
                        panel[c] = 0;
                }
            }
        }
    }
}

/* Tile index -> image and the top-left output pixel of the tile. */
static inline void FN(tile_origin)(const wino_plan *p, int64_t tile, int64_t *n, int64_t *oy0, int64_t *ox0)
{
    const int64_t per_image = p->tiles_h * p->tiles_w, in_image = tile % per_image;
    *n = tile / per_image;
    *oy0 = in_image / p->tiles_w * p->m;
    *ox0 = in_image % p->tiles_w * p->m;
}

/* V[a][t][:] = (B^T d B)[a] for tile t of the block (row t of each V[a], rows block_tiles apart). */
static void FN(input_tile)(const pycnn_conv2d_desc *d, const wino_plan *p, const T *x, int64_t tile,
                           int64_t t, T *v)
{
    const int alpha = p->alpha, m = p->m;
    int64_t n, oy0, ox0;
    FN(tile_origin)(p, tile, &n, &oy0, &ox0);
    const T *image = x + n * d->h * d->w * d->c_in;
    T tmp[36 * WINO_CHANNEL_CHUNK];   /* B^T d, [alpha][alpha][chunk] */
    const T *in[6];
    T *out[6];
    for (int64_t c0 = 0; c0 < d->c_in; c0 += WINO_CHANNEL_CHUNK) {
        const int64_t count = min64(WINO_CHANNEL_CHUNK, d->c_in - c0);
        for (int j = 0; j < alpha; j++) {   /* columns: tmp[:, j] = B^T d[:, j] */
            const int64_t ix = ox0 - d->pad_left + j;
            for (int i = 0; i < alpha; i++) {
                const int64_t iy = oy0 - d->pad_top + i;
                const int inside = iy >= 0 && iy < d->h && ix >= 0 && ix < d->w;
                in[i] = inside ? image + (iy * d->w + ix) * d->c_in + c0 : FN(wino_zeros);
                out[i] = tmp + (i * alpha + j) * WINO_CHANNEL_CHUNK;
            }
            FN(input_1d)(m, in, out, count);
        }
        for (int i = 0; i < alpha; i++) {   /* rows: V[i][:] = tmp[i, :] B */
            for (int j = 0; j < alpha; j++) {
                in[j] = tmp + (i * alpha + j) * WINO_CHANNEL_CHUNK;
                out[j] = v + ((int64_t)(i * alpha + j) * p->block_tiles + t) * d->c_in + c0;
            }
            FN(input_1d)(m, in, out, count);
        }
    }
}

/* y[tile] columns [co0, co0 + width) = A^T M A + bias, from row t of each M[a]
 * (rows block_tiles apart, `width` columns each); outputs past oh, ow are dropped. */
static void FN(output_tile)(const pycnn_conv2d_desc *d, const wino_plan *p, const T *mm, int64_t tile,
                            int64_t t, int64_t co0, int64_t width, const T *bias, T *y)
{
    const int alpha = p->alpha, m = p->m;
    int64_t n, oy0, ox0;
    FN(tile_origin)(p, tile, &n, &oy0, &ox0);
    const int64_t rows = min64(m, d->oh - oy0), cols = min64(m, d->ow - ox0);
    const activation_epilogue_fn epilogue =
        d->epilogue.mode == PYCNN_EPILOGUE_NONE ? NULL : activation_epilogue_for(d->dtype);
    T tmp[24 * WINO_CHANNEL_CHUNK];   /* A^T M, [m][alpha][chunk] */
    T dropped[4 * WINO_CHANNEL_CHUNK];
    const T *in[6];
    T *out[6];
    for (int64_t j0 = 0; j0 < width; j0 += WINO_CHANNEL_CHUNK) {
        const int64_t count = min64(WINO_CHANNEL_CHUNK, width - j0);
        for (int k = 0; k < alpha; k++) {   /* columns: tmp[:, k] = A^T M[:, k] */
            for (int a = 0; a < alpha; a++)
                in[a] = mm + ((int64_t)(a * alpha + k) * p->block_tiles + t) * width + j0;
            for (int i = 0; i < m; i++)
                out[i] = tmp + (i * alpha + k) * WINO_CHANNEL_CHUNK;
            FN(output_1d)(m, in, out, count);
        }
        for (int i = 0; i < m; i++) {       /* rows: Y[i, :] = tmp[i, :] A */
            for (int k = 0; k < alpha; k++)
                in[k] = tmp + (i * alpha + k) * WINO_CHANNEL_CHUNK;
            for (int j = 0; j < m; j++)
                out[j] = i < rows && j < cols
                    ? y + ((n * d->oh + oy0 + i) * d->ow + ox0 + j) * d->c_out + co0 + j0
                    : dropped + j * WINO_CHANNEL_CHUNK;
            FN(output_1d)(m, in, out, count);
            if (bias != NULL && i < rows)
                for (int j = 0; j < cols; j++) {
                    T *dst = out[j];
                    const T *b = bias + co0 + j0;
                    for (int64_t c = 0; c < count; c++)
                        dst[c] += b[c];
                }
            if (epilogue != NULL && i < rows)   /* the fused activation, as conv2d's other paths */
                for (int j = 0; j < cols; j++)
                    epilogue(&d->epilogue, out[j], 1, count, count);
        }
    }
}

/* One work item: the tiles of `block`, output columns [co0, co0 + width), which
 * are columns [co0 - g0, ...) of the group's U (group_width columns). */
static void FN(run_block)(const pycnn_conv2d_desc *d, const wino_plan *p, const T *x, const T *u,
                          int64_t g0, int64_t group_width, const T *bias, T *y, int64_t block,
                          int64_t co0, int64_t width, char *slot)
{
    T *v = (T *)slot, *mm = (T *)(slot + p->v_bytes);
    void *pack = slot + p->v_bytes + p->m_bytes;
    const int64_t first = block * p->block_tiles, count = min64(p->block_tiles, p->tiles - first);
    for (int64_t t = 0; t < count; t++)
        FN(input_tile)(d, p, x, first + t, t, v);
    const int64_t points = (int64_t)p->alpha * p->alpha;
    for (int64_t a = 0; a < points; a++) {
        /* M[a] (count x width) = V[a] (count x c_in) * U[a][:, co0 - g0 : co0 - g0 + width] */
        const gemm_args args = {0, 0, 0, count, width, d->c_in, d->c_in, group_width, width};
        FN(gemm_packed_b)(&args, v + a * p->block_tiles * d->c_in, u + a * d->c_in * p->u_cols, group_width,
                          co0 - g0, mm + a * p->block_tiles * width, pack);
    }
    for (int64_t t = 0; t < count; t++)
        FN(output_tile)(d, p, mm, first + t, t, co0, width, bias, y);
}

/* Every group's U, one after the other (p->u_bytes each), for wino_forward's u_all. */
void FN(wino_transform_all)(const pycnn_conv2d_desc *d, const wino_plan *p, const T *w, T *u_all)
{
    for (int64_t g0 = 0, group = 0; g0 < d->c_out; g0 += p->group_cols, group++)
        FN(transform_filters)(d, p, w, g0, min64(p->group_cols, d->c_out - g0),
                              u_all + group * (p->u_bytes / (int64_t)sizeof(T)));
}

/* u_all: every group's U made beforehand (wino_transform_all), or NULL to
 * transform each group into the workspace. */
pycnn_status FN(wino_forward)(const pycnn_conv2d_desc *d, const wino_plan *p, const T *x, const T *w,
                              const T *u_all, const T *bias, T *y, char *ws)
{
    T *u_work = (T *)ws;
    char *slots = ws + p->u_bytes;
    /* A work item is a block of tiles, or (few blocks) one column block of one. */
    const int threads = worker_threads(min64(p->blocks * p->col_blocks, p->slots), p->work);
    const int64_t cols = conv_blocks_for_threads(p->col_blocks, p->blocks, threads);
    const int64_t items = p->blocks * cols;
    int stop = 0;
    for (int64_t g0 = 0, group = 0; g0 < d->c_out && !stop; g0 += p->group_cols, group++) {
        const int64_t group_width = min64(p->group_cols, d->c_out - g0);
        const T *u = u_all != NULL ? u_all + group * (p->u_bytes / (int64_t)sizeof(T)) : u_work;
        if (u_all == NULL)
            FN(transform_filters)(d, p, w, g0, group_width, u_work);
        #pragma omp parallel num_threads(threads)
        {
            char *slot = slots + (int64_t)THREAD_ID() * p->slot_bytes;
            #pragma omp for schedule(dynamic, 1)
            for (int64_t item = 0; item < items; item++) {
                if (stop_requested(&stop))
                    continue;
                int64_t j0, width;
                conv_column_block(group_width, cols, item % cols, &j0, &width);
                if (width > 0)
                    FN(run_block)(d, p, x, u, g0, group_width, bias, y, item / cols, g0 + j0, width, slot);
            }
        }
    }
    return stop ? PYCNN_ERR_INTERRUPTED : PYCNN_OK;
}
