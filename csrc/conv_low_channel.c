/* Direct convolution for few input and few output channels: forward and
 * backward-filter over "flat expanded rows" (see conv_low_channel_impl.h),
 * float32 compiled for SSE2 (portable), AVX2+FMA and AVX-512 and chosen at run
 * time with the GEMM's ISA (pycnn_isa, so also PYCNN_ISA); float64, the
 * reference dtype, only for SSE2 (each build is hundreds of kernel copies and
 * minutes of compile time under the sanitizers). */
#include <stdint.h>
#include <string.h>

#include "conv_low_channel.h"

/* Fused multiply-adds in the vector kernels (the build uses -std=c11, which
 * turns contraction off).  Results then differ between ISAs, never between
 * thread counts. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
/* the zero fills are short: no memset calls (see conv.c) */
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#endif

/* Most bytes of one slot's expanded input rows; larger layers keep the GEMM path. */
#define LOWC_MAX_EXPANDED_BYTES (64 << 20)

/* Kernel copy for P patterns and R repeats (NV = P * R vectors): P is odd, or
 * the lanes divide C (then P = C / lanes); the NV sums (or dy vectors) plus P
 * weight (or sum) vectors and two temporaries fit the vector registers. */
#define LOWC_FITS(P, R, LANES, REGS) (((P) % 2 == 1 || LOWC_BROADCAST_OK(P, LANES)) && (P) * (R) <= 24 && \
                                      ((R) == 1 || (P) * (R) + (P) + 2 <= (REGS)))

/* Every (P, R) with P * R <= 24 (a kernel copy each where it fits). */
#define LC_R2(X, P) X(P, 1) X(P, 2)
#define LC_R3(X, P) LC_R2(X, P) X(P, 3)
#define LC_R4(X, P) LC_R3(X, P) X(P, 4)
#define LC_R6(X, P) LC_R4(X, P) X(P, 5) X(P, 6)
#define LC_R8(X, P) LC_R6(X, P) X(P, 7) X(P, 8)
#define LC_R12(X, P) LC_R8(X, P) X(P, 9) X(P, 10) X(P, 11) X(P, 12)
#define LC_R24(X, P) LC_R12(X, P) X(P, 13) X(P, 14) X(P, 15) X(P, 16) X(P, 17) X(P, 18) \
    X(P, 19) X(P, 20) X(P, 21) X(P, 22) X(P, 23) X(P, 24)
#define LC_ALL_PR(X) LC_R24(X, 1) LC_R12(X, 2) LC_R8(X, 3) LC_R6(X, 4) LC_R4(X, 5) LC_R4(X, 6) \
    LC_R3(X, 7) LC_R3(X, 8) LC_R2(X, 9) LC_R2(X, 10) LC_R2(X, 11) LC_R2(X, 12)                  \
    X(13, 1) X(14, 1) X(15, 1) X(16, 1)

typedef struct {
    int64_t lanes, patterns, reps;  /* vector lanes, P, R: a segment is P * R vectors */
    int64_t segs;                   /* segments of one output row */
    int64_t padded_w;               /* padded input columns the row reads: (ow - 1) * stride_w + reach + 1 */
    int64_t elen, erows;            /* one expanded row (elements); ring slots per channel */
    int64_t phase_len;              /* broadcast rows: pixels of one stride phase (see expand_row) */
    int64_t taps;                   /* kh * kw * c_in */
    int64_t broadcast;              /* lanes divide C: rows of one value per pixel (see LC_E) */
    int64_t table_at, stage_at, e_at, bytes;   /* element offsets in the region; its bytes */
} lowc_geom;

static void isa_vectors(pycnn_dtype dtype, int64_t *lanes, int64_t *regs)
{
    int64_t bytes = 16;   /* SSE2 */
    *regs = 16;
#if defined(__x86_64__) && defined(PYCNN_HAVE_X86_KERNELS)
    if (dtype != PYCNN_FLOAT32) {
        /* float64 has the portable build only */
    } else if (strcmp(pycnn_isa(), "avx512") == 0) {
        bytes = 64;
        *regs = 32;
    } else if (strcmp(pycnn_isa(), "avx2") == 0) {
        bytes = 32;
    }
#endif
    *lanes = bytes / (int64_t)dtype_size(dtype);
}

/* The expanded rows span the padded width (ow plus the kernel's reach), so a
 * reach far beyond the output row (a huge dilation or padding: fuzz finding
 * H9, 65536 one-pixel images with 131073-wide rows each) would cost more than
 * the convolution: such layers keep the im2col path, which skips the padding. */
