/*
 * Low-channel convolution kernels, written once (included by
 * conv_low_channel.c per dtype and ISA with T, LC_LANES, LC_REGS, LC_TARGET,
 * LC(name) for this ISA's names and LCT(name) for the dtype's shared names).
 *
 * An output image row in NHWC is a flat run of ow * C values (C = c_out),
 * element f = ox * C + co.  The expanded input row E[c][iy][f'] holds padded
 * input pixel f' / C of channel c repeated C times, so tap (i, j, c) adds
 * E[c][iy][f + j * dilation_w * C] * w[i, j, c, f % C] to element f: one
 * unaligned vector load times a weight vector whose lane pattern repeats every
 * P = C / gcd(C, lanes) vectors.  A segment of NV = P * R vectors keeps its
 * sums (forward) or its dy values (backward-filter) in named registers over
 * all taps; P and NV are compile-time constants of each kernel copy.
 */

typedef T LC(vec) __attribute__((vector_size(LC_LANES * sizeof(T))));
/* unaligned, may alias T: loads and stores anywhere in x, y, dy and the workspace */
typedef T LC(uvec) __attribute__((vector_size(LC_LANES * sizeof(T)), aligned(sizeof(T)), __may_alias__));
#define VEC LC(vec)
#define LOADU(ptr) ((VEC)(*(const LC(uvec) *)(ptr)))
#define STOREU(ptr, v) (*(LC(uvec) *)(ptr) = (v))

/* Weight vector k of a tap, k = s % P known at compile time: folds to one variable. */
#define LC_WSEL(k) ((k) == 0 ? w0 : (k) == 1 ? w1 : (k) == 2 ? w2 : (k) == 3 ? w3 : (k) == 4 ? w4 :  \
                    (k) == 5 ? w5 : (k) == 6 ? w6 : (k) == 7 ? w7 : (k) == 8 ? w8 : (k) == 9 ? w9 : \
                    (k) == 10 ? w10 : (k) == 11 ? w11 : (k) == 12 ? w12 : (k) == 13 ? w13 :        \
                    (k) == 14 ? w14 : w15)
/* t_k (+)= v for a compile-time k (a switch on a constant folds away). */
#define LC_TACC(k, first, v)                                                                 \
    switch (k) {                                                                             \
    case 0: t0 = (first) ? (v) : t0 + (v); break;   case 1: t1 = (first) ? (v) : t1 + (v); break;   \
    case 2: t2 = (first) ? (v) : t2 + (v); break;   case 3: t3 = (first) ? (v) : t3 + (v); break;   \
    case 4: t4 = (first) ? (v) : t4 + (v); break;   case 5: t5 = (first) ? (v) : t5 + (v); break;   \
    case 6: t6 = (first) ? (v) : t6 + (v); break;   case 7: t7 = (first) ? (v) : t7 + (v); break;   \
    case 8: t8 = (first) ? (v) : t8 + (v); break;   case 9: t9 = (first) ? (v) : t9 + (v); break;   \
    case 10: t10 = (first) ? (v) : t10 + (v); break; case 11: t11 = (first) ? (v) : t11 + (v); break; \
    case 12: t12 = (first) ? (v) : t12 + (v); break; case 13: t13 = (first) ? (v) : t13 + (v); break; \
    case 14: t14 = (first) ? (v) : t14 + (v); break; default: t15 = (first) ? (v) : t15 + (v); break; \
    }
#define LC_ALL_P(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define LC_ALL_S(X) LC_ALL_P(X) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23)
/* e and its stride phase r from one kernel column to the next (see LC(steps)). */
#define LC_NEXT_TAP(e, r)                  \
    do {                                   \
        (r) += a->phase_step;              \
        if ((r) >= a->stride_w) {          \
            (r) -= a->stride_w;            \
            (e) += a->wrap_step;           \
        } else {                           \
            (e) += a->tap_step;            \
        }                                  \
    } while (0)
