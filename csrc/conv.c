/* Convolution family: conv2d (groups, dilation, padding), its backward
 * passes, im2col/col2im, and the transposed convolution built on them. */
#include <string.h>

#include "activation.h"
#include "conv.h"
#include "conv_low_channel.h"
#include "gemm_tiles.h"

/* The copy and zero-fill loops of im2col are short (a kernel row, an output
 * row): gcc would turn them into memcpy/memset calls that cost more than the
 * loops themselves (LeNet's first layer spent 15% of its time in those calls). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#endif

/* The thin-group kernels: portable (SSE2, the x86-64 baseline), and float32
 * again for AVX2 and AVX-512, chosen by the GEMM's ISA (pycnn_isa, so also
 * PYCNN_ISA); float64, the reference dtype, keeps the portable build. */
#define THIN_TARGET
#define THIN_VEC_BYTES 16
#define THIN_VECS 4
#define THIN_PIXELS 2
#define T float
#define TI int32_t
#define FN(name) name##_f32_base
#include "conv_thin_impl.h"
#undef T
#undef TI
#undef FN
#define T double
#define TI int64_t
#define FN(name) name##_f64_base
#include "conv_thin_impl.h"
#undef T
#undef TI
#undef FN
#undef THIN_TARGET
#undef THIN_VEC_BYTES
#undef THIN_VECS
#undef THIN_PIXELS

#if defined(__x86_64__) && defined(PYCNN_HAVE_X86_KERNELS)
#define THIN_TARGET __attribute__((target("avx2")))
#define THIN_VEC_BYTES 32
#define THIN_VECS 2
#define THIN_PIXELS 4
#define T float
#define TI int32_t
#define FN(name) name##_f32_avx2
#include "conv_thin_impl.h"
#undef T
#undef TI
#undef FN
#undef THIN_TARGET
#undef THIN_VEC_BYTES
#undef THIN_VECS
#undef THIN_PIXELS
#define THIN_TARGET __attribute__((target("avx512f")))
#define THIN_VEC_BYTES 64
#define THIN_VECS 1
#define THIN_PIXELS 8
#define T float
#define TI int32_t
#define FN(name) name##_f32_avx512
#include "conv_thin_impl.h"
#undef T
#undef TI
#undef FN
#undef THIN_TARGET
#undef THIN_VEC_BYTES
#undef THIN_VECS
#undef THIN_PIXELS
/* The AVX-512 build of this C measured faster only for the forward and
 * backward-data passes of depthwise multiplier 1 (ResNeXt's shuffles and
 * the backward-filter row sums come out slower than with AVX2). */
#define THIN_PICK_f32(name, avx512_ok)                                                           \
    ((avx512_ok) && strcmp(pycnn_isa(), "avx512") == 0 && p->cig == 1 && p->cog == 1             \
         ? name##_f32_avx512                                                                     \
     : strcmp(pycnn_isa(), "ref") != 0 ? name##_f32_avx2 : name##_f32_base)
#else
#define THIN_PICK_f32(name, avx512_ok) name##_f32_base
#endif
#define THIN_PICK_f64(name, avx512_ok) name##_f64_base
#define THIN_PICK(name, SFX, avx512_ok) THIN_PICK_##SFX(name, avx512_ok)

#define DEFINE_THIN_DISPATCH(SFX, T)                                                                 \
    static void thin_forward_chunk_##SFX(const pycnn_conv2d_desc *d, const conv_plan *p, const T *x,  \
                                         const T *w, const T *bias, T *y, int64_t m0, int64_t rows,   \
                                         char *slot)                                                  \
    {                                                                                                 \
        THIN_PICK(thin_forward_chunk, SFX, 1)(d, p, x, w, bias, y, m0, rows, slot);                      \
    }                                                                                                 \
    static void thin_backward_filter_chunk_##SFX(const pycnn_conv2d_desc *d, const conv_plan *p,      \
                                                 const T *x, const T *dy, T *dw_part, int64_t m0,     \
                                                 int64_t rows, char *slot)                            \
    {                                                                                                 \
        THIN_PICK(thin_backward_filter_chunk, SFX, 0)(d, p, x, dy, dw_part, m0, rows, slot);             \
    }                                                                                                 \
    static void thin_backward_data_rows_##SFX(const pycnn_conv2d_desc *d, const conv_plan *p,         \
                                              const T *dy, const T *wt, T *dx, int64_t row0,          \
                                              int64_t count, char *slot)                              \
    {                                                                                                 \
        THIN_PICK(thin_backward_data_rows, SFX, 1)(d, p, dy, wt, dx, row0, count, slot);                 \
    }
DEFINE_THIN_DISPATCH(f32, float)
DEFINE_THIN_DISPATCH(f64, double)

#define T float
#define FN(name) name##_f32
#include "conv_impl.h"
#undef T
#undef FN

#define T double
#define FN(name) name##_f64
#include "conv_impl.h"
#undef T
#undef FN

