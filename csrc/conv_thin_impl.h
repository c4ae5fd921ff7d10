/*
 * Direct kernels for thin groups (few channels per group, depthwise included),
 * written once for float and double and compiled once per ISA: conv.c includes
 * this with T, FN(name), THIN_TARGET (a target attribute or nothing),
 * THIN_VEC_BYTES (the vector width), THIN_VECS (vectors of channels per
 * block) and THIN_PIXELS (output pixels per block, a power of two) defined.
 * A block's sums stay in registers across the taps.  How pixels are blocked
 * depends only on the shape and the chunk, so results never depend on the
 * thread count.
 *
 * Channel expansion: xe[pixel][q][co] = x[pixel][(co / cog) * cig + q] puts the
 * q-th input of output channel co in lane co, so that
 *     y[p][co]       = bias[co] + sum_tap sum_q xe[p + tap][q][co] * w[tap][q][co]
 *     dw[tap][q][co] += sum_p xe[p + tap][q][co] * dy[p][co]
 * are the depthwise loops with a q loop (the Keras weights are w[tap][q][co]).
 * Backward-data is the same gather with dye[p][k][ci] = dy[p][(ci / cig) * cog + k]
 * and wt[tap][k][ci] = w[tap][ci % cig][(ci / cig) * cog + k].  Both have
 * cig * c_out values per pixel.  Rows are expanded on demand into a ring of
 * rows per slot (row r in ring row r % R, tagged with r; R = the rows one
 * output row's window spans), so each row is expanded about once per chunk;
 * in spread mode (see thin_spread) the expansion happens in registers instead.
 * Depthwise multiplier 1 (cig = cog = 1) needs no expansion: rows are read in place.
 * Backward-filter sums each tap's products along an output row in registers
 * and adds the sum to the slot's partial once per row.
 */

#define THIN_LANES ((int64_t)(THIN_VEC_BYTES / sizeof(T)))
#define THIN_BLOCK (THIN_VECS * THIN_LANES)   /* channels of a block */
typedef T FN(vec) __attribute__((vector_size(THIN_VEC_BYTES)));
typedef T FN(vec_u) __attribute__((vector_size(THIN_VEC_BYTES), aligned(sizeof(T)), may_alias));
#define VLOAD(ptr) (*(const FN(vec_u) *)(ptr))
#define VSTORE(ptr, v) (*(FN(vec_u) *)(ptr) = (v))
/* The loop over a group's channels (q) stays a loop: unrolled, its pointers (one per pixel and q) spill. */
#if defined(__GNUC__) && !defined(__clang__)
#define THIN_ROLLED _Pragma("GCC unroll 1")
#else
#define THIN_ROLLED
#endif

/* Spread mode (cig == cog == g, g dividing the lanes): lane l of the expanded
 * x (or dy) is lane (l / g) * g + q of the row read in place at `at`: one
 * shuffle in registers (GCC's __builtin_shuffle) instead of a ring of
 * expanded rows, or a broadcast load when a group fills the vector. */
#if defined(__GNUC__) && !defined(__clang__)
#define THIN_CAN_SPREAD 1
typedef TI FN(ivec) __attribute__((vector_size(THIN_VEC_BYTES)));
static inline __attribute__((always_inline)) THIN_TARGET FN(vec) FN(thin_spread)(FN(vec) x, const T *at, int64_t g,
                                                                                 int64_t q)
{
    if (g == THIN_LANES)
        return (FN(vec)){0} + at[q];
    FN(ivec) lane;
    for (int64_t l = 0; l < THIN_LANES; l++)
        lane[l] = (TI)(l / g * g + q);
    return __builtin_shuffle(x, lane);
}
#else
#define THIN_CAN_SPREAD 0
static inline THIN_TARGET FN(vec) FN(thin_spread)(FN(vec) x, const T *at, int64_t g, int64_t q)
{
    (void)at, (void)g, (void)q;
    return x;   /* never called: spread mode is not chosen without __builtin_shuffle */
}
#endif
/* The vector thin_spread shuffles (loaded once for all q), unless a group fills it. */
#define THIN_SPREAD_SOURCE(at, g) ((g) < THIN_LANES ? (FN(vec))VLOAD(at) : (FN(vec)){0})

/* Whether this build runs the layer in spread mode (see thin_spread). */
static inline THIN_TARGET int FN(thin_spreads)(const conv_plan *p)
{
    return THIN_CAN_SPREAD && p->cig == p->cog && (p->cig == 2 || p->cig == 4 || p->cig == 8) &&
           THIN_LANES % p->cig == 0;
}

