"""The benchmark suite of performance.md section 4 for ``python -m pycnn.bench``:
shapes, and for each case a pycnn callable and (when PyTorch is installed) the
PyTorch callable doing the same work on the same data.

pycnn runs in its own layouts (NHWC activations, HWIO kernels); PyTorch runs
the way its users run it (NCHW eager tensors).  Single-layer passes call the
engine with preallocated outputs and workspace on both sides (PyTorch through
``aten.convolution_backward``, the op its autograd calls); whole networks go
through the public ``pycnn.ops`` functions and ``torch.nn`` respectively.
"""
import math
from collections import namedtuple

import numpy as np

from . import _engine, ops

# --------------------------------------------------------------- the suite

ConvShape = namedtuple("ConvShape", "id n c h w oc k s p d g transposed")


def _conv(id_, n, c, h, w, oc, k, s=1, p=0, d=1, g=1, transposed=False):
    return ConvShape(id_, n, c, h, w, oc, k, s, p, d, g, transposed)


# performance.md 4.1 (1-D layers are the H = 1 case, as in pycnn.ops.conv1d).
CONV_SUITE = [
    _conv("lenet.c1", 128, 1, 28, 28, 6, 5, p=2),
    _conv("lenet.c3", 128, 6, 14, 14, 16, 5),
    _conv("alexnet.conv1", 1, 3, 227, 227, 96, 11, s=4),
    _conv("vgg16.conv1_1", 1, 3, 224, 224, 64, 3, p=1),
    _conv("vgg16.conv1_2", 1, 64, 224, 224, 64, 3, p=1),
    _conv("vgg16.conv3_2", 1, 256, 56, 56, 256, 3, p=1),
    _conv("vgg16.conv5_2", 1, 512, 14, 14, 512, 3, p=1),
    _conv("resnet50.conv1", 1, 3, 224, 224, 64, 7, s=2, p=3),
    _conv("resnet50.res2.3x3", 1, 64, 56, 56, 64, 3, p=1),
    _conv("resnet50.res2.1x1up", 1, 64, 56, 56, 256, 1),
    _conv("resnet50.res3.3x3s2", 1, 128, 56, 56, 128, 3, s=2, p=1),
    _conv("resnet50.res3.ds1x1s2", 1, 256, 56, 56, 512, 1, s=2),
    _conv("resnet50.res4.3x3", 1, 256, 14, 14, 256, 3, p=1),
    _conv("resnet50.res5.1x1down", 1, 2048, 7, 7, 512, 1),
    _conv("resnet50.res2.3x3.b32", 32, 64, 56, 56, 64, 3, p=1),
    _conv("resnext.3x3g32", 1, 128, 56, 56, 128, 3, p=1, g=32),
    _conv("dilated.3x3d2", 1, 64, 56, 56, 64, 3, p=2, d=2),
    _conv("mobilenet.dw112", 1, 32, 112, 112, 32, 3, p=1, g=32),
    _conv("mobilenet.dw112s2", 1, 64, 112, 112, 64, 3, s=2, p=1, g=64),
    _conv("mobilenet.dw14", 1, 512, 14, 14, 512, 3, p=1, g=512),
    _conv("mobilenet.pw112", 1, 32, 112, 112, 64, 1),
    _conv("unet.up1024", 1, 1024, 28, 28, 512, 2, s=2, transposed=True),
    _conv("unet.up128", 1, 128, 128, 128, 64, 2, s=2, transposed=True),
    _conv("wave1d.k7", 32, 3, 1, 1000, 32, 7, p=3),
    _conv("wave1d.k3", 32, 32, 1, 1000, 32, 3, p=1),
    _conv("wave1d.k5s2", 32, 32, 1, 1000, 64, 5, s=2, p=2),
]
# --quick: one of each kind, all small.
QUICK_CONV_IDS = ("lenet.c1", "lenet.c3", "resnet50.res2.3x3", "resnet50.res2.1x1up",
                  "mobilenet.dw14", "unet.up128", "wave1d.k3")

