/*
 * Winograd convolution F(m x m, 3 x 3), m = 2 or 4: an explicit, forward-only
 * alternative to conv2d for 3x3 kernels, stride 1, dilation 1, one group
 * (A. Lavin, S. Gray, "Fast Algorithms for Convolutional Neural Networks",
 * arXiv 1509.09308).  An m x m output tile Y of one output channel is
 *
 *     Y = A^T [ sum over c_in of (G g G^T) (.) (B^T d B) ] A
 *
 * with d the (m + 2) x (m + 2) input tile of an input channel, g its 3x3
 * filter and (.) the element-wise product; the sum over input channels is
 * one GEMM per point of the (m + 2) x (m + 2) grid.  This computes the
 * cross-correlation y[i][j] = sum d[i + k][j + l] g[k][l] that conv2d does.
 *
 * F(2x2, 3x3), interpolation points 0, 1, -1, infinity:
 *
 *   B^T = [ 1  0 -1  0 ]    G = [ 1    0    0   ]    A^T = [ 1  1  1  0 ]
 *         [ 0  1  1  0 ]        [ 1/2  1/2  1/2 ]          [ 0  1 -1 -1 ]
 *         [ 0 -1  1  0 ]        [ 1/2 -1/2  1/2 ]
 *         [ 0  1  0 -1 ]        [ 0    0    1   ]
 *
 * F(4x4, 3x3), points 0, 1, -1, 2, -2, infinity:
 *
 *   B^T = [ 4  0 -5  0  1  0 ]    G = [  1/4     0     0   ]
 *         [ 0 -4 -4  1  1  0 ]        [ -1/6  -1/6  -1/6  ]
 *         [ 0  4 -4 -1  1  0 ]        [ -1/6   1/6  -1/6  ]
 *         [ 0 -2 -1  2  1  0 ]        [  1/24  1/12  1/6  ]
 *         [ 0  2 -1 -2  1  0 ]        [  1/24 -1/12  1/6  ]
 *         [ 0  4  0 -5  0  1 ]        [  0     0     1    ]
 *
 *   A^T = [ 1  1  1  1  1  0 ]
 *         [ 0  1 -1  2 -2  0 ]
 *         [ 0  1  1  4  4  0 ]
 *         [ 0  1 -1  8 -8  1 ]
 *
 * Accuracy.  Every output of a tile is formed from the whole input tile, so
 * its rounding error scales with the tile's inputs, not only with its own
 * 3x3 window; the bound (tests/test_winograd.py) is
 *     |y - y_exact| <= gamma(c_in + k_m) * E,   k_2 = 11, k_4 = 21 roundings,
 *     E = |A^T| [ sum_c (|G| |g| |G^T|) (.) (|B^T| |d| |B|) ] |A| + |bias|,
 * which for F(4x4) weighs input-filter pairs up to 113.8 times (F(2x2): 4),
 * the largest entry of the absolute transform product.  Non-finite inputs
 * spread to the whole tile, and intermediate values can be up to about 100x
 * the inputs, so inputs near the dtype's maximum may overflow where the
 * direct convolution would not.
 */
#include <string.h>

#include "activation.h"
#include "conv_winograd.h"

#define T float
#define FN(name) name##_f32
#include "conv_winograd_impl.h"
#undef T
#undef FN

#define T double
#define FN(name) name##_f64
#include "conv_winograd_impl.h"
#undef T
#undef FN

pycnn_status pycnn_conv2d_winograd_check(pycnn_conv2d_desc *d, int tile)
{
    if (d == NULL)
        return PYCNN_ERR_NULL_POINTER;
    pycnn_status st = conv_check_geometry(d, 0);
    if (st != PYCNN_OK)
        return st;
    if ((tile != 2 && tile != 4) || d->kh != 3 || d->kw != 3 || d->stride_h != 1 || d->stride_w != 1 ||
        d->dilation_h != 1 || d->dilation_w != 1 || d->groups != 1)
        return PYCNN_ERR_BAD_PARAMETER;
    return PYCNN_OK;
}

