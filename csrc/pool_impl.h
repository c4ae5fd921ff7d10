/* Pooling passes, written once for float and double (included by pool.c,
 * which defines T, TI (a signed integer as wide as T), POOL_VEC_BYTES,
 * POOL_TARGET, POOL_SPECIALIZE (1 for the constant-shape copies in
 * pool_rows) and FN). */

/* Max pooling works on explicit vectors of LANES channels (GCC/Clang vector
 * extensions): the per-window state stays in registers, where compiler
 * vectorization of channel loops kept it in stack arrays (a store-to-load
 * chain per cell, which dominated narrow layers such as LeNet's 6 channels). */
typedef T FN(vec) __attribute__((vector_size(POOL_VEC_BYTES)));
typedef TI FN(mask) __attribute__((vector_size(POOL_VEC_BYTES)));
typedef T FN(half) __attribute__((vector_size(POOL_VEC_BYTES / 2)));
#define LANES ((int64_t)(POOL_VEC_BYTES / sizeof(T)))
/* Stored max-pool indices, one int32 per lane of FN(vec). */
typedef int32_t FN(ivec) __attribute__((vector_size(POOL_VEC_BYTES / sizeof(T) * 4)));
typedef int32_t FN(ihalf) __attribute__((vector_size(POOL_VEC_BYTES / sizeof(T) * 2)));
typedef uint32_t FN(uvec) __attribute__((vector_size(POOL_VEC_BYTES / sizeof(T) * 4)));
/* Channels per group of vectors a window is processed in. */
#define GROUP (POOL_GROUP_VECS * LANES)

/* A group of gn channels is covered by vectors at offsets min(j * LANES,
 * gn - LANES): whole vectors, the last one overlapping its neighbour when
 * LANES does not divide gn (overlapping lanes compute the same values).  A
 * group narrower than one vector but at least half as wide (6 channels in 8
 * lanes) is two overlapping half vectors; a narrower one is loaded lane by
 * lane, the others left 0. */
POOL_INLINE int64_t FN(offset)(int64_t j, int64_t gn)
{
    return gn < LANES ? 0 : min64(j * LANES, gn - LANES);
}

#ifdef POOL_JOIN
#define HALVES_FIT(gn) ((gn) >= LANES / 2)
#define LOAD_HALVES(H, v, p, gn) do { \
        H low_, high_; \
        memcpy(&low_, (p), sizeof low_); \
        memcpy(&high_, (p) + (gn) - LANES / 2, sizeof high_); \
        (v) = __builtin_shufflevector(low_, high_, POOL_JOIN); \
    } while (0)
#define STORE_HALVES(H, p, v, gn) do { \
        const H low_ = __builtin_shufflevector((v), (v), POOL_LOW); \
        const H high_ = __builtin_shufflevector((v), (v), POOL_HIGH); \
        memcpy((p), &low_, sizeof low_); \
        memcpy((p) + (gn) - LANES / 2, &high_, sizeof high_); \
    } while (0)
#else
#define HALVES_FIT(gn) 0
#define LOAD_HALVES(H, v, p, gn) ((void)0)
#define STORE_HALVES(H, p, v, gn) ((void)0)
#endif

/* Load and store of one vector of a group of gn channels (see offset), for
 * elements E in vectors V with halves H: values (T) and indices (int32). */
