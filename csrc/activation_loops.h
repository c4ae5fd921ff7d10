/* Activation loops (relu, leaky_relu, sigmoid, tanh, clamp) and the convolution
 * epilogue, written once for float and double (included with T and FN
 * by activation.c, and by activation_avx2.c under -mavx2).  Each loop reads
 * every operand unconditionally and selects with ?: so that the compiler turns
 * it into compare-and-blend vector code. */

/* The leaky loops multiply only where x <= 0.  gcc will not compute that
 * product in every lane (a blend) unless told that FP exceptions are not
 * observed, which pycnn never does; clang assumes it by default. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

/* One value of each piecewise-linear activation: shared by the element-wise
 * loops and the convolution epilogue, so both compute the same operations. */
static inline T FN(relu_value)(T v)
{
    /* !(v <= 0) rather than v > 0: NaN keeps its payload, and -0 gives +0 (np.maximum). */
    return v <= 0 ? (T)0 : v;
}

static inline T FN(leaky_value)(T slope, T v)
{
    return v > 0 ? v : slope * v;
}

static inline T FN(clamp_value)(T lo, T hi, T v)
{
    /* <= and >= like relu: -0 at lo = 0 gives +0, and NaN passes both tests. */
    return v <= lo ? lo : v >= hi ? hi : v;
}

static void FN(relu_forward)(int64_t n, const T *restrict x, T *restrict y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = FN(relu_value)(x[i]);
}

static void FN(relu_backward)(int64_t n, const T *restrict x, const T *restrict dy, T *restrict dx)
{
    for (int64_t i = 0; i < n; i++) {
        const T g = dy[i];
        dx[i] = x[i] > 0 ? g : (T)0;
    }
}

static void FN(leaky_forward)(int64_t n, T slope, const T *restrict x, T *restrict y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = FN(leaky_value)(slope, x[i]);
}

static void FN(leaky_backward)(int64_t n, T slope, const T *restrict x, const T *restrict dy, T *restrict dx)
{
    for (int64_t i = 0; i < n; i++) {
        const T g = dy[i];
        dx[i] = x[i] > 0 ? g : slope * g;
    }
}

static void FN(clamp_forward)(int64_t n, T lo, T hi, const T *restrict x, T *restrict y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = FN(clamp_value)(lo, hi, x[i]);
}

static void FN(clamp_backward)(int64_t n, T lo, T hi, const T *restrict x, const T *restrict dy, T *restrict dx)
{
    for (int64_t i = 0; i < n; i++) {
        const T g = dy[i], v = x[i];
        dx[i] = v > lo && v < hi ? g : (T)0;
    }
}

#ifndef PYCNN_ACTIVATION_FLOAT_MATH
#define PYCNN_ACTIVATION_FLOAT_MATH
/* e^a for a <= 0 (or NaN) in float32, within about 1 ulp: Cody-Waite reduction
 * a = n ln2 + r and Cephes' expf polynomial for e^r, then 2^n from exponent
 * bits.  Branch-free integer and float steps, so loops over it vectorize (libm's
 * expf is a scalar call).  2^n is applied as two normal factors because n goes
 * down to -150, where the result is a denormal. */
static inline float exp_nonpositive_f32(float a)
{
    a = a < -104.0f ? -104.0f : a;      /* e^-104 rounds to 0; NaN passes through */
    const float shifter = 12582912.0f;  /* 1.5 * 2^23: adding it rounds to an integer */
    const float t = a * 1.44269504088896341f + shifter;
    const float n = t - shifter;
    float r = a - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    int32_t t_bits;
    memcpy(&t_bits, &t, sizeof t_bits);
    const int32_t k = t_bits - 0x4B400000;   /* n as an integer (t = 1.5 * 2^23 + n) */
    const int32_t k1 = k / 2, k2 = k - k1;
    const uint32_t b1 = (uint32_t)(k1 + 127) << 23, b2 = (uint32_t)(k2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    return p * s1 * s2;
}

/* tanh in float32: Cephes' odd polynomial below |x| = 0.625 (where 1 - e^-2|x|
 * would cancel), (1 - e) / (1 + e) with e = e^-2|x| above. */
static inline float tanh_f32(float v)
{
    const float a = v < 0 ? -v : v;
    const float z = a * a;
    const float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                          1.33314422036e-1f) * z - 3.33332819422e-1f) * z * a + a;
    const float e = exp_nonpositive_f32(-2.0f * a);
    const float large = (1.0f - e) / (1.0f + e);
    return copysignf(a < 0.625f ? small : large, v);   /* tanh(-0) = -0, NaN stays NaN */
}
#endif

