"""Real-data check: LeNet-5 on full MNIST (60k train / 10k test) with a fixed seed.

    python tools/mnist_accuracy.py [--data /work/shared/data/mnist] [--epochs 5] [--model relu|sigmoid|both]

Trains the ReLU/max-pool LeNet-5 (target >= 98.5 % test accuracy after 5 epochs) and Tutorial 1's
sigmoid/average-pool variant (target >= 96 %), both with compile(optimizer="Adam",
loss="categorical_crossentropy", metrics=["accuracy"]) and fit(batch_size=128, shuffle=True), and
prints the test accuracy of each. Exit status 1 if a target is missed. Takes several minutes per
model on two cores; it is not part of the unit tests.
"""
import argparse
import gzip
import os
import struct
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import pycnn.utils  # noqa: E402
from pycnn import backend  # noqa: E402
from pycnn.layers import AveragePooling2D, Conv2D, Dense, Flatten, MaxPooling2D  # noqa: E402
from pycnn.models import Sequential  # noqa: E402

TARGETS = {"relu": 0.985, "sigmoid": 0.96}


def read_idx(path, magic, dims):
    """A tiny IDX reader: big-endian magic, then ``dims`` uint32 sizes, then uint8 data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    got_magic, = struct.unpack(">I", raw[:4])
    if got_magic != magic:
        raise ValueError(f"{path}: IDX magic must be {magic:#010x}; got {got_magic:#010x}")
    shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: expected {int(np.prod(shape))} values for shape {shape}; got {data.size}")
    return data.reshape(shape)


def load_mnist(folder):
    def images(name):
        return read_idx(os.path.join(folder, name), 0x00000803, 3)

    def labels(name):
        return read_idx(os.path.join(folder, name), 0x00000801, 1)

    return ((images("train-images-idx3-ubyte.gz"), labels("train-labels-idx1-ubyte.gz")),
            (images("t10k-images-idx3-ubyte.gz"), labels("t10k-labels-idx1-ubyte.gz")))


def lenet(kind):
    if kind == "sigmoid":   # Tutorial 1's model cell
        return Sequential([
            Conv2D(filters=6, kernel_size=(5, 5), activation="sigmoid", input_shape=(28, 28, 1), padding="same"),
            AveragePooling2D(pool_size=(2, 2), strides=2),
            Conv2D(16, (5, 5), activation="sigmoid", padding="valid"),
            AveragePooling2D(pool_size=(2, 2), strides=2),
            Flatten(), Dense(120, "sigmoid"), Dense(84, "sigmoid"), Dense(10, "softmax")])
    return Sequential([
        Conv2D(6, (5, 5), activation="relu", input_shape=(28, 28, 1), padding="same"),
        MaxPooling2D(pool_size=(2, 2)),
        Conv2D(16, (5, 5), activation="relu", padding="valid"),
        MaxPooling2D(pool_size=(2, 2)),
        Flatten(), Dense(120, "relu"), Dense(84, "relu"), Dense(10, "softmax")])


def run(kind, data, epochs, seed, verbose):
    (x_train, y_train), (x_test, y_test) = data
    backend.clear_session()
    pycnn.utils.set_random_seed(seed)
    x_train = (x_train.astype(np.float32) / 255.0)[..., None]
    x_test = (x_test.astype(np.float32) / 255.0)[..., None]
    model = lenet(kind)
    model.compile(optimizer="Adam", loss="categorical_crossentropy", metrics=["accuracy"])
    start = time.time()
    model.fit(x_train, pycnn.utils.to_categorical(y_train, 10), batch_size=128, epochs=epochs,
              verbose=verbose, shuffle=True)
    seconds = time.time() - start
    predictions = model.predict(x_test, batch_size=512, verbose=0).argmax(axis=1)
    accuracy = float((predictions == y_test).mean())
    return accuracy, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/work/shared/data/mnist")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", choices=["relu", "sigmoid", "both"], default="both")
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)
    data = load_mnist(args.data)
    kinds = ["relu", "sigmoid"] if args.model == "both" else [args.model]
    ok = True
    for kind in kinds:
        accuracy, seconds = run(kind, data, args.epochs, args.seed, args.verbose)
        passed = accuracy >= TARGETS[kind]
        ok &= passed
        print(f"{kind} LeNet-5: test accuracy {accuracy:.4f} after {args.epochs} epochs "
              f"({seconds:.0f}s training; target {TARGETS[kind]:.3f}: {'ok' if passed else 'MISSED'})",
              flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
