/* Convolution plan shared by conv.c and its dtype template (engine-internal). */
#ifndef PYCNN_CONV_H
#define PYCNN_CONV_H
#include "internal.h"

/* Fixed number of work slots: each owns a column buffer, GEMM packing space
 * and (backward-filter) a partial weight gradient.  Fixed, so the chunk-to-
 * slot assignment and the reduction order never depend on the thread count. */
#define CONV_SLOTS 4
/* Target bytes of one chunk's im2col buffer (L2-sized), and the larger one
 * of layers whose filters take more than CONV_BIG_FILTER_BYTES (see conv.c). */
#define CONV_COL_BUDGET (1 << 20)
#define CONV_COL_BUDGET_BIG (4 << 20)
#define CONV_BIG_FILTER_BYTES (4 << 20)
/* Most bytes the slots' partial weight gradients may take together. */
#define CONV_PARTIAL_BUDGET (64 << 20)
/* Most bytes of the weights packed once per pass (conv_plan.pack_w); larger
 * ones (big dense layers) are packed per chunk, which then costs little extra. */
#define CONV_PACKED_W_BUDGET (16 << 20)
/* Target rows of one chunk when no im2col buffer is needed (1x1 convolutions). */
#define CONV_DIRECT_ROWS 4096
/* Fewest rows a chunk is cut to so that threads have work: below this, the
 * weights would be packed again for too little arithmetic. */
#define CONV_MIN_CHUNK_ROWS 256
/* Narrowest column block when a 1x1 pass with few rows is split by columns. */
#define CONV_MIN_BLOCK_COLS 32
/* Chunks shorter than this make backward-filter split dw by columns (see conv.c). */
#define CONV_SHORT_CHUNK_ROWS 256
/* Grouped layers with at most this many input and output channels per group
 * run the thin-group kernels (conv_thin_impl.h) instead of a GEMM per group. */
#define CONV_THIN_MAX_CIG 8
#define CONV_THIN_MAX_COG 8
/* Most bytes of one slot's ring of channel-expanded rows (else: GEMM per group). */
#define CONV_THIN_RING_BUDGET (4 << 20)

typedef struct {
    int64_t cig, cog;            /* channels per group, in and out       */
    int64_t k;                   /* im2col row length kh * kw * cig      */
    int64_t images;              /* n                                    */
    int64_t rows_per_image;      /* oh * ow                              */
    /* Chunks of output rows: `images_per_chunk` whole images when one image
     * fits the budget (pieces == 1), else each image cut into `pieces` chunks
     * of up to `rows_per_piece` rows.  Chunk c of a cut image is piece
     * c % pieces of image c / pieces. */
    int64_t images_per_chunk, pieces, rows_per_piece, chunks;
    int direct;                  /* 1x1, stride 1, no padding, 1 group: x is its own im2col */
    int thin;                    /* few channels per group (depthwise included): the
                                  * direct loops of conv_thin_impl.h, no GEMM */
    int expand;                  /* thin with cig or cog > 1: rows are channel-expanded
                                  * into a ring (depthwise multiplier 1 reads them in place) */
    /* Thin layers: ring rows for x (forward, backward-filter) and for dy
     * (backward-data), each row cig * c_out values per pixel; the slot holds
     * its scratch indices, the ring tags, then the ring (all in col_bytes). */
    int64_t ring_rows_x, ring_rows_dy, ring_at, ring_bytes;
    /* Filters rearranged once per pass, after the slots (shared_w_bytes): thin
     * expanded layers' filters for backward-data, or (pack_w: a GEMM path cut
     * into several chunks) the GEMM's B packed once for every chunk and thread
     * instead of once per chunk - forward [k, cog] and backward-data [cog, k]
     * per group, each pass only where it runs that GEMM. */
    int pack_w;
    int64_t shared_w_bytes;
    int narrow;                  /* few output channels: GEMMs run transposed (see conv.c) */
    int col_by_tap;              /* narrow, one input channel, stride_w 1: im2col is stored
                                  * transposed, [k, rows], each tap's row a run of x */
    int64_t narrow_bytes;        /* the transposed output buffer, inside col_bytes */
    int low_channel;             /* forward and backward-filter by conv_low_channel.c; its
                                  * buffers end each slot (low_channel_bytes) */
    int64_t low_channel_bytes;
    /* 1x1 passes with fewer chunks than slots also split their output columns
     * (forward: c_out, backward-data: c_in) into this many blocks; backward-
     * filter (1x1, or short chunks: slot 0's im2col buffer shared) splits dw's
     * columns into filter_col_blocks and then needs no partial sums (each
     * element has one owner).  1 = no split. */
    int64_t out_col_blocks, in_col_blocks, filter_col_blocks;
    int64_t col_bytes, pack_bytes, partial_bytes, slot_bytes;
    int64_t slots;
    int64_t work;                /* multiply-adds of one pass (saturating), to decide on threads */
} conv_plan;

