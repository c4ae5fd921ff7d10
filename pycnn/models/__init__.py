"""Models: ``Sequential``, the functional ``Model(inputs, outputs)``, and saving/loading.

    model = pycnn.models.Sequential([...])          # or Model(inputs, outputs)
    model.save("lenet.pycnn"); model = pycnn.models.load_model("lenet.pycnn")
"""
from pycnn.models.functional import Functional, model_from_config, model_from_json
from pycnn.models.saving import load_model
from pycnn.models.sequential import Sequential
from pycnn.models.training import Model

__all__ = ["Model", "Sequential", "Functional", "load_model", "model_from_config", "model_from_json"]
