/* Element-wise activation loops: a portable build and one compiled with -mavx2
 * (csrc/activation_avx2.c), chosen at load time with the GEMM kernel's ISA. */
#ifndef PYCNN_ACTIVATION_H
#define PYCNN_ACTIVATION_H
#include "pycnn.h"

/* Runs n elements of the activation: forward (out = y) when dy is NULL,
 * backward (out = dx) otherwise.  Arrays are of the block function's dtype. */
typedef void (*activation_block_fn)(const pycnn_activation_desc *d, int64_t n,
                                    const void *x, const void *dy, void *out);

void pycnn_activation_block_ref_f32(const pycnn_activation_desc *, int64_t, const void *, const void *, void *);
void pycnn_activation_block_ref_f64(const pycnn_activation_desc *, int64_t, const void *, const void *, void *);
void pycnn_activation_block_avx2_f32(const pycnn_activation_desc *, int64_t, const void *, const void *, void *);
void pycnn_activation_block_avx2_f64(const pycnn_activation_desc *, int64_t, const void *, const void *, void *);

/* The convolution epilogue e on rows of y (`channels` values each, ld apart), in place. */
typedef void (*activation_epilogue_fn)(const pycnn_epilogue *e, void *y, int64_t rows, int64_t channels,
                                       int64_t ld);

void pycnn_activation_epilogue_ref_f32(const pycnn_epilogue *, void *, int64_t, int64_t, int64_t);
void pycnn_activation_epilogue_ref_f64(const pycnn_epilogue *, void *, int64_t, int64_t, int64_t);
void pycnn_activation_epilogue_avx2_f32(const pycnn_epilogue *, void *, int64_t, int64_t, int64_t);
void pycnn_activation_epilogue_avx2_f64(const pycnn_epilogue *, void *, int64_t, int64_t, int64_t);

/* The build of the epilogue for the dtype and the GEMM's ISA (as the element-wise ops choose). */
activation_epilogue_fn activation_epilogue_for(pycnn_dtype dtype);
/* PYCNN_OK, or PYCNN_ERR_BAD_PARAMETER for an unknown mode or bad clamp bounds. */
pycnn_status activation_epilogue_check(const pycnn_epilogue *e);
#endif
