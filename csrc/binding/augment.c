/* Binding of the augmentation warps (csrc/augment.c). */
#include "binding.h"
#include "../augment.h"

/* "O&" converter for (order, fill_mode, cval). */
static int warp_options(PyObject *obj, pycnn_warp_desc *d)
{
    int mode;
    if (!PyArg_ParseTuple(obj, "iid;warp options must be (order, fill_mode, cval)", &d->order, &mode, &d->cval))
        return 0;
    d->fill_mode = (pycnn_fill_mode)mode;
    return 1;
}

/* Fills the shape from x (n, h, w, c) and y (n, oh, ow, c), validates, checks the parameter array. */
static int warp_desc(pycnn_warp_desc *d, PyArrayObject *x, PyArrayObject *params, PyArrayObject *y,
                     const char *op, int params_ndim, const npy_intp *params_tail)
{
    if (PyArray_NDIM(x) != 4 || PyArray_NDIM(y) != 4) {
        PyErr_Format(PyExc_ValueError, "%s: input and output must be 4-D", op);
        return -1;
    }
    const int dtype = engine_dtype(x, op);
    if (dtype < 0)
        return -1;
    d->dtype = dtype;
    d->n = PyArray_DIM(x, 0), d->h = PyArray_DIM(x, 1), d->w = PyArray_DIM(x, 2), d->c = PyArray_DIM(x, 3);
    d->oh = PyArray_DIM(y, 1), d->ow = PyArray_DIM(y, 2);
    pycnn_status st = pycnn_warp_check(d);
    if (st != PYCNN_OK) {
        raise_status(st, op);
        return -1;
    }
    const npy_intp y_dims[4] = {d->n, d->oh, d->ow, d->c};
    const npy_intp p_dims[4] = {d->n, params_tail[0], params_tail[1], params_tail[2]};
    if (require_shape(y, op, "output", dtype, 4, y_dims) < 0)
        return -1;
    return require_shape(params, op, params_ndim == 3 ? "matrices" : "coords", PYCNN_FLOAT64,
                         params_ndim, p_dims);
}

/* affine_warp(x, matrices [n, 2, 3] float64, y, (order, fill_mode, cval)) */
static PyObject *affine_warp(PyObject *self, PyObject *args)
{
    PyArrayObject *x = NULL, *m = NULL, *y = NULL;
    PyObject *result = NULL;
    pycnn_warp_desc d = {0};
    const npy_intp tail[3] = {2, 3, 0};
    if (!PyArg_ParseTuple(args, "O&O&O&O&", as_input_array, &x, as_input_array, &m, as_output_array, &y,
                          warp_options, &d) ||
        warp_desc(&d, x, m, y, "affine_warp", 3, tail) < 0)
        goto done;
    pycnn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pycnn_affine_warp_forward(&d, PyArray_DATA(x), PyArray_DATA(m), PyArray_DATA(y));
    Py_END_ALLOW_THREADS
    result = st == PYCNN_OK ? Py_NewRef(Py_None) : raise_status(st, "affine_warp");
done:
    Py_XDECREF(x); Py_XDECREF(m); Py_XDECREF(y);
    return result;
}

/* coords_warp(x, coords [n, oh, ow, 2] float64, y, (order, fill_mode, cval)) */
static PyObject *coords_warp(PyObject *self, PyObject *args)
{
    PyArrayObject *x = NULL, *cm = NULL, *y = NULL;
    PyObject *result = NULL;
    pycnn_warp_desc d = {0};
    if (!PyArg_ParseTuple(args, "O&O&O&O&", as_input_array, &x, as_input_array, &cm, as_output_array, &y,
                          warp_options, &d))
        goto done;
    const npy_intp tail[3] = {PyArray_NDIM(y) == 4 ? PyArray_DIM(y, 1) : 0,
                              PyArray_NDIM(y) == 4 ? PyArray_DIM(y, 2) : 0, 2};
    if (warp_desc(&d, x, cm, y, "coords_warp", 4, tail) < 0)
        goto done;
    pycnn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pycnn_coords_warp_forward(&d, PyArray_DATA(x), PyArray_DATA(cm), PyArray_DATA(y));
    Py_END_ALLOW_THREADS
    result = st == PYCNN_OK ? Py_NewRef(Py_None) : raise_status(st, "coords_warp");
done:
    Py_XDECREF(x); Py_XDECREF(cm); Py_XDECREF(y);
    return result;
}

PyMethodDef pycnn_augment_methods[] = {
    {"affine_warp", affine_warp, METH_VARARGS, NULL},
    {"coords_warp", coords_warp, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};