CONV_PASSES = ("fwd", "bwd-data", "bwd-filter")


def _is_1d(shape):
    return shape.h == 1


def _kernel_hw(shape):
    return (1, shape.k) if _is_1d(shape) else (shape.k, shape.k)


def conv_out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def conv_flops(shape):
    """Forward FLOPs by performance.md 3.2 (transposed: input-centric); each backward pass costs the same."""
    kh, kw = _kernel_hw(shape)
    if shape.transposed:
        return 2 * shape.n * shape.c * shape.h * shape.w * (shape.oc // shape.g) * kh * kw
    oh = 1 if _is_1d(shape) else conv_out_size(shape.h, shape.k, shape.s, shape.p, shape.d)
    ow = conv_out_size(shape.w, shape.k, shape.s, shape.p, shape.d)
    return 2 * shape.n * shape.oc * oh * ow * (shape.c // shape.g) * kh * kw


def _random(rng, shape, scale=1.0):
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(scale))


def _workspace(nbytes):
    """Allocated and touched once, outside the timed region (fresh pages cost ~11 us each)."""
    ws = np.zeros(max(nbytes, 1), dtype=np.uint8)
    return ws if nbytes else None


class ConvCase:
    """One layer of the suite, its three passes for pycnn and for PyTorch.

    A transposed layer is run as the engine runs it: its forward is the
    backward-data pass of the matching convolution (output -> input), its
    backward-data that convolution's forward, its backward-filter that
    convolution's backward-filter with the roles of x and dy swapped."""

    def __init__(self, shape, torch=None, seed=0):
        self.shape = shape
        self.flops = conv_flops(shape)
        rng = np.random.default_rng(seed)
        kh, kw = _kernel_hw(shape)
        s, p, d, g = shape.s, shape.p, shape.d, shape.g
        sh, ph, dh = (1, 0, 1) if _is_1d(shape) else (s, p, d)
        self.geometry = (sh, s, dh, d, ph, ph, p, p, g)
        oh = 1 if _is_1d(shape) else conv_out_size(shape.h, shape.k, sh, ph, dh)
        ow = conv_out_size(shape.w, shape.k, s, p, d)
        if shape.transposed:
            # The matching convolution maps the transposed output (big) to its input.
            big = (shape.n, shape.h * s, shape.w * s, shape.oc)
            small = (shape.n, shape.h, shape.w, shape.c)
            self.conv_x = _random(rng, big)                      # transposed dy
            self.conv_dy = _random(rng, small)                   # transposed x
            self.kernel = _random(rng, (kh, kw, shape.oc, shape.c), 0.05)   # Keras (kh, kw, filters, c_in)
            self.bias = None
        else:
            self.conv_x = _random(rng, (shape.n, shape.h, shape.w, shape.c))
            self.conv_dy = _random(rng, (shape.n, oh, ow, shape.oc))
            self.kernel = _random(rng, (kh, kw, shape.c // g, shape.oc), 0.05)
            self.bias = _random(rng, (shape.oc,))
        self.conv_y = np.zeros_like(self.conv_dy)
        self.conv_dx = np.zeros_like(self.conv_x)
        self.dkernel = np.zeros_like(self.kernel)
        self.dbias = None if self.bias is None else np.zeros_like(self.bias)
        self.ws = _workspace(_engine.conv2d_workspace_size(self.conv_x.shape, self.kernel.shape, False,
                                                           self.geometry))
        self.torch = torch
        if torch is not None:
            self._torch_setup(torch)

    # pycnn passes (engine calls with preallocated outputs)
    def _conv_fwd(self):
        _engine.conv2d_forward(self.conv_x, self.kernel, self.bias, self.conv_y, self.ws, self.geometry)

    def _conv_bwd_data(self):
        _engine.conv2d_backward_data(self.conv_dy, self.kernel, self.conv_dx, self.ws, self.geometry)

    def _conv_bwd_filter(self):
        _engine.conv2d_backward_filter(self.conv_x, self.conv_dy, self.dkernel, self.dbias, self.ws,
                                       self.geometry)

    def pycnn(self, pass_):
        if self.shape.transposed:
            return {"fwd": self._conv_bwd_data, "bwd-data": self._conv_fwd,
                    "bwd-filter": self._conv_bwd_filter}[pass_]
        return {"fwd": self._conv_fwd, "bwd-data": self._conv_bwd_data,
                "bwd-filter": self._conv_bwd_filter}[pass_]

    # PyTorch passes (NCHW / NCL, OIHW weights)
    def _torch_setup(self, torch):
        shape = self.shape
        one_d = _is_1d(shape)

        def to_first(a):   # NHWC -> NCHW (NCL for 1-D)
            t = np.moveaxis(a, -1, 1)
            return torch.from_numpy(np.ascontiguousarray(t[:, :, 0] if one_d else t))

        if one_d:
            self.t_stride, self.t_pad, self.t_dil = [shape.s], [shape.p], [shape.d]
        else:
            self.t_stride, self.t_pad, self.t_dil = [shape.s] * 2, [shape.p] * 2, [shape.d] * 2
        k = self.kernel
        if shape.transposed:
            # PyTorch ConvTranspose2d weight: (c_in, filters, kh, kw)
            self.t_w = torch.from_numpy(np.ascontiguousarray(np.transpose(k, (3, 2, 0, 1))))
            self.t_x, self.t_dy = to_first(self.conv_dy), to_first(self.conv_x)
            self.t_b = None
        else:
            w = np.transpose(k, (3, 2, 0, 1))   # OIHW
            self.t_w = torch.from_numpy(np.ascontiguousarray(w[:, :, 0] if one_d else w))
            self.t_x, self.t_dy = to_first(self.conv_x), to_first(self.conv_dy)
            self.t_b = torch.from_numpy(self.bias)
        self.t_out_pad = [0] * len(self.t_stride)

    def torch_pass(self, pass_):
        torch = self.torch
        if torch is None:
            return None
        F = torch.nn.functional
        shape = self.shape
        aten = torch.ops.aten
        bias_sizes = None if self.t_b is None else [shape.oc]
        masks = {"bwd-data": [True, False, False], "bwd-filter": [False, True, self.t_b is not None]}
        if pass_ == "fwd":
            if shape.transposed:
                return lambda: F.conv_transpose2d(self.t_x, self.t_w, None, self.t_stride)
            conv = F.conv1d if _is_1d(shape) else F.conv2d
            return lambda: conv(self.t_x, self.t_w, self.t_b, self.t_stride, self.t_pad, self.t_dil, shape.g)
        mask = masks[pass_]
        return lambda: aten.convolution_backward(self.t_dy, self.t_x, self.t_w, bias_sizes, self.t_stride,
                                                 self.t_pad, self.t_dil, shape.transposed, self.t_out_pad,
                                                 shape.g, mask)


# ------------------------------------------------------ non-conv layers (4.2)

class LayerCase:
    """A non-convolution row: pycnn and PyTorch callables plus its work measure."""

    def __init__(self, id_, pass_, unit, work, pycnn, torch_fn, missing=None):
        self.id, self.pass_, self.unit, self.work = id_, pass_, unit, work
        self.pycnn, self.torch_fn = pycnn, torch_fn
        self.missing = missing   # why pycnn cannot run this row, if it cannot


def _nchw(torch, a):
    return None if torch is None else torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, 1)))


