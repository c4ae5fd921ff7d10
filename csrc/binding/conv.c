/* Binding of the convolution family (csrc/conv.c). */
#include "binding.h"

int conv_geometry(PyObject *obj, pycnn_conv2d_desc *d)
{
    return PyArg_ParseTuple(obj, "LLLLLLLLL;conv geometry must be 9 ints",
                            &d->stride_h, &d->stride_w, &d->dilation_h, &d->dilation_w,
                            &d->pad_top, &d->pad_bottom, &d->pad_left, &d->pad_right, &d->groups);
}

/* Fills the shape fields from the input-side array x (n, h, w, c_in) and the
 * filter (kh, kw, c_in / groups, c_out), then validates with the engine. */
static int conv_desc(pycnn_conv2d_desc *d, PyArrayObject *x, PyArrayObject *w, const char *op)
{
    if (PyArray_NDIM(x) != 4 || PyArray_NDIM(w) != 4) {
        PyErr_Format(PyExc_ValueError, "%s: input and kernel must be 4-D", op);
        return -1;
    }
    const int dtype = engine_dtype(x, op);
    if (dtype < 0)
        return -1;
    d->dtype = dtype;
    d->n = PyArray_DIM(x, 0), d->h = PyArray_DIM(x, 1), d->w = PyArray_DIM(x, 2), d->c_in = PyArray_DIM(x, 3);
    d->kh = PyArray_DIM(w, 0), d->kw = PyArray_DIM(w, 1), d->c_out = PyArray_DIM(w, 3);
    const npy_intp w_dims[4] = {d->kh, d->kw, d->groups > 0 ? d->c_in / d->groups : 0, d->c_out};
    pycnn_status st = pycnn_conv2d_check(d);
    if (st != PYCNN_OK) {
        raise_status(st, op);
        return -1;
    }
    return require_shape(w, op, "kernel", dtype, 4, w_dims);
}

static int optional_bias(PyArrayObject *bias, const pycnn_conv2d_desc *d, const char *op)
{
    const npy_intp dims[1] = {d->c_out};
    return bias == NULL ? 0 : require_shape(bias, op, "bias", d->dtype, 1, dims);
}

/* (x shape, kernel shape, float64, geometry) -> the bytes `size` gives for that descriptor. */
static PyObject *conv_bytes(PyObject *args, pycnn_status (*size)(const pycnn_conv2d_desc *, size_t *))
{
    pycnn_conv2d_desc d = {0};
    int is_float64;
    size_t bytes = 0;
    if (!PyArg_ParseTuple(args, "(LLLL)(LLLL)pO&", &d.n, &d.h, &d.w, &d.c_in, &d.kh, &d.kw,
                          &d.oh /* c_in / groups, unused */, &d.c_out, &is_float64, conv_geometry, &d))
        return NULL;
    d.dtype = is_float64 ? PYCNN_FLOAT64 : PYCNN_FLOAT32;
    pycnn_status st = size(&d, &bytes);
    if (st != PYCNN_OK)
        return raise_status(st, "conv2d");
    return PyLong_FromSize_t(bytes);
}

static PyObject *conv2d_workspace_size(PyObject *self, PyObject *args)
{
    return conv_bytes(args, pycnn_conv2d_workspace_size);
}

int conv_epilogue(PyObject *obj, pycnn_conv2d_desc *d)
{
    int mode;
    if (!PyArg_ParseTuple(obj, "iddd;conv epilogue must be (mode, negative_slope, clamp_lo, clamp_hi)", &mode,
                          &d->epilogue.negative_slope, &d->epilogue.clamp_lo, &d->epilogue.clamp_hi))
        return 0;
    d->epilogue.mode = (pycnn_epilogue_mode)mode;
    return 1;
}

/* Bytes of the filters packed for this forward call, 0 when it would not read them. */
static PyObject *conv2d_packed_filters_size(PyObject *self, PyObject *args)
{
    return conv_bytes(args, pycnn_conv2d_packed_filters_size);
}

