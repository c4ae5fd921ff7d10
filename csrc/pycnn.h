/*
 * pycnn engine — public header.
 *
 * Layout.  Activations are NHWC: x[n][h][w][c] (1-D data is the h = 1 case).
 *          Convolution filters are HWIO: w[kh][kw][c_in / groups][c_out].
 *          Transposed-convolution filters are Keras's (kh, kw, c_out, c_in).
 * Types.   Every op runs on float32 or float64, chosen by the descriptor's
 *          dtype; data pointers are void * to arrays of that type.
 * Calls.   Per op: fill a descriptor, call pycnn_<op>_check() (validates and
 *          fills the output size), ask pycnn_<op>_workspace_size() for the
 *          scratch bytes, allocate them once, then run the passes.  Kernels
 *          never allocate, print, abort or exit: they return a pycnn_status.
 * Threads. pycnn_set_num_threads() bounds the worker threads (OpenMP when
 *          built with it).  Work is split into chunks whose size depends only
 *          on the descriptor, and reductions add chunk partials in a fixed
 *          order, so results are bit-identical for any thread count.
 * Stops.   Long kernels call the interrupt poll (if set) between chunks and
 *          return PYCNN_ERR_INTERRUPTED when it asks them to stop.
 */
#ifndef PYCNN_H
#define PYCNN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    PYCNN_OK = 0,
    PYCNN_ERR_NULL_POINTER,         /* a required pointer was NULL            */
    PYCNN_ERR_BAD_DTYPE,            /* dtype is not float32/float64           */
    PYCNN_ERR_BAD_SHAPE,            /* a size is < 1 (batch < 0)              */
    PYCNN_ERR_BAD_STRIDE,           /* stride < 1                             */
    PYCNN_ERR_BAD_DILATION,         /* dilation < 1                           */
    PYCNN_ERR_BAD_PADDING,          /* padding < 0, or too large for the op   */
    PYCNN_ERR_BAD_GROUPS,           /* groups < 1 or not dividing channels    */
    PYCNN_ERR_KERNEL_TOO_LARGE,     /* effective kernel > padded input        */
    PYCNN_ERR_BAD_OUTPUT_SIZE,      /* requested output size is inconsistent  */
    PYCNN_ERR_OVERFLOW,             /* a size product overflows int64         */
    PYCNN_ERR_WORKSPACE_TOO_SMALL,  /* caller's workspace is smaller than asked */
    PYCNN_ERR_INTERRUPTED,          /* the interrupt poll asked to stop       */
    PYCNN_ERR_BAD_PARAMETER,        /* a mode or scalar parameter is out of range */
    PYCNN_ERR_BAD_INDEX,            /* a stored pooling index is outside its window */
    PYCNN_ERR_INDEX_RANGE,          /* an image plane has more positions than int32 holds */
    PYCNN_ERR_PACKED_MISMATCH,      /* packed filters made for another layer, dtype or kernel */
    PYCNN_STATUS_COUNT
} pycnn_status;

typedef enum { PYCNN_FLOAT32 = 0, PYCNN_FLOAT64 = 1 } pycnn_dtype;

/* A short English description of a status, e.g. "stride must be >= 1". */
const char *pycnn_status_str(pycnn_status status);

/* Worker threads for the following calls (>= 1); returns the value in force. */
int pycnn_set_num_threads(int n);
int pycnn_get_num_threads(void);

/* The GEMM micro-kernel in use: "ref", "avx2" or "avx512" (PYCNN_ISA overrides). */
const char *pycnn_isa(void);

/* Interrupt poll: called from the calling thread between chunks of long
 * kernels; a non-zero return stops the kernel with PYCNN_ERR_INTERRUPTED.
 * NULL disables polling.  Set once, before kernels run. */
typedef int (*pycnn_interrupt_poll)(void);
void pycnn_set_interrupt_poll(pycnn_interrupt_poll poll);