def _pool_cases(torch, id_, x, mode, k, s, p):
    aten = None if torch is None else torch.ops.aten
    pad = ((p, p), (p, p))
    y = (ops.max_pool2d if mode == "max" else ops.avg_pool2d)(x, k, s, pad)
    dy = np.ones_like(y)
    fwd_bytes = x.nbytes + y.nbytes
    bwd_bytes = 2 * x.nbytes + dy.nbytes
    forward = ops.max_pool2d if mode == "max" else ops.avg_pool2d
    backward = ops.max_pool2d_backward if mode == "max" else ops.avg_pool2d_backward
    t_fwd = t_bwd = None
    if torch is not None:
        tx, tdy = _nchw(torch, x), _nchw(torch, dy)
        F = torch.nn.functional
        if mode == "max":
            _, indices = F.max_pool2d(tx, k, s, p, return_indices=True)
            t_fwd = lambda: F.max_pool2d(tx, k, s, p)
            t_bwd = lambda: aten.max_pool2d_with_indices_backward(tdy, tx, [k, k], [s, s], [p, p], [1, 1],
                                                                  False, indices)
        else:
            # count_include_pad=False is Keras's (and pycnn's) rule for padded windows
            t_fwd = lambda: F.avg_pool2d(tx, k, s, p, count_include_pad=False)
            t_bwd = lambda: aten.avg_pool2d_backward(tdy, tx, [k, k], [s, s], [p, p], False, False, None)
    cases = [LayerCase(id_, "fwd", "GB", fwd_bytes, lambda: forward(x, k, s, pad), t_fwd),
             LayerCase(id_, "bwd", "GB", bwd_bytes, lambda: backward(dy, x, k, s, pad), t_bwd)]
    if mode == "max":
        # Stored argmax (what the layers and PyTorch's autograd use): the forward also
        # writes int32 indices, the backward reads them instead of x.
        _, stored = forward(x, k, s, pad, return_indices=True)
        t_fwd_indices = None if torch is None else (lambda: F.max_pool2d(tx, k, s, p, return_indices=True))
        cases += [LayerCase(id_, "fwd(idx)", "GB", fwd_bytes + stored.nbytes,
                            lambda: forward(x, k, s, pad, return_indices=True), t_fwd_indices),
                  LayerCase(id_, "bwd(idx)", "GB", x.nbytes + dy.nbytes + stored.nbytes,
                            lambda: backward(dy, x, k, s, pad, indices=stored), t_bwd)]
    return cases


