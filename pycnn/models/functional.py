"""The functional Model: ``Model(inputs, outputs)`` over any DAG of layers built with pycnn.Input.

Forward runs the nodes in topological order; backward walks them in reverse, summing the
gradients of a tensor that feeds several layers (residual connections, U-Net skips). Nodes with
no trainable weight at or upstream of them are skipped in training (a frozen base costs no
backward pass). A layer object called at two places in the same graph (weight sharing) works for
inference; training through it raises a ValueError, because each layer keeps only the cache of
its most recent call.
"""
import numpy as np

from pycnn.layers.base import InputLayer, KerasTensor
from pycnn.models.training import Model

__all__ = ["Functional", "serialize_layer", "deserialize_layer", "model_from_config", "model_from_json"]


def _as_tensor_list(tensors, what):
    if isinstance(tensors, KerasTensor):
        return [tensors], False
    if isinstance(tensors, dict):
        tensors = list(tensors.values())
    if isinstance(tensors, (list, tuple)) and tensors and all(isinstance(t, KerasTensor) for t in tensors):
        return list(tensors), True
    raise TypeError(f"Model: {what} must be a KerasTensor (from pycnn.Input or a layer call) or a "
                    f"list of them; got {type(tensors).__name__}")


class Functional(Model):
    """A model defined by connecting layers: ``Model(inputs=x_in, outputs=y)``."""

    def __init__(self, inputs, outputs, name=None, trainable=True, **kwargs):
        super().__init__(name=name, trainable=True, **kwargs)
        self.inputs, self._multi_input = _as_tensor_list(inputs, "inputs")
        self.outputs, self._multi_output = _as_tensor_list(outputs, "outputs")
        for t in self.inputs:
            if t._keras_history is None or not isinstance(t._keras_history[0], InputLayer):
                raise ValueError(f"Model '{self.name}': inputs must come from pycnn.Input(...); got "
                                 f"{t!r}")
        self._map_graph()
        shapes = [t.shape for t in self.inputs]
        self._build_input_shape = shapes if self._multi_input else shapes[0]
        self.built = True
        if not trainable:
            self.trainable = False

    # ------------------------------------------------------------------ graph
    def _map_graph(self):
        input_ids = {id(t) for t in self.inputs}
        order, state = [], {}

        def visit(tensor, path):
            layer, node_index, _ = tensor._keras_history
            node = layer._inbound_nodes[node_index]
            key = id(node)
            if state.get(key) == "done":
                return
            if state.get(key) == "active":
                raise ValueError(f"Model '{self.name}': the layer graph has a cycle through "
                                 f"'{layer.name}'")
            if isinstance(layer, InputLayer) and id(tensor) not in input_ids:
                raise ValueError(f"Model '{self.name}': output depends on Input '{layer.name}' "
                                 f"{tensor.shape} which is not in inputs (pass it in "
                                 "Model(inputs=[...]))")
            state[key] = "active"
            if id(tensor) not in input_ids:
                for parent in node.input_tensors:
                    if parent._keras_history is None:
                        raise ValueError(f"Model '{self.name}': tensor {parent!r} was not produced by "
                                         "pycnn.Input or a layer")
                    visit(parent, path)
            state[key] = "done"
            order.append(node)

        for t in self.inputs:          # inputs first, in the order given
            visit(t, ())
        for t in self.outputs:
            visit(t, ())
        self._nodes = order
        self._compute_nodes = [n for n in order if not isinstance(n.layer, InputLayer)]
        layers, seen = [], set()
        for node in order:
            if id(node.layer) not in seen:
                seen.add(id(node.layer))
                layers.append(node.layer)
        names = [l.name for l in layers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"Model '{self.name}': layer names must be unique; got {duplicates} more "
                             "than once")
        self._layers = layers
        counts = {}
        self._local_index = {}
        for node in order:
            k = counts.get(id(node.layer), 0)
            self._local_index[id(node)] = k
            counts[id(node.layer)] = k + 1
        self._shared = sorted(l.name for l in layers if counts[id(l)] > 1)
        self._input_layers = [t._keras_history[0] for t in self.inputs]
        self._output_nodes = [t._keras_history[0]._inbound_nodes[t._keras_history[1]] for t in self.outputs]

    @property
    def layers(self):
        return list(self._layers)

    def _check_input_shape(self, input_shape):
        """Shapes are checked by each InputLayer when the model runs."""

    def build(self, input_shape):
        """A functional model is built when it is created; this only checks the shape."""
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        if len(shapes) != len(self._input_layers):
            raise ValueError(f"Model '{self.name}': build needs {len(self._input_layers)} input "
                             f"shapes; got {len(shapes)}")
        for layer, shape in zip(self._input_layers, shapes):
            layer._check_input_shape(tuple(shape))

    def compute_output_shape(self, input_shape):
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        known = {}
        for t, s in zip(self.inputs, shapes):
            known[id(t)] = tuple(s)
        for node in self._compute_nodes:
            args = [known[id(t)] for t in node.input_tensors]
            out = node.layer.compute_output_shape(args if len(args) > 1 else args[0])
            outs = out if isinstance(out, list) else [out]
            for t, s in zip(node.output_tensors, outs):
                known[id(t)] = s
        result = [known[id(t)] for t in self.outputs]
        return result if self._multi_output else result[0]

    @property
    def output_shape(self):
        shapes = [t.shape for t in self.outputs]
        return shapes if self._multi_output else shapes[0]

    # ------------------------------------------------------------------ forward / backward
    def call(self, inputs, training=False):
        arrays = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        if len(arrays) != len(self.inputs):
            raise ValueError(f"Model '{self.name}': expects {len(self.inputs)} input arrays; got "
                             f"{len(arrays)}")
        values = {}
        for t, layer, x in zip(self.inputs, self._input_layers, arrays):
            values[id(t)] = layer(x, training=training)
        for node in self._compute_nodes:
            args = [values[id(t)] for t in node.input_tensors]
            out = node.layer(args if len(args) > 1 else args[0], training=training)
            if len(node.output_tensors) == 1:
                values[id(node.output_tensors[0])] = out
            else:
                for t, v in zip(node.output_tensors, out):
                    values[id(t)] = v
        self._last_inputs = inputs
        self._values = values      # references only: shapes for zero gradients of unused outputs
        outs = [values[id(t)] for t in self.outputs]
        return outs if self._multi_output else outs[0]

    def _output_layer(self):
        if self._multi_output:
            return None
        node = self._output_nodes[0]
        if isinstance(node.layer, (Model, InputLayer)) or len(node.output_tensors) != 1:
            return None
        return node.layer

    def _backward(self, grad, need_input_grad=True, fused=False):
        from pycnn.models.sequential import _backward_pre_activation
        if self._shared:
            raise ValueError(f"Model '{self.name}': training through a layer used more than once in "
                             f"the graph must be avoided; got shared layers {self._shared} (each "
                             "layer keeps only its latest call for backward; create one layer per "
                             "use)")
        # which nodes need a backward call: those with trainable weights at or upstream of them
        upstream = {}
        for node in self._nodes:
            parents = [t._keras_history[0]._inbound_nodes[t._keras_history[1]] for t in node.input_tensors]
            own = (not isinstance(node.layer, InputLayer)) and bool(node.layer.trainable_weights)
            strictly_up = need_input_grad or any(upstream.get(id(p), (False, False))[0] for p in parents)
            upstream[id(node)] = (own or strictly_up, strictly_up)
        grads_in = grad if self._multi_output else [grad]
        grads = {}
        for t, g in zip(self.outputs, grads_in):
            _accumulate(grads, t, g)
        fused_node = self._output_nodes[0] if fused else None
        for node in reversed(self._compute_nodes):
            active, strictly_up = upstream[id(node)]
            if not active:
                continue
            gs = [grads.get(id(t)) for t in node.output_tensors]
            if all(g is None for g in gs):
                continue
            if len(gs) == 1:
                g = gs[0]
            else:
                g = [np.zeros_like(self._values[id(t)]) if gi is None else gi
                     for gi, t in zip(gs, node.output_tensors)]
            layer = node.layer
            if node is fused_node:
                dx = _backward_pre_activation(layer, g)
            elif isinstance(layer, Model):
                dx = layer._backward(g, need_input_grad=strictly_up, fused=False)
            elif not strictly_up and hasattr(layer, "backward_weights_only"):
                dx = layer.backward_weights_only(g)   # nothing upstream needs this gradient
            else:
                dx = layer.backward(g)
            if not strictly_up:
                continue   # nothing upstream needs this gradient
            dxs = dx if len(node.input_tensors) > 1 else [dx]
            for t, d in zip(node.input_tensors, dxs):
                _accumulate(grads, t, d)
        if not need_input_grad:
            return None
        result = [grads.get(id(t)) for t in self.inputs]
        result = [np.zeros_like(self._values[id(t)]) if r is None else r
                  for r, t in zip(result, self.inputs)]
        return result if self._multi_input else result[0]

    # ------------------------------------------------------------------ summary support
    def _connections(self, layer):
        parts = []
        for node in self._nodes:
            if node.layer is not layer:
                continue
            for t in node.input_tensors:
                src, node_index, tensor_index = t._keras_history
                src_node = src._inbound_nodes[node_index]
                parts.append(f"{src.name}[{self._local_index.get(id(src_node), node_index)}][{tensor_index}]")
        return ", ".join(parts) if parts else "-"

    def _layer_output_shape(self, layer):
        for node in self._nodes:
            if node.layer is layer:
                shapes = [t.shape for t in node.output_tensors]
                return shapes[0] if len(shapes) == 1 else shapes
        return None

    def _is_sequential_like(self):
        """Keras prints the 'Connected to' column only when the graph is not a simple chain."""
        if self._multi_input or self._multi_output or self._shared:
            return False
        for node in self._compute_nodes:
            if len(node.input_tensors) != 1:
                return False
        consumers = {}
        for node in self._compute_nodes:
            for t in node.input_tensors:
                consumers[id(t)] = consumers.get(id(t), 0) + 1
        return all(c == 1 for c in consumers.values())

    # ------------------------------------------------------------------ config
    def _config_class_name(self):
        return "Functional"

    def get_config(self):
        layer_configs = []
        for layer in self._layers:
            inbound = []
            for node in self._nodes:
                if node.layer is not layer or isinstance(layer, InputLayer):
                    continue
                refs = []
                for t in node.input_tensors:
                    src, node_index, tensor_index = t._keras_history
                    src_node = src._inbound_nodes[node_index]
                    refs.append([src.name, self._local_index[id(src_node)], tensor_index])
                inbound.append(refs)
            entry = serialize_layer(layer)
            entry["name"] = layer.name
            entry["inbound_nodes"] = inbound
            layer_configs.append(entry)

        def refs(tensors):
            out = []
            for t in tensors:
                layer, node_index, tensor_index = t._keras_history
                out.append([layer.name, self._local_index[id(layer._inbound_nodes[node_index])], tensor_index])
            return out

        return {"name": self.name, "trainable": self.trainable, "layers": layer_configs,
                "input_layers": refs(self.inputs), "output_layers": refs(self.outputs),
                "multi_input": self._multi_input, "multi_output": self._multi_output}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        created = {}
        tensors = {}      # (layer name, local node index) -> [output tensors]
        pending = []
        for entry in config["layers"]:
            layer = deserialize_layer(entry, custom_objects)
            name = entry.get("name", layer.name)
            if name in created:
                raise ValueError(f"Functional.from_config: layer name {name!r} appears twice")
            created[name] = layer
            if isinstance(layer, InputLayer):
                tensors[(name, 0)] = [layer.output_tensor]
            else:
                for k, refs in enumerate(entry.get("inbound_nodes", [])):
                    pending.append((layer, name, k, refs))
        while pending:
            progress = False
            remaining = []
            for layer, name, k, refs in pending:
                keys = [(r[0], r[1]) for r in refs]
                if not all(key in tensors for key in keys) or (k > 0 and (name, k - 1) not in tensors):
                    remaining.append((layer, name, k, refs))
                    continue
                args = [tensors[(r[0], r[1])][r[2]] for r in refs]
                out = layer(args if len(args) > 1 else args[0])
                tensors[(name, k)] = out if isinstance(out, list) else [out]
                progress = True
            if not progress:
                missing = sorted({r[0] for _, _, _, refs in remaining for r in refs})
                raise ValueError(f"Functional.from_config: cannot connect layers "
                                 f"{[p[1] for p in remaining]}; inputs {missing} are never produced")
            pending = remaining

        def resolve(refs):
            return [tensors[(r[0], r[1])][r[2]] for r in refs]

        inputs = resolve(config["input_layers"])
        outputs = resolve(config["output_layers"])
        return cls(inputs if config.get("multi_input") else inputs[0],
                   outputs if config.get("multi_output") else outputs[0],
                   name=config.get("name"), trainable=config.get("trainable", True))


