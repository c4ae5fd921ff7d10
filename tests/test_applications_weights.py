"""Weight import into pycnn.applications, checked against the frameworks that wrote the weights.

* Keras HDF5: the file is written here with h5py in the Keras-applications layout (root attribute
  ``layer_names``, per-layer ``weight_names``, datasets ``<layer>/<layer>/<var>:0``) from a Keras 3 model
  (KERAS_BACKEND=torch) with random weights; Keras itself reloads the file to prove the layout, and
  pycnn's outputs must equal Keras's on the same input.
* torchvision state dicts: written with torch.save from PyTorch modules defined here with
  torchvision's architecture and parameter names; pycnn's outputs must equal PyTorch's (eval mode).
"""
import json
import os
import struct

import numpy as np
import pytest

from pycnn import applications as A
from pycnn.applications.weights import load_weights, read_safetensors

os.environ.setdefault("KERAS_BACKEND", "torch")


def _keras():
    keras = pytest.importorskip("keras", reason="keras (the Keras oracle) is not installed")
    pytest.importorskip("h5py", reason="h5py (needed to write and read Keras HDF5) is not installed")
    if keras.backend.backend() != "torch":
        pytest.skip(f"the Keras oracle runs with KERAS_BACKEND=torch; got {keras.backend.backend()}")
    return keras


def _randomize_keras_bn(model, rng):
    """Non-trivial BN parameters and statistics, so the import of all four BN arrays is exercised."""
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c), rng.normal(0, 0.1, c),
                               rng.uniform(0.5, 1.5, c)])


def _write_keras_applications_h5(model, path):
    """The layout of keras-applications' ``*_weights_tf_dim_ordering_tf_kernels*.h5`` files."""
    import h5py
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for layer in model.layers:
            group = f.create_group(layer.name)
            names = [f"{layer.name}/{w.name}:0" for w in layer.weights]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for name, w in zip(names, layer.weights):
                group.create_dataset(name, data=np.asarray(w.numpy()))


def _compare(pycnn_out, reference, tol=1e-4):
    """Absolute tolerance ``tol`` on outputs scaled to unit max magnitude."""
    scale = max(1.0, float(np.max(np.abs(reference))))
    np.testing.assert_allclose(pycnn_out, reference, rtol=0, atol=tol * scale)


@pytest.fixture(scope="module")
def keras_vgg16_h5(tmp_path_factory):
    keras = _keras()
    model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(None, None, 3))
    path = str(tmp_path_factory.mktemp("vgg") / "vgg16_notop.h5")
    _write_keras_applications_h5(model, path)
    return model, path


@pytest.mark.parametrize("size", [32, 128])
def test_vgg16_notop_from_keras_h5_matches_keras(keras_vgg16_h5, size):
    keras = _keras()
    kmodel, path = keras_vgg16_h5
    x = np.random.default_rng(size).uniform(0, 1, (1, size, size, 3)).astype(np.float32)
    expected = np.asarray(kmodel.predict(x, verbose=0))
    if size == 32:   # Keras itself reads the file back: the layout is Keras's
        reloaded = keras.applications.VGG16(weights=None, include_top=False, input_shape=(None, None, 3))
        reloaded.load_weights(path)
        np.testing.assert_array_equal(np.asarray(reloaded.predict(x, verbose=0)), expected)
    model = A.VGG16(include_top=False, weights=path, input_shape=(size, size, 3))
    got = model.predict(x, verbose=0)
    assert got.shape == expected.shape == (1, size // 32, size // 32, 512)
    _compare(got, expected)


def test_mobilenet_from_keras_h5_matches_keras(tmp_path):
    keras = _keras()
    rng = np.random.default_rng(1)
    kmodel = keras.applications.MobileNet(weights=None, input_shape=(64, 64, 3), classes=10,
                                          classifier_activation=None)
    _randomize_keras_bn(kmodel, rng)
    path = str(tmp_path / "mobilenet.h5")
    _write_keras_applications_h5(kmodel, path)
    x = rng.uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    expected = np.asarray(kmodel.predict(x, verbose=0))
    model = A.MobileNet(weights=path, input_shape=(64, 64, 3), classes=10, classifier_activation=None)
    _compare(model.predict(x, verbose=0), expected)
    # Keras 3's own .weights.h5 keys weights by class-based automatic names: rejected with a clear error
    path3 = str(tmp_path / "mobilenet.weights.h5")
    kmodel.save_weights(path3)
    with pytest.raises(ValueError, match="Keras-applications HDF5 layout"):
        A.MobileNet(weights=path3, input_shape=(64, 64, 3), classes=10)


def test_resnet50_notop_from_keras_h5_matches_keras(tmp_path):
    keras = _keras()
    rng = np.random.default_rng(2)
    kmodel = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3), pooling="avg")
    _randomize_keras_bn(kmodel, rng)
    path = str(tmp_path / "resnet50_notop.h5")
    _write_keras_applications_h5(kmodel, path)
    x = rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    expected = np.asarray(kmodel.predict(x, verbose=0))
    model = A.ResNet50(include_top=False, weights=path, input_shape=(32, 32, 3), pooling="avg")
    _compare(model.predict(x, verbose=0), expected)


