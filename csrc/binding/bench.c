/* Binding of the machine-limit probes (csrc/bench_peak.c) used by pycnn.bench. */
#include "binding.h"

/* Defined in csrc/bench_peak.c (benchmark-only, so not in the public header). */
int bench_fma_lanes(const char *isa);
double bench_fma_run(const char *isa, int threads, int64_t iterations, double *flops, int *threads_used);
double bench_memory_run(int copy, float *dst, const float *src, int64_t n, int threads, int *threads_used);

/* bench_fma(isa, threads, iterations) -> (flops, seconds, threads_used) */
static PyObject *bench_fma(PyObject *self, PyObject *args)
{
    const char *isa;
    int threads;
    long long iterations;
    if (!PyArg_ParseTuple(args, "siL", &isa, &threads, &iterations))
        return NULL;
    if (threads < 1 || iterations < 1) {
        PyErr_Format(PyExc_ValueError, "bench_fma: threads and iterations must be >= 1; got %d, %lld",
                     threads, iterations);
        return NULL;
    }
    if (bench_fma_lanes(isa) == 0) {
        PyErr_Format(PyExc_ValueError, "bench_fma: isa must be one this CPU supports (avx512, avx2); got '%s'",
                     isa);
        return NULL;
    }
    double flops = 0.0, seconds;
    int used = 1;
    Py_BEGIN_ALLOW_THREADS
    seconds = bench_fma_run(isa, threads, (int64_t)iterations, &flops, &used);
    Py_END_ALLOW_THREADS
    return Py_BuildValue("ddi", flops, seconds, used);
}

static int float32_buffer(PyObject *obj, PyArrayObject **out)
{
    if (obj == NULL) {
        Py_CLEAR(*out);
        return 1;
    }
    if (!PyArray_Check(obj) || !PyArray_ISCARRAY((PyArrayObject *)obj) ||
        PyArray_TYPE((PyArrayObject *)obj) != NPY_FLOAT32) {
        PyErr_SetString(PyExc_TypeError, "bench_memory: arrays must be writable C-contiguous float32");
        return 0;
    }
    Py_INCREF(obj);
    *out = (PyArrayObject *)obj;
    return Py_CLEANUP_SUPPORTED;
}

/* bench_memory(kind, dst, src, threads) -> (seconds, threads_used);
 * kind "read" sums src (dst unused), "copy" copies src into dst. */
static PyObject *bench_memory(PyObject *self, PyObject *args)
{
    const char *kind;
    PyArrayObject *dst = NULL, *src = NULL;
    int threads;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "sO&O&i", &kind, float32_buffer, &dst, float32_buffer, &src, &threads))
        return NULL;
    const int copy = strcmp(kind, "copy") == 0;
    if (!copy && strcmp(kind, "read") != 0) {
        PyErr_Format(PyExc_ValueError, "bench_memory: kind must be 'read' or 'copy'; got '%s'", kind);
        goto done;
    }
    if (threads < 1 || PyArray_SIZE(dst) < PyArray_SIZE(src)) {
        PyErr_SetString(PyExc_ValueError, "bench_memory: threads must be >= 1 and dst at least as large as src");
        goto done;
    }
    double seconds;
    int used = 1;
    float *d = PyArray_DATA(dst);
    const float *s = PyArray_DATA(src);
    const int64_t n = (int64_t)PyArray_SIZE(src);
    Py_BEGIN_ALLOW_THREADS
    seconds = bench_memory_run(copy, d, s, n, threads, &used);
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("di", seconds, used);
done:
    Py_XDECREF(dst);
    Py_XDECREF(src);
    return result;
}

PyMethodDef pycnn_bench_methods[] = {
    {"bench_fma", bench_fma, METH_VARARGS,
     "bench_fma(isa, threads, iterations) -> (flops, seconds, threads_used): FMA throughput probe."},
    {"bench_memory", bench_memory, METH_VARARGS,
     "bench_memory(kind, dst, src, threads) -> (seconds, threads_used): 'read' or 'copy' bandwidth probe."},
    {NULL, NULL, 0, NULL},
};
