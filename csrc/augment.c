/*
 * Geometric warps for augmentation (see augment.h).  The dtype-specific part
 * at the bottom of this file is compiled twice, for float and double, by
 * including this file into itself with AUGMENT_T / AUGMENT_SFX defined.
 */
#ifndef AUGMENT_T

#include <math.h>
#include <string.h>

#include "internal.h"
#include "augment.h"

/* Images per chunk between interrupt polls; fixed, so it never changes results. */
#define WARP_CHUNK 256

/* Output pixels a thread must have before a second one is woken: small batches (a
 * training step's 32-128 CIFAR images) run faster on one thread than they pay in
 * OpenMP start-up and barrier costs, especially on a busy machine. */
#define WARP_PIXELS_PER_THREAD (1 << 17)

/* Coordinates beyond this are treated as "far outside"; keeps the integer casts defined. */
#define COORD_LIMIT 1e15

/*
 * SciPy's map_coordinate() for one axis: folds a real position into the
 * image for the periodic modes.  For PYCNN_FILL_CONSTANT a position outside
 * [0, len - 1] sets *outside.  The result always lies in [-1, len] so the
 * interpolation below only needs to clamp neighbour indices.
 */
static inline double fold_coord(double in, int64_t len, pycnn_fill_mode mode, int *outside)
{
    if (!(in > -COORD_LIMIT && in < COORD_LIMIT)) {   /* also catches NaN */
        if (mode == PYCNN_FILL_CONSTANT)
            *outside = 1;
        return (mode == PYCNN_FILL_NEAREST && in > 0) ? (double)(len - 1) : 0.0;
    }
    if (in >= 0 && in <= (double)(len - 1))
        return in;
    switch (mode) {
    case PYCNN_FILL_CONSTANT:
        *outside = 1;
        return 0.0;
    case PYCNN_FILL_NEAREST:
        return in < 0 ? 0.0 : (double)(len - 1);
    case PYCNN_FILL_REFLECT: {
        if (len <= 1)
            return 0.0;
        const double sz2 = 2.0 * (double)len;
        if (in < 0) {
            if (in < -sz2)
                in = sz2 * (double)(int64_t)(-in / sz2) + in;
            return in < -(double)len ? in + sz2 : -in - 1.0;
        }
        in -= sz2 * (double)(int64_t)(in / sz2);
        return in >= (double)len ? sz2 - in - 1.0 : in;
    }
    case PYCNN_FILL_WRAP: {
        if (len <= 1)
            return 0.0;
        const double sz = (double)(len - 1);
        if (in < 0)
            return in + sz * ((double)(int64_t)(-in / sz) + 1.0);
        return in - sz * (double)(int64_t)(in / sz);
    }
    default:
        return 0.0;
    }
}

static inline int64_t clamp_index(int64_t i, int64_t len)
{
    return i < 0 ? 0 : (i >= len ? len - 1 : i);
}

/* Neighbour indices and weights of one axis: order 0 uses (i0, weight 1). */
typedef struct {
    int64_t i0, i1;
    double w1;          /* weight of i1; i0 gets 1 - w1 */
} axis_taps;

/* floor() for |v| < 2^62 without a libm call (the folded positions lie in [-1, len]). */
static inline int64_t floor_i64(double v)
{
    const int64_t i = (int64_t)v;
    return i - (v < (double)i);
}

static inline axis_taps axis_sample(double pos, int64_t len, int order)
{
    axis_taps t;
    if (order == 0) {
        t.i0 = t.i1 = clamp_index(floor_i64(pos + 0.5), len);
        t.w1 = 0.0;
    } else {
        const int64_t f = floor_i64(pos);
        t.i0 = clamp_index(f, len);
        t.i1 = clamp_index(f + 1, len);
        t.w1 = pos - (double)f;
    }
    return t;
}

/* The columns [*j0, *j1) of an output row whose sample position v0 + a*j (rows) and
 * u0 + b*j (columns) lies strictly inside the image, shrunk by one column at each end
 * so rounding can never push a position across the border.  Empty when none. */
