"""Model files: round trips, the documented format, and every kind of damage giving ModelFileError."""
import hashlib
import json
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pycnn
import pycnn.utils
from pycnn import backend
from pycnn.errors import ModelFileError
from pycnn.layers import (Add, BatchNormalization, Conv2D, Dense, Flatten, GlobalAveragePooling2D, Input,
                          MaxPooling2D)
from pycnn.models import Model, Sequential, load_model
from pycnn.models import saving


@pytest.fixture(autouse=True)
def fresh():
    backend.clear_session()
    pycnn.utils.set_random_seed(0)


def small_cnn():
    model = Sequential([Conv2D(3, 3, activation="relu", input_shape=(6, 6, 1)), BatchNormalization(),
                        MaxPooling2D(), Flatten(), Dense(4, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data(n=16):
    rng = np.random.default_rng(0)
    return rng.random((n, 6, 6, 1)).astype(np.float32), rng.integers(0, 4, n)


def test_sequential_round_trip_gives_identical_predictions_and_resumes(tmp_path):
    model = small_cnn()
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "model.pycnn"
    model.save(path)
    loaded = load_model(path)
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.summary_string() == model.summary_string()        # optimizer state restored too
    # training continues identically from the restored optimizer state
    pycnn.utils.set_random_seed(1)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    pycnn.utils.set_random_seed(1)
    loaded.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_functional_round_trip(tmp_path):
    inp = Input((6, 6, 2))
    a = Conv2D(2, 3, padding="same")(inp)
    out = Dense(3)(GlobalAveragePooling2D()(Add()([a, inp])))
    model = Model(inp, out, name="res")
    path = tmp_path / "res.keras"                      # any extension; the content is pycnn's format
    model.save(path)
    loaded = load_model(path)
    assert loaded.name == "res" and isinstance(loaded, Model)
    x = np.random.default_rng(1).random((3, 6, 6, 2)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.summary_string() == model.summary_string()


def test_nested_frozen_model_round_trip(tmp_path):
    base = Sequential([Conv2D(2, 3, input_shape=(6, 6, 1)), Flatten()], name="base")
    base.trainable = False
    model = Sequential([base, Dense(2)])
    model.save(tmp_path / "nested.pycnn")
    loaded = load_model(tmp_path / "nested.pycnn")
    assert not loaded.get_layer("base").trainable and loaded.layers[1].trainable
    x = np.ones((2, 6, 6, 1), np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_save_weights_load_weights_and_mismatch_names_layer_and_shapes(tmp_path):
    model = small_cnn()
    path = tmp_path / "w.weights.h5"
    model.save_weights(path)
    other = small_cnn()
    other.load_weights(path)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    wider = Sequential([Conv2D(5, 3, activation="relu", input_shape=(6, 6, 1)), BatchNormalization(),
                        MaxPooling2D(), Flatten(), Dense(4, activation="softmax")])
    before = [w.copy() for w in wider.get_weights()]
    with pytest.raises(ModelFileError, match=r"layer 'conv2d_2' kernel: file has \(3, 3, 1, 3\) "
                                             r"\('conv2d/kernel'\), model expects \(3, 3, 1, 5\)"):
        wider.load_weights(path)
    for a, b in zip(before, wider.get_weights()):      # nothing was assigned
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ModelFileError, match="weights-only file"):
        load_model(path)
    fewer = Sequential([Dense(2, input_shape=(3,))])
    with pytest.raises(ModelFileError, match="file has 8 weight tensors, model 'sequential_3' expects 2"):
        fewer.load_weights(path)


def test_file_layout_matches_documentation(tmp_path):
    model = Sequential([Dense(2, input_shape=(3,))])
    path = tmp_path / "m.pycnn"
    model.save(path)
    raw = path.read_bytes()
    magic, version, flags, header_len, data_len = struct.unpack("<8sIIQQ", raw[:32])
    assert magic == b"PYCNNMF\x00" and version == 1 and flags == 0
    header = json.loads(raw[32:32 + header_len])
    start = 32 + header_len + (-(32 + header_len) % 8)
    assert start % 8 == 0 and len(raw) == start + data_len + 32
    assert hashlib.sha256(raw[:-32]).digest() == raw[-32:]
    assert header["kind"] == "model" and header["model_config"]["class_name"] == "Sequential"
    kernel = header["tensors"][0]
    assert kernel == {"name": "dense/kernel", "dtype": "float32", "shape": [3, 2], "offsets": [0, 24],
                      "group": "weights"}
    stored = np.frombuffer(raw[start:start + 24], dtype="<f4").reshape(3, 2)
    np.testing.assert_array_equal(stored, model.layers[0].kernel.value)
    assert b"pickle" not in raw and not raw.startswith(b"\x80")


def _small_file(tmp_path):
    model = Sequential([Dense(3, input_shape=(2,)), Dense(1)])
    model.compile("sgd", "mse")
    path = tmp_path / "small.pycnn"
    model.save(path)
    return model, path


def _load_or_error(path, model):
    """Either a ModelFileError or a model whose predictions equal the original's."""
    try:
        loaded = load_model(path)
    except ModelFileError:
        return "error"
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(4, 2)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    return "identical"


def test_every_truncation_is_a_clean_error(tmp_path):
    model, path = _small_file(tmp_path)
    raw = path.read_bytes()
    bad = tmp_path / "bad.pycnn"
    messages = set()
    for size in range(len(raw)):
        bad.write_bytes(raw[:size])
        with pytest.raises(ModelFileError) as info:
            load_model(bad)
        messages.add(str(info.value).split(":")[1].strip()[:9])
    assert "truncated" in messages
    bad.write_bytes(raw[:-10])
    with pytest.raises(ModelFileError, match=r"truncated: header declares \d+ bytes of tensor data, file has"):
        load_model(bad)


def test_random_byte_flips_never_crash(tmp_path):
    model, path = _small_file(tmp_path)
    raw = bytearray(path.read_bytes())
    rng = np.random.default_rng(42)
    bad = tmp_path / "flip.pycnn"
    outcomes = {"error": 0, "identical": 0}
    for _ in range(1000):
        damaged = bytearray(raw)
        pos = int(rng.integers(len(raw)))
        damaged[pos] ^= int(rng.integers(1, 256))
        bad.write_bytes(bytes(damaged))
        outcomes[_load_or_error(bad, model)] += 1
    assert outcomes["error"] == 1000      # the SHA-256 catches every single-byte change


def _forge(path, header_edit=None, data=None, prefix_edit=None):
    """Rewrite a file with a modified header/data and a *valid* checksum, to reach the checks
    behind the digest (what a crafted file would exercise)."""
    raw = path.read_bytes()
    magic, version, flags, header_len, data_len = struct.unpack("<8sIIQQ", raw[:32])
    header = json.loads(raw[32:32 + header_len])
    start = 32 + header_len + (-(32 + header_len) % 8)
    payload = raw[start:start + data_len] if data is None else data
    if header_edit:
        header_edit(header)
    header_bytes = json.dumps(header).encode()
    fields = dict(version=version, flags=flags, header_len=len(header_bytes), data_len=len(payload))
    if prefix_edit:
        prefix_edit(fields)
    body = struct.pack("<8sIIQQ", magic, fields["version"], fields["flags"], fields["header_len"],
                       fields["data_len"]) + header_bytes + b"\x00" * (-(32 + len(header_bytes)) % 8) + payload
    path.write_bytes(body + hashlib.sha256(body).digest())


def _edit_tensor(**changes):
    def edit(header):
        header["tensors"][0].update(changes)
    return edit


@pytest.mark.parametrize("edit,message", [
    (_edit_tensor(dtype="object"), r"tensor 'dense/kernel': dtype must be one of"),
    (_edit_tensor(shape=[2 ** 62, 2 ** 62]), r"shape must be a list of at most 8 dimensions in \[0, 2\*\*40\)"),
    (_edit_tensor(shape=[-2, 3]), "shape must be a list"),
    (_edit_tensor(shape=[4, 2]), r"shape \(4, 2\) of float32 needs 32 bytes but its offsets span 24"),
    (_edit_tensor(offsets=[64, 32]), r"tensor 'dense/kernel': data offsets \[64, 32\] invalid"),
    (_edit_tensor(name="dense/bias"), "tensor 'dense/bias' appears twice"),
    (lambda h: h.update(kind="exe"), "header kind must be 'model' or 'weights'"),
    (lambda h: h.update(tensors={"a": 1}), "header 'tensors' must be a list"),
    (lambda h: h["model_config"].update(class_name="os.system"), "unknown layer class 'os.system'"),
    (lambda h: h["model_config"]["config"]["layers"][0]["config"].update(units=10 ** 12),
     "cannot rebuild the model from its configuration"),
    (lambda h: h["model_config"]["config"]["layers"][0]["config"].update(units="3"),
     "cannot rebuild the model from its configuration"),
    (lambda h: h["model_config"]["config"]["layers"][0]["config"].update(units=5),
     r"layer 'dense' kernel: file has \(2, 3\) \('dense/kernel'\), model expects \(2, 5\)"),
])
def test_crafted_headers_with_valid_checksum_are_rejected(tmp_path, edit, message):
    _, path = _small_file(tmp_path)
    _forge(path, header_edit=edit)
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def test_prefix_checks(tmp_path):
    _, path = _small_file(tmp_path)
    raw = path.read_bytes()
    (tmp_path / "h5.pycnn").write_bytes(b"\x89HDF\r\n\x1a\n" + raw[8:])
    with pytest.raises(ModelFileError, match=r"not a pycnn model/weights file \(bad magic b'\\x89HDF"):
        load_model(tmp_path / "h5.pycnn")
    _forge(path, prefix_edit=lambda f: f.update(version=7))
    with pytest.raises(ModelFileError, match="format version must be 1; got 7"):
        load_model(path)
    _small_file(tmp_path)
    _forge(path, prefix_edit=lambda f: f.update(header_len=1 << 40))
    with pytest.raises(ModelFileError, match="header length must be in"):
        load_model(path)
    (tmp_path / "extra.pycnn").write_bytes(raw + b"junk")
    with pytest.raises(ModelFileError, match="4 unexpected trailing bytes"):
        load_model(tmp_path / "extra.pycnn")
    with pytest.raises(ModelFileError, match="cannot read file"):
        load_model(tmp_path / "missing.pycnn")


def test_non_finite_weights_warn(tmp_path):
    model = Sequential([Dense(2, input_shape=(2,))])
    model.layers[0].kernel.value[0, 0] = np.nan
    path = tmp_path / "nan.pycnn"
    model.save_weights(path)
    with pytest.warns(RuntimeWarning, match="1 non-finite values in 'dense/kernel'"):
        model.load_weights(path)
    with pytest.raises(ModelFileError, match="1 non-finite values"):
        model.load_weights(path, strict=True)


def double(t):
    return t * 2


def test_lambda_function_is_stored_by_name_and_resolved_with_custom_objects(tmp_path):
    from pycnn.layers import Lambda
    model = Sequential([Lambda(double, input_shape=(2,)), Dense(1)])
    path = tmp_path / "lam.pycnn"
    model.save(path)
    assert b"def " not in path.read_bytes()                    # code is never stored
    with pytest.raises(ModelFileError, match="cannot rebuild the model.*function must be a callable"):
        load_model(path)
    loaded = load_model(path, custom_objects={"double": double})
    x = np.ones((3, 2), np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_failed_save_keeps_previous_file(tmp_path, monkeypatch):
    model, path = _small_file(tmp_path)
    original = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="could not write '.*missing_dir/m.pycnn'"):
        model.save(tmp_path / "missing_dir" / "m.pycnn")
    monkeypatch.setattr(saving.os, "replace", broken_replace)
    model.layers[0].kernel.value += 1
    with pytest.raises(OSError, match="could not write"):
        model.save(path)
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["small.pycnn"]


def test_process_killed_during_save_leaves_previous_file_loadable(tmp_path):
    """A child process saves a large model over an existing file in a loop and is SIGKILLed."""
    _, path = _small_file(tmp_path)
    script = textwrap.dedent(f"""
        import sys, os
        sys.path.insert(0, {os.getcwd()!r})
        from pycnn.models import Sequential
        from pycnn.layers import Dense
        model = Sequential([Dense(2000, input_shape=(2000,))])
        print("ready", flush=True)
        while True:
            model.save({str(path)!r})
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline().strip() == b"ready"
        import time
        time.sleep(0.8)
    finally:
        child.kill()
        child.wait()
    loaded = load_model(path)          # either the old small model or a complete new one
    assert loaded.built


def test_fuzzed_configurations_with_valid_checksum_never_escape(tmp_path):
    """Replace random leaves of the architecture with junk (re-signing the file): every load is a
    ModelFileError or a working model."""
    model, path = _small_file(tmp_path)
    original = path.read_bytes()
    junk = [None, -1, 0, 2 ** 70, 1e308, "x", "relu", [], [1, -5], {}, {"class_name": "Dense"}, True, 3.5]
    rng = np.random.default_rng(3)

    def leaves(node, trail=()):
        if isinstance(node, dict):
            for k, v in node.items():
                yield from leaves(v, trail + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from leaves(v, trail + (i,))
        else:
            yield trail

    for _ in range(150):
        path.write_bytes(original)

        def edit(header):
            spots = list(leaves(header["model_config"]))
            trail = spots[int(rng.integers(len(spots)))]
            target = header["model_config"]
            for key in trail[:-1]:
                target = target[key]
            target[trail[-1]] = junk[int(rng.integers(len(junk)))]

        _forge(path, header_edit=edit)
        try:
            loaded = load_model(path)
        except ModelFileError:
            continue
        assert loaded.predict(np.zeros((1, 2), np.float32), verbose=0).shape[0] == 1