pycnn_status conv_check_geometry(pycnn_conv2d_desc *d, int allow_negative_end)
{
    if (d->dtype != PYCNN_FLOAT32 && d->dtype != PYCNN_FLOAT64)
        return PYCNN_ERR_BAD_DTYPE;
    if (activation_epilogue_check(&d->epilogue) != PYCNN_OK)
        return PYCNN_ERR_BAD_PARAMETER;
    if (d->n < 0 || d->h < 1 || d->w < 1 || d->c_in < 1 || d->kh < 1 || d->kw < 1 || d->c_out < 1)
        return PYCNN_ERR_BAD_SHAPE;
    if (d->stride_h < 1 || d->stride_w < 1)
        return PYCNN_ERR_BAD_STRIDE;
    if (d->dilation_h < 1 || d->dilation_w < 1)
        return PYCNN_ERR_BAD_DILATION;
    if (d->pad_top < 0 || d->pad_left < 0 ||
        (!allow_negative_end && (d->pad_bottom < 0 || d->pad_right < 0)))
        return PYCNN_ERR_BAD_PADDING;
    if (d->groups < 1 || d->c_in % d->groups != 0 || d->c_out % d->groups != 0)
        return PYCNN_ERR_BAD_GROUPS;
    int64_t eff_h, eff_w, padded_h, padded_w;
    /* effective kernel = dilation * (k - 1) + 1; padded size = h + pads */
    if (!mul_ok(d->dilation_h, d->kh - 1, &eff_h) || !add_ok(eff_h, 1, &eff_h) ||
        !mul_ok(d->dilation_w, d->kw - 1, &eff_w) || !add_ok(eff_w, 1, &eff_w) ||
        __builtin_add_overflow(d->h, d->pad_top, &padded_h) ||
        __builtin_add_overflow(padded_h, d->pad_bottom, &padded_h) ||
        __builtin_add_overflow(d->w, d->pad_left, &padded_w) ||
        __builtin_add_overflow(padded_w, d->pad_right, &padded_w))
        return PYCNN_ERR_OVERFLOW;
    if (eff_h > padded_h || eff_w > padded_w)
        return PYCNN_ERR_KERNEL_TOO_LARGE;
    d->oh = (padded_h - eff_h) / d->stride_h + 1;
    d->ow = (padded_w - eff_w) / d->stride_w + 1;
    /* Every array the passes touch must have an int64 element count. */
    int64_t count;
    const int64_t x_dims[] = {d->n, d->h, d->w, d->c_in};
    const int64_t y_dims[] = {d->n, d->oh, d->ow, d->c_out};
    const int64_t w_dims[] = {d->kh, d->kw, d->c_in, d->c_out, (int64_t)dtype_size(d->dtype)};
    const int64_t col_dims[] = {d->oh, d->ow, d->kh, d->kw, d->c_in, (int64_t)dtype_size(d->dtype)};
    if (!product_ok(x_dims, 4, &count) || !mul_ok(count, (int64_t)dtype_size(d->dtype), &count) ||
        !product_ok(y_dims, 4, &count) || !mul_ok(count, (int64_t)dtype_size(d->dtype), &count) ||
        !product_ok(w_dims, 5, &count) || !product_ok(col_dims, 6, &count))
        return PYCNN_ERR_OVERFLOW;
    return PYCNN_OK;
}

pycnn_status pycnn_conv2d_check(pycnn_conv2d_desc *d)
{
    if (d == NULL)
        return PYCNN_ERR_NULL_POINTER;
    return conv_check_geometry(d, 0);
}

/* Whether a grouped layer takes the thin-group kernels, and their slot
 * workspace: scratch indices (3 kh + 2 kw: readers of an input row and column,
 * ring row offsets), the ring tags, then the ring of channel-expanded rows.
 * Measured on ResNeXt-like layers: up to 8 channels per group beat a GEMM per
 * group; AlexNet-style groups (48+ channels each) keep the GEMM. */
static pycnn_status plan_thin(const pycnn_conv2d_desc *d, conv_plan *p, int64_t size)
{
    p->thin = p->expand = 0;
    p->ring_rows_x = p->ring_rows_dy = p->ring_at = p->ring_bytes = p->shared_w_bytes = 0;
    if (d->groups == 1 || p->cig > CONV_THIN_MAX_CIG || p->cog > CONV_THIN_MAX_COG)
        return PYCNN_OK;
    const int expand = p->cig > 1 || p->cog > 1;
    const int64_t eff_h = (d->kh - 1) * d->dilation_h + 1;   /* no overflow: checked geometry */
    int64_t lanes, ring_x, ring_dy, ring_bytes = 0;
    if (expand) {
        /* A window spans eff_h input rows, and an input row's readers
         * (eff_h - 1) / stride_h + 1 output rows. */
        if (!mul_ok(p->cig, d->c_out, &lanes) || !mul_ok(eff_h, d->w, &ring_x) ||
            !mul_ok((eff_h - 1) / d->stride_h + 1, d->ow, &ring_dy) ||
            !mul_ok(max64(ring_x, ring_dy), lanes, &ring_bytes) || !mul_ok(ring_bytes, size, &ring_bytes) ||
            ring_bytes > CONV_THIN_RING_BUDGET)
            return PYCNN_OK;   /* rows too long for the ring: GEMM per group */
        p->ring_rows_x = eff_h;
        p->ring_rows_dy = (eff_h - 1) / d->stride_h + 1;
        p->shared_w_bytes = align_up64(d->kh * d->kw * lanes * size);   /* within the checked w size */
    }
    int64_t indices;
    if (!add_ok(3 * d->kh, 2 * d->kw, &indices) || !add_ok(indices, max64(p->ring_rows_x, p->ring_rows_dy), &indices) ||
        !mul_ok(indices, (int64_t)sizeof(int64_t), &p->ring_at))
        return PYCNN_ERR_OVERFLOW;
    p->ring_at = align_up64(p->ring_at);
    p->ring_bytes = align_up64(ring_bytes);
    p->thin = 1;
    p->expand = expand;
    return PYCNN_OK;
}

