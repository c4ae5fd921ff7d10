"""Assertions for graders and tests: shapes, parameter counts, layer types, numbers, gradients,
and executing notebooks.

    from pycnn.testing import assert_param_count, assert_layer_types, run_notebook
    nb = run_notebook("notebooks/Tutorial_1_solution.ipynb", timeout=600)
    assert_param_count(nb.model, 61_706)
    assert_layer_types(nb.model, [Conv2D, AveragePooling2D, Conv2D, AveragePooling2D, Flatten, Dense, Dense, Dense])

Every assertion raises ``AssertionError`` with a message a student can act on.
"""
from pycnn.testing.assertions import (assert_allclose, assert_layer_types, assert_output_shape,
                                      assert_param_count, check_gradients)
from pycnn.testing.notebook import NotebookNamespace, run_notebook

__all__ = ["assert_output_shape", "assert_param_count", "assert_layer_types", "assert_allclose",
           "check_gradients", "run_notebook", "NotebookNamespace"]