/* dst[pixel][t][g * b + u] = src[pixel][g * a + t] for t < a, u < b, g < groups:
 * the expansion, with (a, b) = (cig, cog) for x and (cog, cig) for dy.
 * Inlined with a constant b, so that each value is one broadcast store. */
static inline __attribute__((always_inline)) THIN_TARGET void FN(thin_expand_pixels)(
    const T *restrict src, int64_t pixels, int64_t groups, int64_t a, int64_t b, T *restrict dst)
{
    const int64_t lanes = groups * b;
    for (int64_t px = 0; px < pixels; px++, src += groups * a, dst += a * lanes)
        for (int64_t t = 0; t < a; t++)
            for (int64_t g = 0; g < groups; g++) {
                const T v = src[g * a + t];
                for (int64_t u = 0; u < b; u++)
                    dst[t * lanes + g * b + u] = v;
            }
}

static THIN_TARGET void FN(thin_expand_row)(const T *src, int64_t pixels, int64_t groups, int64_t a, int64_t b,
                                            T *dst)
{
    switch (b) {
    case 1: FN(thin_expand_pixels)(src, pixels, groups, a, 1, dst); break;
    case 2: FN(thin_expand_pixels)(src, pixels, groups, a, 2, dst); break;
    case 4: FN(thin_expand_pixels)(src, pixels, groups, a, 4, dst); break;
    case 8: FN(thin_expand_pixels)(src, pixels, groups, a, 8, dst); break;
    default: FN(thin_expand_pixels)(src, pixels, groups, a, b, dst); break;
    }
}

/* Element offset of (expanded) row `row` (an index into all n * height rows):
 * the row in place, or its ring row, filled first if it holds another row. */
static inline THIN_TARGET int64_t FN(thin_row)(int in_place, int64_t row, int64_t ring_rows, int64_t pixels,
                                               const T *src, int64_t src_channels, int64_t a, int64_t b,
                                               T *ring, int64_t *tags)
{
    if (in_place)
        return row * pixels * src_channels;
    const int64_t r = row % ring_rows, len = pixels * a * b * (src_channels / a);
    if (tags[r] != row) {
        FN(thin_expand_row)(src + row * pixels * src_channels, pixels, src_channels / a, a, b, ring + r * len);
        tags[r] = row;
    }
    return r * len;
}

/* The taps of output pixels that share a window shape: kernel rows
 * [i_lo, i_hi) and columns [j_lo, j_hi), the first pixel's window at input
 * column ix0 (the next pixels stride_w columns further). */
typedef struct {
    int64_t i_lo, i_hi, j_lo, j_hi, ix0;
} FN(thin_taps);

/* Channels [c0, c0 + THIN_BLOCK) of `pixels` (1 or THIN_PIXELS) consecutive
 * output pixels of one row.  `rows` + row_at[i] is the expanded input row of
 * kernel row i; inlined with constant cig and pixels. */
static inline __attribute__((always_inline)) THIN_TARGET void FN(thin_forward_vec)(
    const pycnn_conv2d_desc *d, int64_t cig, int spread, int64_t pixels, const FN(thin_taps) *t, const T *rows,
    const int64_t *row_at, const T *w, const T *bias, T *out, int64_t c0)
{
    const int64_t C = d->c_out, E = cig * C, pix = spread ? C : E;
    /* Blocks of several pixels only occur when stride_w < w (windows inside the image). */
    const int64_t step = d->stride_w < d->w ? d->stride_w * pix : 0;
    FN(vec) acc[THIN_PIXELS][THIN_VECS];
    for (int64_t v = 0; v < THIN_VECS; v++) {
        FN(vec) start = {0};
        if (bias != NULL)
            start = VLOAD(bias + c0 + v * THIN_LANES);
        for (int64_t px = 0; px < pixels; px++)
            acc[px][v] = start;
    }
    for (int64_t i = t->i_lo; i < t->i_hi; i++) {
        for (int64_t j = t->j_lo; j < t->j_hi; j++) {
            const T *xp = rows + row_at[i] + (t->ix0 + j * d->dilation_w) * pix + c0;
            const T *wp = w + (i * d->kw + j) * E + c0;
            if (spread) {
                for (int64_t v = 0; v < THIN_VECS; v++) {
                    FN(vec) xv[THIN_PIXELS];
                    for (int64_t px = 0; px < pixels; px++)
                        xv[px] = THIN_SPREAD_SOURCE(xp + px * step + v * THIN_LANES, cig);
                    for (int64_t q = 0; q < cig; q++) {
                        const FN(vec) wv = VLOAD(wp + q * C + v * THIN_LANES);
                        for (int64_t px = 0; px < pixels; px++)
                            acc[px][v] += FN(thin_spread)(xv[px], xp + px * step + v * THIN_LANES, cig, q) * wv;
                    }
                }
                continue;
            }
            THIN_ROLLED
            for (int64_t q = 0; q < cig; q++, xp += C, wp += C)
                for (int64_t v = 0; v < THIN_VECS; v++) {
                    const FN(vec) wv = VLOAD(wp + v * THIN_LANES);
                    for (int64_t px = 0; px < pixels; px++)
                        acc[px][v] += VLOAD(xp + px * step + v * THIN_LANES) * wv;
                }
        }
    }
    for (int64_t px = 0; px < pixels; px++)
        for (int64_t v = 0; v < THIN_VECS; v++)
            VSTORE(out + px * C + c0 + v * THIN_LANES, acc[px][v]);
}