pycnn_status conv_make_plan(const pycnn_conv2d_desc *d, conv_plan *p)
{
    const int64_t size = (int64_t)dtype_size(d->dtype);
    p->cig = d->c_in / d->groups;
    p->cog = d->c_out / d->groups;
    p->k = d->kh * d->kw * p->cig;            /* no overflow: checked with col_dims */
    p->rows_per_image = d->oh * d->ow;
    p->direct = d->kh == 1 && d->kw == 1 && d->stride_h == 1 && d->stride_w == 1 &&
                d->pad_top == 0 && d->pad_bottom == 0 && d->pad_left == 0 &&
                d->pad_right == 0 && d->groups == 1;
    /* Few channels per group (depthwise included) are too thin for GEMM: direct
     * loops vectorized over channels, with no im2col (conv_thin_impl.h). */
    pycnn_status st = plan_thin(d, p, size);
    if (st != PYCNN_OK)
        return st;
    const int no_col = p->direct || p->thin;
    const int64_t row_bytes = no_col ? 0 : p->k * size;
    /* Every chunk streams all the filters through its GEMM: big ones (VGG's
     * conv4/5, 9.4 MB) are better streamed 4x less often than with an im2col
     * buffer kept in L2 (conv5_2 at batch 1: 11.6 -> 9.6 ms, 1 thread). */
    int64_t w_bytes;
    const int big_filters = !mul_ok(p->k * size, d->c_out, &w_bytes) || w_bytes > CONV_BIG_FILTER_BYTES;
    const int64_t col_budget = big_filters ? CONV_COL_BUDGET_BIG : CONV_COL_BUDGET;
    const int64_t budget_rows = no_col ? CONV_DIRECT_ROWS : max64(col_budget / max64(row_bytes, 1), 1);
    p->images = d->n;
    /* Chunks of about a quarter of all rows, so threads have work, but never
     * under CONV_MIN_CHUNK_ROWS nor over the buffer budget.  Shape-only. */
    int64_t total_rows;
    if (!mul_ok(d->n, p->rows_per_image, &total_rows))
        return PYCNN_ERR_OVERFLOW;
    const int64_t target_rows = min64(budget_rows, max64(ceil_div64(total_rows, CONV_SLOTS), CONV_MIN_CHUNK_ROWS));
    if (p->rows_per_image <= target_rows) {
        p->pieces = 1;
        p->images_per_chunk = target_rows / p->rows_per_image;
        p->rows_per_piece = p->images_per_chunk * p->rows_per_image;
        p->chunks = ceil_div64(d->n, p->images_per_chunk);
    } else {
        /* An image larger than the target is cut into balanced pieces of rows. */
        p->pieces = ceil_div64(p->rows_per_image, target_rows);
        if (p->pieces % 2 == 1 && d->n % 2 == 1)   /* an even count keeps both of 2 threads busy */
            p->pieces++;
        p->rows_per_piece = ceil_div64(p->rows_per_image, p->pieces);
        p->images_per_chunk = 1;
        if (!mul_ok(d->n, p->pieces, &p->chunks))
            return PYCNN_ERR_OVERFLOW;
    }
    /* The low-channel path works on whole output rows: a cut image is cut between them. */
    p->low_channel = conv_low_channel_eligible(d, p);
    if (p->low_channel && p->pieces > 1) {
        /* ... into a multiple of CONV_SLOTS pieces where the image has the rows, so that
         * threads and backward-filter's slots get equal shares: AlexNet conv1's 55 rows as
         * 8 pieces of 7 (one of 6), not 5 of 10 and one of 5; at 2 threads forward 1.12 ->
         * 1.05 ms, backward-data 1.43 -> 1.18, backward-filter 1.43 -> 1.35 (VGG16 conv1_1
         * backward-data 2.1 -> 1.65 ms). */
        const int64_t pieces = min64(ceil_div64(p->pieces, CONV_SLOTS) * CONV_SLOTS, d->oh);
        p->rows_per_piece = ceil_div64(d->oh, pieces) * d->ow;
        p->pieces = ceil_div64(p->rows_per_image, p->rows_per_piece);
        if (!mul_ok(d->n, p->pieces, &p->chunks))
            return PYCNN_ERR_OVERFLOW;
    }
    /* Fewer chunks than slots: a one-group GEMM forward pass splits its output
     * columns as well (each block making its own im2col), and a 1x1
     * backward-data pass its input columns. */
    const int64_t want_blocks = !p->thin && !p->low_channel && d->groups == 1 && p->chunks < CONV_SLOTS
                                    ? ceil_div64(CONV_SLOTS, max64(p->chunks, 1)) : 1;
    p->out_col_blocks = max64(1, min64(want_blocks, d->c_out / CONV_MIN_BLOCK_COLS));
    p->in_col_blocks = p->direct ? max64(1, min64(want_blocks, d->c_in / CONV_MIN_BLOCK_COLS)) : 1;
    /* Backward-filter by column blocks of dw: always for 1x1 (x is the im2col);
     * otherwise when a few chunks are short (a deep layer on one image), where
     * slot partials would be re-read and re-written for little arithmetic each.
     * With more chunks than slots each thread reduces its own (a 1-D layer of
     * 256 -> 64 channels on 16 images at 2 threads: 19.0 -> 11.3 ms). */
    const int short_chunks = !p->direct && !p->thin && d->groups == 1 &&
                             p->rows_per_piece < CONV_SHORT_CHUNK_ROWS && p->chunks <= CONV_SLOTS;
    p->filter_col_blocks = p->direct || short_chunks ? max64(1, min64(CONV_SLOTS, d->c_out / CONV_MIN_BLOCK_COLS)) : 1;
    p->slots = min64(CONV_SLOTS, max64(p->chunks * max64(p->out_col_blocks, p->in_col_blocks),
                                        max64(p->filter_col_blocks, 1)));
    const int64_t work_dims[] = {d->n, p->rows_per_image, p->k, d->c_out};
    if (!product_ok(work_dims, 4, &p->work))
        p->work = INT64_MAX;
    const int64_t rows = p->rows_per_piece;   /* the most rows any chunk has */
    int64_t partial;
    p->col_bytes = 0;
    if (!no_col && !mul_ok(rows, row_bytes, &p->col_bytes))
        return PYCNN_ERR_OVERFLOW;
    if (p->thin)
        p->col_bytes = p->ring_at + p->ring_bytes;
    p->col_bytes = align_up64(p->col_bytes);
    /* Few output channels per group (up to two tiles of rows) fill a GEMM tile's
     * rows far better than its (wide) columns: such layers compute y^T = w^T col^T into a buffer of
     * cog x rows and transpose it, and keep their weight gradient transposed. */
    p->narrow = !p->thin && p->cog <= 2 * GEMM_MR_MAX && p->k >= GEMM_MR_MAX;
    p->col_by_tap = p->narrow && !p->direct && d->groups == 1 && d->c_in == 1 && d->stride_w == 1;
    p->narrow_bytes = 0;
    if (p->narrow && !mul_ok(rows * size, p->cog, &p->narrow_bytes))
        return PYCNN_ERR_OVERFLOW;
    p->narrow_bytes = align_up64(p->narrow_bytes);
    if (!add_ok(p->col_bytes, p->narrow_bytes, &p->col_bytes))
        return PYCNN_ERR_OVERFLOW;
    /* The GEMMs of all passes, in both orientations. */
    p->pack_bytes = p->thin ? 0 :
        align_up64(max64(gemm_pack_bytes(d->dtype, rows, max64(p->cog, p->k), max64(p->k, p->cog)),
                         gemm_pack_bytes(d->dtype, max64(p->k, p->cog), max64(p->k, rows), max64(rows, p->k))));
    if (!mul_ok(p->k * d->c_out + d->c_out, size, &partial))
        return PYCNN_ERR_OVERFLOW;
    /* Column-split backward-filter writes dw directly: no partials. */
    p->partial_bytes = p->filter_col_blocks > 1 ? 0 : align_up64(partial);
    /* Large weights (a big dense layer): one partial gradient, not one per slot. */
    if (p->partial_bytes > CONV_PARTIAL_BUDGET / CONV_SLOTS)
        p->slots = 1;
    p->low_channel_bytes = p->low_channel ? conv_low_channel_slot_bytes(d, p) : 0;
    p->low_channel = p->low_channel_bytes > 0;
    /* B packed once per pass rather than once per chunk when a thread runs
     * several chunks (from 3: with 2, each of 2 threads packs its own blocks
     * in L2, 5% faster than reading a shared B; resnet50 res4 3x3). */
    p->pack_w = 0;
    if (!p->thin && p->chunks > 2) {
        const int64_t nr = gemm_nr(d->dtype);
        int64_t forward, backward, packed;   /* (hostile shapes: every product checked) */
        if (p->k <= INT64_MAX - nr && p->cog <= INT64_MAX - nr &&
            mul_ok(p->k, conv_packed_group(1, p->cog, nr), &forward) &&
            mul_ok(p->cog, conv_packed_group(1, p->k, nr), &backward) &&
            mul_ok(max64(forward, backward), d->groups, &packed) && mul_ok(packed, size, &packed) &&
            packed <= CONV_PACKED_W_BUDGET) {
            p->pack_w = 1;
            p->shared_w_bytes = align_up64(packed);
        }
    }
    if (!add_ok(p->col_bytes, p->pack_bytes, &p->slot_bytes) ||
        !add_ok(p->slot_bytes, p->partial_bytes, &p->slot_bytes) ||
        !add_ok(p->slot_bytes, p->low_channel_bytes, &p->slot_bytes))
        return PYCNN_ERR_OVERFLOW;
    if (d->n == 0)   /* nothing to compute: no workspace (the passes only zero dw, dbias) */
        p->slot_bytes = p->slots = p->shared_w_bytes = 0;
    int64_t total;
    if (!mul_ok(p->slot_bytes, p->slots, &total) || !add_ok(total, p->shared_w_bytes, &total))
        return PYCNN_ERR_OVERFLOW;
    return PYCNN_OK;
}

