/* Binding of the Winograd convolution (csrc/conv_winograd.c). */
#include "binding.h"

/* (x shape, kernel shape, float64, geometry, tile) -> the bytes `size` gives for that descriptor. */
static PyObject *winograd_bytes(PyObject *args, pycnn_status (*size)(const pycnn_conv2d_desc *, int, size_t *))
{
    pycnn_conv2d_desc d = {0};
    int is_float64, tile;
    size_t bytes = 0;
    if (!PyArg_ParseTuple(args, "(LLLL)(LLLL)pO&i", &d.n, &d.h, &d.w, &d.c_in, &d.kh, &d.kw,
                          &d.oh /* c_in, unused */, &d.c_out, &is_float64, conv_geometry, &d, &tile))
        return NULL;
    d.dtype = is_float64 ? PYCNN_FLOAT64 : PYCNN_FLOAT32;
    pycnn_status st = size(&d, tile, &bytes);
    if (st != PYCNN_OK)
        return raise_status(st, "conv2d");
    return PyLong_FromSize_t(bytes);
}

static PyObject *conv2d_winograd_workspace_size(PyObject *self, PyObject *args)
{
    return winograd_bytes(args, pycnn_conv2d_winograd_workspace_size);
}

static PyObject *conv2d_winograd_filters_size(PyObject *self, PyObject *args)
{
    return winograd_bytes(args, pycnn_conv2d_winograd_filters_size);
}

/* The descriptor of input x and kernel w, checked; -1 with the exception set. */
static int winograd_desc(pycnn_conv2d_desc *d, PyArrayObject *x, PyArrayObject *w, int tile)
{
    if (PyArray_NDIM(x) != 4 || PyArray_NDIM(w) != 4) {
        PyErr_SetString(PyExc_ValueError, "conv2d: input and kernel must be 4-D");
        return -1;
    }
    const int dtype = engine_dtype(x, "conv2d");
    if (dtype < 0)
        return -1;
    d->dtype = dtype;
    d->n = PyArray_DIM(x, 0), d->h = PyArray_DIM(x, 1), d->w = PyArray_DIM(x, 2), d->c_in = PyArray_DIM(x, 3);
    d->kh = PyArray_DIM(w, 0), d->kw = PyArray_DIM(w, 1), d->c_out = PyArray_DIM(w, 3);
    pycnn_status st = pycnn_conv2d_winograd_check(d, tile);
    if (st != PYCNN_OK) {
        raise_status(st, "conv2d");
        return -1;
    }
    const npy_intp w_dims[4] = {3, 3, d->c_in, d->c_out};
    return require_shape(w, "conv2d", "kernel", dtype, 4, w_dims);
}

/* transform_filters(x, w, packed, geometry, tile): x gives the call's shapes. */
static PyObject *conv2d_winograd_transform_filters(PyObject *self, PyObject *args)
{
    PyArrayObject *x = NULL, *w = NULL, *packed = NULL;
    PyObject *result = NULL;
    pycnn_conv2d_desc d = {0};
    int tile;
    if (!PyArg_ParseTuple(args, "O&O&O&O&i", as_input_array, &x, as_input_array, &w, as_workspace, &packed,
                          conv_geometry, &d, &tile))
        goto done;
    if (winograd_desc(&d, x, w, tile) < 0)
        goto done;
    void *buffer;
    size_t buffer_size;
    workspace_view(packed, &buffer, &buffer_size);
    pycnn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pycnn_conv2d_winograd_transform_filters(&d, tile, PyArray_DATA(w), buffer, buffer_size);
    Py_END_ALLOW_THREADS
    result = st == PYCNN_OK ? Py_NewRef(Py_None) : raise_status(st, "conv2d");
done:
    Py_XDECREF(x); Py_XDECREF(w); Py_XDECREF(packed);
    return result;
}

/* forward(x, w, bias, y, workspace, geometry, tile[, epilogue[, packed]]): packed is
 * transform_filters' buffer or None. */
static PyObject *conv2d_winograd_forward(PyObject *self, PyObject *args)
{
    PyArrayObject *x = NULL, *w = NULL, *bias = NULL, *y = NULL, *ws = NULL, *packed = NULL;
    PyObject *result = NULL;
    pycnn_conv2d_desc d = {0};
    int tile;
    if (!PyArg_ParseTuple(args, "O&O&O&O&O&O&i|O&O&", as_input_array, &x, as_input_array, &w,
                          as_optional_input_array, &bias, as_output_array, &y, as_workspace, &ws,
                          conv_geometry, &d, &tile, conv_epilogue, &d, as_workspace, &packed))
        goto done;
    if (winograd_desc(&d, x, w, tile) < 0)
        goto done;
    const npy_intp b_dims[1] = {d.c_out};
    const npy_intp out_dims[4] = {d.n, d.oh, d.ow, d.c_out};
    if ((bias != NULL && require_shape(bias, "conv2d", "bias", d.dtype, 1, b_dims) < 0) ||
        require_shape(y, "conv2d", "output", d.dtype, 4, out_dims) < 0)
        goto done;
    void *work, *packed_data;
    size_t work_size, packed_size;
    workspace_view(ws, &work, &work_size);
    workspace_view(packed, &packed_data, &packed_size);
    pycnn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pycnn_conv2d_winograd_forward_packed(&d, tile, PyArray_DATA(x), PyArray_DATA(w), packed_data, packed_size,
                                              bias ? PyArray_DATA(bias) : NULL, PyArray_DATA(y), work, work_size);
    Py_END_ALLOW_THREADS
    result = st == PYCNN_OK ? Py_NewRef(Py_None) : raise_status(st, "conv2d");
done:
    Py_XDECREF(x); Py_XDECREF(w); Py_XDECREF(bias); Py_XDECREF(y); Py_XDECREF(ws); Py_XDECREF(packed);
    return result;
}

PyMethodDef pycnn_winograd_methods[] = {
    {"conv2d_winograd_workspace_size", conv2d_winograd_workspace_size, METH_VARARGS, NULL},
    {"conv2d_winograd_filters_size", conv2d_winograd_filters_size, METH_VARARGS, NULL},
    {"conv2d_winograd_transform_filters", conv2d_winograd_transform_filters, METH_VARARGS, NULL},
    {"conv2d_winograd_forward", conv2d_winograd_forward, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};
