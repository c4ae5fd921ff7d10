/* Binding of the pooling family (csrc/pool.c). */
#include "binding.h"

/* "O&" converter for (mode, kh, kw, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right). */
static int pool_geometry(PyObject *obj, pycnn_pool2d_desc *d)
{
    int mode;
    if (!PyArg_ParseTuple(obj, "iLLLLLLLL;pool geometry must be 9 ints", &mode, &d->kh, &d->kw,
                          &d->stride_h, &d->stride_w, &d->pad_top, &d->pad_bottom, &d->pad_left, &d->pad_right))
        return 0;
    d->mode = mode == 0 ? PYCNN_POOL_MAX : PYCNN_POOL_AVG;
    return 1;
}

/* Fills the shape from x (n, h, w, c), validates, and checks y's shape (n, oh, ow, c). */
static int pool_desc(pycnn_pool2d_desc *d, PyArrayObject *x, PyArrayObject *y, const char *op)
{
    if (PyArray_NDIM(x) != 4) {
        PyErr_Format(PyExc_ValueError, "%s: input must be 4-D", op);
        return -1;
    }
    const int dtype = engine_dtype(x, op);
    if (dtype < 0)
        return -1;
    d->dtype = dtype;
    d->n = PyArray_DIM(x, 0), d->h = PyArray_DIM(x, 1), d->w = PyArray_DIM(x, 2), d->c = PyArray_DIM(x, 3);
    pycnn_status st = pycnn_pool2d_check(d);
    if (st != PYCNN_OK) {
        raise_status(st, op);
        return -1;
    }
    const npy_intp y_dims[4] = {d->n, d->oh, d->ow, d->c};
    return require_shape(y, op, "output", dtype, 4, y_dims);
}

/* "O&" converter: an int32 array of stored max-pool indices -> C-contiguous,
 * aligned, native-byte-order array (a copy when needed). */
static int as_index_array(PyObject *obj, PyArrayObject **out)
{
    if (obj == NULL) {   /* cleanup call from PyArg_Parse* */
        Py_CLEAR(*out);
        return 1;
    }
    if (!PyArray_Check(obj) || PyArray_TYPE((PyArrayObject *)obj) != NPY_INT32) {
        PyErr_SetString(PyExc_TypeError, "indices must be an int32 NumPy array");
        return 0;
    }
    *out = (PyArrayObject *)PyArray_FROM_OTF(obj, NPY_INT32, NPY_ARRAY_IN_ARRAY);
    return *out == NULL ? 0 : Py_CLEANUP_SUPPORTED;
}

/* "O&" converter: an existing writable, C-contiguous, aligned int32 array for indices. */
static int as_index_output(PyObject *obj, PyArrayObject **out)
{
    if (obj == NULL) {
        Py_CLEAR(*out);
        return 1;
    }
    if (!PyArray_Check(obj) || !PyArray_ISCARRAY((PyArrayObject *)obj) ||
        PyArray_ISBYTESWAPPED((PyArrayObject *)obj) || PyArray_TYPE((PyArrayObject *)obj) != NPY_INT32) {
        PyErr_SetString(PyExc_ValueError, "indices output must be a writable, C-contiguous, aligned int32 array");
        return 0;
    }
    Py_INCREF(obj);
    *out = (PyArrayObject *)obj;
    return Py_CLEANUP_SUPPORTED;
}

/* 0 when indices has y's shape (n, oh, ow, c); -1 with ValueError naming both. */
static int require_index_shape(PyArrayObject *indices, const pycnn_pool2d_desc *d, const char *op)
{
    const npy_intp dims[4] = {d->n, d->oh, d->ow, d->c};
    int ok = PyArray_NDIM(indices) == 4;
    for (int i = 0; ok && i < 4; i++)
        ok = PyArray_DIM(indices, i) == dims[i];
    if (ok)
        return 0;
    PyObject *shape = PyObject_GetAttrString((PyObject *)indices, "shape");
    if (shape != NULL)
        PyErr_Format(PyExc_ValueError, "%s: indices must have the output's shape (%zd, %zd, %zd, %zd); got %R",
                     op, dims[0], dims[1], dims[2], dims[3], shape);
    Py_XDECREF(shape);
    return -1;
}