/* pack_filters(x, w, packed, geometry): x gives the call's shapes, packed a uint8 buffer. */
static PyObject *conv2d_pack_filters(PyObject *self, PyObject *args)
{
    PyArrayObject *x = NULL, *w = NULL, *packed = NULL;
    PyObject *result = NULL;
    pycnn_conv2d_desc d = {0};
    if (!PyArg_ParseTuple(args, "O&O&O&O&", as_input_array, &x, as_input_array, &w, as_workspace, &packed,
                          conv_geometry, &d))
        goto done;
    if (conv_desc(&d, x, w, "conv2d") < 0)
        goto done;
    void *buffer;
    size_t buffer_size;
    workspace_view(packed, &buffer, &buffer_size);
    pycnn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pycnn_conv2d_pack_filters(&d, PyArray_DATA(w), buffer, buffer_size);
    Py_END_ALLOW_THREADS
    result = st == PYCNN_OK ? Py_NewRef(Py_None) : raise_status(st, "conv2d");
done:
    Py_XDECREF(x); Py_XDECREF(w); Py_XDECREF(packed);
    return result;
}

/* conv2d_forward(x, w, bias, y, workspace, geometry[, epilogue[, packed]]): packed is
 * conv2d_pack_filters' buffer or None. */
static PyObject *conv2d_forward(PyObject *self, PyObject *args)
{
    PyArrayObject *x = NULL, *w = NULL, *bias = NULL, *y = NULL, *ws = NULL, *packed = NULL;
    PyObject *result = NULL;
    pycnn_conv2d_desc d = {0};
    if (!PyArg_ParseTuple(args, "O&O&O&O&O&O&|O&O&", as_input_array, &x, as_input_array, &w,
                          as_optional_input_array, &bias, as_output_array, &y, as_workspace, &ws,
                          conv_geometry, &d, conv_epilogue, &d, as_workspace, &packed))
        goto done;
    if (conv_desc(&d, x, w, "conv2d") < 0 || optional_bias(bias, &d, "conv2d") < 0)
        goto done;
    const npy_intp out_dims[4] = {d.n, d.oh, d.ow, d.c_out};
    if (require_shape(y, "conv2d", "output", d.dtype, 4, out_dims) < 0)
        goto done;
    void *work, *packed_data;
    size_t work_size, packed_size;
    workspace_view(ws, &work, &work_size);
    workspace_view(packed, &packed_data, &packed_size);
    pycnn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pycnn_conv2d_forward_packed(&d, PyArray_DATA(x), PyArray_DATA(w), packed_data, packed_size,
                                     bias ? PyArray_DATA(bias) : NULL, PyArray_DATA(y), work, work_size);
    Py_END_ALLOW_THREADS
    result = st == PYCNN_OK ? Py_NewRef(Py_None) : raise_status(st, "conv2d");
done:
    Py_XDECREF(x); Py_XDECREF(w); Py_XDECREF(bias); Py_XDECREF(y); Py_XDECREF(ws); Py_XDECREF(packed);
    return result;
}

static PyObject *conv2d_backward_data(PyObject *self, PyObject *args)
{
    PyArrayObject *dy = NULL, *w = NULL, *dx = NULL, *ws = NULL;
    PyObject *result = NULL;
    pycnn_conv2d_desc d = {0};
    if (!PyArg_ParseTuple(args, "O&O&O&O&O&", as_input_array, &dy, as_input_array, &w,
                          as_output_array, &dx, as_workspace, &ws, conv_geometry, &d))
        goto done;
    if (conv_desc(&d, dx, w, "conv2d_backward") < 0)
        goto done;
    const npy_intp dy_dims[4] = {d.n, d.oh, d.ow, d.c_out};
    if (require_shape(dy, "conv2d_backward", "dy", d.dtype, 4, dy_dims) < 0)
        goto done;
    void *work;
    size_t work_size;
    workspace_view(ws, &work, &work_size);
    pycnn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pycnn_conv2d_backward_data(&d, PyArray_DATA(dy), PyArray_DATA(w), PyArray_DATA(dx), work, work_size);
    Py_END_ALLOW_THREADS
    result = st == PYCNN_OK ? Py_NewRef(Py_None) : raise_status(st, "conv2d_backward");
done:
    Py_XDECREF(dy); Py_XDECREF(w); Py_XDECREF(dx); Py_XDECREF(ws);
    return result;
}

