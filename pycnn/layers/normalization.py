"""BatchNormalization with Keras 3 semantics.

Training (``training=True`` and the layer trainable): normalise with the batch mean and
biased variance over every axis except ``axis``, and move the moving statistics by
``moving = moving * momentum + batch * (1 - momentum)``. Otherwise (inference, or a
frozen layer with ``trainable=False`` even when ``training=True``): use the moving stats.
"""
import numpy as np

from pycnn import initializers, ops, regularizers
from pycnn.layers import _utils as U
from pycnn.layers.base import Layer


class BatchNormalization(Layer):
    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 synchronized=False, **kwargs):
        super().__init__(**kwargs)
        where = f"BatchNormalization '{self.name}'"
        axes = [axis] if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) else axis
        if not isinstance(axes, (list, tuple)) or not axes or not all(
                isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
            raise ValueError(f"{where}: axis must be an int or a list of ints; Received: axis={axis!r}")
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float, np.integer, np.floating)) \
                or not 0 <= momentum <= 1:
            raise ValueError(f"{where}: momentum must be a number in [0, 1]; Received: momentum={momentum!r}")
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.integer, np.floating)) \
                or not epsilon > 0:
            raise ValueError(f"{where}: epsilon must be a number > 0; Received: epsilon={epsilon!r}")
        if synchronized:
            raise ValueError(f"{where}: synchronized must be False (pycnn trains on one device); "
                             f"Received: synchronized={synchronized!r}")
        U.check_unsupported(where, beta_constraint=beta_constraint, gamma_constraint=gamma_constraint)
        self.axis = int(axes[0]) if len(axes) == 1 else [int(a) for a in axes]
        self._axes = [int(a) for a in axes]
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None
        self._cache = None

    def _resolved_axes(self, ndim):
        return sorted(a % ndim for a in self._axes)

    def _check_input_shape(self, input_shape):
        where = f"BatchNormalization '{self.name}'"
        if isinstance(input_shape, list):
            raise ValueError(f"{where}: expects a single input; got {len(input_shape)} inputs")
        ndim = len(input_shape)
        bad = [a for a in self._axes if not -ndim <= a < ndim or a % ndim == 0]
        if ndim < 2 or bad:
            raise ValueError(f"{where}: axis must index a non-batch dimension of the input; got axis={self.axis} "
                             f"for input shape {input_shape}")
        axes = self._resolved_axes(ndim)
        if any(input_shape[a] is None for a in axes):
            raise ValueError(f"{where}: the normalised axis must have a known size; got axis={self.axis} for input "
                             f"shape {input_shape}")
        if self.built:
            got = tuple(input_shape[a] for a in axes)
            if len(axes) != len(self._param_shape) or got != self._param_shape:
                raise ValueError(f"{where}: input must have {self._param_shape} features on axis {self.axis} "
                                 f"(built for input {self.input_shape}); got {got} in shape {input_shape}")

    def build(self, input_shape):
        axes = self._resolved_axes(len(input_shape))
        self._ndim = len(input_shape)
        self._param_shape = tuple(input_shape[a] for a in axes)
        if self.scale:
            self.gamma = self.add_weight("gamma", self._param_shape, self.gamma_initializer,
                                         regularizer=self.gamma_regularizer)
        if self.center:
            self.beta = self.add_weight("beta", self._param_shape, self.beta_initializer,
                                        regularizer=self.beta_regularizer)
        self.moving_mean = self.add_weight("moving_mean", self._param_shape, self.moving_mean_initializer,
                                           trainable=False)
        self.moving_variance = self.add_weight("moving_variance", self._param_shape,
                                               self.moving_variance_initializer, trainable=False)

    def call(self, inputs, training=False):
        x = inputs
        self._last_inputs = inputs
        use_batch_stats = bool(training) and self.trainable and x.size > 0
        # Copies: backward must see the values this call used, whatever happens to the weights in between.
        gamma = None if self.gamma is None else self.gamma.value.copy()
        beta = None if self.beta is None else self.beta.value
        if use_batch_stats:
            y, mean, var = ops.batch_norm(x, gamma=gamma, beta=beta, epsilon=self.epsilon, axis=self._axes)
            m = self.momentum
            for moving, batch in ((self.moving_mean.value, mean), (self.moving_variance.value, var)):
                moving *= m  # in place: the Variable keeps its array
                moving += batch * (1 - m)
        else:
            mean, var = self.moving_mean.value.copy(), self.moving_variance.value.copy()
            y, _, _ = ops.batch_norm(x, mean, var, gamma, beta, epsilon=self.epsilon, axis=self._axes)
        self._cache = (x, mean, var, gamma, use_batch_stats)
        return y

    def backward(self, grad):
        self._require_call()
        x, mean, var, gamma, use_batch_stats = self._cache
        beta = None if self.beta is None else self.beta.value
        dx, dgamma, dbeta = ops.batch_norm_backward(self._cast(grad), x, mean, var, gamma, beta,
                                                    epsilon=self.epsilon, axis=self._axes,
                                                    batch_stats=use_batch_stats)
        if dbeta is not None:
            self._set_grad(self.beta, dbeta)
        if dgamma is not None:
            self._set_grad(self.gamma, dgamma)
        return dx

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({
            "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon, "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer),
            "beta_regularizer": U.serialize_regularizer(self.beta_regularizer),
            "gamma_regularizer": U.serialize_regularizer(self.gamma_regularizer),
        })
        return config
