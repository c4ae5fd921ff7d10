"""pycnn.geometry: conv_output_size and receptive_field against the lecture, published values and brute force."""

import doctest
import itertools
import types

import numpy as np
import pytest

from pycnn import geometry
from pycnn.geometry import FieldStep, ReceptiveField, conv_output_size, receptive_field


def count_window_positions(n, k, s, d, before, after):
    """Brute force: slide the dilated window over the padded input and count where it fits."""
    padded = n + before + after
    span = d * (k - 1) + 1
    return sum(1 for start in range(0, padded, s) if start + span <= padded)


# ------------------------------------------------------------------ conv_output_size


def test_lecture_numbers():
    assert conv_output_size(227, 11, strides=4, padding=0) == 55  # AlexNet conv1
    assert conv_output_size(5, 3, strides=2, padding=1) == 3
    assert conv_output_size(32, 5, padding="valid") == 28
    assert conv_output_size(32, 5) == 28
    assert conv_output_size(7, 3) == 5


@pytest.mark.parametrize("n,k,s,out", [(28, 5, 1, 28), (28, 4, 1, 28), (28, 3, 2, 14), (32, 3, 2, 16),
                                       (7, 3, 2, 4), (64, 4, 2, 32), (5, 7, 1, 5), (1, 3, 3, 1)])
def test_keras_same_is_ceil_n_over_s(n, k, s, out):
    assert conv_output_size(n, k, strides=s, padding="same") == out
    assert conv_output_size(n, k, strides=s, padding="SAME") == out  # Keras lower-cases padding too
    assert conv_output_size(n, k, strides=s, padding="same", dilation_rate=3) == out


def test_dilation_uses_the_effective_kernel():
    assert conv_output_size(10, 3, dilation_rate=2) == 6  # k_eff = 5
    assert conv_output_size(32, 3, dilation_rate=4, padding=4) == 32  # k_eff = 9, padding 4 keeps the size
    assert conv_output_size(16, 2, strides=2, dilation_rate=3) == 7  # k_eff = 4 -> floor(12 / 2) + 1


def test_matches_brute_force_counting():
    for n, k, s, d, p in itertools.product([1, 2, 5, 8, 13], [1, 2, 3, 5], [1, 2, 3], [1, 2], [0, 1, 2]):
        expected = count_window_positions(n, k, s, d, p, p)
        if expected <= 0:
            with pytest.raises(ValueError):
                conv_output_size(n, k, strides=s, padding=p, dilation_rate=d)
        else:
            assert conv_output_size(n, k, strides=s, padding=p, dilation_rate=d) == expected, (n, k, s, d, p)


