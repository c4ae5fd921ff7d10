/*
 * pycnn engine — geometric image warps for data augmentation.
 *
 * Layout.  Images are NHWC: x[n][h][w][c], output y[n][oh][ow][c], float32 or
 *          float64 (the descriptor's dtype).
 * Warps.   Each output pixel (row i, column j) is sampled from the input at a
 *          real-valued (row, col) position:
 *            affine:  (row, col) = M_k · (i, j, 1), one 2x3 matrix per image,
 *                     so rotation, shift, shear, zoom and flips are one fused
 *                     matrix (scipy.ndimage.affine_transform's convention);
 *            coords:  (row, col) = map[k][i][j][0..1], a full coordinate map
 *                     (elastic deformation = identity grid + smooth field).
 * Sampling follows scipy.ndimage (order 0 or 1, modes constant / nearest /
 *          reflect / wrap with SciPy's own boundary rules, including its
 *          "wrap" period of n - 1), which is what Keras's legacy
 *          ImageDataGenerator calls.
 * Threads. Images are independent: they are split over the worker threads and
 *          every output value depends only on its own image, so results are
 *          identical for any thread count.  No workspace, no allocation.
 */
#ifndef PYCNN_AUGMENT_H
#define PYCNN_AUGMENT_H

#include "pycnn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    PYCNN_FILL_CONSTANT = 0,   /* kkkk|abcd|kkkk, k = cval                       */
    PYCNN_FILL_NEAREST = 1,    /* aaaa|abcd|dddd                                 */
    PYCNN_FILL_REFLECT = 2,    /* dcba|abcd|dcba (half-sample symmetric)         */
    PYCNN_FILL_WRAP = 3,       /* SciPy "wrap": period n - 1 (first and last overlap) */
    PYCNN_FILL_MODE_COUNT
} pycnn_fill_mode;

typedef struct {
    pycnn_dtype dtype;
    int64_t n, h, w, c;        /* input  x [n, h, w, c]                            */
    int64_t oh, ow;            /* output y [n, oh, ow, c]; set by the caller       */
    int order;                 /* 0 = nearest neighbour, 1 = bilinear              */
    pycnn_fill_mode fill_mode;
    double cval;               /* value outside the image for PYCNN_FILL_CONSTANT */
} pycnn_warp_desc;

/* Validates the descriptor (sizes >= 1, n >= 0, order and mode known, no overflow). */
pycnn_status pycnn_warp_check(const pycnn_warp_desc *d);

/* y[k] = x[k] sampled at M_k · (i, j, 1); matrices [n, 2, 3] (row-major, double). */
pycnn_status pycnn_affine_warp_forward(const pycnn_warp_desc *d,
                                       const void *x, const double *matrices, void *y);

/* y[k][i][j] = x[k] sampled at coords[k][i][j] = (row, col); coords [n, oh, ow, 2] (double). */
pycnn_status pycnn_coords_warp_forward(const pycnn_warp_desc *d,
                                       const void *x, const double *coords, void *y);

#ifdef __cplusplus
}
#endif
#endif /* PYCNN_AUGMENT_H */