/* ---- Convolution (also dense layers: n rows, 1x1 kernel, h = w = 1) ---- */

/* An activation the convolution forward applies to each output value right
 * after its bias, while the chunk is still in cache (no extra pass over y).
 * The operations are those of pycnn_activation_forward with the same
 * parameters (relu, leaky_relu, clamp), so the results are bitwise equal to
 * the convolution followed by that op.  A zero-initialized epilogue is none. */
typedef enum {
    PYCNN_EPILOGUE_NONE = 0,
    PYCNN_EPILOGUE_RELU = 1,
    PYCNN_EPILOGUE_LEAKY_RELU = 2,
    PYCNN_EPILOGUE_CLAMP = 3,
} pycnn_epilogue_mode;

typedef struct {
    pycnn_epilogue_mode mode;
    double negative_slope;           /* leaky_relu                                  */
    double clamp_lo, clamp_hi;       /* clamp: clamp_lo <= clamp_hi, neither NaN    */
} pycnn_epilogue;

typedef struct {
    pycnn_dtype dtype;
    int64_t n, h, w, c_in;           /* input  x [n, h, w, c_in]                */
    int64_t kh, kw, c_out, groups;   /* filter w [kh, kw, c_in / groups, c_out] */
    int64_t stride_h, stride_w, dilation_h, dilation_w;
    int64_t pad_top, pad_bottom, pad_left, pad_right;
    int64_t oh, ow;                  /* output y [n, oh, ow, c_out]; filled by check */
    pycnn_epilogue epilogue;         /* forward only; the backward passes ignore it */
} pycnn_conv2d_desc;

pycnn_status pycnn_conv2d_check(pycnn_conv2d_desc *d);
pycnn_status pycnn_conv2d_workspace_size(const pycnn_conv2d_desc *d, size_t *bytes);
/* y = epilogue(x (*) w + bias); bias [c_out] may be NULL. */
pycnn_status pycnn_conv2d_forward(const pycnn_conv2d_desc *d,
                                  const void *x, const void *w, const void *bias,
                                  void *y, void *workspace, size_t workspace_size);

/* Filters packed once for many forward calls (inference: the same weights on
 * batch after batch).  The forward's blocked GEMM otherwise packs its B (the
 * filters) on every call: at batch 1 that copy is 15-45% of a deep layer or a
 * dense layer's time.  pycnn_conv2d_packed_filters_size() gives the bytes the
 * packed copy takes, or 0 when the forward on this descriptor would not read
 * one (the low-channel, thin and narrow paths, or at most 4 output rows);
 * pycnn_conv2d_pack_filters() fills it from w, and pycnn_conv2d_forward_packed()
 * uses it in place of packing w, with bitwise the same result.  The packed copy
 * depends on the filters' shape, the groups, the dtype and the GEMM kernel in
 * use, not on the batch or image size; a copy made for another one is refused
 * (PYCNN_ERR_PACKED_MISMATCH).  w must still be given: paths that do not read
 * the packed copy (a batch of 1-4 rows, say) read w. */
pycnn_status pycnn_conv2d_packed_filters_size(const pycnn_conv2d_desc *d, size_t *bytes);
pycnn_status pycnn_conv2d_pack_filters(const pycnn_conv2d_desc *d, const void *w,
                                       void *packed, size_t packed_size);
/* pycnn_conv2d_forward with filters packed beforehand (packed may be NULL). */
pycnn_status pycnn_conv2d_forward_packed(const pycnn_conv2d_desc *d,
                                         const void *x, const void *w,
                                         const void *packed, size_t packed_size,
                                         const void *bias, void *y,
                                         void *workspace, size_t workspace_size);
/* dx = gradient of the loss w.r.t. x given dy [n, oh, ow, c_out]. */
pycnn_status pycnn_conv2d_backward_data(const pycnn_conv2d_desc *d,
                                        const void *dy, const void *w,
                                        void *dx, void *workspace, size_t workspace_size);
