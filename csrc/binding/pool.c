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

PyMethodDef pycnn_pool_methods[] = {
    {"pool2d_forward", pool2d_forward, METH_VARARGS, NULL},
    {"pool2d_backward", pool2d_backward, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};
