/* Binding of batch normalization (csrc/batchnorm.c). */
#include "binding.h"

/* "O&" converter: an output array as as_output_array, or None (not wanted). */
static int as_optional_output_array(PyObject *obj, PyArrayObject **out)
{
    if (obj == Py_None) {
        *out = NULL;
        return 1;
    }
    return as_output_array(obj, out);
}

/* Fills the shape from x [rows, c], validates, and checks each per-channel array
 * (NULL entries skipped) is [c] of x's dtype. */
static int bn_desc(pycnn_batch_norm_desc *d, PyArrayObject *x, const char *op,
                   PyArrayObject *const *channel_arrays, const char *const *names, int count)
{
    if (PyArray_NDIM(x) != 2) {
        PyErr_Format(PyExc_ValueError, "%s: input must be 2-D (rows, channels)", op);
        return -1;
    }
    const int dtype = engine_dtype(x, op);
    if (dtype < 0)
        return -1;
    d->dtype = dtype;
    d->rows = PyArray_DIM(x, 0), d->c = PyArray_DIM(x, 1);
    pycnn_status st = pycnn_batch_norm_check(d);
    if (st != PYCNN_OK) {
        raise_status(st, op);
        return -1;
    }
    const npy_intp dims[1] = {d->c};
    for (int i = 0; i < count; i++)
        if (channel_arrays[i] != NULL && require_shape(channel_arrays[i], op, names[i], dtype, 1, dims) < 0)
            return -1;
    return 0;
}

static PyObject *batch_norm_workspace_size(PyObject *self, PyObject *args)
{
    pycnn_batch_norm_desc d = {0};
    int is_float64;
    size_t bytes = 0;
    if (!PyArg_ParseTuple(args, "LLpd", &d.rows, &d.c, &is_float64, &d.epsilon))
        return NULL;
    d.dtype = is_float64 ? PYCNN_FLOAT64 : PYCNN_FLOAT32;
    pycnn_status st = pycnn_batch_norm_workspace_size(&d, &bytes);
    if (st != PYCNN_OK)
        return raise_status(st, "batch_norm");
    return PyLong_FromSize_t(bytes);
}

static PyObject *batch_norm_forward_training(PyObject *self, PyObject *args)
{
    PyArrayObject *x = NULL, *gamma = NULL, *beta = NULL, *y = NULL, *mean = NULL, *var = NULL, *ws = NULL;
    PyObject *result = NULL;
    pycnn_batch_norm_desc d = {0};
    if (!PyArg_ParseTuple(args, "O&O&O&O&O&O&O&d", as_input_array, &x, as_optional_input_array, &gamma,
                          as_optional_input_array, &beta, as_output_array, &y, as_output_array, &mean,
                          as_output_array, &var, as_workspace, &ws, &d.epsilon))
        goto done;
    PyArrayObject *const channel[] = {gamma, beta, mean, var};
    const char *const names[] = {"gamma", "beta", "mean", "variance"};
    if (bn_desc(&d, x, "batch_norm", channel, names, 4) < 0 ||
        require_shape(y, "batch_norm", "output", d.dtype, 2, PyArray_DIMS(x)) < 0)
        goto done;
    void *work;
    size_t work_size;
    workspace_view(ws, &work, &work_size);
    pycnn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pycnn_batch_norm_forward_training(&d, PyArray_DATA(x), gamma ? PyArray_DATA(gamma) : NULL,
                                           beta ? PyArray_DATA(beta) : NULL, PyArray_DATA(y),
                                           PyArray_DATA(mean), PyArray_DATA(var), work, work_size);
    Py_END_ALLOW_THREADS
    result = st == PYCNN_OK ? Py_NewRef(Py_None) : raise_status(st, "batch_norm");
done:
    Py_XDECREF(x); Py_XDECREF(gamma); Py_XDECREF(beta); Py_XDECREF(y); Py_XDECREF(mean); Py_XDECREF(var);
    Py_XDECREF(ws);
    return result;
}