/* dw [kh, kw, c_in/groups, c_out] and dbias [c_out] (may be NULL). */
pycnn_status pycnn_conv2d_backward_filter(const pycnn_conv2d_desc *d,
                                          const void *x, const void *dy,
                                          void *dw, void *dbias,
                                          void *workspace, size_t workspace_size);

/* im2col: cols [n, oh, ow, kh * kw * c_in] with patch order (kh, kw, c_in);
 * col2im is its adjoint (overlapping patches are summed into x).
 * c_out and groups of the descriptor are ignored (treated as 1). */
pycnn_status pycnn_im2col_forward(const pycnn_conv2d_desc *d, const void *x, void *cols);
pycnn_status pycnn_col2im_forward(const pycnn_conv2d_desc *d, const void *cols, void *x);

/* ---- Transposed convolution (the adjoint of conv2d w.r.t. its input) ---- */
typedef struct {
    pycnn_dtype dtype;
    int64_t n, h, w, c_in;           /* input  x [n, h, w, c_in]                 */
    int64_t kh, kw, c_out;           /* filter w [kh, kw, c_out, c_in] (Keras)   */
    int64_t stride_h, stride_w, dilation_h, dilation_w;
    int64_t crop_top, crop_left;     /* rows/cols cut from the start of the full output */
    int64_t oh, ow;                  /* output y [n, oh, ow, c_out]; set by the caller  */
} pycnn_conv2d_transpose_desc;

pycnn_status pycnn_conv2d_transpose_check(pycnn_conv2d_transpose_desc *d);
pycnn_status pycnn_conv2d_transpose_workspace_size(const pycnn_conv2d_transpose_desc *d,
                                                   size_t *bytes);
pycnn_status pycnn_conv2d_transpose_forward(const pycnn_conv2d_transpose_desc *d,
                                            const void *x, const void *w, const void *bias,
                                            void *y, void *workspace, size_t workspace_size);
pycnn_status pycnn_conv2d_transpose_backward_data(const pycnn_conv2d_transpose_desc *d,
                                                  const void *dy, const void *w,
                                                  void *dx, void *workspace, size_t workspace_size);
pycnn_status pycnn_conv2d_transpose_backward_filter(const pycnn_conv2d_transpose_desc *d,
                                                    const void *x, const void *dy,
                                                    void *dw, void *dbias,
                                                    void *workspace, size_t workspace_size);

/* ---- Pooling (global pooling is the window = whole input case) ---- */
typedef enum { PYCNN_POOL_MAX = 0, PYCNN_POOL_AVG = 1 } pycnn_pool_mode;

typedef struct {
    pycnn_dtype dtype;
    pycnn_pool_mode mode;
    int64_t n, h, w, c;              /* input  x [n, h, w, c]  */
    int64_t kh, kw;                  /* window                 */
    int64_t stride_h, stride_w;
    int64_t pad_top, pad_bottom, pad_left, pad_right;  /* each < the window size */
    int64_t oh, ow;                  /* output y [n, oh, ow, c]; filled by check */
} pycnn_pool2d_desc;

/* Max ignores padded cells and propagates NaN; average divides by the number
 * of real (unpadded) cells.  Max backward routes each dy to the first maximal
 * cell of its window in row-major order (the first NaN if there is one). */
pycnn_status pycnn_pool2d_check(pycnn_pool2d_desc *d);
pycnn_status pycnn_pool2d_forward(const pycnn_pool2d_desc *d, const void *x, void *y);
pycnn_status pycnn_pool2d_backward(const pycnn_pool2d_desc *d,
                                   const void *x, const void *dy, void *dx);