def _dense_cases(torch, id_, x, kernel, backward=True, weight_bound=False, packed=False):
    """The forward (and backward) rows of one dense layer; packed adds the forward with the
    kernel packed once beforehand (ops.PackedKernel: what Model.predict does from its second
    batch on), pass "fwd.packed", against the same PyTorch forward."""
    rng = np.random.default_rng(1)
    bias = _random(rng, (kernel.shape[1],))
    dy = _random(rng, (x.shape[0], kernel.shape[1]))
    flops = 2 * x.shape[0] * kernel.shape[0] * kernel.shape[1]
    unit, work = ("GB", kernel.nbytes) if weight_bound else ("GFLOP", flops)
    t_fwd = t_bwd = None
    if torch is not None:
        F = torch.nn.functional
        tx, tdy, tb = torch.from_numpy(x), torch.from_numpy(dy), torch.from_numpy(bias)
        tw = torch.from_numpy(kernel).T   # nn.Linear's (out, in), a view of the same memory

        t_fwd = lambda: F.linear(tx, tw, tb)

        def t_bwd():   # what autograd runs for linear: dx, dW, db
            return tdy @ tw, tdy.T @ tx, tdy.sum(0)

    cases = [LayerCase(id_, "fwd", unit, work, lambda: ops.dense(x, kernel, bias), t_fwd)]
    if packed:
        packed_kernel = ops.PackedKernel(kernel, copy=False)
        cases.append(LayerCase(id_, "fwd.packed", unit, work, lambda: ops.dense(x, packed_kernel, bias), t_fwd))
    if backward:
        cases.append(LayerCase(id_, "bwd", unit, 2 * work, lambda: ops.dense_backward(dy, x, kernel, bias),
                               t_bwd))
    return cases


