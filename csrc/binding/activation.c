/* Binding of the element-wise activations (csrc/activation.c). */
#include "binding.h"

/* "O&" converter for (mode, negative_slope[, clamp_lo, clamp_hi]). */
static int activation_params(PyObject *obj, pycnn_activation_desc *d)
{
    int mode;
    if (!PyArg_ParseTuple(obj, "id|dd;activation parameters must be (mode, negative_slope[, clamp_lo, clamp_hi])",
                          &mode, &d->negative_slope, &d->clamp_lo, &d->clamp_hi))
        return 0;
    d->mode = (pycnn_activation_mode)mode;
    return 1;
}

/* Fills the element count from x and checks that `other` has x's shape and dtype. */
static int activation_desc(pycnn_activation_desc *d, PyArrayObject *x, PyArrayObject *other,
                           const char *other_name, const char *op)
{
    const int dtype = engine_dtype(x, op);
    if (dtype < 0)
        return -1;
    d->dtype = dtype;
    d->count = PyArray_SIZE(x);
    pycnn_status st = pycnn_activation_check(d);
    if (st != PYCNN_OK) {
        raise_status(st, op);
        return -1;
    }
    return require_shape(other, op, other_name, dtype, PyArray_NDIM(x), PyArray_DIMS(x));
}

static PyObject *activation_forward(PyObject *self, PyObject *args)
{
    PyArrayObject *x = NULL, *y = NULL;
    PyObject *result = NULL;
    pycnn_activation_desc d = {0};
    if (!PyArg_ParseTuple(args, "O&O&O&", as_input_array, &x, as_output_array, &y, activation_params, &d) ||
        activation_desc(&d, x, y, "output", "activation") < 0)
        goto done;
    pycnn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pycnn_activation_forward(&d, PyArray_DATA(x), PyArray_DATA(y));
    Py_END_ALLOW_THREADS
    result = st == PYCNN_OK ? Py_NewRef(Py_None) : raise_status(st, "activation");
done:
    Py_XDECREF(x); Py_XDECREF(y);
    return result;
}

static PyObject *activation_backward(PyObject *self, PyObject *args)
{
    PyArrayObject *x = NULL, *dy = NULL, *dx = NULL;
    PyObject *result = NULL;
    pycnn_activation_desc d = {0};
    if (!PyArg_ParseTuple(args, "O&O&O&O&", as_input_array, &x, as_input_array, &dy, as_output_array, &dx,
                          activation_params, &d) ||
        activation_desc(&d, x, dy, "dy", "activation_backward") < 0 ||
        require_shape(dx, "activation_backward", "dx", d.dtype, PyArray_NDIM(x), PyArray_DIMS(x)) < 0)
        goto done;
    pycnn_status st;
    Py_BEGIN_ALLOW_THREADS
    st = pycnn_activation_backward(&d, PyArray_DATA(x), PyArray_DATA(dy), PyArray_DATA(dx));
    Py_END_ALLOW_THREADS
    result = st == PYCNN_OK ? Py_NewRef(Py_None) : raise_status(st, "activation_backward");
done:
    Py_XDECREF(x); Py_XDECREF(dy); Py_XDECREF(dx);
    return result;
}

PyMethodDef pycnn_activation_methods[] = {
    {"activation_forward", activation_forward, METH_VARARGS, NULL},
    {"activation_backward", activation_backward, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};