/* Backward-data of a stride-1 convolution is the forward convolution of dy
 * with the filters flipped in space and their in/out channels swapped (the
 * lecture's "backprop is a convolution with flipped filters"): a gather with
 * no col2im scatter, split over rows like the forward pass even for one image.
 * The padding becomes reach - pad on each side, so it applies when every pad
 * lies in [0, reach]; thin-group (depthwise included) and 1x1 layers keep
 * their own kernels. */
typedef struct {
    pycnn_conv2d_desc d;   /* the forward convolution that computes dx */
    conv_plan p;
    int64_t w_bytes;       /* the flipped filters, at the start of the workspace */
} flipped_conv;

static int plan_flipped(const pycnn_conv2d_desc *d, const conv_plan *p, flipped_conv *f)
{
    if (d->stride_h != 1 || d->stride_w != 1 || p->direct || p->thin || d->n == 0)
        return 0;
    const int64_t reach_h = (d->kh - 1) * d->dilation_h, reach_w = (d->kw - 1) * d->dilation_w;
    if (d->pad_top < 0 || d->pad_top > reach_h || d->pad_bottom < 0 || d->pad_bottom > reach_h ||
        d->pad_left < 0 || d->pad_left > reach_w || d->pad_right < 0 || d->pad_right > reach_w)
        return 0;
    f->d = (pycnn_conv2d_desc){
        .dtype = d->dtype, .n = d->n, .h = d->oh, .w = d->ow, .c_in = d->c_out,
        .kh = d->kh, .kw = d->kw, .c_out = d->c_in, .groups = d->groups,
        .stride_h = 1, .stride_w = 1, .dilation_h = d->dilation_h, .dilation_w = d->dilation_w,
        .pad_top = reach_h - d->pad_top, .pad_bottom = reach_h - d->pad_bottom,
        .pad_left = reach_w - d->pad_left, .pad_right = reach_w - d->pad_right,
    };
    int64_t w_bytes;
    if (conv_check_geometry(&f->d, 0) != PYCNN_OK || f->d.oh != d->h || f->d.ow != d->w ||
        conv_make_plan(&f->d, &f->p) != PYCNN_OK ||
        !mul_ok(p->k * (int64_t)dtype_size(d->dtype), d->c_out, &w_bytes))
        return 0;
    f->w_bytes = align_up64(w_bytes);
    /* Few channels both ways, with the layer's input channels dividing a vector
     * or filling whole ones: the flipped convolution runs the low-channel
     * kernels, 2-5x faster than GEMM + col2im at any batch for up to 16 input
     * channels, 0.93-1.2x for 32 (measured; other channel counts are slower, and
     * so are more than 32 filters: 64 -> 64 "valid" 1.2x slower). */
    if (f->p.low_channel && conv_low_channel_whole_vectors(&f->d) && f->d.c_in <= LOWC_MAX_C_IN)
        return 1;
    /* Otherwise only where the scatter pass cannot use the threads (it gives
     * each thread whole images): a batch of one to three images.  With a batch,
     * col2im is as fast, and few input channels make the flipped GEMM narrow. */
    const int64_t scatter_units = p->pieces == 1 ? p->chunks : d->n;
    return scatter_units < CONV_SLOTS && d->c_in > GEMM_MR_MAX;
}