/* The last C % THIN_BLOCK channels of one output pixel, in the same order. */
static inline THIN_TARGET void FN(thin_forward_tail)(const pycnn_conv2d_desc *d, int64_t cig, int spread,
                                                     const FN(thin_taps) *t, const T *rows, const int64_t *row_at,
                                                     const T *w, const T *bias, T *out, int64_t c0)
{
    const int64_t C = d->c_out, E = cig * C, pix = spread ? C : E;
    for (int64_t c = c0; c < C; c++) {
        T acc = bias != NULL ? bias[c] : 0;
        for (int64_t i = t->i_lo; i < t->i_hi; i++)
            for (int64_t j = t->j_lo; j < t->j_hi; j++) {
                const T *xp = rows + row_at[i] + (t->ix0 + j * d->dilation_w) * pix;
                const T *wp = w + (i * d->kw + j) * E + c;
                for (int64_t q = 0; q < cig; q++)
                    acc += (spread ? xp[c - c % cig + q] : xp[q * C + c]) * wp[q * C];
            }
        out[c] = acc;
    }
}

/* Output columns [*lo, *hi), within [ox, ox_end), whose windows lie wholly inside the image. */
static inline THIN_TARGET void FN(thin_full_columns)(const pycnn_conv2d_desc *d, int64_t ox, int64_t ox_end,
                                                     int64_t *lo, int64_t *hi)
{
    /* ix0 = o * stride_w - pad_left >= 0 and ix0 + (kw - 1) * dilation_w <= w - 1 */
    const int64_t room = d->w - 1 - (d->kw - 1) * d->dilation_w + d->pad_left;
    *lo = min64(max64(ceil_div_nonneg64(d->pad_left, d->stride_w), ox), ox_end);
    *hi = room < 0 ? *lo : min64(max64(room / d->stride_w + 1, *lo), ox_end);
}

/* The taps of output column o (all of them between the full columns lo and hi). */
static inline THIN_TARGET FN(thin_taps) FN(thin_column_taps)(const pycnn_conv2d_desc *d, int64_t i_lo, int64_t i_hi,
                                                            int64_t o, int64_t lo, int64_t hi)
{
    FN(thin_taps) t = {i_lo, i_hi, 0, d->kw, o * d->stride_w - d->pad_left};
    if (o < lo || o >= hi)
        conv_taps_inside(d, t.ix0, &t.j_lo, &t.j_hi);
    return t;
}

/* Output pixels [ox, ox_end) of one output row, block of channels after block
 * (the block's weights stay in L1): THIN_PIXELS at a time where their windows
 * lie wholly inside the image, one at a time elsewhere. */