static PyObject *conv2d_backward_filter(PyObject *self, PyObject *args)
{
    PyArrayObject *x = NULL, *dy = NULL, *dw = NULL, *dbias = NULL, *ws = NULL;
    PyObject *result = NULL, *dbias_obj;
    pycnn_conv2d_desc d = {0};
    if (!PyArg_ParseTuple(args, "O&O&O&OO&O&", as_input_array, &x, as_input_array, &dy,
                          as_output_array, &dw, &dbias_obj, as_workspace, &ws, conv_geometry, &d))
        goto done;
    if (dbias_obj != Py_None && !as_output_array(dbias_obj, &dbias))
        goto done;
    if (conv_desc(&d, x, dw, "conv2d_backward") < 0 || optional_bias(dbias, &d, "conv2d_backward") < 0)
        goto done;
    const npy_intp dy_dims[4] = {d.n, d.oh, d.ow, d.c_out};
    if (require_shape(dy, "conv2d_backward", "dy", d.dtype, 4, dy_dims) < 0)
        goto done;
    void *work;
    size_t work_size;
    workspace_view(ws, &work, &work_size);
    pycnn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pycnn_conv2d_backward_filter(&d, PyArray_DATA(x), PyArray_DATA(dy), PyArray_DATA(dw),
                                      dbias ? PyArray_DATA(dbias) : NULL, work, work_size);
    Py_END_ALLOW_THREADS
    result = st == PYCNN_OK ? Py_NewRef(Py_None) : raise_status(st, "conv2d_backward");
done:
    Py_XDECREF(x); Py_XDECREF(dy); Py_XDECREF(dw); Py_XDECREF(dbias); Py_XDECREF(ws);
    return result;
}

/* ---- transposed convolution: geometry (stride_h, stride_w, dilation_h, dilation_w, crop_top, crop_left) ---- */

static int transpose_geometry(PyObject *obj, pycnn_conv2d_transpose_desc *t)
{
    return PyArg_ParseTuple(obj, "LLLLLL;transposed conv geometry must be 6 ints", &t->stride_h,
                            &t->stride_w, &t->dilation_h, &t->dilation_w, &t->crop_top, &t->crop_left);
}

/* x (n, h, w, c_in), kernel (kh, kw, c_out, c_in), y (n, oh, ow, c_out). */
static int transpose_desc(pycnn_conv2d_transpose_desc *t, PyArrayObject *x, PyArrayObject *w,
                          PyArrayObject *y, const char *op)
{
    if (PyArray_NDIM(x) != 4 || PyArray_NDIM(w) != 4 || PyArray_NDIM(y) != 4) {
        PyErr_Format(PyExc_ValueError, "%s: input, kernel and output must be 4-D", op);
        return -1;
    }
    const int dtype = engine_dtype(x, op);
    if (dtype < 0)
        return -1;
    t->dtype = dtype;
    t->n = PyArray_DIM(x, 0), t->h = PyArray_DIM(x, 1), t->w = PyArray_DIM(x, 2), t->c_in = PyArray_DIM(x, 3);
    t->kh = PyArray_DIM(w, 0), t->kw = PyArray_DIM(w, 1), t->c_out = PyArray_DIM(w, 2);
    t->oh = PyArray_DIM(y, 1), t->ow = PyArray_DIM(y, 2);
    const npy_intp w_dims[4] = {t->kh, t->kw, t->c_out, t->c_in};
    const npy_intp y_dims[4] = {t->n, t->oh, t->ow, t->c_out};
    pycnn_status st = pycnn_conv2d_transpose_check(t);
    if (st != PYCNN_OK) {
        raise_status(st, op);
        return -1;
    }
    if (require_shape(w, op, "kernel", dtype, 4, w_dims) < 0 || require_shape(y, op, "output", dtype, 4, y_dims) < 0)
        return -1;
    return 0;
}