pycnn_status wino_make_plan(const pycnn_conv2d_desc *d, int tile, wino_plan *p)
{
    const int64_t size = (int64_t)dtype_size(d->dtype);
    p->m = tile;
    p->alpha = tile + 2;
    const int64_t points = (int64_t)p->alpha * p->alpha;
    p->tiles_h = ceil_div64(d->oh, tile);
    p->tiles_w = ceil_div64(d->ow, tile);
    int64_t per_tile, u_column;
    const int64_t tile_dims[] = {d->n, p->tiles_h, p->tiles_w};
    const int64_t u_column_dims[] = {points, d->c_in, size};
    if (!product_ok(tile_dims, 3, &p->tiles) || !product_ok(u_column_dims, 3, &u_column))
        return PYCNN_ERR_OVERFLOW;
    /* Output channels per group: all of them when U fits the budget. */
    int64_t u_all;
    p->group_cols = min64(d->c_out, GEMM_NC);   /* a packed U is one block of columns */
    if (!mul_ok(u_column, ceil_div64(d->c_out, 32) * 32, &u_all) || u_all > WINO_U_BUDGET)
        p->group_cols = min64(p->group_cols, max64(WINO_U_BUDGET / u_column / 32 * 32, 32));
    p->u_cols = ceil_div64(p->group_cols, 32) * 32;
    const int64_t u_dims[] = {points, d->c_in, p->u_cols, size};
    const int64_t per_tile_dims[] = {points, d->c_in + p->group_cols, size};   /* c_in + c_out: checked sizes */
    if (!product_ok(u_dims, 4, &p->u_bytes) || !product_ok(per_tile_dims, 3, &per_tile))
        return PYCNN_ERR_OVERFLOW;
    p->u_bytes = align_up64(p->u_bytes);
    /* Tiles per block: V and M within the L2 budget, but enough blocks for
     * every slot when the layer has few tiles.  Shape-only. */
    int64_t block = WINO_BLOCK_BUDGET / per_tile / WINO_TILE_QUANTUM * WINO_TILE_QUANTUM;
    block = min64(max64(block, WINO_MIN_BLOCK_TILES), WINO_MAX_BLOCK_TILES);
    const int64_t spread = ceil_div64(ceil_div64(p->tiles, WINO_SLOTS), WINO_TILE_QUANTUM) * WINO_TILE_QUANTUM;
    block = min64(block, max64(spread, WINO_TILE_QUANTUM));
    p->block_tiles = max64(min64(block, p->tiles), 1);
    p->blocks = ceil_div64(p->tiles, p->block_tiles);
    /* Fewer blocks than slots: output columns are split as well (each column
     * is still summed whole, so the split changes no result). */
    p->col_blocks = p->blocks < WINO_SLOTS
        ? max64(1, min64(ceil_div64(WINO_SLOTS, max64(p->blocks, 1)), p->group_cols / CONV_MIN_BLOCK_COLS)) : 1;
    int64_t v_bytes, m_bytes, slot_bytes;
    const int64_t v_dims[] = {points, p->block_tiles, d->c_in, size};
    const int64_t m_dims[] = {points, p->block_tiles, p->group_cols, size};
    if (!product_ok(v_dims, 4, &v_bytes) || !product_ok(m_dims, 4, &m_bytes))
        return PYCNN_ERR_OVERFLOW;
    p->v_bytes = align_up64(v_bytes);
    p->m_bytes = align_up64(m_bytes);
    p->pack_bytes = align_up64(gemm_pack_bytes(d->dtype, p->block_tiles, p->group_cols, d->c_in));
    if (!add_ok(p->v_bytes, p->m_bytes, &slot_bytes) || !add_ok(slot_bytes, p->pack_bytes, &p->slot_bytes))
        return PYCNN_ERR_OVERFLOW;
    p->slots = min64(WINO_SLOTS, max64(p->blocks * p->col_blocks, 1));
    const int64_t work_dims[] = {p->tiles, points, d->c_in, d->c_out};
    if (!product_ok(work_dims, 4, &p->work))
        p->work = INT64_MAX;
    return PYCNN_OK;
}

static int workspace_bytes(const wino_plan *p, int64_t *bytes)
{
    int64_t slots;
    return mul_ok(p->slots, p->slot_bytes, &slots) && add_ok(p->u_bytes, slots, bytes);
}

/* Checks d (and its output size, when given by the caller) and makes the plan. */
static pycnn_status checked_plan(const pycnn_conv2d_desc *d, int tile, int check_output, wino_plan *p)
{
    if (d == NULL)
        return PYCNN_ERR_NULL_POINTER;
    pycnn_conv2d_desc checked = *d;
    pycnn_status st = pycnn_conv2d_winograd_check(&checked, tile);
    if (st != PYCNN_OK)
        return st;
    if (check_output && (checked.oh != d->oh || checked.ow != d->ow))
        return PYCNN_ERR_BAD_OUTPUT_SIZE;
    return wino_make_plan(&checked, tile, p);
}

pycnn_status pycnn_conv2d_winograd_workspace_size(const pycnn_conv2d_desc *d, int tile, size_t *bytes)
{
    if (bytes == NULL)
        return PYCNN_ERR_NULL_POINTER;
    wino_plan p;
    int64_t total;
    pycnn_status st = checked_plan(d, tile, 0, &p);
    if (st == PYCNN_OK && !workspace_bytes(&p, &total))
        st = PYCNN_ERR_OVERFLOW;
    if (st == PYCNN_OK)
        *bytes = (size_t)total;
    return st;
}

/* The transformed filters made by pycnn_conv2d_winograd_transform_filters open
 * with this header, so a copy made for another layer is refused, not read. */
