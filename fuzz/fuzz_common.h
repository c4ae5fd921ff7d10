/*
 * Shared helpers of the libFuzzer harnesses (fuzz/fuzz_*.c).
 *
 * Every harness decodes the fuzz bytes into one op descriptor, calls the
 * engine's validating entry points and then checks one of two outcomes:
 *   - an error status (and the passes refuse the same descriptor), or
 *   - success, a geometry that matches an independent __int128 computation,
 *     and, when the arrays are small, results equal to a naive float64 loop.
 * Buffers are malloc'ed at their exact size so AddressSanitizer catches any
 * read or write outside them.  The decoding is mirrored byte for byte in
 * tests/test_fuzz_regressions.py, which replays the corpus through the
 * Python binding.
 */
#ifndef PYCNN_FUZZ_COMMON_H
#define PYCNN_FUZZ_COMMON_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pycnn.h"

/* Arrays larger than this (elements) or a naive reference costing more
 * multiply-adds are only validated, not computed: keeps each run fast. */
#define FUZZ_MAX_ELEMENTS (1 << 16)
#define FUZZ_MAX_WORK (1 << 21)
#define FUZZ_MAX_WORKSPACE (64 << 20)

typedef struct {
    const uint8_t *data;
    size_t size, pos;
} fuzz_bytes;

static inline uint8_t take_u8(fuzz_bytes *in)
{
    return in->pos < in->size ? in->data[in->pos++] : 0;
}

/* Values an attacker (or a typo) would try: zero, negatives, int32 and int64 edges. */
static const int64_t hostile_values[16] = {
    0, -1, -2, INT64_MIN, INT64_MAX, INT64_MAX / 2, (int64_t)1 << 31, ((int64_t)1 << 31) - 1,
    (int64_t)1 << 32, (int64_t)1 << 62, -((int64_t)1 << 62), 3037000500LL /* ~sqrt(INT64_MAX) */,
    (int64_t)1 << 20, (int64_t)1 << 40, INT32_MIN, 65536,
};

/* One byte -> a size: mostly in [-1, small_max], sometimes a hostile value.
 * (The same mapping is in tests/test_fuzz_regressions.py: take_dim.) */
static inline int64_t take_dim(fuzz_bytes *in, int64_t small_max)
{
    const uint8_t b = take_u8(in);
    if (b >= 240)
        return hostile_values[b - 240];
    return (int64_t)(b % (uint8_t)(small_max + 2)) - 1;
}

/* Deterministic small-integer data (-4..4) so float32 sums are exact. */
static inline uint32_t fuzz_rng_next(uint32_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}

static inline void fill_small(void *buf, int64_t count, pycnn_dtype dtype, uint32_t seed, int with_nan)
{
    uint32_t s = seed | 1u;
    for (int64_t i = 0; i < count; i++) {
        const uint32_t r = fuzz_rng_next(&s);
        double v = (double)(int)(r % 9u) - 4.0;
        if (with_nan && r % 97u == 0)
            v = NAN;
        if (dtype == PYCNN_FLOAT32)
            ((float *)buf)[i] = (float)v;
        else
            ((double *)buf)[i] = v;
    }
}

static inline double get_value(const void *buf, int64_t i, pycnn_dtype dtype)
{
    return dtype == PYCNN_FLOAT32 ? (double)((const float *)buf)[i] : ((const double *)buf)[i];
}

/* malloc of count elements (at least one byte, so ASan guards even empty arrays). */
static inline void *alloc_array(int64_t count, pycnn_dtype dtype)
{
    const size_t bytes = (size_t)count * (dtype == PYCNN_FLOAT64 ? 8 : 4);
    void *p = malloc(bytes ? bytes : 1);
    if (p == NULL)
        abort();
    return p;
}

/* Element count of a shape, or -1 when it exceeds FUZZ_MAX_ELEMENTS. */
static inline int64_t small_count(const int64_t *dims, int count)
{
    __int128 p = 1;
    for (int i = 0; i < count; i++) {
        if (dims[i] < 0)
            return -1;
        p *= dims[i];
        if (p > FUZZ_MAX_ELEMENTS)
            return -1;
    }
    return (int64_t)p;
}

#define FUZZ_FAIL(...)                                                   \
    do {                                                                 \
        fprintf(stderr, "fuzz finding: " __VA_ARGS__);                   \
        fprintf(stderr, "\n");                                           \
        abort();                                                         \
    } while (0)

/* got == ref within float rounding of the data's magnitude.  A NaN in the
 * reference must come out as NaN.  When the inputs hold NaN, the engine may
 * also give NaN where the reference skipped a zero-padded tap (NaN * 0 in the
 * GEMM, as PyTorch's zero padding does): set nan_inputs for that. */
static int nan_inputs;
static inline void expect_close(const char *what, const void *got, const double *ref, int64_t count,
                                pycnn_dtype dtype, double scale)
{
    const double tol = (dtype == PYCNN_FLOAT32 ? 1e-5 : 1e-12) * (1.0 + scale);
    for (int64_t i = 0; i < count; i++) {
        const double g = get_value(got, i, dtype);
        if ((nan_inputs && isnan(g)) || g == ref[i])   /* equal infinities have a NaN difference */
            continue;
        if (isnan(ref[i]) ? !isnan(g) : !(fabs(g - ref[i]) <= tol))
            FUZZ_FAIL("%s[%lld] = %.17g, reference %.17g", what, (long long)i, g, ref[i]);
    }
}

/* An interrupt poll that fires after a fuzz-chosen number of calls. */
static int64_t poll_budget;
static inline int fuzz_poll(void)
{
    return poll_budget-- <= 0;
}

#endif
