/* Portable GEMM micro-kernels: always built, the reference for every ISA. */
#include <stddef.h>
#include <stdint.h>

#define T float
#define UKERNEL_NAME ukernel_f32
#define UKERNEL_MR 8
#define UKERNEL_NR 16
#include "gemm_ukernel.h"
#undef T
#undef UKERNEL_NAME
#undef UKERNEL_MR
#undef UKERNEL_NR

#define T double
#define UKERNEL_NAME ukernel_f64
#define UKERNEL_MR 8
#define UKERNEL_NR 8
#include "gemm_ukernel.h"

const ukernel_f32_info pycnn_gemm_ukernel_ref_f32 = {ukernel_f32, 8, 16, NULL, NULL};
const ukernel_f64_info pycnn_gemm_ukernel_ref_f64 = {ukernel_f64, 8, 8, NULL, NULL};