static inline __attribute__((always_inline)) THIN_TARGET void FN(thin_forward_row)(
    const pycnn_conv2d_desc *d, int64_t cig, int spread, int64_t i_lo, int64_t i_hi, int64_t ox, int64_t ox_end,
    const T *rows, const int64_t *row_at, const T *w, const T *bias, T *out_row)
{
    const int64_t C = d->c_out, full = C - C % THIN_BLOCK;
    int64_t lo, hi;
    FN(thin_full_columns)(d, ox, ox_end, &lo, &hi);
    for (int64_t c0 = 0; c0 < full; c0 += THIN_BLOCK)
        for (int64_t o = ox; o < ox_end;) {
            const FN(thin_taps) t = FN(thin_column_taps)(d, i_lo, i_hi, o, lo, hi);
            if (o >= lo && o + THIN_PIXELS <= hi) {
                FN(thin_forward_vec)(d, cig, spread, THIN_PIXELS, &t, rows, row_at, w, bias, out_row + o * C, c0);
                o += THIN_PIXELS;
            } else {
                FN(thin_forward_vec)(d, cig, spread, 1, &t, rows, row_at, w, bias, out_row + o * C, c0);
                o++;
            }
        }
    for (int64_t o = ox; o < ox_end && full < C; o++) {
        const FN(thin_taps) t = FN(thin_column_taps)(d, i_lo, i_hi, o, lo, hi);
        FN(thin_forward_tail)(d, cig, spread, &t, rows, row_at, w, bias, out_row + o * C, full);
    }
}

/* Channels of a group whose filter-gradient sums one tap's pass keeps in
 * registers (THIN_PIXELS vectors of sums per channel block in all). */
static inline THIN_TARGET int64_t FN(thin_filter_channels)(int64_t cig)
{
    return cig % THIN_PIXELS == 0 ? THIN_PIXELS : THIN_PIXELS % cig == 0 ? cig : 1;
}

/* Channel q of a group of the expanded x at xp: in place spread (channel
 * group_q = q0 + q of the group), else the ring's q-th run of channels. */
static inline __attribute__((always_inline)) THIN_TARGET FN(vec) FN(thin_filter_x)(
    const T *xp, int64_t C, int64_t cig, int spread, int64_t group_q, int64_t q)
{
    if (spread)
        return FN(thin_spread)(THIN_SPREAD_SOURCE(xp, cig), xp, cig, group_q);
    return VLOAD(xp + q * C);
}

/* Adds to dw_part at dwp (tap (i, j), channels q0.. of the group, block c0)
 * the sum over output columns o in [o_lo, o_hi) of x * dy, x read at
 * rows + x_at + o * stride_w * E.  The columns go round-robin into
 * THIN_PIXELS / qb sets of sums (independent add chains), added as a tree at
 * the end.  Inlined with constant cig. */
static inline __attribute__((always_inline)) THIN_TARGET void FN(thin_filter_tap)(
    const pycnn_conv2d_desc *d, int64_t cig, int spread, const T *rows, int64_t x_at, const T *dy_row,
    int64_t o_lo, int64_t o_hi, T *dwp, int64_t c0, int64_t q0)
{
    const int64_t C = d->c_out;
    const int64_t step = d->stride_w < d->w ? d->stride_w * (spread ? C : cig * C) : 0;   /* as in thin_forward_vec */
    const int64_t qb = FN(thin_filter_channels)(cig), sets = THIN_PIXELS / qb;
    FN(vec) acc[THIN_PIXELS][THIN_VECS];   /* [set * qb + q][v] */
    for (int64_t k = 0; k < THIN_PIXELS; k++)
        for (int64_t v = 0; v < THIN_VECS; v++)
            acc[k][v] = (FN(vec)){0};
    const T *xp = rows + (x_at + o_lo * step), *gp = dy_row + o_lo * C + c0;
    int64_t o = o_lo;
    for (; o + sets <= o_hi; o += sets, xp += sets * step, gp += sets * C)
        for (int64_t set = 0; set < sets; set++)
            for (int64_t v = 0; v < THIN_VECS; v++) {
                const FN(vec) g = VLOAD(gp + set * C + v * THIN_LANES);
                for (int64_t q = 0; q < qb; q++)
                    acc[set * qb + q][v] += FN(thin_filter_x)(xp + set * step + v * THIN_LANES, C, cig, spread, q0 + q, q) * g;
            }
    for (int64_t set = 0; o < o_hi; o++, set++, xp += step, gp += C)
        for (int64_t v = 0; v < THIN_VECS; v++) {
            const FN(vec) g = VLOAD(gp + v * THIN_LANES);
            for (int64_t q = 0; q < qb; q++)
                acc[set * qb + q][v] += FN(thin_filter_x)(xp + v * THIN_LANES, C, cig, spread, q0 + q, q) * g;
        }
    for (int64_t width = sets; width > 1; width /= 2)
        for (int64_t k = 0; k < width / 2; k++)
            for (int64_t q = 0; q < qb; q++)
                for (int64_t v = 0; v < THIN_VECS; v++)
                    acc[k * qb + q][v] = acc[2 * k * qb + q][v] + acc[(2 * k + 1) * qb + q][v];
    for (int64_t q = 0; q < qb; q++)
        for (int64_t v = 0; v < THIN_VECS; v++)
            VSTORE(dwp + q * C + v * THIN_LANES, VLOAD(dwp + q * C + v * THIN_LANES) + acc[q][v]);
}

