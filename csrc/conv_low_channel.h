/* Direct convolution for few input and few output channels (LeNet's layers),
 * forward and backward-filter, with no im2col (engine-internal; see
 * conv_low_channel.c).  conv.c plans it, conv_impl.h dispatches to it. */
#ifndef PYCNN_CONV_LOW_CHANNEL_H
#define PYCNN_CONV_LOW_CHANNEL_H
#include "conv.h"

/* Shapes the path takes: one group, stride_w 1, and up to these channels.
 * Measured against the transposed GEMM of conv_impl.h (32 images, 3x3 and
 * 5x5): faster in both passes up to 32 input channels; at 64 with 6 filters
 * the GEMM wins backward-filter. */
#define LOWC_MAX_C_IN 32
#define LOWC_MAX_C_OUT 16
/* With 8 or 16 float lanes (AVX2, AVX-512), also filters filling up to this
 * many whole vectors per pixel (up to 96 on AVX-512: the stems of VGG, ResNet
 * and AlexNet, 1-D CNNs, CIFAR CNNs), from up to LOWC_MAX_WIDE_C_IN input
 * channels: a segment is then a register tile of pixels x filters with one
 * broadcast input value per pixel and tap, a GEMM micro-kernel without the
 * im2col.  Measured against the GEMM path (1-32 images, 3x3 to 11x11):
 * forward and backward-filter 1.1-2.8x faster from 3 to 64 input channels; at
 * 128 level at 1 thread (0.96-1.2x) and 1.6-2x faster at 2. */
#define LOWC_MAX_WIDE_PATTERNS 6
#define LOWC_MAX_WIDE_C_IN 128
/* P even needs one value per pixel (the lanes divide C): P * lanes up to 16,
 * or wide patterns with 8 or more lanes. */
#define LOWC_BROADCAST_OK(P, LANES) ((P) * (LANES) <= 16 || ((LANES) >= 8 && (P) <= LOWC_MAX_WIDE_PATTERNS))

/* 1 when the layer can take the path (before its workspace is sized). */
int conv_low_channel_eligible(const pycnn_conv2d_desc *d, const conv_plan *p);
/* 1 when c_out divides the vector lanes of the process's ISA or is a multiple
 * of them (no lane pattern repeats). */
int conv_low_channel_whole_vectors(const pycnn_conv2d_desc *d);
/* Bytes of one slot's low-channel buffers for the plan's chunks; 0 when the
 * path should not be used (an expanded input too large, or overflow). */
int64_t conv_low_channel_slot_bytes(const pycnn_conv2d_desc *d, const conv_plan *p);

pycnn_status conv_low_channel_forward_f32(const pycnn_conv2d_desc *d, const conv_plan *p, const float *x,
                                          const float *w, const float *bias, float *y, char *ws);
pycnn_status conv_low_channel_forward_f64(const pycnn_conv2d_desc *d, const conv_plan *p, const double *x,
                                          const double *w, const double *bias, double *y, char *ws);
pycnn_status conv_low_channel_backward_filter_f32(const pycnn_conv2d_desc *d, const conv_plan *p,
                                                  const float *x, const float *dy, float *dw,
                                                  float *dbias, char *ws);
pycnn_status conv_low_channel_backward_filter_f64(const pycnn_conv2d_desc *d, const conv_plan *p,
                                                  const double *x, const double *dy, double *dw,
                                                  double *dbias, char *ws);
#endif