/* float32 through the vectorizable functions above, float64 through libm. */
static inline T FN(sigmoid_value)(T v)
{
    const T minus_abs = v < 0 ? v : -v;
    const T e = sizeof(T) == sizeof(float) ? (T)exp_nonpositive_f32((float)minus_abs) : (T)exp((double)minus_abs);
    const T s = (T)1 / ((T)1 + e);
    return v >= 0 ? s : e * s;   /* e / (1 + e) for v < 0: no overflow */
}

static inline T FN(tanh_value)(T v)
{
    return sizeof(T) == sizeof(float) ? (T)tanh_f32((float)v) : (T)tanh((double)v);
}

static void FN(sigmoid_forward)(int64_t n, const T *restrict x, T *restrict y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = FN(sigmoid_value)(x[i]);
}

static void FN(sigmoid_backward)(int64_t n, const T *restrict x, const T *restrict dy, T *restrict dx)
{
    for (int64_t i = 0; i < n; i++) {
        const T s = FN(sigmoid_value)(x[i]);
        dx[i] = dy[i] * s * ((T)1 - s);
    }
}

static void FN(tanh_forward)(int64_t n, const T *restrict x, T *restrict y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = FN(tanh_value)(x[i]);
}

static void FN(tanh_backward)(int64_t n, const T *restrict x, const T *restrict dy, T *restrict dx)
{
    for (int64_t i = 0; i < n; i++) {
        const T t = FN(tanh_value)(x[i]);
        dx[i] = dy[i] * ((T)1 - t * t);
    }
}

static void FN(run)(const pycnn_activation_desc *d, int64_t n, const T *x, const T *dy, T *out)
{
    const T slope = (T)d->negative_slope;
    switch (d->mode) {
    case PYCNN_ACTIVATION_CLAMP:
        if (dy == NULL)
            FN(clamp_forward)(n, (T)d->clamp_lo, (T)d->clamp_hi, x, out);
        else
            FN(clamp_backward)(n, (T)d->clamp_lo, (T)d->clamp_hi, x, dy, out);
        break;
    case PYCNN_ACTIVATION_LEAKY_RELU:
        if (dy == NULL)
            FN(leaky_forward)(n, slope, x, out);
        else
            FN(leaky_backward)(n, slope, x, dy, out);
        break;
    case PYCNN_ACTIVATION_SIGMOID:
        if (dy == NULL)
            FN(sigmoid_forward)(n, x, out);
        else
            FN(sigmoid_backward)(n, x, dy, out);
        break;
    case PYCNN_ACTIVATION_TANH:
        if (dy == NULL)
            FN(tanh_forward)(n, x, out);
        else
            FN(tanh_backward)(n, x, dy, out);
        break;
    default:
        if (dy == NULL)
            FN(relu_forward)(n, x, out);
        else
            FN(relu_backward)(n, x, dy, out);
    }
}

void FN(block)(const pycnn_activation_desc *d, int64_t n, const void *x_, const void *dy_, void *out_)
{
    const T *x = x_, *dy = dy_;
    T *out = out_;
    /* A head up to out's first 64-byte boundary, then the rest: vector stores that
     * straddle cache lines (NumPy aligns to 16 bytes) cost ~5% on L3-resident data. */
    const int64_t head = min64(n, (int64_t)((64 - (uintptr_t)out % 64) % 64 / sizeof(T)));
    FN(run)(d, head, x, dy, out);
    FN(run)(d, n - head, x + head, dy == NULL ? NULL : dy + head, out + head);
}

/* The convolution epilogue: rows of `channels` values, ld apart, in place
 * (y is the chunk the convolution just wrote, still in cache). */
void FN(epilogue)(const pycnn_epilogue *e, void *y_, int64_t rows, int64_t channels, int64_t ld)
{
    const int64_t n = ld == channels ? rows * channels : channels;   /* one flat loop when dense */
    const int64_t passes = ld == channels ? 1 : rows;
    const T slope = (T)e->negative_slope, lo = (T)e->clamp_lo, hi = (T)e->clamp_hi;
    for (int64_t r = 0; r < passes; r++) {
        T *restrict y = (T *)y_ + r * ld;
        switch (e->mode) {
        case PYCNN_EPILOGUE_RELU:
            for (int64_t i = 0; i < n; i++)
                y[i] = FN(relu_value)(y[i]);
            break;
        case PYCNN_EPILOGUE_LEAKY_RELU:
            for (int64_t i = 0; i < n; i++)
                y[i] = FN(leaky_value)(slope, y[i]);
            break;
        case PYCNN_EPILOGUE_CLAMP:
            for (int64_t i = 0; i < n; i++)
                y[i] = FN(clamp_value)(lo, hi, y[i]);
            break;
        default:
            return;
        }
    }
}