static inline THIN_TARGET void FN(thin_backward_filter_tail)(const pycnn_conv2d_desc *d, int64_t cig, int spread,
                                                             const FN(thin_taps) *t, const T *rows,
                                                             const int64_t *row_at, const T *dy_pixel,
                                                             T *dw_part, int64_t c0)
{
    const int64_t C = d->c_out, E = cig * C, pix = spread ? C : E;
    for (int64_t i = t->i_lo; i < t->i_hi; i++)
        for (int64_t j = t->j_lo; j < t->j_hi; j++) {
            const T *xp = rows + row_at[i] + (t->ix0 + j * d->dilation_w) * pix;
            T *dwp = dw_part + (i * d->kw + j) * E;
            for (int64_t q = 0; q < cig; q++)
                for (int64_t c = c0; c < C; c++)
                    dwp[q * C + c] += (spread ? xp[c - c % cig + q] : xp[q * C + c]) * dy_pixel[c];
        }
}

/* Adds the filter gradient of output pixels [ox, ox_end) of one output row:
 * for each channel block and tap, the sum along the row (kept in registers)
 * is added to dw_part once.  o_lo/o_hi: scratch for each kernel column's
 * range of output columns that read inside the image. */
static inline __attribute__((always_inline)) THIN_TARGET void FN(thin_backward_filter_row)(
    const pycnn_conv2d_desc *d, int64_t cig, int spread, int64_t i_lo, int64_t i_hi, int64_t ox, int64_t ox_end,
    const T *rows, const int64_t *row_at, const T *dy_row, T *dw_part, int64_t *o_lo, int64_t *o_hi)
{
    const int64_t C = d->c_out, E = cig * C, pix = spread ? C : E, full = C - C % THIN_BLOCK;
    const int64_t qb = FN(thin_filter_channels)(cig);
    for (int64_t j = 0; j < d->kw; j++) {
        /* o * stride_w + j * dilation_w - pad_left in [0, w) */
        const int64_t shift = d->pad_left - j * d->dilation_w, last = d->w - 1 + shift;
        o_lo[j] = min64(max64(shift <= 0 ? 0 : ceil_div_nonneg64(shift, d->stride_w), ox), ox_end);
        o_hi[j] = last < 0 ? o_lo[j] : min64(max64(last / d->stride_w + 1, o_lo[j]), ox_end);
    }
    for (int64_t c0 = 0; c0 < full; c0 += THIN_BLOCK)
        for (int64_t i = i_lo; i < i_hi; i++)
            for (int64_t j = 0; j < d->kw; j++) {
                if (o_lo[j] == o_hi[j])
                    continue;
                const int64_t x_at = row_at[i] - (d->pad_left - j * d->dilation_w) * pix + c0;
                for (int64_t q0 = 0; q0 < cig; q0 += qb)
                    FN(thin_filter_tap)(d, cig, spread, rows, spread ? x_at : x_at + q0 * C, dy_row, o_lo[j], o_hi[j],
                                        dw_part + (i * d->kw + j) * E + q0 * C + c0, c0, q0);
            }
    for (int64_t o = ox; o < ox_end && full < C; o++) {
        FN(thin_taps) t = {i_lo, i_hi, 0, 0, o * d->stride_w - d->pad_left};
        conv_taps_inside(d, t.ix0, &t.j_lo, &t.j_hi);
        FN(thin_backward_filter_tail)(d, cig, spread, &t, rows, row_at, dy_row + o * C, dw_part, full);
    }
}

/* The workspace of a slot: scratch indices, ring tags, ring (see plan_thin in conv.c). */
#define THIN_SLOT(p, slot, scratch, tags, ring)                                   \
    int64_t *scratch = (int64_t *)(slot);                                         \
    int64_t *tags = scratch + 3 * d->kh + 2 * d->kw;                              \
    T *ring = (T *)((slot) + (p)->ring_at)

/* Runs ROW_CALL(cig, spread) with both constants where cig is common (and
 * thin_spreads allows the spread mode only for cig 2, 4, 8 dividing the lanes). */
