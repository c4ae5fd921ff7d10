/*
 * Shared helpers of the thin CPython binding (the only C that sees Python).
 * Each binding function: parse with the converters below, fill the engine's
 * descriptor from the array shapes, run _check, release the GIL around the
 * kernel, map the status to an exception, release every reference at done:.
 * Shape and argument checks with friendly messages live in pycnn/ops.py;
 * these checks are the safety net that keeps bad calls from touching memory.
 */
#ifndef PYCNN_BINDING_H
#define PYCNN_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL pycnn_ARRAY_API
#ifndef PYCNN_BINDING_MODULE_C
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "../pycnn.h"

/* "O&" converter: any float32/float64 array-like -> C-contiguous, aligned,
 * native-byte-order array (a copy when needed; the caller's array is never
 * written).  Stores a new reference or NULL for None (see optional_array). */
int as_input_array(PyObject *obj, PyArrayObject **out);
int as_optional_input_array(PyObject *obj, PyArrayObject **out);
/* "O&" converter: an existing writable, C-contiguous, aligned float array. */
int as_output_array(PyObject *obj, PyArrayObject **out);
/* "O&" converter: a writable byte buffer used as workspace, or None. */
int as_workspace(PyObject *obj, PyArrayObject **out);

/* "O&" converters for conv2d's geometry tuple (stride_h, stride_w, dilation_h,
 * dilation_w, pad_top, pad_bottom, pad_left, pad_right, groups) and forward
 * epilogue (mode, negative_slope, clamp_lo, clamp_hi), into a descriptor. */
int conv_geometry(PyObject *obj, pycnn_conv2d_desc *d);
int conv_epilogue(PyObject *obj, pycnn_conv2d_desc *d);

/* The engine dtype of an array, or -1 with TypeError set. */
int engine_dtype(PyArrayObject *a, const char *op);
/* 0 when a has exactly this dtype and shape; -1 with ValueError naming it. */
int require_shape(PyArrayObject *a, const char *op, const char *name, int dtype,
                  int ndim, const npy_intp *dims);
/* Raises the Python exception for a failed status and returns NULL. */
PyObject *raise_status(pycnn_status status, const char *op);
/* Workspace pointer and size (NULL, 0 for None). */
void workspace_view(PyArrayObject *ws, void **data, size_t *size);

extern PyMethodDef pycnn_conv_methods[];
extern PyMethodDef pycnn_pool_methods[];
extern PyMethodDef pycnn_bench_methods[];
extern PyMethodDef pycnn_augment_methods[];
extern PyMethodDef pycnn_activation_methods[];
extern PyMethodDef pycnn_batch_norm_methods[];
extern PyMethodDef pycnn_winograd_methods[];

#endif