static PyObject *conv2d_transpose_workspace_size(PyObject *self, PyObject *args)
{
    pycnn_conv2d_transpose_desc t = {0};
    int is_float64;
    size_t bytes = 0;
    if (!PyArg_ParseTuple(args, "(LLLL)(LLL)(LL)pO&", &t.n, &t.h, &t.w, &t.c_in, &t.kh, &t.kw, &t.c_out,
                          &t.oh, &t.ow, &is_float64, transpose_geometry, &t))
        return NULL;
    t.dtype = is_float64 ? PYCNN_FLOAT64 : PYCNN_FLOAT32;
    pycnn_status st = pycnn_conv2d_transpose_workspace_size(&t, &bytes);
    if (st != PYCNN_OK)
        return raise_status(st, "conv2d_transpose");
    return PyLong_FromSize_t(bytes);
}

static PyObject *conv2d_transpose_forward(PyObject *self, PyObject *args)
{
    PyArrayObject *x = NULL, *w = NULL, *bias = NULL, *y = NULL, *ws = NULL;
    PyObject *result = NULL;
    pycnn_conv2d_transpose_desc t = {0};
    if (!PyArg_ParseTuple(args, "O&O&O&O&O&O&", as_input_array, &x, as_input_array, &w,
                          as_optional_input_array, &bias, as_output_array, &y, as_workspace, &ws,
                          transpose_geometry, &t))
        goto done;
    if (transpose_desc(&t, x, w, y, "conv2d_transpose") < 0)
        goto done;
    const npy_intp b_dims[1] = {t.c_out};
    if (bias != NULL && require_shape(bias, "conv2d_transpose", "bias", t.dtype, 1, b_dims) < 0)
        goto done;
    void *work;
    size_t work_size;
    workspace_view(ws, &work, &work_size);
    pycnn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pycnn_conv2d_transpose_forward(&t, PyArray_DATA(x), PyArray_DATA(w), bias ? PyArray_DATA(bias) : NULL,
                                        PyArray_DATA(y), work, work_size);
    Py_END_ALLOW_THREADS
    result = st == PYCNN_OK ? Py_NewRef(Py_None) : raise_status(st, "conv2d_transpose");
done:
    Py_XDECREF(x); Py_XDECREF(w); Py_XDECREF(bias); Py_XDECREF(y); Py_XDECREF(ws);
    return result;
}

static PyObject *conv2d_transpose_backward(PyObject *self, PyObject *args)
{
    PyArrayObject *x = NULL, *w = NULL, *dy = NULL, *dx = NULL, *dw = NULL, *dbias = NULL, *ws = NULL;
    PyObject *result = NULL, *dbias_obj;
    pycnn_conv2d_transpose_desc t = {0};
    if (!PyArg_ParseTuple(args, "O&O&O&O&O&OO&O&", as_input_array, &x, as_input_array, &w,
                          as_input_array, &dy, as_output_array, &dx, as_output_array, &dw, &dbias_obj,
                          as_workspace, &ws, transpose_geometry, &t))
        goto done;
    if (dbias_obj != Py_None && !as_output_array(dbias_obj, &dbias))
        goto done;
    if (transpose_desc(&t, x, w, dy, "conv2d_transpose_backward") < 0 ||
        require_shape(dx, "conv2d_transpose_backward", "dx", t.dtype, 4, PyArray_DIMS(x)) < 0 ||
        require_shape(dw, "conv2d_transpose_backward", "dkernel", t.dtype, 4, PyArray_DIMS(w)) < 0)
        goto done;
    const npy_intp b_dims[1] = {t.c_out};
    if (dbias != NULL && require_shape(dbias, "conv2d_transpose_backward", "dbias", t.dtype, 1, b_dims) < 0)
        goto done;
    void *work;
    size_t work_size;
    workspace_view(ws, &work, &work_size);
    pycnn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pycnn_conv2d_transpose_backward_data(&t, PyArray_DATA(dy), PyArray_DATA(w), PyArray_DATA(dx),
                                              work, work_size);
    if (st == PYCNN_OK)
        st = pycnn_conv2d_transpose_backward_filter(&t, PyArray_DATA(x), PyArray_DATA(dy), PyArray_DATA(dw),
                                                    dbias ? PyArray_DATA(dbias) : NULL, work, work_size);
    Py_END_ALLOW_THREADS
    result = st == PYCNN_OK ? Py_NewRef(Py_None) : raise_status(st, "conv2d_transpose_backward");
done:
    Py_XDECREF(x); Py_XDECREF(w); Py_XDECREF(dy); Py_XDECREF(dx); Py_XDECREF(dw); Py_XDECREF(dbias);
    Py_XDECREF(ws);
    return result;
}

