/* The _engine extension module: shared converters, status mapping, the
 * interrupt poll and the registration of every op family's methods. */
#define PYCNN_BINDING_MODULE_C
#include "binding.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

int as_input_array(PyObject *obj, PyArrayObject **out)
{
    if (obj == NULL) {   /* cleanup call from PyArg_Parse* */
        Py_CLEAR(*out);
        return 1;
    }
    PyArrayObject *arr = (PyArrayObject *)PyArray_FROM_OTF(obj, NPY_NOTYPE, NPY_ARRAY_IN_ARRAY);
    if (arr == NULL)
        return 0;
    const int type = PyArray_TYPE(arr);
    if (type != NPY_FLOAT32 && type != NPY_FLOAT64) {
        PyErr_Format(PyExc_TypeError, "array dtype must be float32 or float64; got %S",
                     (PyObject *)PyArray_DESCR(arr));
        Py_DECREF(arr);
        return 0;
    }
    *out = arr;
    return Py_CLEANUP_SUPPORTED;
}

int as_optional_input_array(PyObject *obj, PyArrayObject **out)
{
    if (obj == Py_None) {
        *out = NULL;
        return 1;
    }
    return as_input_array(obj, out);
}

int as_output_array(PyObject *obj, PyArrayObject **out)
{
    if (obj == NULL) {
        Py_CLEAR(*out);
        return 1;
    }
    if (!PyArray_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "output must be a NumPy array");
        return 0;
    }
    PyArrayObject *arr = (PyArrayObject *)obj;
    if (!PyArray_ISCARRAY(arr) || PyArray_ISBYTESWAPPED(arr) ||
        (PyArray_TYPE(arr) != NPY_FLOAT32 && PyArray_TYPE(arr) != NPY_FLOAT64)) {
        PyErr_SetString(PyExc_ValueError,
                        "output must be a writable, C-contiguous, aligned float32/float64 array");
        return 0;
    }
    Py_INCREF(arr);
    *out = arr;
    return Py_CLEANUP_SUPPORTED;
}

int as_workspace(PyObject *obj, PyArrayObject **out)
{
    if (obj == NULL) {
        Py_CLEAR(*out);
        return 1;
    }
    if (obj == Py_None) {
        *out = NULL;
        return 1;
    }
    if (!PyArray_Check(obj) || !PyArray_ISCARRAY((PyArrayObject *)obj) ||
        PyArray_TYPE((PyArrayObject *)obj) != NPY_UINT8) {
        PyErr_SetString(PyExc_TypeError, "workspace must be a writable C-contiguous uint8 array or None");
        return 0;
    }
    Py_INCREF(obj);
    *out = (PyArrayObject *)obj;
    return Py_CLEANUP_SUPPORTED;
}

void workspace_view(PyArrayObject *ws, void **data, size_t *size)
{
    *data = ws == NULL ? NULL : PyArray_DATA(ws);
    *size = ws == NULL ? 0 : (size_t)PyArray_NBYTES(ws);
}

int engine_dtype(PyArrayObject *a, const char *op)
{
    switch (PyArray_TYPE(a)) {
    case NPY_FLOAT32: return PYCNN_FLOAT32;
    case NPY_FLOAT64: return PYCNN_FLOAT64;
    default:
        PyErr_Format(PyExc_TypeError, "%s: dtype must be float32 or float64", op);
        return -1;
    }
}

int require_shape(PyArrayObject *a, const char *op, const char *name, int dtype,
                  int ndim, const npy_intp *dims)
{
    int ok = PyArray_NDIM(a) == ndim && engine_dtype(a, op) == dtype;
    for (int i = 0; ok && i < ndim; i++)
        ok = PyArray_DIM(a, i) == dims[i];
    if (!ok && !PyErr_Occurred()) {
        PyObject *shape = PyObject_GetAttrString((PyObject *)a, "shape");
        if (shape != NULL)
            PyErr_Format(PyExc_ValueError, "%s: %s has shape %R and dtype %S, which do not match the other arrays",
                         op, name, shape, (PyObject *)PyArray_DESCR(a));
        Py_XDECREF(shape);
    }
    if (!ok) {
        return -1;
    }
    return 0;
}