def test_keras_h5_for_another_architecture_is_rejected(keras_vgg16_h5):
    _, path = keras_vgg16_h5
    with pytest.raises(ValueError, match="load_keras_h5: the file's layers with weights must match"):
        A.VGG19(include_top=False, weights=path, input_shape=(32, 32, 3))


# ---------------------------------------------------------------------------------- torchvision
def _torch():
    return pytest.importorskip("torch", reason="torch (the PyTorch oracle) is not installed")


def _torch_resnet18(num_classes):
    """torchvision.models.resnet18's modules and parameter names (torchvision is not installed here)."""
    nn = _torch().nn

    class BasicBlock(nn.Module):
        def __init__(self, inplanes, planes, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = None
            if stride != 1 or inplanes != planes:
                self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                                nn.BatchNorm2d(planes))

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + identity)

    class ResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1 = nn.Sequential(BasicBlock(64, 64, 1), BasicBlock(64, 64, 1))
            self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128, 1))
            self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256, 1))
            self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512, 1))
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.avgpool(x).flatten(1))

    return ResNet18()


def _randomize_torch_bn(model, seed):
    torch = _torch()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=gen))
                m.bias.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))


@pytest.fixture(scope="module")
def torch_resnet18(tmp_path_factory):
    torch = _torch()
    torch.manual_seed(0)
    model = _torch_resnet18(num_classes=10)
    _randomize_torch_bn(model, 0)
    model.eval()
    path = str(tmp_path_factory.mktemp("resnet18") / "resnet18.pth")
    torch.save(model.state_dict(), path)
    assert sum(p.numel() for p in _torch_resnet18(1000).parameters()) == 11_689_512   # torchvision's count
    return model, path


def _torch_forward(model, x_nhwc):
    torch = _torch()
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))).numpy()


def test_resnet18_from_torchvision_state_dict_matches_pytorch(torch_resnet18):
    tmodel, path = torch_resnet18
    x = np.random.default_rng(3).standard_normal((2, 64, 64, 3)).astype(np.float32)
    expected = _torch_forward(tmodel, x)
    model = A.ResNet18(weights=path, input_shape=(64, 64, 3), classes=10, classifier_activation=None)
    _compare(model.predict(x, verbose=0), expected)


def _write_safetensors(state_dict, path):
    """The safetensors layout: u64 little-endian header size, JSON header, raw little-endian data."""
    header, chunks, offset = {}, [], 0
    for name, tensor in state_dict.items():
        array = np.ascontiguousarray(tensor.numpy())
        dtype = {"float32": "F32", "int64": "I64"}[array.dtype.name]
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        chunks.append(array.astype(array.dtype.newbyteorder("<")).tobytes())
        offset += array.nbytes
    blob = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob + b"".join(chunks))


def test_resnet18_from_safetensors_matches_pytorch(torch_resnet18, tmp_path):
    tmodel, _ = torch_resnet18
    path = str(tmp_path / "resnet18.safetensors")
    _write_safetensors(tmodel.state_dict(), path)
    state = read_safetensors(path)
    assert np.array_equal(state["layer2.0.downsample.0.weight"], tmodel.layer2[0].downsample[0].weight.detach().numpy())
    x = np.random.default_rng(4).standard_normal((1, 32, 32, 3)).astype(np.float32)
    model = A.ResNet18(weights=path, input_shape=(32, 32, 3), classes=10, classifier_activation=None)
    _compare(model.predict(x, verbose=0), _torch_forward(tmodel, x))