typedef struct {
    char magic[8];
    int64_t dtype, nr, kc, tile, c_in, c_out, group_cols, u_bytes;
} wino_filters_header;
#define WINO_FILTERS_MAGIC "pycnnWGF"
#define WINO_FILTERS_OFFSET 128   /* the payload starts here */
_Static_assert(sizeof(wino_filters_header) <= WINO_FILTERS_OFFSET, "the header must fit before the payload");

/* The header for d's plan, and the bytes of header and payload; 0 on overflow. */
static int filters_header(const pycnn_conv2d_desc *d, const wino_plan *p, wino_filters_header *h, int64_t *bytes)
{
    memset(h, 0, sizeof *h);
    memcpy(h->magic, WINO_FILTERS_MAGIC, sizeof h->magic);
    h->dtype = d->dtype;
    h->nr = gemm_nr(d->dtype);
    h->kc = GEMM_KC;
    h->tile = p->m;
    h->c_in = d->c_in;
    h->c_out = d->c_out;
    h->group_cols = p->group_cols;
    h->u_bytes = p->u_bytes;
    int64_t payload;
    return mul_ok(ceil_div64(d->c_out, p->group_cols), p->u_bytes, &payload) &&
           add_ok(payload, WINO_FILTERS_OFFSET, bytes);
}

pycnn_status pycnn_conv2d_winograd_filters_size(const pycnn_conv2d_desc *d, int tile, size_t *bytes)
{
    wino_plan p;
    wino_filters_header h;
    int64_t total;
    if (bytes == NULL)
        return PYCNN_ERR_NULL_POINTER;
    pycnn_status st = checked_plan(d, tile, 0, &p);
    if (st == PYCNN_OK && !filters_header(d, &p, &h, &total))
        st = PYCNN_ERR_OVERFLOW;
    if (st == PYCNN_OK)
        *bytes = (size_t)total;
    return st;
}

pycnn_status pycnn_conv2d_winograd_transform_filters(const pycnn_conv2d_desc *d, int tile, const void *w,
                                                     void *packed, size_t packed_size)
{
    wino_plan p;
    wino_filters_header h;
    int64_t total;
    pycnn_status st = checked_plan(d, tile, 0, &p);
    if (st != PYCNN_OK)
        return st;
    if (!filters_header(d, &p, &h, &total))
        return PYCNN_ERR_OVERFLOW;
    if ((int64_t)packed_size < total)
        return PYCNN_ERR_WORKSPACE_TOO_SMALL;
    if (w == NULL || packed == NULL)
        return PYCNN_ERR_NULL_POINTER;
    memcpy(packed, &h, sizeof h);
    void *u_all = (char *)packed + WINO_FILTERS_OFFSET;
    if (d->dtype == PYCNN_FLOAT32)
        wino_transform_all_f32(d, &p, w, u_all);
    else
        wino_transform_all_f64(d, &p, w, u_all);
    return PYCNN_OK;
}

pycnn_status pycnn_conv2d_winograd_forward(const pycnn_conv2d_desc *d, int tile, const void *x,
                                           const void *w, const void *bias, void *y,
                                           void *workspace, size_t workspace_size)
{
    return pycnn_conv2d_winograd_forward_packed(d, tile, x, w, NULL, 0, bias, y, workspace, workspace_size);
}

pycnn_status pycnn_conv2d_winograd_forward_packed(const pycnn_conv2d_desc *d, int tile, const void *x,
                                                  const void *w, const void *packed, size_t packed_size,
                                                  const void *bias, void *y, void *workspace,
                                                  size_t workspace_size)
{
    wino_plan p;
    int64_t needed;
    pycnn_status st = checked_plan(d, tile, 1, &p);
    if (st != PYCNN_OK)
        return st;
    if (!workspace_bytes(&p, &needed))
        return PYCNN_ERR_OVERFLOW;
    if ((int64_t)workspace_size < needed)
        return PYCNN_ERR_WORKSPACE_TOO_SMALL;
    const void *u_all = NULL;
    if (packed != NULL) {
        wino_filters_header expected;
        int64_t total;
        if (!filters_header(d, &p, &expected, &total))
            return PYCNN_ERR_OVERFLOW;
        if ((int64_t)packed_size < total || memcmp(packed, &expected, sizeof expected) != 0)
            return PYCNN_ERR_PACKED_MISMATCH;
        u_all = (const char *)packed + WINO_FILTERS_OFFSET;
    }
    if (d->n == 0)
        return PYCNN_OK;
    if (x == NULL || w == NULL || y == NULL || workspace == NULL)
        return PYCNN_ERR_NULL_POINTER;
    if (d->dtype == PYCNN_FLOAT32)
        return wino_forward_f32(d, &p, x, w, u_all, bias, y, workspace);
    return wino_forward_f64(d, &p, x, w, u_all, bias, y, workspace);
}
