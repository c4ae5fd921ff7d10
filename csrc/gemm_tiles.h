/* Cache-block sizes and the micro-kernel table shared by the GEMM driver and kernels. */
#ifndef PYCNN_GEMM_TILES_H
#define PYCNN_GEMM_TILES_H
#include <stdint.h>

/* KC: a deep block amortizes each C tile's load and store over more FMAs; on
 * Zen 4 512 beat 128-384 even though a 512 x NR B micro-panel (64 KiB) no
 * longer fits L1D (it streams from L2, which keeps up).  The MC x KC A block
 * (192 KiB) stays in L2 and the KC x NC B panel (2 MiB, as before) in L3. */
#define GEMM_KC 512    /* depth of a packed block                                  */
#define GEMM_MC 96     /* rows of a packed A block (a multiple of every kernel's MR) */
#define GEMM_NC 1024   /* columns of a packed B panel (a multiple of every NR)      */
#define GEMM_MR_MAX 8  /* largest MR of any kernel: bounds the packing space        */
#define GEMM_NR_MAX 32 /* largest NR of any kernel                                 */
#define GEMM_SMALL_M 4 /* at most this many rows of C: no packing (see gemm_impl.h) */

/*
 * Micro-kernel contract (BLIS): a is a packed mr_tile x k panel (column p at
 * a[p * MR]), b a packed k x nr_tile panel (row p at b[p * NR]), both
 * zero-padded to the full tile.  Writes the top-left mr x nr corner of the
 * product into c (row stride ldc), adding to c when accumulate is set; c is
 * never read when accumulate is 0.
 */
typedef void (*ukernel_f32_fn)(int64_t k, const float *a, const float *b, float *c, int64_t ldc,
                               int accumulate, int64_t mr, int64_t nr);
typedef void (*ukernel_f64_fn)(int64_t k, const double *a, const double *b, double *c, int64_t ldc,
                               int accumulate, int64_t mr, int64_t nr);

/*
 * Optional packing routine of a kernel: copies a full mr x k block of a
 * row-major A (rows lda apart) into one packed panel (column p at a[p * MR]).
 * NULL: the driver's portable loop does it.  Packing A costs as much as the
 * arithmetic when C has few columns (64-channel convolutions), hence SIMD.
 */
typedef void (*pack_a_f32_fn)(int64_t k, const float *a, int64_t lda, float *out);
typedef void (*pack_a_f64_fn)(int64_t k, const double *a, int64_t lda, double *out);
/*
 * Optional transposing copy: the 8 x k block src (rows ld apart) into out,
 * column p (8 values) at out + p * out_stride.  Packs a transposed B (stored
 * [n, k]) into NR-wide panels 8 columns at a time; NULL: a portable loop.
 */
typedef void (*transpose8_f32_fn)(int64_t k, const float *src, int64_t ld, float *out, int64_t out_stride);
typedef void (*transpose8_f64_fn)(int64_t k, const double *src, int64_t ld, double *out, int64_t out_stride);

typedef struct {
    ukernel_f32_fn run;
    int64_t mr, nr;
    pack_a_f32_fn pack_a;
    transpose8_f32_fn transpose8;
} ukernel_f32_info;
typedef struct {
    ukernel_f64_fn run;
    int64_t mr, nr;
    pack_a_f64_fn pack_a;
    transpose8_f64_fn transpose8;
} ukernel_f64_info;

extern const ukernel_f32_info pycnn_gemm_ukernel_ref_f32;
extern const ukernel_f64_info pycnn_gemm_ukernel_ref_f64;
extern const ukernel_f32_info pycnn_gemm_ukernel_avx2_f32;
extern const ukernel_f64_info pycnn_gemm_ukernel_avx2_f64;
extern const ukernel_f32_info pycnn_gemm_ukernel_avx512_f32;
extern const ukernel_f64_info pycnn_gemm_ukernel_avx512_f64;
#endif