int conv_low_channel_eligible(const pycnn_conv2d_desc *d, const conv_plan *p)
{
    int64_t lanes, regs;
    isa_vectors(d->dtype, &lanes, &regs);
    const int wide = lanes >= 8 && d->c_out % lanes == 0 && d->c_out / lanes <= LOWC_MAX_WIDE_PATTERNS;
    /* A stride reads every stride_w-th pixel: only rows of one value per pixel
     * split into phases (filters filling whole vectors), and no stride
     * skipping pixels, whose phases would be expanded for nothing. */
    const int strided_ok = d->c_out % lanes == 0 && d->stride_w <= d->kw;
    const int64_t reach_w = (d->kw - 1) * d->dilation_w;   /* no overflow: checked geometry */
    return d->groups == 1 && (d->stride_w == 1 || strided_ok) && !p->direct &&
           ((d->c_in <= LOWC_MAX_C_IN && d->c_out <= LOWC_MAX_C_OUT) || (wide && d->c_in <= LOWC_MAX_WIDE_C_IN)) &&
           reach_w / d->kw <= d->ow;
}

int conv_low_channel_whole_vectors(const pycnn_conv2d_desc *d)
{
    int64_t lanes, regs;
    isa_vectors(d->dtype, &lanes, &regs);
    return lanes % d->c_out == 0 || d->c_out % lanes == 0;
}

/* Shape-only (with the process's ISA): the same for every thread count. */
static int geometry(const pycnn_conv2d_desc *d, const conv_plan *p, lowc_geom *g)
{
    int64_t regs;
    const int64_t C = d->c_out, size = (int64_t)dtype_size(d->dtype);
    isa_vectors(d->dtype, &g->lanes, &regs);
    int64_t common = g->lanes;
    while (C % common != 0)
        common /= 2;   /* lanes is a power of two */
    g->patterns = C / common;
    int64_t most = 1;
    for (int64_t r = 24; r > 1 && most == 1; r--)
        if (LOWC_FITS(g->patterns, r, g->lanes, regs))
            most = r;
    const int64_t row_vectors = ceil_div64(d->ow * C, g->lanes);   /* ow * C: checked with y's size */
    g->segs = ceil_div64(row_vectors, g->patterns * most);
    g->reps = ceil_div64(ceil_div64(row_vectors, g->segs), g->patterns);
    const int64_t reach_w = (d->kw - 1) * d->dilation_w;   /* below the padded width: checked */
    g->padded_w = (d->ow - 1) * d->stride_w + reach_w + 1;   /* likewise */
    const int64_t align = PYCNN_ALIGN / size;
    int64_t elen, erows, e_count, table;
    g->broadcast = C % g->lanes == 0;
    g->phase_len = g->segs * g->reps + reach_w / d->stride_w + 1;   /* the pixels the segments reach */
    if (g->broadcast) {
        if (!mul_ok(g->phase_len, d->stride_w, &elen))
            return 0;
    } else if (d->stride_w != 1 || !mul_ok(reach_w, C, &elen) ||
             !add_ok(elen, g->segs * g->reps * g->patterns * g->lanes + g->lanes, &elen))
        return 0;
    g->elen = ceil_div64(elen, align) * align;
    /* The rows of one window are distinct modulo this (the window spans
     * (kh - 1) * dilation_h + 1 rows, below the padded height: checked). */
    erows = min64(d->h, (d->kh - 1) * d->dilation_h + 1);
    g->erows = erows;
    g->taps = d->kh * d->kw * d->c_in;   /* checked with the im2col size */
    const int64_t dims[] = {d->c_in, erows, g->elen, size};
    if (!product_ok(dims, 4, &e_count) || e_count > LOWC_MAX_EXPANDED_BYTES)
        return 0;
    /* weight patterns (forward) or lane sums (backward-filter), then the bias row */
    table = ceil_div64((g->taps + 1) * g->patterns * g->lanes, align) * align;
    g->table_at = 0;
    g->stage_at = table;
    g->e_at = table + ceil_div64(g->reps * g->patterns * g->lanes, align) * align;
    g->bytes = PYCNN_ALIGN + g->e_at * size + e_count;   /* the slot region is aligned first */
    return 1;
}

int64_t conv_low_channel_slot_bytes(const pycnn_conv2d_desc *d, const conv_plan *p)
{
    lowc_geom g;
    return geometry(d, p, &g) ? align_up64(g.bytes) : 0;
}