/* Vector s of the expanded row at e.  With BC (the lanes divide C, so P = C / lanes and a
 * pixel fills P whole vectors) rows are stored one value per pixel and broadcast here. */
#define LC_E(s) (BC ? e[(s) / P] - (VEC){0} : LOADU(e + (s) * LC_LANES))

/* One output row (all its segments), forward: y_row = bias + sum over taps. */
static inline __attribute__((always_inline)) LC_TARGET void LC(forward_row)(const int P, const int NV, const int BC,
                                                                             const LCT(row_args) *a)
{
    for (int64_t seg = 0; seg < a->segs; seg++) {
        const int64_t f0 = seg * NV * LC_LANES;
#define LC_INIT(s) VEC a##s = LOADU(a->bias + (s) % P * LC_LANES);
        LC_ALL_S(LC_INIT)
#undef LC_INIT
        const T *w_tap = a->w;
        int64_t slot = a->slot0;
        for (int64_t i = 0; i < a->rows; i++) {
            const T *e_chan = a->e + slot * a->elen + (BC ? seg * (NV / P) : f0);
            slot += a->slot_step;   /* the next tap row's slot in the ring */
            if (slot >= a->ring)
                slot -= a->ring;
            for (int64_t c = 0; c < a->c_in; c++, e_chan += a->e_chan_step) {
                const T *e = e_chan;
                int64_t r = 0;
                for (int64_t j = 0; j < a->kw; j++, w_tap += P * LC_LANES) {
#define LC_W(p) const VEC w##p = (p) < P ? LOADU(w_tap + (p) * LC_LANES) : (VEC){0};
                    LC_ALL_P(LC_W)
#undef LC_W
#define LC_FMA(s) if ((s) < NV) a##s += LC_E(s) * LC_WSEL((s) % P);
                    LC_ALL_S(LC_FMA)
#undef LC_FMA
                    LC_NEXT_TAP(e, r);
                }
            }
        }
        /* a segment past the row's end goes through the stage buffer */
        const int whole = f0 + NV * LC_LANES <= a->valid;
        T *dst = whole ? a->y + f0 : a->stage;
#define LC_STORE(s) if ((s) < NV) STOREU(dst + (s) * LC_LANES, a##s);
        LC_ALL_S(LC_STORE)
#undef LC_STORE
        if (!whole)
            for (int64_t f = f0; f < a->valid; f++)
                a->y[f] = a->stage[f - f0];
    }
}

/* One output row, backward-filter: for each tap, acc[tap][p] += sum over the
 * row's vectors s with s % P == p of E(s) * dy(s); bias_acc[p] likewise of dy(s). */
static inline __attribute__((always_inline)) LC_TARGET void LC(filter_row)(const int P, const int NV, const int BC,
                                                                            const LCT(row_args) *a)
{
    for (int64_t seg = 0; seg < a->segs; seg++) {
        const int64_t f0 = seg * NV * LC_LANES;
        const T *src = a->dy + f0;
        if (f0 + NV * LC_LANES > a->valid) {   /* past the row's end: zeros */
            for (int64_t f = 0; f < NV * LC_LANES; f++)
                a->stage[f] = f0 + f < a->valid ? src[f] : 0;
            src = a->stage;
        }
#define LC_DY(s) const VEC d##s = (s) < NV ? LOADU(src + (s) * LC_LANES) : (VEC){0};
        LC_ALL_S(LC_DY)
#undef LC_DY
#define LC_T(p) VEC t##p = {0};
        LC_ALL_P(LC_T)
#undef LC_T
#define LC_SUM(s) if ((s) < NV) { LC_TACC((s) % P, (s) < P, d##s) }
        LC_ALL_S(LC_SUM)
#undef LC_SUM
#define LC_ADD(p) if ((p) < P) STOREU(sums + (p) * LC_LANES, LOADU(sums + (p) * LC_LANES) + t##p);
        T *sums = a->bias_acc;
        LC_ALL_P(LC_ADD)
        T *acc = a->acc;
        int64_t slot = a->slot0;
        for (int64_t i = 0; i < a->rows; i++) {
            const T *e_chan = a->e + slot * a->elen + (BC ? seg * (NV / P) : f0);
            slot += a->slot_step;   /* the next tap row's slot in the ring */
            if (slot >= a->ring)
                slot -= a->ring;
            for (int64_t c = 0; c < a->c_in; c++, e_chan += a->e_chan_step) {
                const T *e = e_chan;
                int64_t r = 0;
                for (int64_t j = 0; j < a->kw; j++) {
#define LC_SUM(s) if ((s) < NV) { LC_TACC((s) % P, (s) < P, LC_E(s) * d##s) }
                    LC_ALL_S(LC_SUM)
#undef LC_SUM
                    sums = acc;
                    LC_ALL_P(LC_ADD)
                    acc += P * LC_LANES;
                    LC_NEXT_TAP(e, r);
                }
            }
        }
#undef LC_ADD
    }
}

