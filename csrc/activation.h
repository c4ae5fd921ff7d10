/* Element-wise activation loops: a portable build and one compiled with -mavx2
 * (csrc/activation_avx2.c), chosen at load time with the GEMM kernel's ISA. */
#ifndef PYCNN_ACTIVATION_H
#define PYCNN_ACTIVATION_H
#include "pycnn.h"

/* Runs n elements of the activation: forward (out = y) when dy is NULL,
 * backward (out = dx) otherwise.  Arrays are of the block function's dtype. */
typedef void (*activation_block_fn)(pycnn_activation_mode mode, double negative_slope, int64_t n,
                                    const void *x, const void *dy, void *out);

void pycnn_activation_block_ref_f32(pycnn_activation_mode, double, int64_t, const void *, const void *, void *);
void pycnn_activation_block_ref_f64(pycnn_activation_mode, double, int64_t, const void *, const void *, void *);
void pycnn_activation_block_avx2_f32(pycnn_activation_mode, double, int64_t, const void *, const void *, void *);
void pycnn_activation_block_avx2_f64(pycnn_activation_mode, double, int64_t, const void *, const void *, void *);
#endif
