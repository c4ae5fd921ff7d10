"""Pretrained-weight import: Keras HDF5 files and PyTorch / torchvision state dicts.

``load_weights(model, path)`` picks the reader from the file's content:

* HDF5 (needs ``h5py``): the Keras-applications layout (``vgg16_weights_tf_dim_ordering_tf_kernels.h5``:
  root attribute ``layer_names``, one group per layer with attribute ``weight_names``; also inside a
  ``model_weights`` group of a legacy full-model ``.h5``). Keras layouts equal pycnn's (HWIO kernels, (in, out) Dense), so arrays
  are copied as they are. Layers are matched by name; file layers whose names the model does not have
  are paired in order with the model's remaining layers (Keras's unnamed layers, e.g. Xception's
  projection convs), and every pair's shapes are checked before anything is assigned.
* PyTorch state dicts: ``.pt``/``.pth``/``.bin`` through ``torch.load(weights_only=True)`` (needs torch),
  ``.safetensors`` read directly (no dependency). torchvision key names are mapped onto pycnn's layer
  names for ResNet18/34, VGG16/19, AlexNet and GoogLeNet, converting layouts: conv OIHW -> HWIO,
  Linear (out, in) -> Dense (in, out), and the first Linear after a Flatten re-ordered from PyTorch's
  C,H,W flattening to pycnn's H,W,C.
* pycnn model/weights files (``Model.save`` / ``save_weights``).
"""
import json
import os
import re
import struct

import numpy as np

__all__ = ["load_weights", "load_keras_h5", "load_torch_state_dict", "read_safetensors", "torchvision_key_map"]

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_PYCNN_MAGIC = b"PYCNNMF\x00"


def load_weights(model, path):
    """Load the weights file at ``path`` into ``model`` (format detected from the content / suffix)."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(8)
    if head == _HDF5_MAGIC:
        return load_keras_h5(model, path)
    if head == _PYCNN_MAGIC:
        return model.load_weights(path)
    if path.endswith(".safetensors"):
        return load_torch_state_dict(model, read_safetensors(path))
    if path.endswith((".pt", ".pth", ".bin")):
        try:
            import torch
        except ImportError as exc:
            raise ValueError(f"load_weights: reading a PyTorch file must have torch installed; got {path!r} "
                             "(install torch, or convert the state dict to .safetensors)") from exc
        state = torch.load(path, map_location="cpu", weights_only=True)
        return load_torch_state_dict(model, state)
    raise ValueError(f"load_weights: file must be Keras HDF5, a pycnn model/weights file, .safetensors or a "
                     f"PyTorch .pt/.pth state dict; got {path!r} (unrecognised content)")


# ------------------------------------------------------------------------------------------ helpers
def _weighted_layers(model):
    return [layer for layer in model._leaf_layers() if layer.weights]


def _assign_all(pairs, where):
    """Check every (layer, arrays) pair against the layer's variables, then assign them all."""
    checked = []
    for layer, arrays in pairs:
        variables = layer.weights
        if len(arrays) != len(variables):
            raise ValueError(f"{where}: layer '{layer.name}' must receive {len(variables)} arrays "
                             f"({[v.name for v in variables]}); got {len(arrays)}")
        for v, a in zip(variables, arrays):
            if tuple(a.shape) != tuple(v.shape):
                raise ValueError(f"{where}: weight '{v.name}' must have shape {tuple(v.shape)}; got "
                                 f"{tuple(a.shape)} (the file was made for a different architecture or "
                                 "input size)")
        checked.append((layer, arrays))
    for layer, arrays in checked:
        layer.set_weights([np.asarray(a, dtype=v.value.dtype) for a, v in zip(arrays, layer.weights)])


# ------------------------------------------------------------------------------------------ Keras HDF5
def _decode(names):
    return [n.decode("utf8") if isinstance(n, bytes) else str(n) for n in names]


def _read_keras_h5(path):
    """[(layer name, [arrays])] in file order."""
    try:
        import h5py
    except ImportError as exc:
        raise ValueError(f"load_keras_h5: reading HDF5 must have h5py installed; got {path!r} "
                         "(pip install h5py)") from exc
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        if "layer_names" in root.attrs:           # Keras 2 / keras-applications layout
            out = []
            for name in _decode(root.attrs["layer_names"]):
                group = root[name]
                weight_names = _decode(group.attrs.get("weight_names", []))
                if weight_names:
                    out.append((name, [np.array(group[w]) for w in weight_names]))
            return out
    raise ValueError(f"load_keras_h5: file must be in the Keras-applications HDF5 layout (root attribute "
                     f"'layer_names'); got no such attribute in {path!r} (Keras 3 '.weights.h5' files key "
                     "weights by class-based automatic names and are not supported)")