#define THIN_BY_CIG(cig, spread, ROW_CALL)                    \
    if (spread) {                                             \
        switch (cig) {                                        \
        case 2: ROW_CALL(2, 1); break;                        \
        case 4: if (THIN_LANES % 4 == 0) ROW_CALL(4, 1); break; \
        default: if (THIN_LANES % 8 == 0) ROW_CALL(8, 1); break; \
        }                                                     \
    } else {                                                  \
        switch (cig) {                                        \
        case 1: ROW_CALL(1, 0); break;                        \
        case 2: ROW_CALL(2, 0); break;                        \
        case 4: ROW_CALL(4, 0); break;                        \
        case 8: ROW_CALL(8, 0); break;                        \
        default: ROW_CALL(cig, 0); break;                     \
        }                                                     \
    }

/* Calls ROW_CALL for each output image row of rows [m0, m0 + rows), after
 * filling row_at with the offsets of its input rows (expanded when needed);
 * n, oy, ox, ox_end, i_lo, i_hi name the row's pixels and kernel rows. */
#define THIN_FOR_EACH_OUTPUT_ROW(d, p, in_place, x, m0, rows, row_at, ring, tags, BODY)               \
    for (int64_t r_ = 0; r_ < (p)->ring_rows_x; r_++)                                                  \
        (tags)[r_] = -1;                                                                               \
    for (int64_t m = (m0); m < (m0) + (rows);) {                                                       \
        const conv_window first = conv_pixel_window(d, m);                                             \
        const int64_t n = first.n, oy = m % ((d)->oh * (d)->ow) / (d)->ow, ox = m % (d)->ow;           \
        const int64_t ox_end = min64((d)->ow, ox + (m0) + (rows) - m);                                 \
        const int64_t i_lo = first.i_lo, i_hi = first.i_hi;                                            \
        for (int64_t i = i_lo; i < i_hi; i++)                                                          \
            (row_at)[i] = FN(thin_row)(in_place, n * (d)->h + first.iy0 + i * (d)->dilation_h, (p)->ring_rows_x, \
                                       (d)->w, x, (d)->c_in, (p)->cig, (p)->cog, ring, tags);          \
        BODY                                                                                           \
        m += ox_end - ox;                                                                              \
    }

/* Output rows [m0, m0 + rows) of the forward pass. */
#define THIN_FORWARD_ROW(CIG, SPREAD) \
    FN(thin_forward_row)(d, CIG, SPREAD, i_lo, i_hi, ox, ox_end, src, row_at, w, bias, out_row)
static THIN_TARGET void FN(thin_forward_chunk)(const pycnn_conv2d_desc *d, const conv_plan *p, const T *x,
                                               const T *w, const T *bias, T *y, int64_t m0, int64_t rows,
                                               char *slot)
{
    THIN_SLOT(p, slot, row_at, tags, ring);
    const int spread = FN(thin_spreads)(p), in_place = spread || !p->expand;
    const T *src = in_place ? x : ring;
    THIN_FOR_EACH_OUTPUT_ROW(d, p, in_place, x, m0, rows, row_at, ring, tags, {
        T *out_row = y + ((n * d->oh + oy) * d->ow) * d->c_out;
        THIN_BY_CIG(p->cig, spread, THIN_FORWARD_ROW)
    })
}
#undef THIN_FORWARD_ROW

/* Adds the filter gradient of output rows [m0, m0 + rows) into dw_part. */
#define THIN_FILTER_ROW(CIG, SPREAD)                                                                          \
    FN(thin_backward_filter_row)(d, CIG, SPREAD, i_lo, i_hi, ox, ox_end, src, row_at, dy_row, dw_part, row_at + d->kh, \
                                 row_at + d->kh + d->kw)
static THIN_TARGET void FN(thin_backward_filter_chunk)(const pycnn_conv2d_desc *d, const conv_plan *p,
                                                       const T *x, const T *dy, T *dw_part, int64_t m0,
                                                       int64_t rows, char *slot)
{
    THIN_SLOT(p, slot, row_at, tags, ring);
    const int spread = FN(thin_spreads)(p), in_place = spread || !p->expand;
    const T *src = in_place ? x : ring;
    THIN_FOR_EACH_OUTPUT_ROW(d, p, in_place, x, m0, rows, row_at, ring, tags, {
        const T *dy_row = dy + ((n * d->oh + oy) * d->ow) * d->c_out;
        THIN_BY_CIG(p->cig, spread, THIN_FILTER_ROW)
    })
}
#undef THIN_FILTER_ROW