static PyObject *pool2d_forward(PyObject *self, PyObject *args)
{
    PyArrayObject *x = NULL, *y = NULL;
    PyObject *result = NULL;
    pycnn_pool2d_desc d = {0};
    if (!PyArg_ParseTuple(args, "O&O&O&", as_input_array, &x, as_output_array, &y, pool_geometry, &d) ||
        pool_desc(&d, x, y, "pool2d") < 0)
        goto done;
    pycnn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pycnn_pool2d_forward(&d, PyArray_DATA(x), PyArray_DATA(y));
    Py_END_ALLOW_THREADS
    result = st == PYCNN_OK ? Py_NewRef(Py_None) : raise_status(st, "pool2d");
done:
    Py_XDECREF(x); Py_XDECREF(y);
    return result;
}

static PyObject *pool2d_backward(PyObject *self, PyObject *args)
{
    PyArrayObject *x = NULL, *dy = NULL, *dx = NULL;
    PyObject *result = NULL;
    pycnn_pool2d_desc d = {0};
    if (!PyArg_ParseTuple(args, "O&O&O&O&", as_input_array, &x, as_input_array, &dy, as_output_array, &dx,
                          pool_geometry, &d) ||
        pool_desc(&d, x, dy, "pool2d_backward") < 0 ||
        require_shape(dx, "pool2d_backward", "dx", d.dtype, 4, PyArray_DIMS(x)) < 0)
        goto done;
    pycnn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pycnn_pool2d_backward(&d, PyArray_DATA(x), PyArray_DATA(dy), PyArray_DATA(dx));
    Py_END_ALLOW_THREADS
    result = st == PYCNN_OK ? Py_NewRef(Py_None) : raise_status(st, "pool2d_backward");
done:
    Py_XDECREF(x); Py_XDECREF(dy); Py_XDECREF(dx);
    return result;
}

static PyObject *pool2d_forward_indices(PyObject *self, PyObject *args)
{
    PyArrayObject *x = NULL, *y = NULL, *indices = NULL;
    PyObject *result = NULL;
    pycnn_pool2d_desc d = {0};
    if (!PyArg_ParseTuple(args, "O&O&O&O&", as_input_array, &x, as_output_array, &y, as_index_output, &indices,
                          pool_geometry, &d) ||
        pool_desc(&d, x, y, "pool2d") < 0 || require_index_shape(indices, &d, "pool2d") < 0)
        goto done;
    pycnn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pycnn_pool2d_forward_indices(&d, PyArray_DATA(x), PyArray_DATA(y), PyArray_DATA(indices));
    Py_END_ALLOW_THREADS
    result = st == PYCNN_OK ? Py_NewRef(Py_None) : raise_status(st, "pool2d");
done:
    Py_XDECREF(x); Py_XDECREF(y); Py_XDECREF(indices);
    return result;
}

/* (indices, dy, dx, geometry, op): dx's shape is the input's; op names the
 * caller in errors, since a forged index is the caller's data. */
static PyObject *pool2d_backward_indices(PyObject *self, PyObject *args)
{
    PyArrayObject *indices = NULL, *dy = NULL, *dx = NULL;
    PyObject *result = NULL;
    pycnn_pool2d_desc d = {0};
    const char *op;
    if (!PyArg_ParseTuple(args, "O&O&O&O&s", as_index_array, &indices, as_input_array, &dy, as_output_array, &dx,
                          pool_geometry, &d, &op) ||
        pool_desc(&d, dx, dy, op) < 0 || require_index_shape(indices, &d, op) < 0)
        goto done;
    pycnn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pycnn_pool2d_backward_indices(&d, PyArray_DATA(indices), PyArray_DATA(dy), PyArray_DATA(dx));
    Py_END_ALLOW_THREADS
    result = st == PYCNN_OK ? Py_NewRef(Py_None) : raise_status(st, op);
done:
    Py_XDECREF(indices); Py_XDECREF(dy); Py_XDECREF(dx);
    return result;
}

PyMethodDef pycnn_pool_methods[] = {
    {"pool2d_forward", pool2d_forward, METH_VARARGS, NULL},
    {"pool2d_backward", pool2d_backward, METH_VARARGS, NULL},
    {"pool2d_forward_indices", pool2d_forward_indices, METH_VARARGS, NULL},
    {"pool2d_backward_indices", pool2d_backward_indices, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};