/* Elements of one group's packed weights (conv_plan.pack_w): a rows x cols B,
 * its columns rounded up to the micro-kernel's NR. */
static inline int64_t conv_packed_group(int64_t rows, int64_t cols, int64_t nr)
{
    return rows * (ceil_div64(cols, nr) * nr);
}

/* First output row and row count of chunk `chunk`. */
static inline void conv_chunk_rows(const conv_plan *p, int64_t chunk, int64_t *m0, int64_t *rows)
{
    if (p->pieces == 1) {
        *m0 = chunk * p->images_per_chunk * p->rows_per_image;
        *rows = min64(p->images_per_chunk, p->images - chunk * p->images_per_chunk) * p->rows_per_image;
    } else {
        const int64_t start = chunk % p->pieces * p->rows_per_piece;
        *m0 = chunk / p->pieces * p->rows_per_image + start;
        *rows = min64(p->rows_per_piece, p->rows_per_image - start);
    }
}

/* 1 if the rows of an image's dx that each piece's col2im writes are apart
 * from those of the next piece but one: then all even pieces can scatter at
 * once, and then all odd ones (shape-only). */
static inline int conv_pieces_apart(const pycnn_conv2d_desc *d, const conv_plan *p)
{
    const int64_t reach_h = (d->kh - 1) * d->dilation_h;   /* no overflow: checked geometry */
    for (int64_t piece = 0; piece + 2 < p->pieces; piece++) {
        const int64_t last_oy = (min64((piece + 1) * p->rows_per_piece, p->rows_per_image) - 1) / d->ow;
        const int64_t next_first_oy = (piece + 2) * p->rows_per_piece / d->ow;
        if ((next_first_oy - last_oy) * d->stride_h <= reach_h)
            return 0;
    }
    return 1;
}

/* Taps [*lo, *hi) of a kernel of `taps` taps, tap t reading input index
 * start + t * dilation, that fall inside an input of `size` (start may be negative). */
static inline void conv_taps_inside_1d(int64_t start, int64_t size, int64_t taps, int64_t dilation,
                                       int64_t *lo, int64_t *hi)
{
    /* ceil(-start / dilation), written so a hostile dilation (up to INT64_MAX, allowed
     * for a 1-tap kernel) cannot overflow */
    *lo = start >= 0 ? 0 : min64((-start - 1) / dilation + 1, taps);
    *hi = start >= size ? 0 : min64((size - 1 - start) / dilation + 1, taps);
    if (*hi < *lo)
        *hi = *lo;
}

/* Output pixel m and the taps of its window that lie inside the image:
 * rows i in [i_lo, i_hi) read input row iy0 + i * dilation_h, columns j in
 * [j_lo, j_hi) input column ix0 + j * dilation_w. */
typedef struct {
    int64_t n, iy0, ix0, i_lo, i_hi, j_lo, j_hi;
} conv_window;