/* ---- im2col / col2im: geometry as for conv2d (groups ignored), kernel size (kh, kw) ---- */

static int im2col_desc(pycnn_conv2d_desc *d, PyArrayObject *image, PyArrayObject *cols, const char *op)
{
    if (PyArray_NDIM(image) != 4) {
        PyErr_Format(PyExc_ValueError, "%s: image array must be 4-D", op);
        return -1;
    }
    const int dtype = engine_dtype(image, op);
    if (dtype < 0)
        return -1;
    d->dtype = dtype;
    d->n = PyArray_DIM(image, 0), d->h = PyArray_DIM(image, 1), d->w = PyArray_DIM(image, 2);
    d->c_in = PyArray_DIM(image, 3), d->c_out = 1, d->groups = 1;
    pycnn_status st = pycnn_conv2d_check(d);
    if (st != PYCNN_OK) {
        raise_status(st, op);
        return -1;
    }
    const npy_intp cols_dims[4] = {d->n, d->oh, d->ow, d->kh * d->kw * d->c_in};
    return require_shape(cols, op, "cols", dtype, 4, cols_dims);
}

static PyObject *im2col(PyObject *self, PyObject *args)
{
    PyArrayObject *x = NULL, *cols = NULL;
    PyObject *result = NULL;
    pycnn_conv2d_desc d = {0};
    if (!PyArg_ParseTuple(args, "O&O&(LL)O&", as_input_array, &x, as_output_array, &cols, &d.kh, &d.kw,
                          conv_geometry, &d) ||
        im2col_desc(&d, x, cols, "im2col") < 0)
        goto done;
    pycnn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pycnn_im2col_forward(&d, PyArray_DATA(x), PyArray_DATA(cols));
    Py_END_ALLOW_THREADS
    result = st == PYCNN_OK ? Py_NewRef(Py_None) : raise_status(st, "im2col");
done:
    Py_XDECREF(x); Py_XDECREF(cols);
    return result;
}

static PyObject *col2im(PyObject *self, PyObject *args)
{
    PyArrayObject *cols = NULL, *x = NULL;
    PyObject *result = NULL;
    pycnn_conv2d_desc d = {0};
    if (!PyArg_ParseTuple(args, "O&O&(LL)O&", as_input_array, &cols, as_output_array, &x, &d.kh, &d.kw,
                          conv_geometry, &d) ||
        im2col_desc(&d, x, cols, "col2im") < 0)
        goto done;
    pycnn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pycnn_col2im_forward(&d, PyArray_DATA(cols), PyArray_DATA(x));
    Py_END_ALLOW_THREADS
    result = st == PYCNN_OK ? Py_NewRef(Py_None) : raise_status(st, "col2im");
done:
    Py_XDECREF(cols); Py_XDECREF(x);
    return result;
}

PyMethodDef pycnn_conv_methods[] = {
    {"conv2d_workspace_size", conv2d_workspace_size, METH_VARARGS, NULL},
    {"conv2d_forward", conv2d_forward, METH_VARARGS, NULL},
    {"conv2d_packed_filters_size", conv2d_packed_filters_size, METH_VARARGS, NULL},
    {"conv2d_pack_filters", conv2d_pack_filters, METH_VARARGS, NULL},
    {"conv2d_backward_data", conv2d_backward_data, METH_VARARGS, NULL},
    {"conv2d_backward_filter", conv2d_backward_filter, METH_VARARGS, NULL},
    {"conv2d_transpose_workspace_size", conv2d_transpose_workspace_size, METH_VARARGS, NULL},
    {"conv2d_transpose_forward", conv2d_transpose_forward, METH_VARARGS, NULL},
    {"conv2d_transpose_backward", conv2d_transpose_backward, METH_VARARGS, NULL},
    {"im2col", im2col, METH_VARARGS, NULL},
    {"col2im", col2im, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};