/* One workspace serves every pass: the largest any of them needs. */
static int64_t workspace_bytes(const pycnn_conv2d_desc *d, const conv_plan *p)
{
    flipped_conv f;
    const int64_t own = p->slot_bytes * p->slots + p->shared_w_bytes;
    if (!plan_flipped(d, p, &f))
        return own;
    return max64(own, f.w_bytes + f.p.slot_bytes * f.p.slots + f.p.shared_w_bytes);
}

pycnn_status pycnn_conv2d_workspace_size(const pycnn_conv2d_desc *d, size_t *bytes)
{
    conv_plan p;
    if (d == NULL || bytes == NULL)
        return PYCNN_ERR_NULL_POINTER;
    pycnn_conv2d_desc checked = *d;
    pycnn_status st = pycnn_conv2d_check(&checked);
    if (st == PYCNN_OK)
        st = conv_make_plan(&checked, &p);
    if (st == PYCNN_OK)
        *bytes = (size_t)workspace_bytes(&checked, &p);
    return st;
}

/* Re-validates the caller's descriptor and workspace before a pass runs. */
static pycnn_status prepare(const pycnn_conv2d_desc *d, int allow_negative_end,
                            size_t workspace_size, const void *workspace, conv_plan *p)
{
    if (d == NULL)
        return PYCNN_ERR_NULL_POINTER;
    pycnn_conv2d_desc checked = *d;
    pycnn_status st = conv_check_geometry(&checked, allow_negative_end);
    if (st != PYCNN_OK)
        return st;
    if (checked.oh != d->oh || checked.ow != d->ow)
        return PYCNN_ERR_BAD_OUTPUT_SIZE;
    st = conv_make_plan(d, p);
    if (st != PYCNN_OK)
        return st;
    const int64_t needed = workspace_bytes(d, p);
    if ((int64_t)workspace_size < needed)
        return PYCNN_ERR_WORKSPACE_TOO_SMALL;
    if (workspace == NULL && needed > 0)
        return PYCNN_ERR_NULL_POINTER;
    return PYCNN_OK;
}

pycnn_status pycnn_conv2d_forward(const pycnn_conv2d_desc *d, const void *x, const void *w,
                                  const void *bias, void *y, void *workspace, size_t workspace_size)
{
    return pycnn_conv2d_forward_packed(d, x, w, NULL, 0, bias, y, workspace, workspace_size);
}

/* ---- Filters packed by the caller once for many forward calls ---- */

/* The packed copy opens with this header, so that one made for another
 * kernel shape, groups, dtype or GEMM kernel is refused, not read as filters. */
typedef struct {
    char magic[8];
    int64_t dtype, nr, kc, k, cog, groups;
    int64_t payload_bytes;
} packed_filters_header;
#define PACKED_FILTERS_MAGIC "pycnnPKF"
#define PACKED_FILTERS_OFFSET 64   /* the payload starts here */
_Static_assert(sizeof(packed_filters_header) <= PACKED_FILTERS_OFFSET, "the header must fit before the payload");

/* Whether the forward on d runs the blocked GEMM that packs w (conv_impl.h's
 * conv_forward reads a caller's copy exactly there). */
