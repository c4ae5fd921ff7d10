/* Register-tile and cache-block sizes shared by the GEMM driver and kernels. */
#ifndef PYCNN_GEMM_TILES_H
#define PYCNN_GEMM_TILES_H
#include <stdint.h>

#define GEMM_MR 8      /* rows of C per micro-tile                       */
#define GEMM_NR 16     /* columns of C per micro-tile: one AVX-512 float vector */
#define GEMM_KC 256    /* depth of a packed block (A block stays in L2)  */
#define GEMM_MC 96     /* rows of a packed A block                       */
#define GEMM_NC 2048   /* columns of a packed B panel                    */

typedef void (*ukernel_f32_fn)(int64_t, const float *, const float *, float *, int64_t, int, int64_t, int64_t);
typedef void (*ukernel_f64_fn)(int64_t, const double *, const double *, double *, int64_t, int, int64_t, int64_t);

void pycnn_gemm_ukernel_ref_f32(int64_t, const float *, const float *, float *, int64_t, int, int64_t, int64_t);
void pycnn_gemm_ukernel_ref_f64(int64_t, const double *, const double *, double *, int64_t, int, int64_t, int64_t);
void pycnn_gemm_ukernel_avx2_f32(int64_t, const float *, const float *, float *, int64_t, int, int64_t, int64_t);
void pycnn_gemm_ukernel_avx2_f64(int64_t, const double *, const double *, double *, int64_t, int, int64_t, int64_t);
void pycnn_gemm_ukernel_avx512_f32(int64_t, const float *, const float *, float *, int64_t, int, int64_t, int64_t);
void pycnn_gemm_ukernel_avx512_f64(int64_t, const double *, const double *, double *, int64_t, int, int64_t, int64_t);
#endif