def _bn_cases(torch, x):
    """Training BatchNormalization: pycnn's layer (the public path) against aten.native_batch_norm."""
    size_bytes = x.nbytes
    try:
        from .layers import BatchNormalization
        layer = BatchNormalization()
        layer(x, training=True)
        dy = np.ones_like(x)

        def p_fwd():
            return layer(x, training=True)

        def p_bwd():
            return layer.backward(dy)
        p_fwd()
        p_bwd()
    except Exception as exc:   # the layers API is optional for the benchmark
        p_fwd = p_bwd = None
        reason = f"pycnn.layers.BatchNormalization unavailable ({type(exc).__name__}: {exc})"
    else:
        reason = None
    t_fwd = t_bwd = None
    if torch is not None:
        aten = torch.ops.aten
        c = x.shape[-1]
        tx, tdy = _nchw(torch, x), _nchw(torch, np.ones_like(x))
        w, b = torch.ones(c), torch.zeros(c)
        rm, rv = torch.zeros(c), torch.ones(c)
        _, save_mean, save_invstd = aten.native_batch_norm(tx, w, b, rm, rv, True, 0.01, 1e-3)
        t_fwd = lambda: aten.native_batch_norm(tx, w, b, rm, rv, True, 0.01, 1e-3)
        t_bwd = lambda: aten.native_batch_norm_backward(tdy, tx, w, rm, rv, save_mean, save_invstd, True, 1e-3,
                                                        [True, True, True])
    # Bytes by passes: forward reads x twice (statistics, normalise) and writes y;
    # backward reads dy and x twice (two reductions, then dx) and writes dx.
    return [LayerCase("bn.train", "fwd", "GB", 3 * size_bytes, p_fwd, t_fwd, reason),
            LayerCase("bn.train", "bwd", "GB", 5 * size_bytes, p_bwd, t_bwd, reason)]


def layer_cases(torch, quick, fc6_kernel=None):
    """The rows of performance.md 4.2 (fc6 rows only when its 411 MB kernel is given)."""
    rng = np.random.default_rng(2)
    cases = []
    if not quick:
        cases += _pool_cases(torch, "pool.max2x2", _random(rng, (1, 224, 224, 64)), "max", 2, 2, 0)
    cases += _pool_cases(torch, "pool.max3x3s2", _random(rng, (1, 112, 112, 64)), "max", 3, 2, 1)
    lenet = _random(rng, (128, 28, 28, 6))
    cases += _pool_cases(torch, "pool.lenet.max", lenet, "max", 2, 2, 0)
    cases += _pool_cases(torch, "pool.lenet.avg", lenet, "avg", 2, 2, 0)

    gap = _random(rng, (1, 7, 7, 2048))
    t_gap = t_gap_bwd = None
    dy_gap = np.ones((1, 2048), np.float32)
    if torch is not None:
        tg, tdy = _nchw(torch, gap), torch.ones(1, 2048, 1, 1)
        t_gap = lambda: torch.nn.functional.adaptive_avg_pool2d(tg, 1)
        t_gap_bwd = lambda: torch.ops.aten._adaptive_avg_pool2d_backward(tdy, tg)
    cases += [LayerCase("pool.gap", "fwd", "GB", gap.nbytes + 2048 * 4, lambda: ops.global_avg_pool2d(gap), t_gap),
              LayerCase("pool.gap", "bwd", "GB", gap.nbytes + 2048 * 4,
                        lambda: ops.global_avg_pool2d_backward(dy_gap, gap), t_gap_bwd)]

    cases += _dense_cases(torch, "dense.lenet", _random(rng, (128, 400)), _random(rng, (400, 120), 0.05))
    if fc6_kernel is not None:
        cases += _dense_cases(torch, "dense.fc6.b1", _random(rng, (1, 25088)), fc6_kernel, backward=False,
                              weight_bound=True)
        cases += _dense_cases(torch, "dense.fc6.b32", _random(rng, (32, 25088)), fc6_kernel, packed=True)

    cases += _bn_cases(torch, _random(rng, (8 if quick else 32, 56, 56, 64)))

    relu_x = _random(rng, (1, 112, 112, 64))
    relu_dy = np.ones_like(relu_x)
    t_relu = t_relu_bwd = None
    if torch is not None:
        tr, trdy = _nchw(torch, relu_x), _nchw(torch, relu_dy)
        t_relu = lambda: torch.relu(tr)
        t_relu_bwd = lambda: torch.ops.aten.threshold_backward(trdy, tr, 0)
    cases += [LayerCase("relu", "fwd", "GB", 2 * relu_x.nbytes, lambda: ops.relu(relu_x), t_relu),
              LayerCase("relu", "bwd", "GB", 3 * relu_x.nbytes, lambda: ops.relu_backward(relu_dy, relu_x),
                        t_relu_bwd)]

    for n, classes in ((128, 10), (32, 1000)):
        logits = _random(rng, (n, classes))
        labels = rng.integers(0, classes, n)
        t_xent = None
        if torch is not None:
            tl, ty = torch.from_numpy(logits).requires_grad_(), torch.from_numpy(labels)

            def t_xent(tl=tl, ty=ty):   # fused loss and gradient, as pycnn returns them
                tl.grad = None
                torch.nn.functional.cross_entropy(tl, ty).backward()
        cases.append(LayerCase(f"softmax+xent.{n}x{classes}", "fwd+bwd", "us", 0,
                               lambda logits=logits, labels=labels: ops.softmax_cross_entropy(logits, labels),
                               t_xent))
    return cases