#define LANE_IO(suffix, E, V, H) \
    POOL_INLINE V FN(load##suffix)(const E *p, int64_t gn) \
    { \
        V v = {0}; \
        if (gn >= LANES) \
            memcpy(&v, p, sizeof v); \
        else if (HALVES_FIT(gn)) \
            LOAD_HALVES(H, v, p, gn); \
        else \
            for (int64_t i = 0; i < gn && i < LANES; i++) \
                v[i] = p[i]; \
        return v; \
    } \
    POOL_INLINE void FN(store##suffix)(E *p, V v, int64_t gn) \
    { \
        if (gn >= LANES) \
            memcpy(p, &v, sizeof v); \
        else if (HALVES_FIT(gn)) \
            STORE_HALVES(H, p, v, gn); \
        else \
            for (int64_t i = 0; i < gn && i < LANES; i++) \
                p[i] = v[i]; \
    }
LANE_IO(, T, FN(vec), FN(half))
LANE_IO(_index, int32_t, FN(ivec), FN(ihalf))
#undef LANE_IO
#undef LOAD_HALVES
#undef STORE_HALVES

/* Per lane: m ? a : b (m lanes are all ones or all zeros). */
POOL_INLINE FN(vec) FN(select)(FN(mask) m, FN(vec) a, FN(vec) b)
{
    return (FN(vec))(((FN(mask))a & m) | ((FN(mask))b & ~m));
}

POOL_INLINE FN(ivec) FN(select_index)(FN(ivec) m, FN(ivec) a, FN(ivec) b)
{
    return (a & m) | (b & ~m);
}

POOL_INLINE FN(ivec) FN(broadcast_index)(int64_t position)
{
    const FN(ivec) zero = {0};
    return zero + (int32_t)position;
}

/* The lanes of a narrow group (loaded lane by lane) beyond its gn channels, as a mask. */
POOL_INLINE FN(ivec) FN(unused_lanes)(int64_t gn)
{
    FN(ivec) m = {0};
    if (gn < LANES && !HALVES_FIT(gn))
        for (int64_t i = gn; i < LANES; i++)
            m[i] = -1;
    return m;
}

/* best = the window's value per lane under MAX_TAKES, for the group of gn
 * channels at corner (nv vectors).  With `track` (a constant in each copy),
 * arg = the position in the image plane of the cell each lane's best came
 * from (the last cell MAX_TAKES took): corner_pos is the corner's, w the
 * plane's width. */
POOL_INLINE void FN(max_group)(const T *corner, int64_t row_stride, int64_t C, int64_t rows, int64_t cols,
                               int64_t gn, FN(vec) best[POOL_GROUP_VECS], int track, int64_t corner_pos,
                               int64_t w, FN(ivec) arg[POOL_GROUP_VECS])
{
    const int64_t nv = (gn + LANES - 1) / LANES;
    for (int64_t j = 0; j < nv; j++) {
        best[j] = FN(load)(corner + FN(offset)(j, gn), gn);
        if (track)
            arg[j] = FN(broadcast_index)(0);
    }
    /* Positions relative to the corner (the same for every window: hoisted out of
     * the window loop), the corner added once at the end. */
    for (int64_t ky = 0; ky < rows; ky++)
        for (int64_t kx = 0; kx < cols; kx++) {
            if (ky == 0 && kx == 0)
                continue;
            const T *cell = corner + ky * row_stride + kx * C;
            const FN(ivec) position = FN(broadcast_index)(ky * w + kx);
            for (int64_t j = 0; j < nv; j++) {
                const FN(vec) v = FN(load)(cell + FN(offset)(j, gn), gn);
                const FN(mask) takes = MAX_TAKES(best[j], v);
                best[j] = FN(select)(takes, v, best[j]);
                if (track)
                    arg[j] = FN(select_index)(__builtin_convertvector(takes, FN(ivec)), position, arg[j]);
            }
        }
    if (track)
        for (int64_t j = 0; j < nv; j++)
            arg[j] += FN(broadcast_index)(corner_pos);
}

/* y of one group; with out_index (not NULL), also its cells' positions. */
POOL_INLINE void FN(max_forward_group)(const T *corner, T *out, int32_t *out_index, int64_t row_stride, int64_t C,
                                       int64_t rows, int64_t cols, int64_t gn, int64_t corner_pos, int64_t w)
{
    FN(vec) best[POOL_GROUP_VECS];
    FN(ivec) arg[POOL_GROUP_VECS];
    FN(max_group)(corner, row_stride, C, rows, cols, gn, best, out_index != NULL, corner_pos, w, arg);
    for (int64_t j = 0; j * LANES < gn; j++) {
        FN(store)(out + FN(offset)(j, gn), best[j], gn);
        if (out_index != NULL)
            FN(store_index)(out_index + FN(offset)(j, gn), arg[j], gn);
    }
}

/* Max backward of one group: the first pass finds the window's value under
 * MAX_TAKES (the first NaN if there is one, else the maximum); the second
 * walks the cells in the same order and hands g to the first cell equal to it
 * (the first NaN when it is NaN; no cell is NaN when it is not).  Only window
 * rows [ky_lo, ky_hi) are written (a band of dx rows, see pool_rows). */
POOL_INLINE void FN(max_backward_group)(const T *x_corner, const T *dy, T *dx_corner, int64_t row_stride,
                                        int64_t C, int64_t rows, int64_t cols, int64_t gn, int accumulate,
                                        int64_t ky_lo, int64_t ky_hi)
{
    const FN(vec) zero = {0};
    const int64_t nv = (gn + LANES - 1) / LANES;
    FN(vec) best[POOL_GROUP_VECS], left[POOL_GROUP_VECS];   /* left: gradient not yet handed out */
    FN(max_group)(x_corner, row_stride, C, rows, cols, gn, best, 0, 0, 0, NULL);
    for (int64_t j = 0; j < nv; j++)
        left[j] = zero + FN(load)(dy + FN(offset)(j, gn), gn);
    for (int64_t ky = 0; ky < rows; ky++)
        for (int64_t kx = 0; kx < cols; kx++) {
            const T *cell = x_corner + ky * row_stride + kx * C;
            T *out = dx_corner + ky * row_stride + kx * C;
            FN(vec) share[POOL_GROUP_VECS] = {{0}};
            for (int64_t j = 0; j < nv; j++) {
                const FN(vec) v = FN(load)(cell + FN(offset)(j, gn), gn);
                const FN(mask) hit = (v == best[j]) | (v != v);
                share[j] = FN(select)(hit, left[j], zero);
                left[j] = FN(select)(hit, zero, left[j]);
            }
            if (ky < ky_lo || ky >= ky_hi)
                continue;
            /* All loads before all stores: overlapping vectors must not add twice. */
            if (accumulate)
                for (int64_t j = 0; j < nv; j++)
                    share[j] += FN(load)(out + FN(offset)(j, gn), gn);
            for (int64_t j = 0; j < nv; j++)
                FN(store)(out + FN(offset)(j, gn), share[j], gn);
        }
}

/* Max backward of one group from stored positions: each lane's g goes to the
 * window cell whose position equals its index (corner_pos at the corner, w the
 * plane's width), every other cell gets 0, cell by cell as in
 * max_backward_group, so dx gets the same sums in the same order.  Every cell
 * is compared, only rows [ky_lo, ky_hi) written; lanes whose index matched no
 * cell (a forged index) are or-ed into *missing. */
POOL_INLINE void FN(max_backward_indices_group)(const int32_t *index, const T *dy, T *dx_corner,
                                                int64_t row_stride, int64_t C, int64_t rows, int64_t cols,
                                                int64_t gn, int accumulate, int64_t ky_lo, int64_t ky_hi,
                                                int64_t corner_pos, int64_t w, FN(ivec) *missing)
{
    const FN(vec) zero = {0};
    const int64_t nv = (gn + LANES - 1) / LANES;
    FN(vec) g[POOL_GROUP_VECS];
    FN(ivec) at[POOL_GROUP_VECS], found[POOL_GROUP_VECS];
    for (int64_t j = 0; j < nv; j++) {
        g[j] = zero + FN(load)(dy + FN(offset)(j, gn), gn);
        /* Relative to the corner, as unsigned (wrapping) arithmetic: equal to a
         * cell's offset exactly when the index is that cell's position. */
        at[j] = (FN(ivec))((FN(uvec))FN(load_index)(index + FN(offset)(j, gn), gn) -
                           (FN(uvec))FN(broadcast_index)(corner_pos));
        found[j] = FN(unused_lanes)(gn);
    }
    for (int64_t ky = 0; ky < rows; ky++)
        for (int64_t kx = 0; kx < cols; kx++) {
            const FN(ivec) position = FN(broadcast_index)(ky * w + kx);
            T *out = dx_corner + ky * row_stride + kx * C;
            FN(vec) share[POOL_GROUP_VECS] = {{0}};
            for (int64_t j = 0; j < nv; j++) {
                const FN(ivec) hit = at[j] == position;
                found[j] |= hit;
                share[j] = FN(select)(__builtin_convertvector(hit, FN(mask)), g[j], zero);
            }
            if (ky < ky_lo || ky >= ky_hi)
                continue;
            /* All loads before all stores: overlapping vectors must not add twice. */
            if (accumulate)
                for (int64_t j = 0; j < nv; j++)
                    share[j] += FN(load)(out + FN(offset)(j, gn), gn);
            for (int64_t j = 0; j < nv; j++)
                FN(store)(out + FN(offset)(j, gn), share[j], gn);
        }
    for (int64_t j = 0; j < nv; j++)
        *missing |= ~found[j];
}

/* One window's channel range [c0, c0 + cn) of one image: y0..y1 and x0..x1 are
 * the window clipped to the image.  Loops run over the window's cells in
 * row-major order with the channel loop innermost, over the contiguous
 * channels.  Max also writes the cells' positions to out_index unless it is
 * NULL (corner_pos: the corner's position in the image plane). */
POOL_INLINE void FN(forward_window)(const pycnn_pool2d_desc *d, const T *restrict corner, T *restrict out,
                                    int32_t *restrict out_index, int64_t rows, int64_t cols, int64_t cn,
                                    int64_t corner_pos)
{
    const int64_t C = d->c, row_stride = d->w * d->c;
    if (d->mode == PYCNN_POOL_AVG) {
        const T inv_cells = (T)1 / (T)(rows * cols);
        for (int64_t c = 0; c < cn; c++)
            out[c] = 0;
        for (int64_t ky = 0; ky < rows; ky++)
            for (int64_t kx = 0; kx < cols; kx++) {
                const T *cell = corner + ky * row_stride + kx * C;
                for (int64_t c = 0; c < cn; c++)
                    out[c] += cell[c];
            }
        for (int64_t c = 0; c < cn; c++)
            out[c] *= inv_cells;
        return;
    }
    /* Separate calls with and without indices: a constant NULL drops the tracking. */
    int64_t g0 = 0;
    for (; g0 + GROUP <= cn; g0 += GROUP)
        if (out_index != NULL)
            FN(max_forward_group)(corner + g0, out + g0, out_index + g0, row_stride, C, rows, cols, GROUP,
                                  corner_pos, d->w);
        else
            FN(max_forward_group)(corner + g0, out + g0, NULL, row_stride, C, rows, cols, GROUP, 0, 0);
    if (g0 < cn) {
        if (out_index != NULL)
            FN(max_forward_group)(corner + g0, out + g0, out_index + g0, row_stride, C, rows, cols, cn - g0,
                                  corner_pos, d->w);
        else
            FN(max_forward_group)(corner + g0, out + g0, NULL, row_stride, C, rows, cols, cn - g0, 0, 0);
    }
}

/* The gradient of one window, channels [0, cn) at dy: max sends it to the
 * window's first maximal cell, average spreads it evenly.  Every cell of the
 * window is written: `accumulate` adds into dx (overlapping windows),
 * otherwise dx is stored, as 0 + g so that a -0 gradient lands as +0 exactly
 * as when added to a zeroed dx.  Only window rows [ky_lo, ky_hi) are written.
 * Max works a group of channels at a time, full groups with a constant width,
 * from the stored positions at index when it is not NULL (x_corner unused;
 * see max_backward_indices_group), else from x.  */
POOL_INLINE void FN(backward_window)(const pycnn_pool2d_desc *d, const T *restrict x_corner,
                                     const int32_t *restrict index, const T *restrict dy, T *restrict dx_corner,
                                     int64_t rows, int64_t cols, int64_t cn, int accumulate, int64_t ky_lo,
                                     int64_t ky_hi, int64_t corner_pos, FN(ivec) *missing)
{
    const int64_t C = d->c, row_stride = d->w * d->c;
    if (d->mode == PYCNN_POOL_AVG) {
        const T inv_cells = (T)1 / (T)(rows * cols);
        for (int64_t ky = ky_lo; ky < ky_hi; ky++)
            for (int64_t kx = 0; kx < cols; kx++) {
                T *out = dx_corner + ky * row_stride + kx * C;
                if (accumulate)
                    for (int64_t c = 0; c < cn; c++)
                        out[c] += dy[c] * inv_cells;
                else
                    for (int64_t c = 0; c < cn; c++)
                        out[c] = (T)0 + dy[c] * inv_cells;
            }
        return;
    }
    /* Full groups with a constant width, then the rest. */
#define MAX_BACKWARD_GROUP(g0, gn) \
    (index != NULL ? FN(max_backward_indices_group)(index + (g0), dy + (g0), dx_corner + (g0), row_stride, C, \
                                                    rows, cols, gn, accumulate, ky_lo, ky_hi, corner_pos, d->w, \
                                                    missing) \
                   : FN(max_backward_group)(x_corner + (g0), dy + (g0), dx_corner + (g0), row_stride, C, rows, \
                                            cols, gn, accumulate, ky_lo, ky_hi))
    int64_t g0 = 0;
    for (; g0 + GROUP <= cn; g0 += GROUP)
        MAX_BACKWARD_GROUP(g0, GROUP);
    if (g0 < cn)
        MAX_BACKWARD_GROUP(g0, cn - g0);
#undef MAX_BACKWARD_GROUP
}

/* Zeroes dx cells [ix0, ix1) of rows [iy0, iy1), channels [c0, c0 + cn). */
static POOL_TARGET void FN(zero_cells)(const pycnn_pool2d_desc *d, T *dx_image, int64_t iy0, int64_t iy1,
                                       int64_t ix0, int64_t ix1, int64_t c0, int64_t cn)
{
    const int64_t C = d->c;
    for (int64_t iy = iy0; iy < iy1; iy++) {
        T *row = dx_image + iy * d->w * C;
        if (cn == C)
            memset(row + ix0 * C, 0, (size_t)((ix1 - ix0) * C) * sizeof(T));
        else
            for (int64_t ix = ix0; ix < ix1; ix++)
                memset(row + ix * C + c0, 0, (size_t)cn * sizeof(T));
    }
}

/* Output row oy of one image, channels [c0, c0 + cn): y0..y1 are its window
 * rows clipped to the image.  Backward without overlap also zeroes the cells
 * of rows y0..y1 that no window covers; with overlap, only window rows
 * [ky_lo, ky_hi) are written.  `window` is 0, or the (square) window size as a
 * constant for the copies that unroll whole windows.  indices (the image's,
 * shaped like y, or NULL): written by max forward, read by backward instead of
 * x (image is then unused), forged ones or-ed into *missing. */
POOL_INLINE void FN(pool_row)(const pycnn_pool2d_desc *d, const T *image, const T *dy_image, T *out_image,
                              int32_t *indices, int64_t oy, int64_t y0, int64_t y1, int64_t c0, int64_t cn,
                              int64_t window, int backward, int accumulate, int64_t ky_lo, int64_t ky_hi,
                              FN(ivec) *missing)
{
    /* A local copy: stores through out_image cannot change it, so nothing is reloaded per window. */
    const pycnn_pool2d_desc s = *d;
    const int64_t C = s.c, rows = y1 - y0;
    int64_t covered_x = 0;   /* backward, no overlap: columns [0, covered_x) of the band are written */
    for (int64_t ox = 0; ox < s.ow; ox++) {
        const int64_t x0 = max64(ox * s.stride_w - s.pad_left, 0);
        const int64_t x1 = min64(ox * s.stride_w - s.pad_left + s.kw, s.w);
        const int64_t corner_pos = y0 * s.w + x0, corner = corner_pos * C + c0;
        const int64_t cell_out = (oy * s.ow + ox) * C + c0;
        int32_t *index = indices == NULL ? NULL : indices + cell_out;
        const int whole = window != 0 && rows == window && x1 - x0 == window;
        if (!backward) {
            if (whole)
                FN(forward_window)(&s, image + corner, out_image + cell_out, index, window, window, cn, corner_pos);
            else
                FN(forward_window)(&s, image + corner, out_image + cell_out, index, rows, x1 - x0, cn, corner_pos);
            continue;
        }
        if (!accumulate) {
            if (covered_x < x0)
                FN(zero_cells)(d, out_image, y0, y1, covered_x, x0, c0, cn);
            covered_x = x1;
        }
        const T *x_corner = index == NULL ? image + corner : NULL;
        if (whole)
            FN(backward_window)(&s, x_corner, index, dy_image + cell_out, out_image + corner, window, window, cn,
                                accumulate, ky_lo, ky_hi, corner_pos, missing);
        else
            FN(backward_window)(&s, x_corner, index, dy_image + cell_out, out_image + corner, rows, x1 - x0, cn,
                                accumulate, ky_lo, ky_hi, corner_pos, missing);
    }
    if (backward && !accumulate && covered_x < s.w)
        FN(zero_cells)(d, out_image, y0, y1, covered_x, s.w, c0, cn);
}

/* Output rows [oy0, oy1) of one image, channels [c0, c0 + cn).  Forward
 * writes out = y.  Backward writes out = dx rows [first_row, end_row), the
 * rows this band owns (see band_first_row): without overlap, each element
 * once, cells in no window as zeros; with overlapping windows, the output rows
 * just before the band reach into its rows too, so they are visited as well,
 * each window adding only into owned rows, into rows zeroed just before their
 * first window.  Every dx element thus gets its gradients in (oy, ox) order
 * whatever the bands, so the sums do not depend on the split.  indices: see
 * pool_row; returns 1 when backward found a forged index, else 0.
 * `backward` and `accumulate` (windows overlap) are constants in each copy
 * (see pool_rows). */
POOL_INLINE int FN(pool_rows_pass)(const pycnn_pool2d_desc *d, const T *image, const T *dy_image, T *out_image,
                                   int32_t *indices, int64_t oy0, int64_t oy1, int64_t c0, int64_t cn,
                                   int backward, int accumulate, int *stop)
{
    FN(ivec) missing = {0};
#if POOL_SPECIALIZE
    const int64_t window = d->kh == d->kw && (d->kh == 2 || d->kh == 3) ? d->kh : 0;
#endif
    const int64_t first_row = band_first_row(d, oy0), end_row = band_first_row(d, oy1);
    int64_t oy_start = oy0;
    while (backward && accumulate && oy_start > 0 &&
           (oy_start - 1) * d->stride_h - d->pad_top + d->kh > first_row)
        oy_start--;
    int64_t ready_rows = first_row;   /* backward: owned dx rows before it are written or zeroed */
    /* Poll between rows too (one large image can take seconds), but only every
     * POOL_POLL_CELLS window cells: a clock read per small row costs more than the row. */
    const int64_t row_cells = d->ow * d->kh * d->kw * cn;
    int64_t unpolled = 0;
    for (int64_t oy = oy_start; oy < oy1; oy++) {
        if (unpolled >= POOL_POLL_CELLS) {
            if (stop_requested(stop))
                return 0;
            unpolled = 0;
        }
        unpolled += row_cells;
        const int64_t y0 = max64(oy * d->stride_h - d->pad_top, 0);
        const int64_t y1 = min64(oy * d->stride_h - d->pad_top + d->kh, d->h);
        int64_t ky_lo = 0, ky_hi = y1 - y0;
        if (backward) {
            if (accumulate) {
                ky_lo = max64(first_row - y0, 0);
                ky_hi = min64(end_row, y1) - y0;
            }
            /* Rows this window writes: stored whole without overlap, added into with it. */
            const int64_t zero_to = accumulate ? y0 + ky_hi : y0;
            if (ready_rows < zero_to)
                FN(zero_cells)(d, out_image, ready_rows, zero_to, 0, d->w, c0, cn);
            ready_rows = max64(ready_rows, y0 + ky_hi);
            if (ky_lo >= ky_hi)
                continue;
        }
        /* Narrow channel counts (grayscale, RGB, LeNet's 6 and 16), with 2x2
         * and 3x3 windows, get copies with them as constants: the loops over
         * channels and cells unroll into a few vector operations with no
         * per-window loop overhead (which wide layers amortize). */
#define POOL_ROW_K(channels, k) \
    FN(pool_row)(d, image, dy_image, out_image, indices, oy, y0, y1, c0, channels, k, backward, accumulate, \
                 ky_lo, ky_hi, &missing)
#define POOL_ROW(channels) \
    (window == 2 ? POOL_ROW_K(channels, 2) : window == 3 ? POOL_ROW_K(channels, 3) : POOL_ROW_K(channels, 0))
#if POOL_SPECIALIZE
        switch (cn) {
        case 1: POOL_ROW(1); break;
        case 3: POOL_ROW(3); break;
        case 6: POOL_ROW(6); break;
        case 16: POOL_ROW(16); break;
        default: POOL_ROW_K(cn, 0); break;
        }
#else
        POOL_ROW_K(cn, 0);
#endif
#undef POOL_ROW
#undef POOL_ROW_K
#undef POOL_ROW
    }
    if (backward && ready_rows < end_row)
        FN(zero_cells)(d, out_image, ready_rows, end_row, 0, d->w, c0, cn);
    int forged = 0;
    for (int64_t i = 0; i < LANES; i++)
        forged |= missing[i] != 0;
    return forged;
}

/* pool_rows_pass with its pass as constants: the backward's per-cell choice
 * between storing and adding is not a branch. */
static POOL_TARGET int FN(pool_rows)(const pycnn_pool2d_desc *d, const T *image, const T *dy_image,
                                     T *out_image, int32_t *indices, int64_t oy0, int64_t oy1, int64_t c0,
                                     int64_t cn, int backward, int *stop)
{
    if (!backward)
        return FN(pool_rows_pass)(d, image, dy_image, out_image, indices, oy0, oy1, c0, cn, 0, 0, stop);
    if (windows_overlap(d))
        return FN(pool_rows_pass)(d, image, dy_image, out_image, indices, oy0, oy1, c0, cn, 1, 1, stop);
    return FN(pool_rows_pass)(d, image, dy_image, out_image, indices, oy0, oy1, c0, cn, 1, 0, stop);
}

/* Forward (backward = 0): out = y, and the max cells' positions when indices
 * is not NULL.  Backward: out = dx, from indices instead of x when indices is
 * not NULL (x unused).  Work items are (image, band of output rows); every
 * output and every dx element is computed the same way whatever the bands (see
 * pool_rows), so results do not depend on the thread count. */
static POOL_TARGET pycnn_status FN(pool_run)(const pycnn_pool2d_desc *d, const T *x, const T *dy, T *out,
                                             int32_t *indices, int backward)
{
    const int64_t in_size = d->h * d->w * d->c, out_size = d->oh * d->ow * d->c;
    const int64_t bands = image_bands(d), items = d->n * bands;
    int stop = 0, forged = 0;
    #pragma omp parallel for schedule(static) num_threads(worker_threads(items, d->n * in_size))
    for (int64_t item = 0; item < items; item++) {
        if (stop_requested(&stop))
            continue;
        const int64_t n = item / bands, band = item % bands;
        const int64_t oy0 = band * d->oh / bands, oy1 = (band + 1) * d->oh / bands;
        if (oy0 >= oy1)
            continue;
        const T *image = x == NULL ? NULL : x + n * in_size;
        int32_t *image_indices = indices == NULL ? NULL : indices + n * out_size;
        if (backward) {
            if (FN(pool_rows)(d, image, dy + n * out_size, out + n * in_size, image_indices, oy0, oy1, 0, d->c, 1,
                              &stop))
                __atomic_store_n(&forged, 1, __ATOMIC_RELAXED);
        } else {
            FN(pool_rows)(d, image, NULL, out + n * out_size, image_indices, oy0, oy1, 0, d->c, 0, &stop);
        }
    }
    if (stop)
        return PYCNN_ERR_INTERRUPTED;
    return forged ? PYCNN_ERR_BAD_INDEX : PYCNN_OK;
}

#undef LANES
#undef GROUP
#undef HALVES_FIT