static PyObject *batch_norm_forward_inference(PyObject *self, PyObject *args)
{
    PyArrayObject *x = NULL, *mean = NULL, *var = NULL, *gamma = NULL, *beta = NULL, *y = NULL, *ws = NULL;
    PyObject *result = NULL;
    pycnn_batch_norm_desc d = {0};
    if (!PyArg_ParseTuple(args, "O&O&O&O&O&O&O&d", as_input_array, &x, as_input_array, &mean,
                          as_input_array, &var, as_optional_input_array, &gamma, as_optional_input_array, &beta,
                          as_output_array, &y, as_workspace, &ws, &d.epsilon))
        goto done;
    PyArrayObject *const channel[] = {mean, var, gamma, beta};
    const char *const names[] = {"mean", "variance", "gamma", "beta"};
    if (bn_desc(&d, x, "batch_norm", channel, names, 4) < 0 ||
        require_shape(y, "batch_norm", "output", d.dtype, 2, PyArray_DIMS(x)) < 0)
        goto done;
    void *work;
    size_t work_size;
    workspace_view(ws, &work, &work_size);
    pycnn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pycnn_batch_norm_forward_inference(&d, PyArray_DATA(x), PyArray_DATA(mean), PyArray_DATA(var),
                                            gamma ? PyArray_DATA(gamma) : NULL, beta ? PyArray_DATA(beta) : NULL,
                                            PyArray_DATA(y), work, work_size);
    Py_END_ALLOW_THREADS
    result = st == PYCNN_OK ? Py_NewRef(Py_None) : raise_status(st, "batch_norm");
done:
    Py_XDECREF(x); Py_XDECREF(mean); Py_XDECREF(var); Py_XDECREF(gamma); Py_XDECREF(beta); Py_XDECREF(y);
    Py_XDECREF(ws);
    return result;
}

static PyObject *batch_norm_backward(PyObject *self, PyObject *args)
{
    PyArrayObject *x = NULL, *dy = NULL, *mean = NULL, *var = NULL, *gamma = NULL;
    PyArrayObject *dx = NULL, *dgamma = NULL, *dbeta = NULL, *ws = NULL;
    PyObject *result = NULL;
    pycnn_batch_norm_desc d = {0};
    int batch_stats;
    if (!PyArg_ParseTuple(args, "O&O&O&O&O&O&O&O&O&dp", as_input_array, &x, as_input_array, &dy,
                          as_input_array, &mean, as_input_array, &var, as_optional_input_array, &gamma,
                          as_output_array, &dx, as_optional_output_array, &dgamma,
                          as_optional_output_array, &dbeta, as_workspace, &ws, &d.epsilon, &batch_stats))
        goto done;
    PyArrayObject *const channel[] = {mean, var, gamma, dgamma, dbeta};
    const char *const names[] = {"mean", "variance", "gamma", "dgamma", "dbeta"};
    if (bn_desc(&d, x, "batch_norm_backward", channel, names, 5) < 0 ||
        require_shape(dy, "batch_norm_backward", "dy", d.dtype, 2, PyArray_DIMS(x)) < 0 ||
        require_shape(dx, "batch_norm_backward", "dx", d.dtype, 2, PyArray_DIMS(x)) < 0)
        goto done;
    void *work;
    size_t work_size;
    workspace_view(ws, &work, &work_size);
    pycnn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pycnn_batch_norm_backward(&d, batch_stats, PyArray_DATA(x), PyArray_DATA(dy), PyArray_DATA(mean),
                                   PyArray_DATA(var), gamma ? PyArray_DATA(gamma) : NULL, PyArray_DATA(dx),
                                   dgamma ? PyArray_DATA(dgamma) : NULL, dbeta ? PyArray_DATA(dbeta) : NULL,
                                   work, work_size);
    Py_END_ALLOW_THREADS
    result = st == PYCNN_OK ? Py_NewRef(Py_None) : raise_status(st, "batch_norm_backward");
done:
    Py_XDECREF(x); Py_XDECREF(dy); Py_XDECREF(mean); Py_XDECREF(var); Py_XDECREF(gamma);
    Py_XDECREF(dx); Py_XDECREF(dgamma); Py_XDECREF(dbeta); Py_XDECREF(ws);
    return result;
}

PyMethodDef pycnn_batch_norm_methods[] = {
    {"batch_norm_workspace_size", batch_norm_workspace_size, METH_VARARGS, NULL},
    {"batch_norm_forward_training", batch_norm_forward_training, METH_VARARGS, NULL},
    {"batch_norm_forward_inference", batch_norm_forward_inference, METH_VARARGS, NULL},
    {"batch_norm_backward", batch_norm_backward, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};
