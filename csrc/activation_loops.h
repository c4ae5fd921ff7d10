/* Activation loops, written once for float and double (included with T and FN
 * by activation.c, and by activation_avx2.c under -mavx2).  Each loop reads
 * every operand unconditionally and selects with ?: so that the compiler turns
 * it into compare-and-blend vector code. */

/* The leaky loops multiply only where x <= 0.  gcc will not compute that
 * product in every lane (a blend) unless told that FP exceptions are not
 * observed, which pycnn never does; clang assumes it by default. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

static void FN(relu_forward)(int64_t n, const T *restrict x, T *restrict y)
{
    /* !(v <= 0) rather than v > 0: NaN keeps its payload, and -0 gives +0 (np.maximum). */
    for (int64_t i = 0; i < n; i++) {
        const T v = x[i];
        y[i] = v <= 0 ? (T)0 : v;
    }
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
    for (int64_t i = 0; i < n; i++) {
        const T v = x[i];
        y[i] = v > 0 ? v : slope * v;
    }
}

static void FN(leaky_backward)(int64_t n, T slope, const T *restrict x, const T *restrict dy, T *restrict dx)
{
    for (int64_t i = 0; i < n; i++) {
        const T g = dy[i];
        dx[i] = x[i] > 0 ? g : slope * g;
    }
}

static void FN(run)(pycnn_activation_mode mode, T slope, int64_t n, const T *x, const T *dy, T *out)
{
    if (mode == PYCNN_ACTIVATION_LEAKY_RELU) {
        if (dy == NULL)
            FN(leaky_forward)(n, slope, x, out);
        else
            FN(leaky_backward)(n, slope, x, dy, out);
    } else if (dy == NULL) {
        FN(relu_forward)(n, x, out);
    } else {
        FN(relu_backward)(n, x, dy, out);
    }
}

void FN(block)(pycnn_activation_mode mode, double negative_slope, int64_t n,
               const void *x_, const void *dy_, void *out_)
{
    const T *x = x_, *dy = dy_;
    T *out = out_;
    /* A head up to out's first 64-byte boundary, then the rest: vector stores that
     * straddle cache lines (NumPy aligns to 16 bytes) cost ~5% on L3-resident data. */
    const int64_t head = min64(n, (int64_t)((64 - (uintptr_t)out % 64) % 64 / sizeof(T)));
    FN(run)(mode, (T)negative_slope, head, x, dy, out);
    FN(run)(mode, (T)negative_slope, n - head, x + head, dy == NULL ? NULL : dy + head, out + head);
}
