"""``import pycnn`` stays light, and every public name still resolves.

The heavy parts (datasets' download stack, applications, preprocessing, matplotlib, numpy.random)
load only when first used; these tests check which modules a fresh interpreter has loaded,
never how long that took.
"""
import importlib
import os
import subprocess
import sys

import pytest

import pycnn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(pycnn.__file__)))

# Loaded by none of the imports below in a fresh interpreter.
HEAVY = ["matplotlib", "urllib.request", "ssl", "http.client", "csv", "hashlib", "json", "numpy.random",
         "pycnn.applications", "pycnn.preprocessing.image", "pycnn.visualize", "pycnn.compat"]

# Every public package or module and its documented names (their __all__).
PUBLIC_MODULES = [
    "pycnn", "pycnn.ops", "pycnn.layers", "pycnn.models", "pycnn.losses", "pycnn.optimizers", "pycnn.metrics",
    "pycnn.callbacks", "pycnn.utils", "pycnn.datasets", "pycnn.filters", "pycnn.geometry", "pycnn.progbar",
    "pycnn.applications", "pycnn.preprocessing", "pycnn.preprocessing.image", "pycnn.testing",
    "pycnn.compat.tensorflow", "pycnn.compat.tensorflow_datasets", "pycnn.visualize",
]


def _modules_after(code):
    """sys.modules of a fresh interpreter (no pytest plugins, this checkout first) after ``code``."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    script = code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"   # json would count itself
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.splitlines()[-1].split())


def test_import_pycnn_loads_only_the_engine_and_ops():
    loaded = _modules_after("import pycnn")
    assert "pycnn.ops" in loaded
    heavy = [name for name in HEAVY + ["pycnn.layers", "pycnn.models", "pycnn.datasets",
                                       "pycnn.datasets._download"] if name in loaded]
    assert heavy == []


def test_model_building_imports_skip_downloads_and_plotting():
    loaded = _modules_after("from pycnn.models import Sequential\n"
                            "from pycnn.layers import Conv2D, AveragePooling2D, Flatten, Dense\n"
                            "import pycnn.datasets.mnist, pycnn.losses, pycnn.optimizers, pycnn.callbacks")
    assert [name for name in HEAVY if name in loaded] == []


def test_lazy_attribute_loads_its_submodule_on_first_use():
    loaded = _modules_after("import pycnn\nassert pycnn.datasets.mnist.load_data")
    assert "pycnn.datasets.mnist" in loaded and "pycnn.applications" not in loaded


def test_every_module_imports_when_it_is_the_first_pycnn_import():
    """With the sub-packages lazy, the import order is the script's: each module must import on its
    own (a cycle such as preprocessing.layers <-> layers broke only when imported first)."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import pycnn\n"
        "names = sorted(m.name for m in pkgutil.walk_packages(pycnn.__path__, 'pycnn.'))\n"
        "failures = []\n"
        "for name in names:\n"
        "    for key in [k for k in sys.modules if k == 'pycnn' or k.startswith('pycnn.')]:\n"
        "        del sys.modules[key]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failures.append(f'{name}: {type(exc).__name__}: {exc}')\n"
        "assert len(names) > 50, names\n"
        "assert not failures, failures")
    _modules_after(code)


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_resolves(module_name):
    module = importlib.import_module(module_name)
    names = module.__all__
    assert names, module_name
    missing = [name for name in names if not hasattr(module, name)]
    assert missing == []
    for name in names:   # the from-import form goes through the same module __getattr__
        namespace = {}
        exec(f"from {module_name} import {name}", namespace)
        assert namespace[name] is getattr(module, name)


def test_lazy_names_are_the_defining_objects_and_listed_by_dir():
    from pycnn.imaging import correlate2d
    from pycnn.layers import Input
    from pycnn.models import Model, Sequential, load_model
    assert (pycnn.Input, pycnn.Model, pycnn.Sequential, pycnn.load_model, pycnn.correlate2d) == \
        (Input, Model, Sequential, load_model, correlate2d)
    assert pycnn.layers is sys.modules["pycnn.layers"]
    assert pycnn.applications.VGG16 is importlib.import_module("pycnn.applications.vgg").VGG16
    assert pycnn.compat is sys.modules["pycnn.compat"]
    listed = dir(pycnn)
    for name in pycnn.__all__ + ["applications", "compat", "preprocessing", "visualize", "testing"]:
        assert name in listed


def test_unknown_attribute_is_an_attribute_error():
    assert not hasattr(pycnn, "no_such_thing")
    with pytest.raises(AttributeError, match="no_such_thing"):
        pycnn.no_such_thing
    with pytest.raises(ImportError):
        exec("from pycnn import no_such_thing", {})


def test_pytest_plugin_entry_point_imports():
    plugin = importlib.import_module("pycnn.testing.pytest_plugin")
    assert callable(plugin.pytest_addoption) and hasattr(plugin, "notebook")


def test_first_random_draw_without_a_seed_still_works():
    loaded = _modules_after("import pycnn.backend as b\n"
                            "g = b.get_rng()\nassert g is b.get_rng()\nassert 0 <= g.random() < 1")
    assert "numpy.random" in loaded