PyObject *raise_status(pycnn_status status, const char *op)
{
    if (status == PYCNN_ERR_INTERRUPTED) {
        if (!PyErr_Occurred())   /* the poll normally set KeyboardInterrupt already */
            PyErr_SetNone(PyExc_KeyboardInterrupt);
        return NULL;
    }
    PyErr_Format(PyExc_ValueError, "%s: %s", op, pycnn_status_str(status));
    return NULL;
}

/* Called by long kernels between chunks, on the thread that released the
 * GIL; takes the GIL at most every 20 ms to let Python run signal handlers. */
static int poll_interrupt(void)
{
    static _Thread_local double last_poll = 0.0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    const double t = (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
    if (t - last_poll < 0.02)
        return 0;
    last_poll = t;
    PyGILState_STATE state = PyGILState_Ensure();
    const int interrupted = PyErr_CheckSignals() != 0;
    PyGILState_Release(state);
    return interrupted;
}

static PyObject *set_num_threads(PyObject *self, PyObject *args)
{
    int n;
    if (!PyArg_ParseTuple(args, "i", &n))
        return NULL;
    return PyLong_FromLong(pycnn_set_num_threads(n));
}

static PyObject *get_num_threads(PyObject *self, PyObject *args)
{
    return PyLong_FromLong(pycnn_get_num_threads());
}

static PyObject *isa(PyObject *self, PyObject *args)
{
    return PyUnicode_FromString(pycnn_isa());
}

#ifdef PYCNN_SANITIZER_CANARY
/* Deliberate heap overflow: CI runs it to prove AddressSanitizer is active. */
static PyObject *debug_oob_write(PyObject *self, PyObject *args)
{
    volatile char *p = PyMem_RawMalloc(8);
    p[8] = 1;
    PyMem_RawFree((void *)p);
    Py_RETURN_NONE;
}
#endif

static PyMethodDef module_methods[] = {
    {"set_num_threads", set_num_threads, METH_VARARGS, "Set the engine's worker thread count."},
    {"get_num_threads", get_num_threads, METH_NOARGS, "The engine's worker thread count."},
    {"isa", isa, METH_NOARGS, "The GEMM micro-kernel in use."},
#ifdef PYCNN_SANITIZER_CANARY
    {"_debug_oob_write", debug_oob_write, METH_NOARGS, "Sanitizer canary (sanitizer builds only)."},
#endif
    {NULL, NULL, 0, NULL},
};

/* Every op family's method table, added to the module at import. */
static PyMethodDef *const families[] = {
    module_methods,
    pycnn_conv_methods,
    pycnn_pool_methods,
    pycnn_bench_methods,
    pycnn_augment_methods,
    pycnn_activation_methods,
    pycnn_batch_norm_methods,
    pycnn_winograd_methods,
};

static struct PyModuleDef engine_module = {
    PyModuleDef_HEAD_INIT, "pycnn._engine", "pycnn's C engine (internal; use pycnn.ops).", -1, NULL,
};

/* Training allocates arrays of the same sizes every step (activations,
 * gradients, NumPy temporaries).  glibc returns freed blocks above its trim
 * threshold to the OS, so the next step touches fresh pages at ~11 us per
 * 4 KiB on these VMs (a LeNet-5 step spent a third of its time faulting).
 * Keep freed memory for reuse instead: blocks up to 32 MiB come from the heap
 * and the heap is trimmed only past 512 MiB of free memory at its top.
 * PYCNN_KEEP_FREED_MEMORY=0 keeps glibc's defaults. */
static void keep_freed_memory(void)
{
#if defined(__GLIBC__)
    const char *setting = getenv("PYCNN_KEEP_FREED_MEMORY");
    if (setting != NULL && strcmp(setting, "0") == 0)
        return;
    /* Both or neither: setting one turns off glibc's adaptive choice of the other. */
    if (mallopt(M_MMAP_THRESHOLD, 32 << 20))
        mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
}

PyMODINIT_FUNC PyInit__engine(void)
{
    import_array();
    PyObject *module = PyModule_Create(&engine_module);
    if (module == NULL)
        return NULL;
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        if (PyModule_AddFunctions(module, families[f]) < 0) {
            Py_DECREF(module);
            return NULL;
        }
    }
    pycnn_set_interrupt_poll(poll_interrupt);
    keep_freed_memory();
    return module;
}
