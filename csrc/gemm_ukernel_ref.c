/* GEMM micro-kernels, ref build (flags set per file in setup.py). */
#include <stdint.h>

#define T float
#define UKERNEL_NAME pycnn_gemm_ukernel_ref_f32
#include "gemm_ukernel.h"
#undef T
#undef UKERNEL_NAME

#define T double
#define UKERNEL_NAME pycnn_gemm_ukernel_ref_f64
#include "gemm_ukernel.h"