#define LC_DTYPE_TYPES(T, SFX)                                                        \
    typedef struct {                                                                 \
        const T *e;            /* the ring of expanded rows: slot s of channel c */  \
        int64_t elen, ring, slot0, slot_step;   /* at e + c * e_chan_step + s * elen; */ \
        int64_t e_chan_step;                    /* slot0: the first in-image tap row */ \
        int64_t tap_step, wrap_step;   /* e from one kernel column to the next (wrap: */ \
        int64_t phase_step, stride_w;  /* when the stride phase passes stride_w) */      \
        int64_t rows, c_in, kw, segs, valid;   /* valid: ow * C elements per row */  \
        const T *w, *bias;     /* forward: weight and bias patterns */              \
        T *y;                                                                        \
        const T *dy;           /* backward-filter: lane sums per tap and of dy */    \
        T *acc, *bias_acc;                                                           \
        T *stage;              /* one segment, for the row's last partial one */     \
    } row_args_##SFX;                                                                \
    typedef void (*row_fn_##SFX)(const row_args_##SFX *);
LC_DTYPE_TYPES(float, f32)
LC_DTYPE_TYPES(double, f64)

/* The template, once per dtype and ISA. */
#define T float
#define LCT(name) name##_f32
#define LC_LANES 4
#define LC_REGS 16
#define LC_TARGET
#define LC(name) name##_f32_ref
#include "conv_low_channel_impl.h"
#undef LC_LANES
#undef LC_REGS
#undef LC_TARGET
#undef LC
#if defined(__x86_64__) && defined(PYCNN_HAVE_X86_KERNELS)
#define LC_LANES 8
#define LC_REGS 16
#define LC_TARGET __attribute__((target("avx2,fma")))
#define LC(name) name##_f32_avx2
#include "conv_low_channel_impl.h"
#undef LC_LANES
#undef LC_REGS
#undef LC_TARGET
#undef LC
#define LC_LANES 16
#define LC_REGS 32
#define LC_TARGET __attribute__((target("avx512f")))
#define LC(name) name##_f32_avx512
#include "conv_low_channel_impl.h"
#undef LC_LANES
#undef LC_REGS
#undef LC_TARGET
#undef LC
#endif
#undef T
#undef LCT

#define T double
#define LCT(name) name##_f64
#define LC_LANES 2
#define LC_REGS 16
#define LC_TARGET
#define LC(name) name##_f64_ref
#include "conv_low_channel_impl.h"
#undef LC_LANES
#undef LC_REGS
#undef LC_TARGET
#undef LC
#undef T
#undef LCT

/* The ISA's copy of a pass (the geometry used the same ISA's lanes). */
#if defined(__x86_64__) && defined(PYCNN_HAVE_X86_KERNELS)
#define LC_DISPATCH_f32(pass, ...)                             \
    if (strcmp(pycnn_isa(), "avx512") == 0)                    \
        return pass##_f32_avx512(__VA_ARGS__);                 \
    if (strcmp(pycnn_isa(), "avx2") == 0)                      \
        return pass##_f32_avx2(__VA_ARGS__);                   \
    return pass##_f32_ref(__VA_ARGS__);
#else
#define LC_DISPATCH_f32(pass, ...) return pass##_f32_ref(__VA_ARGS__);
#endif
#define LC_DISPATCH_f64(pass, ...) return pass##_f64_ref(__VA_ARGS__);
#define LC_DISPATCH(pass, SFX, ...) LC_DISPATCH_##SFX(pass, __VA_ARGS__)

#define LC_PASSES(T, SFX)                                                                          \
    pycnn_status conv_low_channel_forward_##SFX(const pycnn_conv2d_desc *d, const conv_plan *p,    \
                                                const T *x, const T *w, const T *bias, T *y,       \
                                                char *ws)                                          \
    {                                                                                              \
        lowc_geom g;                                                                               \
        if (!geometry(d, p, &g))   /* not reached: the plan checked it */                          \
            return PYCNN_ERR_OVERFLOW;                                                             \
        LC_DISPATCH(forward, SFX, d, p, &g, x, w, bias, y, ws)                                     \
    }                                                                                              \
    pycnn_status conv_low_channel_backward_filter_##SFX(const pycnn_conv2d_desc *d,                \
                                                        const conv_plan *p, const T *x,            \
                                                        const T *dy, T *dw, T *dbias, char *ws)    \
    {                                                                                              \
        lowc_geom g;                                                                               \
        if (!geometry(d, p, &g))                                                                   \
            return PYCNN_ERR_OVERFLOW;                                                             \
        LC_DISPATCH(backward_filter, SFX, d, p, &g, x, dy, dw, dbias, ws)                          \
    }
LC_PASSES(float, f32)
LC_PASSES(double, f64)