/* Input-gradient of `pixels` consecutive input pixels (1, or THIN_PIXELS with
 * stride_w 1, where pixel ix + px has the same taps as ix with each output
 * column one further), channels [c0, c0 + THIN_BLOCK): a gather over the
 * output pixels that read them, reader (a, b) being output pixel
 * (out_y[a], out_x[b]) through tap (tap_i[a], tap_j[b]). */
static inline __attribute__((always_inline)) THIN_TARGET void FN(thin_backward_data_vec)(
    const pycnn_conv2d_desc *d, int64_t cog, int spread, int64_t pixels, const T *rows, const int64_t *row_at,
    const T *wt, T *out, int64_t c0, const int64_t *tap_i, int64_t ni, const int64_t *tap_j, const int64_t *out_x,
    int64_t nj)
{
    const int64_t C = d->c_in, E = cog * C, pix = spread ? C : E;
    FN(vec) acc[THIN_PIXELS][THIN_VECS];
    for (int64_t px = 0; px < pixels; px++)
        for (int64_t v = 0; v < THIN_VECS; v++)
            acc[px][v] = (FN(vec)){0};
    for (int64_t a = 0; a < ni; a++)
        for (int64_t b = 0; b < nj; b++) {
            const T *dyp = rows + row_at[a] + out_x[b] * pix + c0;
            const T *wp = wt + (tap_i[a] * d->kw + tap_j[b]) * E + c0;
            if (spread) {
                for (int64_t v = 0; v < THIN_VECS; v++) {
                    FN(vec) gv[THIN_PIXELS];
                    for (int64_t px = 0; px < pixels; px++)
                        gv[px] = THIN_SPREAD_SOURCE(dyp + px * pix + v * THIN_LANES, cog);
                    for (int64_t q = 0; q < cog; q++) {
                        const FN(vec) wv = VLOAD(wp + q * C + v * THIN_LANES);
                        for (int64_t px = 0; px < pixels; px++)
                            acc[px][v] += FN(thin_spread)(gv[px], dyp + px * pix + v * THIN_LANES, cog, q) * wv;
                    }
                }
                continue;
            }
            THIN_ROLLED
            for (int64_t q = 0; q < cog; q++, dyp += C, wp += C)
                for (int64_t v = 0; v < THIN_VECS; v++) {
                    const FN(vec) wv = VLOAD(wp + v * THIN_LANES);
                    for (int64_t px = 0; px < pixels; px++)
                        acc[px][v] += VLOAD(dyp + px * pix + v * THIN_LANES) * wv;
                }
        }
    for (int64_t px = 0; px < pixels; px++)
        for (int64_t v = 0; v < THIN_VECS; v++)
            VSTORE(out + px * C + c0 + v * THIN_LANES, acc[px][v]);
}

static inline THIN_TARGET void FN(thin_backward_data_tail)(const pycnn_conv2d_desc *d, int64_t cog, int spread,
                                                           const T *rows, const int64_t *row_at, const T *wt, T *out,
                                                           int64_t c0, const int64_t *tap_i, int64_t ni,
                                                           const int64_t *tap_j, const int64_t *out_x, int64_t nj)
{
    const int64_t C = d->c_in, E = cog * C, pix = spread ? C : E;
    for (int64_t c = c0; c < C; c++) {
        T acc = 0;
        for (int64_t a = 0; a < ni; a++)
            for (int64_t b = 0; b < nj; b++) {
                const T *dyp = rows + row_at[a] + out_x[b] * pix;
                const T *wp = wt + (tap_i[a] * d->kw + tap_j[b]) * E + c;
                for (int64_t q = 0; q < cog; q++)
                    acc += (spread ? dyp[c - c % cog + q] : dyp[q * C + c]) * wp[q * C];
            }
        out[c] = acc;
    }
}

/* The (tap, output index) pairs, in tap order, through which input index `in` is read. */
static inline THIN_TARGET int64_t FN(thin_readers)(int64_t in, int64_t pad, int64_t stride, int64_t dilation,
                                                   int64_t taps, int64_t out_size, int64_t *tap, int64_t *out)
{
    int64_t count = 0;
    for (int64_t t = 0; t < taps; t++) {
        const int64_t at = in + pad - t * dilation;   /* = o * stride */
        if (at < 0 || at % stride != 0 || at / stride >= out_size)
            continue;
        tap[count] = t;
        out[count++] = at / stride;
    }
    return count;
}

