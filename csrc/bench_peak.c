/*
 * Machine-limit probes for `python -m pycnn.bench` (not used by any op):
 * FMA throughput from independent accumulator chains, and memory bandwidth
 * (read-only sum, copy) over caller-provided buffers.  A GEMM cannot stand
 * in for the peak: packing, loads and edge tiles keep it below the FMA rate.
 *
 * The ISA-specific loops use function target attributes, so this file
 * builds with the engine's portable flags; callers check the CPU first.
 */
#include <string.h>
#include <time.h>

#include "internal.h"

#if defined(__x86_64__) && defined(PYCNN_HAVE_X86_KERNELS)
#include <immintrin.h>
#define BENCH_X86 1
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

/* 12 chains: more than the 4-cycle latency x 2 pipes = 8 needed on AVX-512,
 * and the 10+ AVX2 needs; 12 + 2 operands fit in 16 ymm registers. */
#define FMA_CHAINS 12

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Keeps the compiler from dropping the loops whose results nobody reads. */
static volatile float bench_sink;

/* acc = acc * 0.9999999 + 1e-7 converges to 1: no overflow, no denormals. */
#define FMA_BODY(VEC, SET1, FMADD, ADD, REDUCE)                                        \
    VEC a = SET1(0.9999999f), b = SET1(1e-7f);                                         \
    VEC c0 = SET1(0.1f), c1 = SET1(0.2f), c2 = SET1(0.3f), c3 = SET1(0.4f);            \
    VEC c4 = SET1(0.5f), c5 = SET1(0.6f), c6 = SET1(0.7f), c7 = SET1(0.8f);            \
    VEC c8 = SET1(0.9f), c9 = SET1(1.1f), c10 = SET1(1.2f), c11 = SET1(1.3f);          \
    for (int64_t it = 0; it < iterations; it++) {                                      \
        c0 = FMADD(c0, a, b); c1 = FMADD(c1, a, b); c2 = FMADD(c2, a, b);              \
        c3 = FMADD(c3, a, b); c4 = FMADD(c4, a, b); c5 = FMADD(c5, a, b);              \
        c6 = FMADD(c6, a, b); c7 = FMADD(c7, a, b); c8 = FMADD(c8, a, b);              \
        c9 = FMADD(c9, a, b); c10 = FMADD(c10, a, b); c11 = FMADD(c11, a, b);          \
    }                                                                                  \
    VEC s = ADD(ADD(ADD(c0, c1), ADD(c2, c3)), ADD(ADD(c4, c5), ADD(c6, c7)));         \
    s = ADD(s, ADD(ADD(c8, c9), ADD(c10, c11)));                                       \
    bench_sink = REDUCE(s);

#ifdef BENCH_X86
__attribute__((target("avx512f"))) static void fma_chains_avx512(int64_t iterations)
{
    FMA_BODY(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_reduce_add_ps)
}

__attribute__((target("avx2"))) static float sum8(__m256 v)
{
    float lanes[8];
    _mm256_storeu_ps(lanes, v);
    float s = 0;
    for (int i = 0; i < 8; i++)
        s += lanes[i];
    return s;
}

__attribute__((target("avx2,fma"))) static void fma_chains_avx2(int64_t iterations)
{
    FMA_BODY(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, sum8)
}
#endif

int bench_fma_lanes(const char *isa)
{
#ifdef BENCH_X86
    __builtin_cpu_init();
    if (strcmp(isa, "avx512") == 0 && __builtin_cpu_supports("avx512f"))
        return 16;
    if (strcmp(isa, "avx2") == 0 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return 8;
#endif
    (void)isa;
    return 0;
}

/* Runs `iterations` steps of the chains on `threads` threads at once;
 * returns the wall time, sets the FLOP count (2 per lane per FMA) and the
 * threads used.  Returns -1 when the ISA is not available. */
double bench_fma_run(const char *isa, int threads, int64_t iterations, double *flops, int *threads_used)
{
    const int lanes = bench_fma_lanes(isa);
    if (lanes == 0)
        return -1.0;
#ifdef BENCH_X86
    const int avx512 = lanes == 16;
    int used = 1;
    const double start = now_seconds();
    #pragma omp parallel num_threads(threads < 1 ? 1 : threads)
    {
        #ifdef _OPENMP
        #pragma omp single
        used = omp_get_num_threads();
        #endif
        if (avx512)
            fma_chains_avx512(iterations);
        else
            fma_chains_avx2(iterations);
    }
    const double seconds = now_seconds() - start;
    *threads_used = used;
    *flops = 2.0 * lanes * FMA_CHAINS * (double)iterations * used;
    return seconds;
#else
    (void)threads, (void)iterations, (void)flops, (void)threads_used;
    return -1.0;
#endif
}

/* Sum of n floats with 8 independent vector sums, so the loop is limited
 * by the memory system, not by the add latency. */
static float read_sum(const float *a, int64_t n)
{
    int64_t i = 0;
    float total = 0;
#ifdef __SSE2__
    __m128 s[8];
    for (int j = 0; j < 8; j++)
        s[j] = _mm_setzero_ps();
    for (; i + 32 <= n; i += 32)
        for (int j = 0; j < 8; j++)
            s[j] = _mm_add_ps(s[j], _mm_loadu_ps(a + i + 4 * j));
    float lanes[4];
    for (int j = 1; j < 8; j++)
        s[0] = _mm_add_ps(s[0], s[j]);
    _mm_storeu_ps(lanes, s[0]);
    total = lanes[0] + lanes[1] + lanes[2] + lanes[3];
#endif
    for (; i < n; i++)
        total += a[i];
    return total;
}

/* Each thread reads (and for copy writes) its own contiguous share. */
double bench_memory_run(int copy, float *dst, const float *src, int64_t n, int threads, int *threads_used)
{
    int used = 1;
    const double start = now_seconds();
    #pragma omp parallel num_threads(threads < 1 ? 1 : threads)
    {
        int id = 0, count = 1;
        #ifdef _OPENMP
        id = omp_get_thread_num();
        count = omp_get_num_threads();
        #pragma omp single nowait
        used = count;
        #endif
        const int64_t begin = n * id / count, end = n * (id + 1) / count;
        if (copy)
            memcpy(dst + begin, src + begin, (size_t)(end - begin) * sizeof(float));
        else {
            const float sum = read_sum(src + begin, end - begin);
            #pragma omp critical
            bench_sink = sum;
        }
    }
    const double seconds = now_seconds() - start;
    *threads_used = used;
    return seconds;
}