# ------------------------------------------------------------- networks (4.3)

def _he(rng, shape, fan_in):
    return _random(rng, shape, math.sqrt(2.0 / fan_in))


# Layer specs: ("conv", c_in, c_out, k, pad), ("pool",), ("flatten",), ("dense", in, out, relu)
LENET5 = [("conv", 1, 6, 5, 2), ("pool",), ("conv", 6, 16, 5, 0), ("pool",), ("flatten",),
          ("dense", 400, 120, True), ("dense", 120, 84, True), ("dense", 84, 10, False)]
CIFAR_CNN = [("conv", 3, 32, 3, 1), ("conv", 32, 32, 3, 0), ("pool",), ("conv", 32, 64, 3, 1),
             ("conv", 64, 64, 3, 0), ("pool",), ("flatten",), ("dense", 2304, 512, True),
             ("dense", 512, 10, False)]


def _vgg16_spec():
    spec, c_in = [], 3
    for block in ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)):
        for c_out in block:
            spec.append(("conv", c_in, c_out, 3, 1))
            c_in = c_out
        spec.append(("pool",))
    return spec + [("flatten",), ("dense", 25088, 4096, True), ("dense", 4096, 4096, True),
                   ("dense", 4096, 1000, False)]


VGG16 = _vgg16_spec()


def make_weights(spec, seed=0):
    """He-initialised float32 weights: HWIO conv kernels and (in, out) dense kernels, with biases."""
    rng = np.random.default_rng(seed)
    weights = []
    for layer in spec:
        if layer[0] == "conv":
            _, c_in, c_out, k, _ = layer
            weights.append((_he(rng, (k, k, c_in, c_out), k * k * c_in), np.zeros(c_out, np.float32)))
        elif layer[0] == "dense":
            _, n_in, n_out, _ = layer
            weights.append((_he(rng, (n_in, n_out), n_in), np.zeros(n_out, np.float32)))
    return weights