/* Max pooling with stored argmax (mode PYCNN_POOL_MAX, h * w <= INT32_MAX).
 * indices [n, oh, ow, c] int32: per output element, the position iy * w + ix
 * in its image plane of the cell pycnn_pool2d_backward routes that dy to.
 * backward_indices needs no x: dx = 0, then dx[n, iy, ix, c] += dy[n, oy, ox, c]
 * in (oy, ox) order, so dx equals pycnn_pool2d_backward's bit for bit.  Every
 * index is checked against its own window: one outside it gives
 * PYCNN_ERR_BAD_INDEX (dx is then unspecified; nothing outside dx is written). */
pycnn_status pycnn_pool2d_forward_indices(const pycnn_pool2d_desc *d, const void *x,
                                          void *y, int32_t *indices);
pycnn_status pycnn_pool2d_backward_indices(const pycnn_pool2d_desc *d,
                                           const int32_t *indices, const void *dy, void *dx);

/* ---- Element-wise activations (any shape, seen as a flat array) ---- */
typedef enum {
    PYCNN_ACTIVATION_RELU = 0,
    PYCNN_ACTIVATION_LEAKY_RELU = 1,
    PYCNN_ACTIVATION_SIGMOID = 2,
    PYCNN_ACTIVATION_TANH = 3,
    PYCNN_ACTIVATION_CLAMP = 4,
} pycnn_activation_mode;

typedef struct {
    pycnn_dtype dtype;
    pycnn_activation_mode mode;
    int64_t count;                   /* elements of x, y, dy and dx (>= 0)         */
    double negative_slope;           /* leaky_relu's slope for x <= 0, as dtype     */
    double clamp_lo, clamp_hi;       /* clamp's bounds, as dtype: lo <= hi, not NaN */
} pycnn_activation_desc;

/* relu:       y = max(x, 0), NaN stays NaN and -0 becomes +0;  dx = x > 0 ? dy : 0.
 * leaky_relu: y = x > 0 ? x : slope * x;                       dx = x > 0 ? dy : slope * dy.
 * sigmoid:    y = 1 / (1 + exp(-x)), no overflow for any x;   dx = dy * y * (1 - y).
 * tanh:       y = tanh(x);                                    dx = dy * (1 - y * y).
 * clamp:      y = x <= lo ? lo : x >= hi ? hi : x (PyTorch's hardtanh; -0 at lo = 0
 *             becomes +0 like relu, NaN stays NaN);           dx = lo < x < hi ? dy : 0
 *             (0 at NaN, as relu's; PyTorch passes dy there).
 * relu, leaky_relu with slope >= 0 and clamp give the same dx when passed their
 * output y in place of x (y > 0 iff x > 0; lo < y < hi iff lo < x < hi), so a
 * layer may keep y only.
 *   (float32 within 2 ulp of the exact value, float64 through libm; the
 *   backward passes recompute y from x; NaN stays NaN.)
 * Outputs must not overlap the inputs. */
pycnn_status pycnn_activation_check(const pycnn_activation_desc *d);
pycnn_status pycnn_activation_forward(const pycnn_activation_desc *d, const void *x, void *y);
pycnn_status pycnn_activation_backward(const pycnn_activation_desc *d,
                                       const void *x, const void *dy, void *dx);

/* ---- Batch normalization over channels_last data ---- */
typedef struct {
    pycnn_dtype dtype;
    int64_t rows, c;                 /* x, y, dy, dx [rows, c]: every axis but the channel one
                                        flattened into rows; per-channel arrays are [c] */
    double epsilon;                  /* > 0, added to the variance inside the square root */
} pycnn_batch_norm_desc;

/* Per channel, inv_std = 1 / sqrt(var + epsilon) and
 * y = (x - mean) * (inv_std * gamma) + beta; gamma NULL means 1, beta NULL means 0.
 * The statistics are combined from fixed row blocks in a fixed order (Chan's
 * formula in double), so they are accurate for millions of rows and do not
 * depend on the thread count. */
