/* Status strings, thread count and the interrupt poll. */
#include "internal.h"

static const char *const status_text[PYCNN_STATUS_COUNT] = {
    [PYCNN_OK] = "success",
    [PYCNN_ERR_NULL_POINTER] = "a required array pointer is NULL",
    [PYCNN_ERR_BAD_DTYPE] = "dtype must be float32 or float64",
    [PYCNN_ERR_BAD_SHAPE] = "every size must be >= 1 (batch >= 0)",
    [PYCNN_ERR_BAD_STRIDE] = "stride must be >= 1",
    [PYCNN_ERR_BAD_DILATION] = "dilation must be >= 1",
    [PYCNN_ERR_BAD_PADDING] = "padding must be >= 0 and smaller than the window",
    [PYCNN_ERR_BAD_GROUPS] = "groups must be >= 1 and divide the input and output channels",
    [PYCNN_ERR_KERNEL_TOO_LARGE] = "effective kernel is larger than the padded input",
    [PYCNN_ERR_BAD_OUTPUT_SIZE] = "output size is inconsistent with the input, kernel and stride",
    [PYCNN_ERR_OVERFLOW] = "array size overflows int64",
    [PYCNN_ERR_WORKSPACE_TOO_SMALL] = "workspace is smaller than the size the op asked for",
    [PYCNN_ERR_INTERRUPTED] = "interrupted",
    [PYCNN_ERR_BAD_PARAMETER] = "a parameter is out of range (an unknown activation mode, or epsilon not > 0)",
    [PYCNN_ERR_BAD_INDEX] = "indices must be positions iy * w + ix inside their own pooling window; got one outside it",
    [PYCNN_ERR_INDEX_RANGE] = "an image plane must have at most 2**31 - 1 positions (h * w) for int32 indices",
    [PYCNN_ERR_PACKED_MISMATCH] = "the packed filters were made for another kernel shape, groups, dtype or "
                                  "GEMM kernel; pack them again for this call",
};

const char *pycnn_status_str(pycnn_status status)
{
    if ((int)status < 0 || status >= PYCNN_STATUS_COUNT)
        return "unknown status";
    return status_text[status];
}

static int num_threads = 0;   /* 0: not set yet, use every available core */
static pycnn_interrupt_poll interrupt_poll = NULL;

int pycnn_set_num_threads(int n)
{
#ifdef _OPENMP
    /* Atomic: another Python thread may be running a kernel that reads it. */
    __atomic_store_n(&num_threads, n < 1 ? 1 : n, __ATOMIC_RELAXED);
#else
    (void)n;   /* built without OpenMP: always serial */
#endif
    return pycnn_get_num_threads();
}

int pycnn_get_num_threads(void)
{
#ifdef _OPENMP
    const int n = __atomic_load_n(&num_threads, __ATOMIC_RELAXED);
    return n > 0 ? n : omp_get_num_procs();
#else
    return 1;
#endif
}

int worker_threads(int64_t items, int64_t work)
{
    if (work < PYCNN_PARALLEL_MIN_WORK)
        return 1;
    return (int)min64(pycnn_get_num_threads(), max64(items, 1));
}

void pycnn_set_interrupt_poll(pycnn_interrupt_poll poll) { interrupt_poll = poll; }

int interrupt_requested(void)
{
    return interrupt_poll != NULL && interrupt_poll() != 0;
}

int product_ok(const int64_t *factors, int count, int64_t *out)
{
    int64_t p = 1;
    for (int i = 0; i < count; i++) {
        if (factors[i] < 0 || !mul_ok(p, factors[i], &p))
            return 0;
    }
    *out = p;
    return 1;
}