static int forward_reads_packed(const pycnn_conv2d_desc *d, const conv_plan *p)
{
    return !p->low_channel && !p->thin && !p->narrow && d->n > 0 &&
           (p->pack_w || d->n * p->rows_per_image > GEMM_SMALL_M);
}

/* The header a packed copy for d must carry; 0 when its size overflows. */
static int expected_header(const pycnn_conv2d_desc *d, const conv_plan *p, packed_filters_header *h)
{
    memset(h, 0, sizeof *h);
    memcpy(h->magic, PACKED_FILTERS_MAGIC, sizeof h->magic);
    h->dtype = d->dtype;
    h->nr = gemm_nr(d->dtype);
    h->kc = GEMM_KC;
    h->k = p->k;
    h->cog = p->cog;
    h->groups = d->groups;
    int64_t group_elements;
    return p->cog <= INT64_MAX - h->nr && mul_ok(p->k, conv_packed_group(1, p->cog, h->nr), &group_elements) &&
           mul_ok(group_elements, d->groups, &h->payload_bytes) &&
           mul_ok(h->payload_bytes, (int64_t)dtype_size(d->dtype), &h->payload_bytes) &&
           h->payload_bytes <= INT64_MAX - PACKED_FILTERS_OFFSET;
}

static pycnn_status packed_plan(const pycnn_conv2d_desc *d, conv_plan *p, packed_filters_header *h,
                                size_t *bytes)
{
    if (d == NULL || bytes == NULL)
        return PYCNN_ERR_NULL_POINTER;
    pycnn_conv2d_desc checked = *d;
    pycnn_status st = pycnn_conv2d_check(&checked);
    if (st == PYCNN_OK)
        st = conv_make_plan(&checked, p);
    if (st != PYCNN_OK)
        return st;
    if (!expected_header(&checked, p, h))
        return PYCNN_ERR_OVERFLOW;
    *bytes = forward_reads_packed(&checked, p) ? (size_t)(PACKED_FILTERS_OFFSET + h->payload_bytes) : 0;
    return PYCNN_OK;
}

pycnn_status pycnn_conv2d_packed_filters_size(const pycnn_conv2d_desc *d, size_t *bytes)
{
    conv_plan p;
    packed_filters_header h;
    return packed_plan(d, &p, &h, bytes);
}

pycnn_status pycnn_conv2d_pack_filters(const pycnn_conv2d_desc *d, const void *w, void *packed,
                                       size_t packed_size)
{
    conv_plan p;
    packed_filters_header h;
    size_t needed;
    pycnn_status st = packed_plan(d, &p, &h, &needed);
    if (st != PYCNN_OK || needed == 0)   /* 0: this forward reads w itself; nothing to pack */
        return st;
    if (packed_size < needed)
        return PYCNN_ERR_WORKSPACE_TOO_SMALL;
    if (w == NULL || packed == NULL)
        return PYCNN_ERR_NULL_POINTER;
    memcpy(packed, &h, sizeof h);
    void *payload = (char *)packed + PACKED_FILTERS_OFFSET;
    if (d->dtype == PYCNN_FLOAT32)
        conv_pack_filters_f32(d, &p, w, payload);
    else
        conv_pack_filters_f64(d, &p, w, payload);
    return PYCNN_OK;
}

pycnn_status pycnn_conv2d_forward_packed(const pycnn_conv2d_desc *d, const void *x, const void *w,
                                         const void *packed, size_t packed_size, const void *bias, void *y,
                                         void *workspace, size_t workspace_size)
{
    conv_plan p;
    pycnn_status st = prepare(d, 0, workspace_size, workspace, &p);
    if (st != PYCNN_OK)
        return st;
    const void *prepacked = NULL;
    if (packed != NULL) {
        packed_filters_header expected;
        if (!expected_header(d, &p, &expected))
            return PYCNN_ERR_OVERFLOW;
        if (packed_size < PACKED_FILTERS_OFFSET || memcmp(packed, &expected, sizeof expected) != 0 ||
            packed_size - PACKED_FILTERS_OFFSET < (size_t)expected.payload_bytes)
            return PYCNN_ERR_PACKED_MISMATCH;
        if (forward_reads_packed(d, &p))
            prepacked = (const char *)packed + PACKED_FILTERS_OFFSET;
    }
    if (d->n == 0)
        return PYCNN_OK;
    if (x == NULL || w == NULL || y == NULL)
        return PYCNN_ERR_NULL_POINTER;
    if (d->dtype == PYCNN_FLOAT32)
        return conv_forward_f32(d, &p, x, w, prepacked, bias, y, workspace);
    return conv_forward_f64(d, &p, x, w, prepacked, bias, y, workspace);
}

static pycnn_status backward_data(const pycnn_conv2d_desc *d, int allow_negative_end,
                                  const void *dy, const void *w, void *dx,
                                  void *workspace, size_t workspace_size)
{
    conv_plan p;
    flipped_conv f;
    pycnn_status st = prepare(d, allow_negative_end, workspace_size, workspace, &p);
    if (st != PYCNN_OK)
        return st;
    if (d->n == 0)
        return PYCNN_OK;
    if (dy == NULL || w == NULL || dx == NULL)
        return PYCNN_ERR_NULL_POINTER;
    if (plan_flipped(d, &p, &f)) {
        char *rest = (char *)workspace + f.w_bytes;
        if (d->dtype == PYCNN_FLOAT32) {
            flip_filters_f32(d, &p, w, workspace);
            return conv_forward_f32(&f.d, &f.p, dy, workspace, NULL, NULL, dx, rest);
        }
        flip_filters_f64(d, &p, w, workspace);
        return conv_forward_f64(&f.d, &f.p, dy, workspace, NULL, NULL, dx, rest);
    }
    if (d->dtype == PYCNN_FLOAT32)
        return conv_backward_data_f32(d, &p, dy, w, dx, workspace);
    return conv_backward_data_f64(d, &p, dy, w, dx, workspace);
}