def load_keras_h5(model, path):
    """Load a Keras HDF5 weights file (see the module docstring for the matching rules)."""
    where = "load_keras_h5"
    file_layers = _read_keras_h5(path)
    model_layers = _weighted_layers(model)
    by_name = {layer.name: layer for layer in model_layers}
    pairs, unmatched_file, used = [], [], set()
    for name, arrays in file_layers:
        if name in by_name:
            pairs.append((by_name[name], arrays))
            used.add(name)
        else:
            unmatched_file.append((name, arrays))
    unmatched_model = [layer for layer in model_layers if layer.name not in used]
    if len(unmatched_file) != len(unmatched_model):
        raise ValueError(f"{where}: the file's layers with weights must match the model's; got "
                         f"{len(file_layers)} in the file and {len(model_layers)} in the model "
                         f"(file-only: {[n for n, _ in unmatched_file][:8]}, model-only: "
                         f"{[layer.name for layer in unmatched_model][:8]})")
    pairs += [(layer, arrays) for layer, (_, arrays) in zip(unmatched_model, unmatched_file)]
    _assign_all(pairs, where)


# ------------------------------------------------------------------------------------------ safetensors
_SAFETENSORS_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
                       "I8": "i1", "U8": "u1", "BOOL": "?"}


def read_safetensors(path):
    """{name: array} from a ``.safetensors`` file (8-byte little-endian header length, JSON header with
    dtype / shape / data_offsets per tensor, then the raw little-endian data)."""
    where = "read_safetensors"
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{where}: file must start with an 8-byte header length; got {len(data)} bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"{where}: header length must fit in the file; got {n} with {len(data) - 8} bytes left")
    try:
        header = json.loads(data[8:8 + n].decode("utf8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{where}: header must be UTF-8 JSON; got undecodable bytes ({exc})") from exc
    body = memoryview(data)[8 + n:]
    out = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(spec.get("dtype"))
        if dtype is None:
            raise ValueError(f"{where}: tensor '{name}' dtype must be one of {sorted(_SAFETENSORS_DTYPES)}; "
                             f"got {spec.get('dtype')!r}")
        begin, end = spec["data_offsets"]
        shape = tuple(spec["shape"])
        if not 0 <= begin <= end <= len(body) or end - begin != int(np.prod(shape)) * np.dtype(dtype).itemsize:
            raise ValueError(f"{where}: tensor '{name}' data_offsets must span its {shape} {spec['dtype']} "
                             f"data inside the file; got {[begin, end]}")
        out[name] = np.frombuffer(body[begin:end], dtype=dtype).reshape(shape).astype(
            np.dtype(dtype).newbyteorder("="))
    return out


# ------------------------------------------------------------------------------------------ torchvision
def _names(model):
    return {layer.name for layer in model._leaf_layers()}


def torchvision_key_map(model):
    """{pycnn layer name: torchvision state-dict prefix} for the application models that have a
    torchvision counterpart (ResNet18/34, VGG16/19, AlexNet, GoogLeNet), recognised by layer names."""
    names = _names(model)
    mapping = {}
    if "conv2_block1_1_conv" in names and "conv2_block1_3_conv" not in names:      # basic-block ResNet
        mapping.update({"conv1_conv": "conv1", "conv1_bn": "bn1", "predictions": "fc"})
        for name in names:
            m = re.fullmatch(r"conv(\d)_block(\d+)_(\d)_(conv|bn)", name)
            if m:
                stage, block, k, kind = int(m[1]), int(m[2]), int(m[3]), m[4]
                prefix = f"layer{stage - 1}.{block - 1}."
                if k == 0:
                    mapping[name] = prefix + ("downsample.0" if kind == "conv" else "downsample.1")
                else:
                    mapping[name] = prefix + f"{kind}{k}"
    elif "block1_conv1" in names and "block5_pool" in names:                        # VGG
        index = 0
        for block in range(1, 6):
            i = 1
            while f"block{block}_conv{i}" in names:
                mapping[f"block{block}_conv{i}"] = f"features.{index}"
                index += 2                                                           # Conv2d, ReLU
                i += 1
            index += 1                                                               # MaxPool2d
        mapping.update({"fc1": "classifier.0", "fc2": "classifier.3", "predictions": "classifier.6"})
    elif {"conv1", "conv2", "conv3", "conv4", "conv5", "pool5"} <= names:                # AlexNet
        mapping.update({"conv1": "features.0", "conv2": "features.3", "conv3": "features.6",
                        "conv4": "features.8", "conv5": "features.10", "fc6": "classifier.1",
                        "fc7": "classifier.4", "predictions": "classifier.6"})
    elif "inception3a_concat" in names:                                              # GoogLeNet
        for unit in ("conv1", "conv2", "conv3"):
            mapping[unit + "_conv"] = unit + ".conv"
            mapping[unit + "_bn"] = unit + ".bn"
        branch = {"b1": "branch1", "b2a": "branch2.0", "b2b": "branch2.1", "b3a": "branch3.0",
                  "b3b": "branch3.1", "b4": "branch4.1"}
        for name in names:
            m = re.fullmatch(r"(inception\d[a-e])_(b\w+?)_(conv|bn)", name)
            if m and m[2] in branch:
                mapping[name] = f"{m[1]}.{branch[m[2]]}.{m[3]}"
        mapping["predictions"] = "fc"
    else:
        raise ValueError("load_torch_state_dict: model must be a pycnn.applications ResNet18/34, VGG16/19, "
                         f"AlexNet or GoogLeNet to map torchvision keys; got model '{model.name}' "
                         "(for other models convert the state dict to pycnn names yourself)")
    return {k: v for k, v in mapping.items() if k in names}


def _to_numpy(t):
    if isinstance(t, np.ndarray):
        return t
    return t.detach().cpu().numpy()


def load_torch_state_dict(model, state_dict):
    """Load a torchvision-style state dict ({key: tensor or array}) into a pycnn application model."""
    where = "load_torch_state_dict"
    state = {k: _to_numpy(v) for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    mapping = torchvision_key_map(model)
    layers_by_name = {layer.name: layer for layer in _weighted_layers(model)}
    missing = [name for name in layers_by_name if name not in mapping]
    if missing:
        raise ValueError(f"{where}: every weighted layer must have a torchvision counterpart; got no key for "
                         f"{missing[:8]}")
    pairs, consumed = [], set()
    for name, prefix in mapping.items():
        layer = layers_by_name[name]
        kind = type(layer).__name__

        def take(suffix):
            key = f"{prefix}.{suffix}"
            if key not in state:
                raise ValueError(f"{where}: state dict must contain '{key}' for layer '{name}'; it does not "
                                 f"(keys starting with '{prefix}': "
                                 f"{[k for k in state if k.startswith(prefix + '.')][:6]})")
            consumed.add(key)
            return state[key]

        if kind == "BatchNormalization":
            arrays = [take("weight"), take("bias"), take("running_mean"), take("running_var")]
        elif kind == "Conv2D":
            arrays = [take("weight").transpose(2, 3, 1, 0)]
            if layer.use_bias:
                arrays.append(take("bias"))
        elif kind == "Dense":
            w = take("weight")
            flat_shape = _flatten_source_shape(layer)
            if flat_shape is not None:
                h, wd, c = flat_shape
                # PyTorch flattened (C, H, W); pycnn flattens (H, W, C)
                w = w.reshape(w.shape[0], c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
            arrays = [w.T]
            if layer.use_bias:
                arrays.append(take("bias"))
        else:
            raise ValueError(f"{where}: layer '{name}' of type {kind} must be Conv2D, Dense or "
                             "BatchNormalization to take torchvision weights")
        pairs.append((layer, arrays))
    unused = sorted(set(state) - consumed)
    if unused:
        raise ValueError(f"{where}: every state-dict entry must map onto the model; got unused keys "
                         f"{unused[:8]} (e.g. auxiliary heads, or include_top differs)")
    _assign_all(pairs, where)


def _flatten_source_shape(dense):
    """(H, W, C) of the map a Flatten feeds into ``dense`` (possibly through Dropout), or None."""
    tensor = dense._inbound_nodes[0].input_tensors[0]
    while tensor._keras_history is not None:
        layer, node_index, _ = tensor._keras_history
        parent = layer._inbound_nodes[node_index].input_tensors
        if type(layer).__name__ == "Flatten":
            return tuple(parent[0].shape[1:]) if len(parent[0].shape) == 4 else None
        if type(layer).__name__ != "Dropout":
            return None
        tensor = parent[0]
    return None