pycnn_status pycnn_batch_norm_check(const pycnn_batch_norm_desc *d);
pycnn_status pycnn_batch_norm_workspace_size(const pycnn_batch_norm_desc *d, size_t *bytes);
/* Training: mean [c] and biased variance [c] of x's rows (rows >= 1) are written, then y. */
pycnn_status pycnn_batch_norm_forward_training(const pycnn_batch_norm_desc *d, const void *x,
                                               const void *gamma, const void *beta,
                                               void *y, void *mean, void *var,
                                               void *workspace, size_t workspace_size);
/* Inference: y from the given statistics mean [c] and var [c] (moving averages). */
pycnn_status pycnn_batch_norm_forward_inference(const pycnn_batch_norm_desc *d, const void *x,
                                                const void *mean, const void *var,
                                                const void *gamma, const void *beta, void *y,
                                                void *workspace, size_t workspace_size);
/* Gradients given dy [rows, c] and the forward's x, mean, var and gamma.
 * batch_stats != 0: mean and var were x's own batch statistics, so the gradient
 * also flows through them; 0: they were constants (inference, frozen layer) and
 * dx = dy * inv_std * gamma.  dgamma = sum(dy * (x - mean)) * inv_std and
 * dbeta = sum(dy) are written when not NULL. */
pycnn_status pycnn_batch_norm_backward(const pycnn_batch_norm_desc *d, int batch_stats,
                                       const void *x, const void *dy,
                                       const void *mean, const void *var, const void *gamma,
                                       void *dx, void *dgamma, void *dbeta,
                                       void *workspace, size_t workspace_size);

/* ---- Winograd convolution (an explicit alternative to conv2d's forward) ----
 * F(tile x tile, 3x3) with tile 2 or 4, for 3x3 kernels, stride 1, dilation 1
 * and groups 1 (any padding and size); the descriptor is conv2d's.  Faster on
 * channel-rich layers, less accurate than conv2d: the error of an output grows
 * with the inputs of its whole (tile + 2)^2 input tile (conv_winograd.c gives
 * the bound).  Forward only; the gradients are conv2d's. */
/* conv2d's check, then PYCNN_ERR_BAD_PARAMETER for a tile other than 2 or 4 or
 * a shape Winograd does not run (kernel not 3x3, stride, dilation or groups != 1). */
pycnn_status pycnn_conv2d_winograd_check(pycnn_conv2d_desc *d, int tile);
pycnn_status pycnn_conv2d_winograd_workspace_size(const pycnn_conv2d_desc *d, int tile, size_t *bytes);
/* y = x (*) w + bias, as pycnn_conv2d_forward; bias [c_out] may be NULL. */
pycnn_status pycnn_conv2d_winograd_forward(const pycnn_conv2d_desc *d, int tile,
                                           const void *x, const void *w, const void *bias,
                                           void *y, void *workspace, size_t workspace_size);
/* The transformed filters G g G^T (4x the filters for tile 4, 16/9 for tile 2),
 * made once for many forward calls as pycnn_conv2d_pack_filters does for the
 * GEMM: ..._size gives the bytes (shape-only: the batch and image size play no
 * part), ..._transform_filters fills them from w, and ..._forward_packed reads
 * them instead of transforming w on every call, with bitwise the same result;
 * a copy made for another kernel, dtype, tile or GEMM kernel is refused
 * (PYCNN_ERR_PACKED_MISMATCH).  packed may be NULL (then: as the plain forward). */
pycnn_status pycnn_conv2d_winograd_filters_size(const pycnn_conv2d_desc *d, int tile, size_t *bytes);
pycnn_status pycnn_conv2d_winograd_transform_filters(const pycnn_conv2d_desc *d, int tile, const void *w,
                                                     void *packed, size_t packed_size);
pycnn_status pycnn_conv2d_winograd_forward_packed(const pycnn_conv2d_desc *d, int tile,
                                                  const void *x, const void *w,
                                                  const void *packed, size_t packed_size,
                                                  const void *bias, void *y,
                                                  void *workspace, size_t workspace_size);

#ifdef __cplusplus
}
#endif
#endif /* PYCNN_H */