def test_alexnet_flatten_order_from_torchvision_state_dict(tmp_path):
    """At 95x95 the last map is 2x2x256, so the first Linear's input order (PyTorch C,H,W vs pycnn
    H,W,C) matters. The reference is torchvision's AlexNet without its adaptive average pool."""
    torch = _torch()
    nn = torch.nn
    torch.manual_seed(1)
    features = nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))
    classifier = nn.Sequential(nn.Dropout(), nn.Linear(256 * 2 * 2, 4096), nn.ReLU(), nn.Dropout(),
                               nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 10))
    tmodel = nn.Sequential()
    tmodel.add_module("features", features)
    tmodel.add_module("flatten", nn.Flatten())
    tmodel.add_module("classifier", classifier)
    tmodel.eval()
    path = str(tmp_path / "alexnet.pth")
    torch.save(tmodel.state_dict(), path)
    x = np.random.default_rng(5).uniform(0, 1, (2, 95, 95, 3)).astype(np.float32)
    expected = _torch_forward(tmodel, x)
    model = A.AlexNet(weights=path, input_shape=(95, 95, 3), classes=10, classifier_activation=None)
    assert model.get_layer("flatten").output_shape == (None, 1024)
    _compare(model.predict(x, verbose=0), expected)


def test_state_dict_errors_name_the_problem(torch_resnet18, tmp_path):
    torch = _torch()
    tmodel, _ = torch_resnet18
    state = dict(tmodel.state_dict())
    del state["layer3.1.bn2.running_var"]
    path = str(tmp_path / "broken.pth")
    torch.save(state, path)
    with pytest.raises(ValueError, match="must contain 'layer3.1.bn2.running_var'"):
        A.ResNet18(weights=path, input_shape=(32, 32, 3), classes=10)
    full = str(tmp_path / "full.pth")
    torch.save(tmodel.state_dict(), full)
    with pytest.raises(ValueError, match="unused keys \\['fc.bias', 'fc.weight'\\]"):
        A.ResNet18(include_top=False, weights=full, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="must have shape"):
        A.ResNet18(weights=full, input_shape=(32, 32, 3), classes=1000)
    with pytest.raises(ValueError, match="map torchvision keys"):
        load_weights(A.MobileNet(input_shape=(32, 32, 3)), full)


def _torch_googlenet(num_classes):
    """torchvision.models.googlenet(aux_logits=False, transform_input=False)'s modules and names."""
    nn = _torch().nn

    class BasicConv2d(nn.Module):
        def __init__(self, cin, cout, **kwargs):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, bias=False, **kwargs)
            self.bn = nn.BatchNorm2d(cout, eps=0.001)

        def forward(self, x):
            return nn.functional.relu(self.bn(self.conv(x)))

    class Inception(nn.Module):
        def __init__(self, cin, ch1, ch3r, ch3, ch5r, ch5, pool_proj):
            super().__init__()
            self.branch1 = BasicConv2d(cin, ch1, kernel_size=1)
            self.branch2 = nn.Sequential(BasicConv2d(cin, ch3r, kernel_size=1),
                                         BasicConv2d(ch3r, ch3, kernel_size=3, padding=1))
            self.branch3 = nn.Sequential(BasicConv2d(cin, ch5r, kernel_size=1),
                                         BasicConv2d(ch5r, ch5, kernel_size=3, padding=1))
            self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                         BasicConv2d(cin, pool_proj, kernel_size=1))

        def forward(self, x):
            return _torch().cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)

    class GoogLeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = BasicConv2d(3, 64, kernel_size=7, stride=2, padding=3)
            self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.conv2 = BasicConv2d(64, 64, kernel_size=1)
            self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
            self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
            self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
            self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
            self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
            self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
            self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
            self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
            self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
            self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
            self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.dropout = nn.Dropout(0.2)
            self.fc = nn.Linear(1024, num_classes)

        def forward(self, x):
            x = self.maxpool1(self.conv1(x))
            x = self.maxpool2(self.conv3(self.conv2(x)))
            x = self.maxpool3(self.inception3b(self.inception3a(x)))
            for name in ("4a", "4b", "4c", "4d", "4e"):
                x = getattr(self, "inception" + name)(x)
            x = self.inception5b(self.inception5a(self.maxpool4(x)))
            return self.fc(self.dropout(self.avgpool(x).flatten(1)))

    return GoogLeNet()


def test_googlenet_from_torchvision_state_dict_matches_pytorch(tmp_path):
    torch = _torch()
    torch.manual_seed(2)
    assert sum(p.numel() for p in _torch_googlenet(1000).parameters()) == 6_624_904   # torchvision's count
    tmodel = _torch_googlenet(10)
    _randomize_torch_bn(tmodel, 2)
    tmodel.eval()
    path = str(tmp_path / "googlenet.pth")
    torch.save(tmodel.state_dict(), path)
    x = np.random.default_rng(6).standard_normal((1, 64, 64, 3)).astype(np.float32)
    model = A.GoogLeNet(weights=path, input_shape=(64, 64, 3), classes=10, classifier_activation=None)
    _compare(model.predict(x, verbose=0), _torch_forward(tmodel, x))
