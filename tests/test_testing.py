"""pycnn.testing: assertions pass on correct input and fail with readable messages; gradient
checks catch a wrong backward; run_notebook returns the variables and cell errors."""
import numpy as np
import pytest

from pycnn.layers import AveragePooling2D, Conv2D, Dense, Flatten, Input
from pycnn.models import Sequential
from pycnn.testing import (assert_allclose, assert_layer_types, assert_output_shape, assert_param_count,
                           check_gradients, run_notebook)


def small_model():
    return Sequential([Input((8, 8, 1)), Conv2D(2, 3), AveragePooling2D(2), Flatten(), Dense(3)])


def test_assert_param_count_lists_layers_when_wrong():
    model = small_model()
    # conv: 3*3*1*2 + 2 = 20; dense: (3*3*2)*3 + 3 = 57 (counted by hand)
    assert_param_count(model, 77, trainable=77)
    with pytest.raises(AssertionError) as info:
        assert_param_count(model, 80)
    message = str(info.value)
    assert "77 parameters; expected 80 (difference -3)" in message
    assert "Conv2D" in message and "Dense" in message and "57" in message


def test_assert_layer_types_names_the_first_difference():
    model = small_model()
    assert_layer_types(model, [Conv2D, AveragePooling2D, Flatten, Dense])
    assert_layer_types(model, ["Conv2D", "Dense"], exact=False)
    with pytest.raises(AssertionError, match="layer 1 is AveragePooling2D but should be MaxPooling2D"):
        assert_layer_types(model, [Conv2D, "MaxPooling2D", Flatten, Dense])
    with pytest.raises(AssertionError, match="missing"):
        assert_layer_types(model, [Conv2D, AveragePooling2D, Flatten, Dense, Dense])
    with pytest.raises(AssertionError, match="Dropout is missing"):
        assert_layer_types(model, ["Conv2D", "Dropout"], exact=False)


def test_assert_output_shape_with_and_without_batch():
    model = small_model()
    assert_output_shape(model, (None, 3))
    assert_output_shape(model, (3,))
    assert_output_shape(model.layers[0], (6, 6, 2))
    assert_output_shape(Conv2D(4, 3, padding="same"), (None, 5, 5, 4), input_shape=(None, 5, 5, 1))
    assert_output_shape(np.zeros((2, 7)), (2, 7))
    with pytest.raises(AssertionError, match=r"is \(None, 6, 6, 2\); expected \(6, 6, 3\); axes \[2\] differ"):
        assert_output_shape(model.layers[0], (6, 6, 3))


def test_assert_allclose_reports_count_largest_error_and_indices():
    assert_allclose([1.0, 2.0], [1.0, 2.0 + 1e-9], rtol=1e-6)
    with pytest.raises(AssertionError) as info:
        assert_allclose(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 2.5], [3.0, 4.0]]), err_msg="probs")
    message = str(info.value)
    assert message.startswith("probs: 1 of 4 entries differ")
    assert "largest absolute error: 0.5" in message and "at (0, 1): got" in message
    with pytest.raises(AssertionError, match=r"shapes differ: got \(2,\), expected \(3,\)"):
        assert_allclose(np.zeros(2), np.zeros(3))


class WrongDense(Dense):
    """Dense whose input gradient is off by a factor of two (the bug a gradient check must catch)."""

    def backward(self, grad):
        return 2.0 * super().backward(grad)


def test_check_gradients_passes_on_layers_and_catches_a_wrong_backward():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 5, 2))
    assert check_gradients(Conv2D(3, 3, activation="tanh"), x)
    assert check_gradients(Dense(4, activation="sigmoid"), rng.standard_normal((3, 5)))
    with pytest.raises(AssertionError, match="gradient w.r.t. input"):
        check_gradients(WrongDense(4), rng.standard_normal((3, 5)))


def test_check_gradients_on_a_function():
    x = np.linspace(-1, 1, 7)
    assert check_gradients(lambda v: np.sin(v) * v, x, grad=lambda v, dy: (np.cos(v) * v + np.sin(v)) * dy)
    with pytest.raises(AssertionError):
        check_gradients(lambda v: np.sin(v) * v, x, grad=lambda v, dy: np.cos(v) * dy)
    with pytest.raises(TypeError, match="grad must be given"):
        check_gradients(np.sin, x)


def test_run_notebook_returns_variables_and_errors(tmp_path):
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# title"),
                nbformat.v4.new_code_cell("import numpy as np\nvalues = np.arange(4) * 2\nname = 'x'"),
                nbformat.v4.new_code_cell("model = ?"),
                nbformat.v4.new_code_cell("def f():\n    return 1\nresult = 1 / 0")]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, str(path))
    ns = run_notebook(path, timeout=60, allow_errors=True)
    assert ns.values.tolist() == [0, 2, 4, 6] and ns.name == "x"
    assert [(e[0], e[1]) for e in ns.errors] == [(2, "SyntaxError"), (3, "ZeroDivisionError")]
    with pytest.raises(AttributeError, match="no variable 'model'.*see cell 2: SyntaxError.*replace every"):
        ns.model
    with pytest.raises(AttributeError, match="see cell 3: ZeroDivisionError"):
        ns.result
    from nbclient.exceptions import CellExecutionError
    with pytest.raises(CellExecutionError):
        run_notebook(path, timeout=60)
    with pytest.raises(FileNotFoundError, match="existing .ipynb"):
        run_notebook(tmp_path / "missing.ipynb")