static void inside_columns(double v0, double a, double u0, double b, int64_t h, int64_t w,
                           int64_t ow, int64_t *j0, int64_t *j1)
{
    const double margin = 1e-6;
    double lo = 0.0, hi = (double)ow;   /* real interval of j, open at both ends */
    const double start[2] = {v0, u0}, slope[2] = {a, b}, top[2] = {(double)(h - 1), (double)(w - 1)};
    for (int axis = 0; axis < 2; axis++) {
        const double s0 = start[axis], sl = slope[axis];
        const double low = margin, high = top[axis] - margin;
        if (!(high > low) || !isfinite(s0) || !isfinite(sl)) {
            *j0 = *j1 = 0;
            return;
        }
        if (sl > 0) {
            lo = fmax(lo, (low - s0) / sl);
            hi = fmin(hi, (high - s0) / sl);
        } else if (sl < 0) {
            lo = fmax(lo, (high - s0) / sl);
            hi = fmin(hi, (low - s0) / sl);
        } else if (!(s0 > low && s0 < high)) {
            *j0 = *j1 = 0;
            return;
        }
    }
    if (!(hi - lo > 2.0)) {
        *j0 = *j1 = 0;
        return;
    }
    *j0 = (int64_t)floor(lo) + 2;   /* lo, hi lie in [-1, ow + 1] here: casts are safe */
    *j1 = (int64_t)ceil(hi) - 1;
    if (*j0 < 0)
        *j0 = 0;
    if (*j1 > ow)
        *j1 = ow;
    if (*j1 < *j0)
        *j1 = *j0;
}

pycnn_status pycnn_warp_check(const pycnn_warp_desc *d)
{
    if (d == NULL)
        return PYCNN_ERR_NULL_POINTER;
    if (d->dtype != PYCNN_FLOAT32 && d->dtype != PYCNN_FLOAT64)
        return PYCNN_ERR_BAD_DTYPE;
    if (d->n < 0 || d->h < 1 || d->w < 1 || d->c < 1 || d->oh < 1 || d->ow < 1)
        return PYCNN_ERR_BAD_SHAPE;
    /* Order and fill mode are validated in Python with friendly messages; this is the net. */
    if ((d->order != 0 && d->order != 1) || (int)d->fill_mode < 0 ||
        d->fill_mode >= PYCNN_FILL_MODE_COUNT || !isfinite(d->cval))
        return PYCNN_ERR_BAD_SHAPE;
    int64_t in_size, out_size, coords_size;
    const int64_t in_dims[] = {d->n, d->h, d->w, d->c, 8};
    const int64_t out_dims[] = {d->n, d->oh, d->ow, d->c, 8};
    const int64_t coord_dims[] = {d->n, d->oh, d->ow, 2, 8};
    if (!product_ok(in_dims, 5, &in_size) || !product_ok(out_dims, 5, &out_size) ||
        !product_ok(coord_dims, 5, &coords_size))
        return PYCNN_ERR_OVERFLOW;
    return PYCNN_OK;
}

#define AUGMENT_T float
#define AUGMENT_SFX f32
#include "augment.c"
#undef AUGMENT_T
#undef AUGMENT_SFX

#define AUGMENT_T double
#define AUGMENT_SFX f64
#include "augment.c"
#undef AUGMENT_T
#undef AUGMENT_SFX

/* Runs warp_fn on images [0, n) in fixed chunks, polling for interrupts between them. */
typedef void (*image_fn)(const pycnn_warp_desc *d, const void *x, const double *params,
                         void *y, int64_t k);

static pycnn_status run_images(const pycnn_warp_desc *d, const void *x, const double *params,
                               void *y, image_fn fn)
{
    for (int64_t start = 0; start < d->n; start += WARP_CHUNK) {
        const int64_t stop = min64(start + WARP_CHUNK, d->n);
        const int threads = worker_threads((stop - start) * d->oh * d->ow / WARP_PIXELS_PER_THREAD,
                                           (stop - start) * d->oh * d->ow * d->c);
        (void)threads;   /* unused in a serial build */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads)
#endif
        for (int64_t k = start; k < stop; k++)
            fn(d, x, params, y, k);
        if (stop < d->n && interrupt_requested())
            return PYCNN_ERR_INTERRUPTED;
    }
    return PYCNN_OK;
}