def _accumulate(grads, tensor, g):
    key = id(tensor)
    previous = grads.get(key)
    grads[key] = g if previous is None else previous + g   # new array: never modify a layer's output


# ---------------------------------------------------------------------------------------------
# (de)serialization shared by Sequential, Functional and load_model
# ---------------------------------------------------------------------------------------------

def serialize_layer(layer):
    class_name = layer._config_class_name() if isinstance(layer, Model) else type(layer).__name__
    return {"class_name": class_name, "config": layer.get_config()}


def _layer_class(class_name, custom_objects):
    if custom_objects and class_name in custom_objects:
        return custom_objects[class_name]
    from pycnn.models.sequential import Sequential
    if class_name == "Sequential":
        return Sequential
    if class_name in ("Functional", "Model"):
        return Functional
    import pycnn.layers as layers_module
    cls = layers_module.LAYER_CLASSES.get(class_name)   # a fixed table: nothing is imported by name
    if cls is not None:
        return cls
    raise ValueError(f"unknown layer class {class_name!r} (pass custom_objects={{'{class_name}': "
                     f"{class_name}}} for your own layers)")


def deserialize_layer(spec, custom_objects=None):
    """A layer (or model) from ``{'class_name': ..., 'config': {...}}``."""
    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str) or not isinstance(
            spec.get("config"), dict):
        raise ValueError(f"layer config must be {{'class_name': str, 'config': dict}}; got {spec!r:.200}")
    cls = _layer_class(spec["class_name"], custom_objects)
    config = dict(spec["config"])
    # Lambda configs hold only the function's name: custom_objects maps it back to the function
    for key in ("function", "backward"):
        if isinstance(config.get(key), str) and custom_objects and config[key] in custom_objects:
            config[key] = custom_objects[config[key]]
    if issubclass(cls, Model):
        return cls.from_config(config, custom_objects=custom_objects)
    return cls.from_config(config)


def model_from_config(config, custom_objects=None):
    """A Sequential or functional model from ``{'class_name', 'config'}`` (``model.to_json()``'s
    content, or the architecture stored by ``model.save``)."""
    model = deserialize_layer(config, custom_objects)
    if not isinstance(model, Model):
        raise ValueError(f"model_from_config: config describes a {type(model).__name__}, not a model")
    return model


def model_from_json(json_string, custom_objects=None):
    """A new (untrained) model from ``model.to_json()``."""
    import json
    return model_from_config(json.loads(json_string), custom_objects=custom_objects)