def test_same_matches_brute_force_with_keras_padding_split():
    for n, k, s, d in itertools.product([1, 4, 7, 10], [1, 2, 3, 4], [1, 2, 3], [1, 2]):
        span = d * (k - 1) + 1
        total = max((-(-n // s) - 1) * s + span - n, 0)
        expected = count_window_positions(n, k, s, d, total // 2, total - total // 2)
        assert conv_output_size(n, k, strides=s, padding="same", dilation_rate=d) == expected


def test_tuples_give_one_size_per_axis():
    assert conv_output_size((28, 28), 5, padding="same") == (28, 28)
    assert conv_output_size((32, 24), (5, 3)) == (28, 22)
    assert conv_output_size((7, 8), (3, 2), strides=2, padding=((0, 1), (1, 1))) == (3, 5)
    assert conv_output_size(10, 3, padding=(1, 0)) == (10, 8)  # a padding tuple means per-axis
    assert conv_output_size(10, 3, padding=((0, 2),)) == (10,)  # explicit (before, after), 1-D
    assert conv_output_size([9, 9], [3, 3], strides=[2, 2]) == (4, 4)
    assert conv_output_size(np.int64(227), np.int32(11), strides=np.int64(4)) == 55


@pytest.mark.parametrize("kwargs,exc,fragments", [
    (dict(n=3, kernel_size=5), ValueError,
     ["conv_output_size: output size must be positive", "n=3", "kernel_size=5", "= -1", "larger than the padded"]),
    (dict(n=10, kernel_size=3, dilation_rate=5), ValueError, ["effective kernel 11"]),
    (dict(n=(28, 3), kernel_size=5), ValueError, ["on axis 1", "n=3"]),
    (dict(n=10, kernel_size=3, strides=0), ValueError, ["strides must be positive; got 0"]),
    (dict(n=0, kernel_size=3), ValueError, ["n must be positive; got 0"]),
    (dict(n=10, kernel_size=0), ValueError, ["kernel_size must be positive; got 0"]),
    (dict(n=10, kernel_size=3, padding=-1), ValueError, ["padding must be non-negative; got -1"]),
    (dict(n=10, kernel_size=3, padding="full"), ValueError, ["padding must be an int, a tuple or one of", "'full'"]),
    (dict(n=10.0, kernel_size=3), TypeError, ["n must be an integer; got 10.0 (float)"]),
    (dict(n=10, kernel_size=True), TypeError, ["kernel_size must be an integer"]),
    (dict(n=(10, 10), kernel_size=(3, 3, 3)), ValueError, ["one entry per axis"]),
    (dict(n=10, kernel_size=3, padding=((1, 2, 3),)), ValueError, ["(before, after) pair"]),
    (dict(n=10, kernel_size=3, padding="causal"), ValueError, ["'causal'"]),
])
def test_errors(kwargs, exc, fragments):
    with pytest.raises(exc) as info:
        conv_output_size(**kwargs)
    for fragment in fragments:
        assert fragment in str(info.value)


# ------------------------------------------------------------------ receptive_field


def brute_force_field(layers, before_pads=None):
    """Input indices that output unit 0 of the last layer depends on, walked back layer by layer.

    layers: list of (k, s, d); before_pads: zeros added before the input of each layer.
    Returns (size, jump, start) with start the centre of the index range (padding included).
    """
    before_pads = before_pads or [0] * len(layers)
    units = {0}
    for (k, s, d), before in zip(reversed(layers), reversed(before_pads)):
        units = {u * s - before + i * d for u in units for i in range(k)}
    jump = int(np.prod([s for _, s, _ in layers]))
    return max(units) - min(units) + 1, jump, (max(units) + min(units)) / 2


def test_stacked_3x3_convs():
    assert receptive_field(3).size == 3
    assert receptive_field(3, 3).size == 5
    assert receptive_field(3, 3, 3).size == 7
    assert receptive_field((3, 1), (3, 1), (3, 1)).size == 7
    rf = receptive_field(5)
    assert rf == ReceptiveField(size=5, jump=1, start=2.0, steps=rf.steps)
    assert isinstance(rf.steps[0], FieldStep)


def test_vgg16_published_values():
    # VGG16: conv3x3 blocks of 2, 2, 3, 3, 3 convs, each block followed by a 2x2/2 max pool.
    # Published receptive fields: 196 at conv5_3 and 212 at pool5 (e.g. Araujo et al., Distill 2019).
    pool = {"pool_size": 2}
    conv = {"kernel_size": 3, "padding": "same"}
    stack = [conv] * 2 + [pool] + [conv] * 2 + [pool] + ([conv] * 3 + [pool]) * 3
    rf = receptive_field(*stack, input_size=224)
    assert rf.steps[-2].size == 196
    assert rf.size == 212 and rf.jump == 32
    assert rf.steps[-1].output_size == 7
    assert [step.size for step in rf.steps[:3]] == [3, 5, 6]


def test_alexnet_published_values():
    # AlexNet (one-tower): receptive field 195 at pool5 (Araujo et al.), output 6x6 on 227 inputs.
    stack = [(11, 4), {"pool_size": 3, "strides": 2}, {"kernel_size": 5, "padding": 2},
             {"pool_size": 3, "strides": 2}] + [{"kernel_size": 3, "padding": 1}] * 3 + \
            [{"pool_size": 3, "strides": 2}]
    rf = receptive_field(*stack, input_size=227)
    assert rf.size == 195 and rf.jump == 32
    assert [step.output_size for step in rf.steps] == [55, 27, 27, 13, 13, 13, 13, 6]


def test_dilated_context_module():
    # Yu & Koltun 2016: 3x3 convs with dilation 1, 2, 4 give 3x3, 7x7, 15x15 receptive fields.
    rf = receptive_field((3, 1, 1), (3, 1, 2), (3, 1, 4))
    assert [step.size for step in rf.steps] == [3, 7, 15]
    assert receptive_field({"kernel_size": 3, "dilation_rate": 2}).size == 5


def test_matches_brute_force_on_random_stacks():
    rng = np.random.default_rng(0)
    for _ in range(60):
        depth = rng.integers(1, 6)
        layers = [(int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(1, 3))) for _ in range(depth)]
        pads = [int(rng.integers(0, 3)) for _ in range(depth)]
        rf = receptive_field(*[{"kernel_size": k, "strides": s, "dilation_rate": d, "padding": p}
                               for (k, s, d), p in zip(layers, pads)])
        for i in range(depth):
            size, jump, start = brute_force_field(layers[:i + 1], pads[:i + 1])
            step = rf.steps[i]
            assert (step.size, step.jump, step.start) == (size, jump, start), (layers, pads, i)


def test_same_padding_offsets_match_brute_force():
    # Keras "same" with stride 2 on an even input puts no padding before the 3x3 window (0/1 split).
    layers = [(3, 2, 1), (3, 1, 1), (2, 2, 1)]
    rf = receptive_field(*[{"kernel_size": k, "strides": s, "padding": "same"} for k, s, _ in layers],
                         input_size=32)
    assert [step.output_size for step in rf.steps] == [16, 16, 8]
    # Keras split per layer: n=32,k=3,s=2 -> 0 before; n=16,k=3,s=1 -> 1; n=16,k=2,s=2 -> 0.
    assert (rf.size, rf.jump, rf.start) == brute_force_field(layers, [0, 1, 0])


def test_causal_padding_looks_only_back():
    rf = receptive_field({"kernel_size": 2, "dilation_rate": 1, "padding": "causal"},
                         {"kernel_size": 2, "dilation_rate": 2, "padding": "causal"},
                         {"kernel_size": 2, "dilation_rate": 4, "padding": "causal"}, input_size=16)
    assert rf.size == 8  # WaveNet: dilations 1, 2, 4 with k=2 see 8 samples
    assert rf.start == -3.5  # the field of output 0 is samples -7..0 (all but sample 0 are padding)
    assert rf.steps[-1].output_size == 16


def test_two_dimensional_layers_and_objects():
    conv = types.SimpleNamespace(kernel_size=(3, 5), strides=(1, 1), dilation_rate=(1, 1), padding="same",
                                 name="conv2d")
    pool = types.SimpleNamespace(pool_size=(2, 2), strides=None, padding="valid", name="max_pooling2d")
    rf = receptive_field(conv, pool, conv, input_size=(28, 28))
    # Rows: 3, then +1 for the pool (jump 2), then +2*2 = 8; columns: 5, 6, 6 + 4*2 = 14.
    assert rf.size == (8, 14) and rf.jump == (2, 2)
    assert rf.size == (receptive_field(3, (2, 2), 3).size, receptive_field(5, (2, 2), 5).size)
    assert [step.name for step in rf.steps] == ["conv2d", "max_pooling2d", "conv2d"]
    assert [step.output_size for step in rf.steps] == [(28, 28), (14, 14), (14, 14)]
    assert rf.steps[1].strides == (2, 2)  # strides None means the pool size
    assert receptive_field(((3, 3), (2, 2))).size == (3, 3)


def test_pycnn_layers_if_available():
    from pycnn import layers
    stack = [layers.Conv2D(8, 3, padding="same"), layers.Conv2D(8, 3, padding="same"), layers.MaxPooling2D(2)]
    rf = receptive_field(*stack, input_size=(32, 32))
    assert rf.size == (6, 6) and rf.jump == (2, 2)
    assert rf.steps[-1].output_size == (16, 16)
    if hasattr(layers, "Conv2DTranspose"):
        with pytest.raises(TypeError, match="transposed convolution"):
            receptive_field(layers.Conv2DTranspose(4, 2, strides=2))
    if hasattr(layers, "Dense"):
        with pytest.raises(TypeError, match="must have a kernel_size or pool_size; got Dense"):
            receptive_field(layers.Dense(4))


class Conv2DTranspose:
    kernel_size = (2, 2)
    strides = (2, 2)


@pytest.mark.parametrize("layers,kwargs,exc,fragment", [
    (([3, 3],), {}, TypeError, "layers must be passed as separate arguments"),
    (({"kernel_size": 3, "stride": 2},), {}, ValueError, "got unknown ['stride']"),
    (({"kernel_size": 3, "pool_size": 2},), {}, ValueError, "exactly one of kernel_size or pool_size; got both"),
    (({"strides": 2},), {}, ValueError, "got neither"),
    ((object(),), {}, TypeError, "must have a kernel_size or pool_size; got object"),
    ((Conv2DTranspose(),), {}, TypeError, "transposed convolution"),
    (((3, 1, 1, 1),), {}, ValueError, "(kernel_size, strides[, dilation_rate])"),
    (({"kernel_size": 3, "strides": 2, "padding": "same"},), {}, ValueError, "input_size must be given"),
    ((0,), {}, ValueError, "kernel size must be positive; got 0"),
    ((True,), {}, TypeError, "layers[0] must be an int, tuple, dict or layer object"),
    ((5, 5), {"input_size": 6}, ValueError, "layers[1] (layer 1): output size must be positive"),
    ((((3, 3), 1), ((3, 3, 3), 1)), {}, ValueError, "must have 3 entries"),
])
def test_receptive_field_errors(layers, kwargs, exc, fragment):
    with pytest.raises(exc) as info:
        receptive_field(*layers, **kwargs)
    assert str(info.value).startswith("receptive_field: ")
    assert fragment in str(info.value)


def test_docstring_examples():
    result = doctest.testmod(geometry, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