class OpsNet:
    """A sequential CNN written with pycnn.ops calls only (conv layers are
    conv + ReLU, pooling is 2x2 max): forward, backward and an in-place SGD
    momentum update, the work a framework built on the ops does per step.
    The ReLU runs inside the conv/dense forward (activation="relu") and its
    derivative comes from the output, as pycnn's layers do: no pre-activation
    is kept."""

    def __init__(self, spec, weights, lr=0.01, momentum=0.9, algorithm="auto"):
        self.spec, self.weights = spec, weights
        self.algorithm = algorithm   # conv2d's algorithm for the forward of 3x3 layers past the stem
        self.velocity = [(np.zeros_like(w), np.zeros_like(b)) for w, b in weights]
        self.lr, self.momentum = np.float32(lr), np.float32(momentum)

    def forward(self, x, keep=False):
        tape, wi = [], 0
        for layer in self.spec:
            kind = layer[0]
            if kind == "conv":
                w, b = self.weights[wi]
                out = ops.conv2d(x, w, b, padding=layer[4], algorithm=self._conv_algorithm(layer), activation="relu")
                tape.append((kind, x, out, wi))
                x, wi = out, wi + 1
            elif kind == "pool" and keep:
                # Training keeps the argmax for the backward, as the layers do.
                y, indices = ops.max_pool2d(x, 2, return_indices=True)
                tape.append((kind, x, indices))
                x = y
            elif kind == "pool":
                x = ops.max_pool2d(x, 2)
            elif kind == "flatten":
                tape.append((kind, x.shape))
                x = x.reshape(x.shape[0], -1)
            else:
                w, b = self.weights[wi]
                out = ops.dense(x, w, b, activation="relu" if layer[3] else None)
                tape.append((kind, x, out, wi))
                x, wi = out, wi + 1
        return (x, tape) if keep else x

    def _conv_algorithm(self, layer):
        """Winograd (when asked for) on 3x3 layers with 16+ input channels: a stem with a few
        channels gains nothing from it (performance.md 3.2)."""
        _, c_in, _, k, _ = layer
        return self.algorithm if k == 3 and c_in >= WINOGRAD_MIN_CHANNELS else "auto"

    def train_step(self, x, labels):
        logits, tape = self.forward(x, keep=True)
        loss, g = ops.softmax_cross_entropy(logits, labels)
        grads = [None] * len(self.weights)
        for layer, record in zip(reversed(self.spec), reversed(tape)):
            kind = record[0]
            if kind == "pool":
                g = ops.max_pool2d_backward(g, record[1], 2, indices=record[2])
            elif kind == "flatten":
                g = g.reshape(record[1])
            else:
                _, inp, out, wi = record
                w, b = self.weights[wi]
                # The first layer's input gradient is never used (the images are
                # not trained), so it is skipped, as pycnn's models and PyTorch's
                # autograd both do.
                first = wi == 0
                if kind == "conv":
                    g = ops.relu_backward(g, out)   # relu's derivative from its output
                    g, dw, db = ops.conv2d_backward(g, inp, w, b, padding=layer[4], compute_dx=not first)
                else:
                    if layer[3]:
                        g = ops.relu_backward(g, out)
                    g, dw, db = ops.dense_backward(g, inp, w, b, compute_dx=not first)
                grads[wi] = (dw, db)
        for (w, b), (vw, vb), (dw, db) in zip(self.weights, self.velocity, grads):
            for param, vel, grad in ((w, vw, dw), (b, vb, db)):
                grad *= -self.lr
                vel *= self.momentum
                vel += grad
                param += vel
        return loss


def torch_net(torch, spec, weights):
    """The same network as torch.nn.Sequential (NCHW), sharing the dense
    kernels' memory and copying the conv kernels to OIHW."""
    nn = torch.nn
    layers, wi = [], 0
    for layer in spec:
        if layer[0] == "conv":
            _, c_in, c_out, k, pad = layer
            conv = nn.Conv2d(c_in, c_out, k, padding=pad)
            w, b = weights[wi]
            conv.weight = nn.Parameter(torch.from_numpy(np.ascontiguousarray(np.transpose(w, (3, 2, 0, 1)))))
            conv.bias = nn.Parameter(torch.from_numpy(b.copy()))
            layers += [conv, nn.ReLU()]
            wi += 1
        elif layer[0] == "pool":
            layers.append(nn.MaxPool2d(2))
        elif layer[0] == "flatten":
            layers.append(nn.Flatten())
        else:
            _, n_in, n_out, relu = layer
            linear = nn.Linear(n_in, n_out)
            w, b = weights[wi]
            linear.weight = nn.Parameter(torch.from_numpy(w).T)
            linear.bias = nn.Parameter(torch.from_numpy(b.copy()))
            layers.append(linear)
            if relu:
                layers.append(nn.ReLU())
            wi += 1
    return nn.Sequential(*layers)