pycnn_status pycnn_affine_warp_forward(const pycnn_warp_desc *d,
                                       const void *x, const double *matrices, void *y)
{
    pycnn_status s = pycnn_warp_check(d);
    if (s != PYCNN_OK)
        return s;
    if (d->n == 0)
        return PYCNN_OK;
    if (x == NULL || matrices == NULL || y == NULL)
        return PYCNN_ERR_NULL_POINTER;
    return run_images(d, x, matrices, y,
                      d->dtype == PYCNN_FLOAT32 ? affine_image_f32 : affine_image_f64);
}

pycnn_status pycnn_coords_warp_forward(const pycnn_warp_desc *d,
                                       const void *x, const double *coords, void *y)
{
    pycnn_status s = pycnn_warp_check(d);
    if (s != PYCNN_OK)
        return s;
    if (d->n == 0)
        return PYCNN_OK;
    if (x == NULL || coords == NULL || y == NULL)
        return PYCNN_ERR_NULL_POINTER;
    return run_images(d, x, coords, y,
                      d->dtype == PYCNN_FLOAT32 ? coords_image_f32 : coords_image_f64);
}

#else /* ---------------- dtype template: AUGMENT_T, AUGMENT_SFX ---------------- */

#define AUG_CAT_(a, b) a##_##b
#define AUG_CAT(a, b) AUG_CAT_(a, b)
#define AUG_FN(name) AUG_CAT(name, AUGMENT_SFX)

/* Writes the c channels of one output pixel sampled at input position (r, q). */
static inline void AUG_FN(sample_pixel)(const pycnn_warp_desc *d, const AUGMENT_T *img,
                                        double r, double q, AUGMENT_T *out)
{
    const int64_t c = d->c, w = d->w;
    int outside = 0;
    r = fold_coord(r, d->h, d->fill_mode, &outside);
    q = fold_coord(q, d->w, d->fill_mode, &outside);
    if (outside) {
        const AUGMENT_T fill = (AUGMENT_T)d->cval;
        for (int64_t ch = 0; ch < c; ch++)
            out[ch] = fill;
        return;
    }
    const axis_taps tr = axis_sample(r, d->h, d->order);
    const axis_taps tq = axis_sample(q, d->w, d->order);
    const AUGMENT_T *p00 = img + (tr.i0 * w + tq.i0) * c;
    if (d->order == 0) {
        for (int64_t ch = 0; ch < c; ch++)
            out[ch] = p00[ch];
        return;
    }
    const AUGMENT_T *p01 = img + (tr.i0 * w + tq.i1) * c;
    const AUGMENT_T *p10 = img + (tr.i1 * w + tq.i0) * c;
    const AUGMENT_T *p11 = img + (tr.i1 * w + tq.i1) * c;
    const double wr1 = tr.w1, wr0 = 1.0 - tr.w1, wq1 = tq.w1, wq0 = 1.0 - tq.w1;
    const AUGMENT_T w00 = (AUGMENT_T)(wr0 * wq0), w01 = (AUGMENT_T)(wr0 * wq1);
    const AUGMENT_T w10 = (AUGMENT_T)(wr1 * wq0), w11 = (AUGMENT_T)(wr1 * wq1);
    for (int64_t ch = 0; ch < c; ch++)
        out[ch] = w00 * p00[ch] + w01 * p01[ch] + w10 * p10[ch] + w11 * p11[ch];
}

/* Bilinear samples of output pixels (i, j0..j1-1) known to lie inside the image: the
 * same arithmetic as sample_pixel (bit-identical results) without the boundary work. */