static inline conv_window conv_pixel_window(const pycnn_conv2d_desc *d, int64_t m)
{
    conv_window win;
    const int64_t pixel = m % (d->oh * d->ow);
    win.n = m / (d->oh * d->ow);
    win.iy0 = pixel / d->ow * d->stride_h - d->pad_top;
    win.ix0 = pixel % d->ow * d->stride_w - d->pad_left;
    conv_taps_inside_1d(win.iy0, d->h, d->kh, d->dilation_h, &win.i_lo, &win.i_hi);
    conv_taps_inside_1d(win.ix0, d->w, d->kw, d->dilation_w, &win.j_lo, &win.j_hi);
    return win;
}

/* The kernel columns [*j_lo, *j_hi) whose taps, starting at input column ix0, are inside the image. */
static inline void conv_taps_inside(const pycnn_conv2d_desc *d, int64_t ix0, int64_t *j_lo, int64_t *j_hi)
{
    conv_taps_inside_1d(ix0, d->w, d->kw, d->dilation_w, j_lo, j_hi);
}

/* Columns [*j0, *j0 + *width) of block `block` when `cols` columns are cut into `blocks`. */
static inline void conv_column_block(int64_t cols, int64_t blocks, int64_t block, int64_t *j0, int64_t *width)
{
    const int64_t step = blocks == 1 ? cols : (ceil_div64(cols, blocks) + 31) / 32 * 32;
    *j0 = min64(block * step, cols);
    *width = min64(step, cols - *j0);
}

/* Column blocks a pass actually uses, at most `planned`: enough for `threads`
 * beside `chunks` row chunks, and none for one thread.  Unlike the row chunks
 * this may follow the thread count: a column split never changes how any
 * element is summed (each is computed whole, in the same order), while a
 * split B matrix streams worse on one core. */
static inline int64_t conv_blocks_for_threads(int64_t planned, int64_t chunks, int threads)
{
    if (threads <= 1 || chunks >= threads)
        return 1;
    return max64(1, min64(planned, ceil_div64(threads, chunks)));
}

/* Validates the geometry; negative trailing padding is allowed only for the
 * transposed convolution's internal descriptor (allow_negative_end). */
pycnn_status conv_check_geometry(pycnn_conv2d_desc *d, int allow_negative_end);
pycnn_status conv_make_plan(const pycnn_conv2d_desc *d, conv_plan *p);

#define DECLARE_CONV_PASSES(SFX, T)                                                        \
    pycnn_status conv_forward_##SFX(const pycnn_conv2d_desc *d, const conv_plan *p,        \
                                    const T *x, const T *w, const T *prepacked,            \
                                    const T *bias, T *y, char *ws);                        \
    void conv_pack_filters_##SFX(const pycnn_conv2d_desc *d, const conv_plan *p,           \
                                 const T *w, T *packed);                                   \
    pycnn_status conv_backward_data_##SFX(const pycnn_conv2d_desc *d, const conv_plan *p,  \
                                          const T *dy, const T *w, T *dx, char *ws);       \
    pycnn_status conv_backward_filter_##SFX(const pycnn_conv2d_desc *d, const conv_plan *p, \
                                            const T *x, const T *dy, T *dw, T *dbias,     \
                                            char *ws);                                     \
    void im2col_by_tap_##SFX(const pycnn_conv2d_desc *d, const T *x, int64_t m0, int64_t rows, T *col_t); \
    void im2col_##SFX(const pycnn_conv2d_desc *d, int64_t cig, int64_t group,              \
                      const T *x, int64_t m0, int64_t rows, T *col);                       \
    void col2im_##SFX(const pycnn_conv2d_desc *d, int64_t cig, int64_t group,              \
                      const T *col, int64_t m0, int64_t rows, T *x);                       \
    void flip_filters_##SFX(const pycnn_conv2d_desc *d, const conv_plan *p, const T *w, T *flipped); \
    void add_bias_##SFX(T *y, const T *bias, int64_t rows, int64_t channels, int64_t ld);              \
    void apply_epilogue_##SFX(const pycnn_conv2d_desc *d, T *y, int64_t rows, int64_t channels, int64_t ld); \
    void add_row_sums_##SFX(const T *dy, int64_t rows, int64_t channels, int64_t ld, T *sum);
DECLARE_CONV_PASSES(f32, float)
DECLARE_CONV_PASSES(f64, double)

#endif
