/* Winograd convolution plan shared by conv_winograd.c and its dtype template (engine-internal). */
#ifndef PYCNN_CONV_WINOGRAD_H
#define PYCNN_CONV_WINOGRAD_H
#include "conv.h"
#include "gemm_tiles.h"

/* Fixed number of work slots (each owns a V block, an M block and GEMM packing
 * space); fixed so the workspace size depends on the shape only. */
#define WINO_SLOTS 4
/* Target bytes of one block's transformed tiles V and products M together:
 * about half the 1 MiB L2, so the packed U slices stream beside them. */
#define WINO_BLOCK_BUDGET (512 << 10)
/* Tiles per block: a multiple of the micro-kernels' MR (6 and 8), at least one
 * register tile of rows, and not so many that a thread has nothing to do. */
#define WINO_TILE_QUANTUM 24
#define WINO_MIN_BLOCK_TILES 24
#define WINO_MAX_BLOCK_TILES 240
/* Most bytes of the transformed filters held at once: wider layers transform
 * and run their output channels in groups (the input transform is redone per
 * group, ~1% of the work), so the workspace stays within the scratch memory
 * pycnn.ops keeps between calls. */
#define WINO_U_BUDGET (16 << 20)
/* Channels the transforms handle at a time (a small stack buffer per tile). */
#define WINO_CHANNEL_CHUNK 64

typedef struct {
    int m;                       /* output tile m x m: 2 or 4                     */
    int alpha;                   /* input tile alpha x alpha, alpha = m + 2       */
    int64_t tiles_h, tiles_w;    /* tiles per image: ceil(oh / m), ceil(ow / m)   */
    int64_t tiles;               /* n * tiles_h * tiles_w                         */
    int64_t block_tiles;         /* tiles per block (the GEMMs' rows)             */
    int64_t blocks;              /* ceil(tiles / block_tiles)                     */
    int64_t group_cols;          /* output channels per group (a multiple of 32, or c_out) */
    int64_t col_blocks;          /* most column blocks a group is split into (conv_column_block) */
    int64_t u_cols;              /* group_cols rounded up to 32 (any micro-kernel's NR divides it) */
    int64_t u_bytes;             /* one group's filters U[alpha^2], each c_in x u_cols, packed for the GEMM */
    int64_t v_bytes, m_bytes, pack_bytes, slot_bytes;
    int64_t slots;
    int64_t work;                /* multiply-adds of the GEMMs (saturating)       */
} wino_plan;

pycnn_status wino_make_plan(const pycnn_conv2d_desc *d, int tile, wino_plan *p);

#define DECLARE_WINO_PASSES(SFX, T)                                                            \
    pycnn_status wino_forward_##SFX(const pycnn_conv2d_desc *d, const wino_plan *p,            \
                                    const T *x, const T *w, const T *u_all, const T *bias,     \
                                    T *y, char *ws);                                           \
    void wino_transform_all_##SFX(const pycnn_conv2d_desc *d, const wino_plan *p,              \
                                  const T *w, T *u_all);
DECLARE_WINO_PASSES(f32, float)
DECLARE_WINO_PASSES(f64, double)

#endif