/* One dx row: THIN_PIXELS pixels at a time where stride_w is 1 and every tap
 * of the group's first and last pixel (so of all between) has a reader. */
static inline __attribute__((always_inline)) THIN_TARGET void FN(thin_backward_data_row)(
    const pycnn_conv2d_desc *d, int64_t cog, int spread, const T *rows, const int64_t *row_at, const T *wt,
    T *dx_row, const int64_t *tap_i, int64_t ni, int64_t *tap_j, int64_t *out_x)
{
    const int64_t C = d->c_in, full = C - C % THIN_BLOCK;
    for (int64_t ix = 0; ix < d->w;) {
        const int64_t nj = FN(thin_readers)(ix, d->pad_left, d->stride_w, d->dilation_w, d->kw, d->ow, tap_j, out_x);
        int64_t pixels = 1;
        if (d->stride_w == 1 && nj == d->kw && ix + THIN_PIXELS <= d->w &&
            ix + THIN_PIXELS - 1 + d->pad_left < d->ow)   /* the last pixel's tap 0 reads a valid column */
            pixels = THIN_PIXELS;
        T *out = dx_row + ix * C;
        for (int64_t c0 = 0; c0 < full; c0 += THIN_BLOCK) {
            if (pixels == THIN_PIXELS)
                FN(thin_backward_data_vec)(d, cog, spread, THIN_PIXELS, rows, row_at, wt, out, c0, tap_i, ni, tap_j,
                                           out_x, nj);
            else
                FN(thin_backward_data_vec)(d, cog, spread, 1, rows, row_at, wt, out, c0, tap_i, ni, tap_j, out_x, nj);
        }
        for (int64_t px = 0; px < pixels && full < C; px++) {
            for (int64_t b = 0; b < nj && px > 0; b++)
                out_x[b]++;
            FN(thin_backward_data_tail)(d, cog, spread, rows, row_at, wt, out + px * C, full, tap_i, ni, tap_j,
                                        out_x, nj);
        }
        ix += pixels;
    }
}

/* dx rows (n, iy) in [row0, row0 + count), each computed whole (no scatter,
 * so threads may split dx by rows); wt is w when not expanded. */
static THIN_TARGET void FN(thin_backward_data_rows)(const pycnn_conv2d_desc *d, const conv_plan *p, const T *dy,
                                                    const T *wt, T *dx, int64_t row0, int64_t count, char *slot)
{
    THIN_SLOT(p, slot, scratch, tags, ring);
    int64_t *tap_i = scratch, *out_y = scratch + d->kh, *row_at = scratch + 2 * d->kh;
    int64_t *tap_j = scratch + 3 * d->kh, *out_x = scratch + 3 * d->kh + d->kw;
    const int spread = FN(thin_spreads)(p), in_place = spread || !p->expand;
    const T *src = in_place ? dy : ring;
    for (int64_t r = 0; r < p->ring_rows_dy; r++)
        tags[r] = -1;
    for (int64_t row = row0; row < row0 + count; row++) {
        const int64_t n = row / d->h, iy = row % d->h;
        const int64_t ni = FN(thin_readers)(iy, d->pad_top, d->stride_h, d->dilation_h, d->kh, d->oh, tap_i, out_y);
        for (int64_t a = 0; a < ni; a++)
            row_at[a] = FN(thin_row)(in_place, n * d->oh + out_y[a], p->ring_rows_dy, d->ow, dy, d->c_out, p->cog,
                                     p->cig, ring, tags);
        T *dx_row = dx + row * d->w * d->c_in;
#define THIN_DATA_ROW(COG, SPREAD) \
    FN(thin_backward_data_row)(d, COG, SPREAD, src, row_at, wt, dx_row, tap_i, ni, tap_j, out_x)
        THIN_BY_CIG(p->cog, spread, THIN_DATA_ROW)
#undef THIN_DATA_ROW
    }
}

#undef THIN_SLOT
#undef THIN_BY_CIG
#undef THIN_CAN_SPREAD
#undef THIN_SPREAD_SOURCE
#undef THIN_FOR_EACH_OUTPUT_ROW
#undef VLOAD
#undef VSTORE
#undef THIN_ROLLED
#undef THIN_LANES
#undef THIN_BLOCK