static pycnn_status backward_filter(const pycnn_conv2d_desc *d, int allow_negative_end,
                                    const void *x, const void *dy, void *dw, void *dbias,
                                    void *workspace, size_t workspace_size)
{
    conv_plan p;
    pycnn_status st = prepare(d, allow_negative_end, workspace_size, workspace, &p);
    if (st != PYCNN_OK)
        return st;
    if (dw == NULL || (d->n > 0 && (x == NULL || dy == NULL)))
        return PYCNN_ERR_NULL_POINTER;
    if (d->dtype == PYCNN_FLOAT32)
        return conv_backward_filter_f32(d, &p, x, dy, dw, dbias, workspace);
    return conv_backward_filter_f64(d, &p, x, dy, dw, dbias, workspace);
}

pycnn_status pycnn_conv2d_backward_data(const pycnn_conv2d_desc *d, const void *dy, const void *w,
                                        void *dx, void *workspace, size_t workspace_size)
{
    return backward_data(d, 0, dy, w, dx, workspace, workspace_size);
}

pycnn_status pycnn_conv2d_backward_filter(const pycnn_conv2d_desc *d, const void *x, const void *dy,
                                          void *dw, void *dbias, void *workspace, size_t workspace_size)
{
    return backward_filter(d, 0, x, dy, dw, dbias, workspace, workspace_size);
}

/* ---- im2col / col2im as ops of their own ---- */

static pycnn_status check_im2col(const pycnn_conv2d_desc *d, pycnn_conv2d_desc *plain)
{
    if (d == NULL)
        return PYCNN_ERR_NULL_POINTER;
    *plain = *d;
    plain->groups = 1;
    plain->c_out = 1;
    pycnn_status st = conv_check_geometry(plain, 0);
    if (st == PYCNN_OK && (plain->oh != d->oh || plain->ow != d->ow))
        st = PYCNN_ERR_BAD_OUTPUT_SIZE;
    return st;
}

pycnn_status pycnn_im2col_forward(const pycnn_conv2d_desc *d, const void *x, void *cols)
{
    pycnn_conv2d_desc plain;
    pycnn_status st = check_im2col(d, &plain);
    if (st != PYCNN_OK || plain.n == 0)
        return st;
    if (x == NULL || cols == NULL)
        return PYCNN_ERR_NULL_POINTER;
    const int64_t rows = plain.n * plain.oh * plain.ow;
    if (plain.dtype == PYCNN_FLOAT32)
        im2col_f32(&plain, plain.c_in, 0, x, 0, rows, cols);
    else
        im2col_f64(&plain, plain.c_in, 0, x, 0, rows, cols);
    return PYCNN_OK;
}

pycnn_status pycnn_col2im_forward(const pycnn_conv2d_desc *d, const void *cols, void *x)
{
    pycnn_conv2d_desc plain;
    pycnn_status st = check_im2col(d, &plain);
    if (st != PYCNN_OK || plain.n == 0)
        return st;
    if (x == NULL || cols == NULL)
        return PYCNN_ERR_NULL_POINTER;
    memset(x, 0, (size_t)(plain.n * plain.h * plain.w * plain.c_in) * dtype_size(plain.dtype));
    const int64_t rows = plain.n * plain.oh * plain.ow;
    if (plain.dtype == PYCNN_FLOAT32)
        col2im_f32(&plain, plain.c_in, 0, cols, 0, rows, x);
    else
        col2im_f64(&plain, plain.c_in, 0, cols, 0, rows, x);
    return PYCNN_OK;
}

/* ---- Transposed convolution ----
 * y = conv2d_transpose(x, w) is the input gradient of the convolution that
 * maps y back to x: a conv over (oh, ow) inputs with c_out input channels,
 * c_in output channels, padding crop_top/crop_left before and whatever
 * remains after (negative when output_padding adds rows no tap reaches). */