def spec_flops(spec, h, w):
    """Forward FLOPs per image (convs and dense layers)."""
    total = 0
    for layer in spec:
        if layer[0] == "conv":
            _, c_in, c_out, k, pad = layer
            h, w = h + 2 * pad - k + 1, w + 2 * pad - k + 1
            total += 2 * h * w * c_in * c_out * k * k
        elif layer[0] == "pool":
            h, w = h // 2, w // 2
        elif layer[0] == "dense":
            total += 2 * layer[1] * layer[2]
    return total


class TrainingNet:
    """One network at one batch size: pycnn (ops) and PyTorch training steps on synthetic data."""

    def __init__(self, torch, spec, image_shape, classes, batch, seed=0):
        rng = np.random.default_rng(seed)
        h, w, c = image_shape
        self.batch = batch
        self.fwd_flops = spec_flops(spec, h, w) * batch
        # A few synthetic batches, cycled (a data set of real images costs the same).
        self.batches = [(rng.random((batch, h, w, c), dtype=np.float32), rng.integers(0, classes, batch))
                        for _ in range(4)]
        self.net = OpsNet(spec, make_weights(spec, seed))
        self.i = 0
        self.torch = torch
        if torch is not None:
            self.t_net = torch_net(torch, spec, make_weights(spec, seed))
            self.t_opt = torch.optim.SGD(self.t_net.parameters(), lr=0.01, momentum=0.9)
            self.t_batches = [(torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1))), torch.from_numpy(y))
                              for x, y in self.batches]
            self.t_i = 0

    def pycnn_step(self):
        x, y = self.batches[self.i % len(self.batches)]
        self.i += 1
        self.net.train_step(x, y)

    def torch_step(self):
        x, y = self.t_batches[self.t_i % len(self.t_batches)]
        self.t_i += 1
        self.t_opt.zero_grad()
        loss = self.torch.nn.functional.cross_entropy(self.t_net(x), y)
        loss.backward()
        self.t_opt.step()


class InferenceNet:
    """Forward pass only (VGG16 at 224x224, batch 1); packed: every kernel packed once
    beforehand (ops.PackedKernel, as Model.predict does from its second batch on)."""

    def __init__(self, torch, spec, weights, image_shape, batch=1, seed=0, algorithm="auto", packed=False):
        rng = np.random.default_rng(seed)
        h, w, c = image_shape
        self.fwd_flops = spec_flops(spec, h, w) * batch
        self.x = rng.random((batch, h, w, c), dtype=np.float32)
        net_weights = [(ops.PackedKernel(k, copy=False), b) for k, b in weights] if packed else weights
        self.net = OpsNet(spec, net_weights, algorithm=algorithm)
        self.torch = torch
        if torch is not None:
            self.t_net = torch_net(torch, spec, weights).eval()
            self.t_x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(self.x, -1, 1)))

    def pycnn_step(self):
        self.net.forward(self.x)

    def torch_step(self):
        with self.torch.no_grad():
            self.t_net(self.t_x)


# ------------------------------------------ Winograd, the explicit option (4.1)

# Forward rows of the suite's VGG16 3x3 layers by conv2d(algorithm=...), against the
# same PyTorch forward as the layer's "fwd" row.  Their pass names are not in
# CONV_PASSES, so the summary's geometric means compare the default path only.
WINOGRAD_CONV_IDS = ("vgg16.conv1_1", "vgg16.conv1_2", "vgg16.conv3_2", "vgg16.conv5_2")
WINOGRAD_PASSES = {"fwd.winograd_2x2": 2, "fwd.winograd_4x4": 4}
# net.vgg16.infer.winograd: the algorithm, on layers with at least this many input channels.
WINOGRAD_NET_ALGORITHM = "winograd_4x4"
WINOGRAD_MIN_CHANNELS = 16


def winograd_forward(case, tile):
    """The Winograd forward of a ConvCase's layer, with its own preallocated workspace."""
    ws = _workspace(_engine.conv2d_winograd_workspace_size(case.conv_x.shape, case.kernel.shape, False,
                                                           case.geometry, tile))
    return lambda: _engine.conv2d_winograd_forward(case.conv_x, case.kernel, case.bias, case.conv_y, ws,
                                                   case.geometry, tile)
