/*
 * Blocked GEMM driver (BLIS layout: NC/KC/MC cache blocks around an MR x NR
 * register micro-kernel).  The driver owns packing and edge tiles; the
 * micro-kernel is chosen once at load time from the CPU's features, with
 * PYCNN_ISA=ref|avx2|avx512 as an override for tests.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "gemm_tiles.h"

static const ukernel_f32_info *ukernel_f32 = &pycnn_gemm_ukernel_ref_f32;
static const ukernel_f64_info *ukernel_f64 = &pycnn_gemm_ukernel_ref_f64;
static const char *isa_name = "ref";
/* Loops built twice (see gemm_small_m.h) take their AVX2 build with a SIMD kernel. */
static int simd_loops = 0;

static int cpu_has(const char *isa)
{
#if defined(__x86_64__) && defined(PYCNN_HAVE_X86_KERNELS)
    __builtin_cpu_init();
    if (strcmp(isa, "avx512") == 0)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
    if (strcmp(isa, "avx2") == 0)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    (void)isa;
    return 0;
}

static void use_isa(const char *isa)
{
#if defined(__x86_64__) && defined(PYCNN_HAVE_X86_KERNELS)
    if (strcmp(isa, "avx512") == 0) {
        ukernel_f32 = &pycnn_gemm_ukernel_avx512_f32;
        ukernel_f64 = &pycnn_gemm_ukernel_avx512_f64;
        isa_name = "avx512";
        simd_loops = 1;
        return;
    }
    if (strcmp(isa, "avx2") == 0) {
        ukernel_f32 = &pycnn_gemm_ukernel_avx2_f32;
        ukernel_f64 = &pycnn_gemm_ukernel_avx2_f64;
        isa_name = "avx2";
        simd_loops = 1;
        return;
    }
#endif
    (void)isa;
    ukernel_f32 = &pycnn_gemm_ukernel_ref_f32;
    ukernel_f64 = &pycnn_gemm_ukernel_ref_f64;
    isa_name = "ref";
    simd_loops = 0;
}

/* Runs once when the library loads, before any kernel can be called. */
__attribute__((constructor)) static void select_isa(void)
{
    const char *wanted = getenv("PYCNN_ISA");
    if (wanted != NULL && (strcmp(wanted, "ref") == 0 || cpu_has(wanted))) {
        use_isa(wanted);
        return;
    }
    if (cpu_has("avx512"))
        use_isa("avx512");
    else if (cpu_has("avx2"))
        use_isa("avx2");
    else
        use_isa("ref");
}

const char *pycnn_isa(void) { return isa_name; }

/* Rows of the packed A block: the problem rounded up to any kernel's MR. */
static int64_t packed_rows(int64_t m) { return min64(GEMM_MC, m + GEMM_MR_MAX); }

int64_t gemm_pack_bytes(pycnn_dtype dtype, int64_t m, int64_t n, int64_t k)
{
    /* Packed A block, then packed B panel, each no larger than the problem. */
    const int64_t kb = min64(GEMM_KC, max64(k, 1));
    const int64_t nb = min64(GEMM_NC, max64(n, 1) + GEMM_NR_MAX);
    return (int64_t)dtype_size(dtype) * (packed_rows(max64(m, 1)) * kb + kb * nb);
}

#define T float
#define FN(name) name##_f32
#define UKERNEL (*ukernel_f32)
#include "gemm_impl.h"
#undef T
#undef FN
#undef UKERNEL

#define T double
#define FN(name) name##_f64
#define UKERNEL (*ukernel_f64)
#include "gemm_impl.h"

int64_t gemm_nr(pycnn_dtype dtype) { return dtype == PYCNN_FLOAT64 ? ukernel_f64->nr : ukernel_f32->nr; }