static pycnn_status transpose_as_conv(const pycnn_conv2d_transpose_desc *t, pycnn_conv2d_desc *d)
{
    if (t == NULL)
        return PYCNN_ERR_NULL_POINTER;
    if (t->oh < 1 || t->ow < 1 || t->h < 1 || t->w < 1 || t->n < 0 || t->c_in < 1 ||
        t->c_out < 1 || t->kh < 1 || t->kw < 1)
        return PYCNN_ERR_BAD_SHAPE;
    if (t->stride_h < 1 || t->stride_w < 1)
        return PYCNN_ERR_BAD_STRIDE;
    if (t->dilation_h < 1 || t->dilation_w < 1)
        return PYCNN_ERR_BAD_DILATION;
    if (t->crop_top < 0 || t->crop_left < 0)
        return PYCNN_ERR_BAD_PADDING;
    int64_t eff_h, eff_w, full_h, full_w;
    if (!mul_ok(t->dilation_h, t->kh - 1, &eff_h) || !add_ok(eff_h, 1, &eff_h) ||
        !mul_ok(t->dilation_w, t->kw - 1, &eff_w) || !add_ok(eff_w, 1, &eff_w) ||
        !mul_ok(t->h - 1, t->stride_h, &full_h) || !add_ok(full_h, eff_h, &full_h) ||
        !mul_ok(t->w - 1, t->stride_w, &full_w) || !add_ok(full_w, eff_w, &full_w))
        return PYCNN_ERR_OVERFLOW;
    /* The kept window [crop, crop + o) may extend past the full output by
     * less than max(stride, dilation) (the output_padding rule). */
    if (t->crop_top >= eff_h || t->crop_left >= eff_w)
        return PYCNN_ERR_BAD_OUTPUT_SIZE;
    /* crop < eff <= full, so full - crop >= 1 and only "- o" can overflow (downwards). */
    int64_t end_h, end_w;
    if (__builtin_sub_overflow(full_h - t->crop_top, t->oh, &end_h) ||
        __builtin_sub_overflow(full_w - t->crop_left, t->ow, &end_w) ||
        end_h <= -max64(t->stride_h, t->dilation_h) || end_w <= -max64(t->stride_w, t->dilation_w))
        return PYCNN_ERR_BAD_OUTPUT_SIZE;
    *d = (pycnn_conv2d_desc){
        .dtype = t->dtype, .n = t->n, .h = t->oh, .w = t->ow, .c_in = t->c_out,
        .kh = t->kh, .kw = t->kw, .c_out = t->c_in, .groups = 1,
        .stride_h = t->stride_h, .stride_w = t->stride_w,
        .dilation_h = t->dilation_h, .dilation_w = t->dilation_w,
        .pad_top = t->crop_top, .pad_bottom = end_h, .pad_left = t->crop_left, .pad_right = end_w,
    };
    pycnn_status st = conv_check_geometry(d, 1);
    if (st == PYCNN_OK && (d->oh != t->h || d->ow != t->w))
        st = PYCNN_ERR_BAD_OUTPUT_SIZE;
    return st;
}

pycnn_status pycnn_conv2d_transpose_check(pycnn_conv2d_transpose_desc *t)
{
    pycnn_conv2d_desc d;
    return transpose_as_conv(t, &d);
}

pycnn_status pycnn_conv2d_transpose_workspace_size(const pycnn_conv2d_transpose_desc *t, size_t *bytes)
{
    pycnn_conv2d_desc d;
    conv_plan p;
    if (bytes == NULL)
        return PYCNN_ERR_NULL_POINTER;
    pycnn_status st = transpose_as_conv(t, &d);
    if (st == PYCNN_OK)
        st = conv_make_plan(&d, &p);
    if (st == PYCNN_OK)
        *bytes = (size_t)workspace_bytes(&d, &p);
    return st;
}

pycnn_status pycnn_conv2d_transpose_forward(const pycnn_conv2d_transpose_desc *t,
                                            const void *x, const void *w, const void *bias,
                                            void *y, void *workspace, size_t workspace_size)
{
    pycnn_conv2d_desc d;
    pycnn_status st = transpose_as_conv(t, &d);
    if (st == PYCNN_OK)
        st = backward_data(&d, 1, x, w, y, workspace, workspace_size);
    if (st != PYCNN_OK || bias == NULL || t->n == 0)
        return st;
    const int64_t pixels = t->n * t->oh * t->ow;
    if (t->dtype == PYCNN_FLOAT32)
        add_bias_f32(y, bias, pixels, t->c_out, t->c_out);
    else
        add_bias_f64(y, bias, pixels, t->c_out, t->c_out);
    return PYCNN_OK;
}

pycnn_status pycnn_conv2d_transpose_backward_data(const pycnn_conv2d_transpose_desc *t,
                                                  const void *dy, const void *w, void *dx,
                                                  void *workspace, size_t workspace_size)
{
    pycnn_conv2d_desc d;
    conv_plan p;
    pycnn_status st = transpose_as_conv(t, &d);
    if (st == PYCNN_OK)
        st = prepare(&d, 1, workspace_size, workspace, &p);
    if (st != PYCNN_OK || d.n == 0)
        return st;
    if (dy == NULL || w == NULL || dx == NULL)
        return PYCNN_ERR_NULL_POINTER;
    if (d.dtype == PYCNN_FLOAT32)
        return conv_forward_f32(&d, &p, dy, w, NULL, NULL, dx, workspace);
    return conv_forward_f64(&d, &p, dy, w, NULL, NULL, dx, workspace);
}

pycnn_status pycnn_conv2d_transpose_backward_filter(const pycnn_conv2d_transpose_desc *t,
                                                    const void *x, const void *dy,
                                                    void *dw, void *dbias,
                                                    void *workspace, size_t workspace_size)
{
    pycnn_conv2d_desc d;
    pycnn_status st = transpose_as_conv(t, &d);
    if (st != PYCNN_OK)
        return st;
    /* In conv terms dy is the input and x the output gradient; the bias
     * belongs to the transposed output (dy), so it is summed separately. */
    st = backward_filter(&d, 1, dy, x, dw, NULL, workspace, workspace_size);
    if (st != PYCNN_OK || dbias == NULL)
        return st;
    const int64_t pixels = t->n * t->oh * t->ow;
    memset(dbias, 0, (size_t)t->c_out * dtype_size(t->dtype));
    if (t->dtype == PYCNN_FLOAT32)
        add_row_sums_f32(dy, pixels, t->c_out, t->c_out, dbias);
    else
        add_row_sums_f64(dy, pixels, t->c_out, t->c_out, dbias);
    return PYCNN_OK;
}