static void AUG_FN(bilinear_inside)(const pycnn_warp_desc *d, const AUGMENT_T *img, const double *m,
                                    int64_t i, int64_t j0, int64_t j1, AUGMENT_T *out_row)
{
    const int64_t c = d->c, w = d->w;
    for (int64_t j = j0; j < j1; j++) {
        const double r = m[0] * (double)i + m[1] * (double)j + m[2];
        const double q = m[3] * (double)i + m[4] * (double)j + m[5];
        const int64_t ir = (int64_t)r, iq = (int64_t)q;   /* r, q > 0: truncation is floor */
        const double wr1 = r - (double)ir, wr0 = 1.0 - wr1, wq1 = q - (double)iq, wq0 = 1.0 - wq1;
        const AUGMENT_T w00 = (AUGMENT_T)(wr0 * wq0), w01 = (AUGMENT_T)(wr0 * wq1);
        const AUGMENT_T w10 = (AUGMENT_T)(wr1 * wq0), w11 = (AUGMENT_T)(wr1 * wq1);
        const AUGMENT_T *p00 = img + (ir * w + iq) * c, *p01 = p00 + c;
        const AUGMENT_T *p10 = p00 + w * c, *p11 = p10 + c;
        AUGMENT_T *o = out_row + j * c;
        for (int64_t ch = 0; ch < c; ch++)
            o[ch] = w00 * p00[ch] + w01 * p01[ch] + w10 * p10[ch] + w11 * p11[ch];
    }
}

static void AUG_FN(affine_image)(const pycnn_warp_desc *d, const void *xv, const double *mats,
                                 void *yv, int64_t k)
{
    const int64_t in_stride = d->h * d->w * d->c, out_stride = d->oh * d->ow * d->c;
    const AUGMENT_T *img = (const AUGMENT_T *)xv + k * in_stride;
    AUGMENT_T *out = (AUGMENT_T *)yv + k * out_stride;
    const double *m = mats + 6 * k;
    /* The identity (no transform drawn for this image) is a plain copy. */
    if (m[0] == 1.0 && m[1] == 0.0 && m[2] == 0.0 && m[3] == 0.0 && m[4] == 1.0 &&
        m[5] == 0.0 && d->oh == d->h && d->ow == d->w) {
        memcpy(out, img, (size_t)in_stride * sizeof(AUGMENT_T));
        return;
    }
    for (int64_t i = 0; i < d->oh; i++) {
        AUGMENT_T *out_row = out + i * d->ow * d->c;
        /* Columns whose bilinear taps all lie inside take the fast path; the rest (near
         * the borders) go through the full boundary handling. */
        int64_t j0 = 0, j1 = 0;
        if (d->order == 1)
            inside_columns(m[0] * (double)i + m[2], m[1], m[3] * (double)i + m[5], m[4],
                           d->h, d->w, d->ow, &j0, &j1);
        for (int64_t j = 0; j < d->ow; j++) {
            if (j == j0 && j1 > j0) {
                AUG_FN(bilinear_inside)(d, img, m, i, j0, j1, out_row);
                j = j1 - 1;
                continue;
            }
            const double r = m[0] * (double)i + m[1] * (double)j + m[2];
            const double q = m[3] * (double)i + m[4] * (double)j + m[5];
            AUG_FN(sample_pixel)(d, img, r, q, out_row + j * d->c);
        }
    }
}

static void AUG_FN(coords_image)(const pycnn_warp_desc *d, const void *xv, const double *coords,
                                 void *yv, int64_t k)
{
    const int64_t in_stride = d->h * d->w * d->c, out_stride = d->oh * d->ow * d->c;
    const AUGMENT_T *img = (const AUGMENT_T *)xv + k * in_stride;
    AUGMENT_T *out = (AUGMENT_T *)yv + k * out_stride;
    const double *cm = coords + k * d->oh * d->ow * 2;
    for (int64_t p = 0; p < d->oh * d->ow; p++)
        AUG_FN(sample_pixel)(d, img, cm[2 * p], cm[2 * p + 1], out + p * d->c);
}

#undef AUG_FN
#undef AUG_CAT
#undef AUG_CAT_

#endif /* AUGMENT_T */