/* One noinline copy per (P, R), R = NV / P, when it fits the registers (else empty, never called). */
#define LC_FITS(P, R) LOWC_FITS(P, R, LC_LANES, LC_REGS)
#define LC_DEFINE(P, R)                                                                        \
    static LC_TARGET void LC(forward_##P##_##R)(const LCT(row_args) *a)                       \
    { if (LC_FITS(P, R)) LC(forward_row)(P, (P) * (R), 0, a); }                                \
    static LC_TARGET void LC(filter_##P##_##R)(const LCT(row_args) *a)                        \
    { if (LC_FITS(P, R)) LC(filter_row)(P, (P) * (R), 0, a); }                                 \
    static LC_TARGET void LC(forward_bc_##P##_##R)(const LCT(row_args) *a)                    \
    { if (LC_FITS(P, R) && LOWC_BROADCAST_OK(P, LC_LANES)) LC(forward_row)(P, (P) * (R), 1, a); }        \
    static LC_TARGET void LC(filter_bc_##P##_##R)(const LCT(row_args) *a)                     \
    { if (LC_FITS(P, R) && LOWC_BROADCAST_OK(P, LC_LANES)) LC(filter_row)(P, (P) * (R), 1, a); }
LC_ALL_PR(LC_DEFINE)
#undef LC_DEFINE

static void LC(select)(int64_t P, int64_t R, int64_t broadcast, LCT(row_fn) *forward, LCT(row_fn) *filter)
{
    switch (P * 32 + R) {
#define LC_CASE(P_, R_) case (P_) * 32 + (R_):                                        \
        *forward = broadcast ? LC(forward_bc_##P_##_##R_) : LC(forward_##P_##_##R_);  \
        *filter = broadcast ? LC(filter_bc_##P_##_##R_) : LC(filter_##P_##_##R_);      \
        return;
    LC_ALL_PR(LC_CASE)
#undef LC_CASE
    default: *forward = *filter = NULL;
    }
}

/* Input row iy of one image into its ring slot, every channel: E[c][iy % ring][q * C + k] =
 * x[iy][q - pad_left][c] for k < C, zero outside the image and up to elen.  Broadcast
 * rows hold one value per padded pixel q, split by stride phase: q = t * stride_w + r
 * at r * phase_len + t, so consecutive output pixels read consecutive values for
 * every kernel column (a stride of 1 is one phase, the row itself). */
static LC_TARGET void LC(expand_row)(const pycnn_conv2d_desc *d, const lowc_geom *g, const T *image,
                                     int64_t iy, T *E)
{
    const int64_t C = d->c_out;
    const int64_t q_lo = min64(d->pad_left, g->padded_w);
    const int64_t q_hi = max64(q_lo, min64(d->pad_left + d->w, g->padded_w));
    const VEC zero = {0};
    T *slot = E + iy % g->erows * g->elen;
    for (int64_t c = 0; c < d->c_in; c++, slot += g->erows * g->elen) {
        T *dst = slot;
        const T *src = image + iy * d->w * d->c_in + c;
        if (g->broadcast) {
            const int64_t sw = d->stride_w;
            for (int64_t r = 0; r < sw; r++) {
                T *phase = dst + r * g->phase_len;
                /* the phase's pixels inside the image: q_lo <= t * sw + r < q_hi */
                const int64_t t_lo = min64(g->phase_len, q_lo > r ? ceil_div64(q_lo - r, sw) : 0);
                const int64_t t_hi = max64(t_lo, min64(g->phase_len, q_hi > r ? ceil_div64(q_hi - r, sw) : 0));
                for (int64_t t = 0; t < t_lo; t++)
                    phase[t] = 0;
                for (int64_t t = t_lo; t < t_hi; t++)
                    phase[t] = src[(t * sw + r - d->pad_left) * d->c_in];
                for (int64_t t = t_hi; t < g->phase_len; t++)
                    phase[t] = 0;
            }
            for (int64_t q = sw * g->phase_len; q < g->elen; q++)
                dst[q] = 0;
            continue;
        }
        for (int64_t f = 0; f < q_lo * C; f += LC_LANES)
            STOREU(dst + f, zero);
        /* each pixel as whole vectors from q * C: the next pixel's stores overwrite the overhang */
        for (int64_t q = q_lo; q < q_hi; q++) {
            const VEC v = src[(q - d->pad_left) * d->c_in] - (VEC){0};   /* a broadcast (x - 0 is x) */
            for (int64_t k = 0; k < C; k += LC_LANES)
                STOREU(dst + q * C + k, v);
        }
        int64_t f = q_hi * C;
        for (; f + LC_LANES <= g->elen; f += LC_LANES)
            STOREU(dst + f, zero);
        for (; f < g->elen; f++)
            dst[f] = 0;
    }
}

/* Runs the row kernel over output rows [m0, m0 + rows) (whole output rows). */
static LC_TARGET void LC(run_chunk)(const pycnn_conv2d_desc *d, const lowc_geom *g, LCT(row_fn) fn,
                                    LCT(row_args) *a, const T *x, T *y_or_dy, int64_t m0, int64_t rows,
                                    T *E, int forward)
{
    const int64_t per_image = d->oh * d->ow, C = d->c_out, taps_per_row = d->c_in * d->kw;
    const T *w_all = a->w;
    T *acc_all = a->acc;
    for (int64_t m = m0; m < m0 + rows;) {
        const int64_t n = m / per_image;
        const int64_t oy0 = m % per_image / d->ow;
        const int64_t oy1 = min64(d->oh, oy0 + (m0 + rows - m) / d->ow);
        /* input rows these output rows read, inside the image */
        const int64_t iy_lo = max64(0, oy0 * d->stride_h - d->pad_top);
        const int64_t iy_hi = min64(d->h, (oy1 - 1) * d->stride_h - d->pad_top + (d->kh - 1) * d->dilation_h + 1);
        /* Rows are expanded as the output rows reach them, into a ring of
         * g->erows slots (a window's rows), so E stays in L1. */
        int64_t expanded = iy_lo;
        for (int64_t oy = oy0; oy < oy1; oy++) {
            int64_t i_lo, i_hi;
            const int64_t iy0 = oy * d->stride_h - d->pad_top;
            const int64_t needed = min64(iy_hi, iy0 + (d->kh - 1) * d->dilation_h + 1);
            for (int64_t iy = max64(expanded, iy0); iy < needed; iy++)
                LC(expand_row)(d, g, x + n * d->h * d->w * d->c_in, iy, E);
            expanded = max64(expanded, needed);
            conv_taps_inside_1d(iy0, d->h, d->kh, d->dilation_h, &i_lo, &i_hi);
            T *row = y_or_dy + (n * per_image + oy * d->ow) * C;
            a->rows = i_hi - i_lo;
            /* (an in-image row when there are taps; a 1-tap kernel may have any dilation) */
            a->slot0 = a->rows > 0 ? (iy0 + i_lo * d->dilation_h) % g->erows : 0;
            if (forward) {
                a->y = row;
                a->w = w_all + i_lo * taps_per_row * g->patterns * LC_LANES;
                if (a->rows == 0) {   /* every tap in the padding: bias only */
                    for (int64_t f = 0; f < a->valid; f++)
                        row[f] = a->bias[f % (g->patterns * LC_LANES)];
                    LCT(apply_epilogue)(d, row, 1, a->valid, a->valid);
                    continue;
                }
            } else {
                a->dy = row;
                a->acc = acc_all + i_lo * taps_per_row * g->patterns * LC_LANES;
            }
            fn(a);
            if (forward)   /* the activation while the output row is in L1 */
                LCT(apply_epilogue)(d, row, 1, a->valid, a->valid);
        }
        m = (n * per_image) + oy1 * d->ow;
    }
    a->w = w_all;
    a->acc = acc_all;
}

/* Elements from one kernel column to the next: dilation_w pixels, which is
 * dilation_w / stride_w values further in a phase dilation_w % stride_w later
 * (and one value further when that passes the last phase).  The products are
 * below the padded width unless kw is 1, where any dilation is allowed. */
static inline void LC(steps)(const pycnn_conv2d_desc *d, const lowc_geom *g, LCT(row_args) *a)
{
    const int64_t sw = d->stride_w, dt = d->dilation_w / sw, dr = d->dilation_w % sw;
    a->stride_w = sw;
    a->phase_step = d->kw == 1 ? 0 : dr;
    a->tap_step = d->kw == 1 ? 0 : g->broadcast ? dr * g->phase_len + dt : d->dilation_w * d->c_out;
    a->wrap_step = d->kw == 1 ? 0 : (dr - sw) * g->phase_len + dt + 1;   /* (never taken with stride 1) */
}

/* Slot buffers, from the slot's 64-byte aligned low-channel region. */
static inline T *LC(region)(char *ws, const conv_plan *p, int64_t slot)
{
    char *base = ws + slot * p->slot_bytes + p->col_bytes + p->pack_bytes + p->partial_bytes;
    return (T *)(((uintptr_t)base + PYCNN_ALIGN - 1) & ~(uintptr_t)(PYCNN_ALIGN - 1));
}

static pycnn_status LC(forward)(const pycnn_conv2d_desc *d, const conv_plan *p, const lowc_geom *g,
                                const T *x, const T *w, const T *bias, T *y, char *ws)
{
    LCT(row_fn) fn, unused;
    LC(select)(g->patterns, g->reps, g->broadcast, &fn, &unused);
    const int64_t PL = g->patterns * LC_LANES;
    int stop = 0;
    #pragma omp parallel num_threads(worker_threads(min64(p->chunks, p->slots), p->work))
    {
        T *region = LC(region)(ws, p, THREAD_ID());
        T *table = region + g->table_at, *stage = region + g->stage_at, *E = region + g->e_at;
        /* the weights as lane patterns, in the kernel's tap order (i, c, j) */
        for (int64_t i = 0; i < d->kh; i++)
            for (int64_t c = 0; c < d->c_in; c++)
                for (int64_t j = 0; j < d->kw; j++)
                    for (int64_t l = 0; l < PL; l++)
                        table[((i * d->c_in + c) * d->kw + j) * PL + l] =
                            w[((i * d->kw + j) * d->c_in + c) * d->c_out + l % d->c_out];
        T *bias_pattern = table + g->taps * PL;
        for (int64_t l = 0; l < PL; l++)
            bias_pattern[l] = bias != NULL ? bias[l % d->c_out] : 0;
        LCT(row_args) a = {
            .e = E, .elen = g->elen, .ring = g->erows, .slot_step = d->dilation_h % g->erows,
            .e_chan_step = g->erows * g->elen,
            .c_in = d->c_in, .kw = d->kw, .segs = g->segs,
            .valid = d->ow * d->c_out, .w = table, .bias = bias_pattern, .stage = stage,
        };
        LC(steps)(d, g, &a);
        #pragma omp for schedule(dynamic, 1)
        for (int64_t chunk = 0; chunk < p->chunks; chunk++) {
            if (stop_requested(&stop))
                continue;
            int64_t m0, rows;
            conv_chunk_rows(p, chunk, &m0, &rows);
            LC(run_chunk)(d, g, fn, &a, x, y, m0, rows, E, 1);
        }
    }
    return stop ? PYCNN_ERR_INTERRUPTED : PYCNN_OK;
}

static pycnn_status LC(backward_filter)(const pycnn_conv2d_desc *d, const conv_plan *p, const lowc_geom *g,
                                        const T *x, const T *dy, T *dw, T *dbias, char *ws)
{
    LCT(row_fn) unused, fn;
    LC(select)(g->patterns, g->reps, g->broadcast, &unused, &fn);
    const int64_t PL = g->patterns * LC_LANES, acc_count = (g->taps + 1) * PL;
    const int64_t used_slots = min64(p->slots, p->chunks);
    int stop = 0;
    /* Slot s sums chunks s, s + slots, ... in order into its own lane sums. */
    #pragma omp parallel for schedule(dynamic, 1) num_threads(worker_threads(used_slots, p->work))
    for (int64_t s = 0; s < used_slots; s++) {
        T *region = LC(region)(ws, p, s);
        T *acc = region + g->table_at, *stage = region + g->stage_at, *E = region + g->e_at;
        for (int64_t l = 0; l < acc_count; l++)
            acc[l] = 0;
        LCT(row_args) a = {
            .e = E, .elen = g->elen, .ring = g->erows, .slot_step = d->dilation_h % g->erows,
            .e_chan_step = g->erows * g->elen,
            .c_in = d->c_in, .kw = d->kw, .segs = g->segs,
            .valid = d->ow * d->c_out, .acc = acc, .bias_acc = acc + g->taps * PL, .stage = stage,
        };
        LC(steps)(d, g, &a);
        for (int64_t chunk = s; chunk < p->chunks; chunk += p->slots) {
            if (stop_requested(&stop))
                break;
            int64_t m0, rows;
            conv_chunk_rows(p, chunk, &m0, &rows);
            LC(run_chunk)(d, g, fn, &a, x, (T *)dy, m0, rows, E, 0);
        }
    }
    if (stop)
        return PYCNN_ERR_INTERRUPTED;
    /* Lanes folded to channels, slots added in a fixed order. */
    const int64_t C = d->c_out;
    for (int64_t t = 0; t < g->taps * C; t++)
        dw[t] = 0;
    if (dbias != NULL)
        for (int64_t c = 0; c < C; c++)
            dbias[c] = 0;
    for (int64_t s = 0; s < used_slots; s++) {
        const T *acc = LC(region)(ws, p, s) + g->table_at;
        for (int64_t i = 0; i < d->kh; i++)
            for (int64_t c = 0; c < d->c_in; c++)
                for (int64_t j = 0; j < d->kw; j++) {
                    const T *lanes = acc + ((i * d->c_in + c) * d->kw + j) * PL;
                    T *out = dw + ((i * d->kw + j) * d->c_in + c) * C;
                    for (int64_t l = 0; l < PL; l++)
                        out[l % C] += lanes[l];
                }
        if (dbias != NULL)
            for (int64_t l = 0; l < PL; l++)
                dbias[l % C] += acc[g->taps * PL + l];
    }
    return PYCNN_OK;
}

#undef VEC
#undef LOADU
#undef STOREU
#undef LC_WSEL
#undef LC_NEXT_TAP
#undef LC_TACC
#undef LC_ALL_P
#undef LC_ALL_S
#undef LC_FITS
