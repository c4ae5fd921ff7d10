"""Train the LeNet-5 shipped as ``LeNet5(weights="mnist")`` and record its test accuracy.

    python tools/train_lenet5_mnist.py [--data /work/shared/data/mnist] [--epochs 10] [--seed 0]

Reads full MNIST (the four IDX .gz files), trains the ``"relu"`` variant of
``pycnn.applications.LeNet5`` (ReLU + max pooling, 61,706 parameters) with Adam on the 60,000 training
images scaled to [0, 1] — each epoch on a fresh copy randomly shifted by up to ``--shift`` pixels
(zero fill), learning rate 1e-3 dropped to 3e-4 and 1e-4 for the last 40 % / 20 % of the epochs —
then evaluates once on the 10,000 test images (never used for any choice during training) and writes

* ``pycnn/data/lenet5_mnist.pycnn`` — the model in pycnn's model-file format (weights only used by
  ``LeNet5(weights="mnist")``),
* ``pycnn/data/lenet5_mnist.json`` — the measured test accuracy/loss, the training settings and the
  SHA-256 of the weights file.

Rerunning with the same seed reproduces the run up to floating-point summation order.
"""
import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import pycnn  # noqa: E402
from pycnn.applications.lenet import LeNet5, MNIST_WEIGHTS_PATH  # noqa: E402
from pycnn.datasets import mnist  # noqa: E402
from pycnn.optimizers import Adam  # noqa: E402
from pycnn.utils import set_random_seed  # noqa: E402


def _learning_rate(base, epoch, epochs):
    if epoch >= 0.8 * epochs:
        return base * 0.1
    if epoch >= 0.6 * epochs:
        return base * 0.3
    return base


def _shifted(x, max_shift, rng):
    """Each image moved by an independent random (dy, dx) in [-max_shift, max_shift], zero filled."""
    if max_shift == 0:
        return x
    out = np.zeros_like(x)
    n, h, w = x.shape[:3]
    shifts = rng.integers(-max_shift, max_shift + 1, size=(n, 2))
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            idx = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
            src = x[idx, max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
            out[idx, max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)] = src
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="/work/shared/data/mnist", help="folder with the MNIST IDX .gz files")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--shift", type=int, default=2, help="max random shift in pixels (0: no augmentation)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=MNIST_WEIGHTS_PATH)
    args = parser.parse_args()

    set_random_seed(args.seed)     # initialisation and fit's shuffling
    rng = np.random.default_rng(args.seed)    # the augmentation shifts
    (x_train, y_train), (x_test, y_test) = mnist.load_data(path=args.data)
    x_train = (x_train.astype(np.float32) / 255.0)[..., None]
    x_test = (x_test.astype(np.float32) / 255.0)[..., None]

    model = LeNet5(variant="relu")
    model.compile(optimizer=Adam(learning_rate=args.learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    start = time.time()
    for epoch in range(args.epochs):
        model.optimizer.learning_rate = _learning_rate(args.learning_rate, epoch, args.epochs)
        history = model.fit(_shifted(x_train, args.shift, rng), y_train, batch_size=args.batch_size,
                            epochs=epoch + 1, initial_epoch=epoch, verbose=2)
    train_seconds = time.time() - start
    test_loss, test_accuracy = model.evaluate(x_test, y_test, batch_size=500, verbose=0)
    print(f"test accuracy {test_accuracy:.4f}, test loss {test_loss:.4f}")

    model.save(args.out, include_optimizer=False)
    os.chmod(args.out, 0o644)     # shipped package data: readable by everyone (save() writes 0600)
    with open(args.out, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    record = {
        "model": "pycnn.applications.LeNet5(variant='relu')",
        "params": int(model.count_params()),
        "dataset": "MNIST (60,000 train / 10,000 test, IDX files), pixels / 255",
        "optimizer": f"Adam(learning_rate={args.learning_rate}), x0.3 at 60% and x0.1 at 80% of the epochs",
        "augmentation": f"random shifts up to {args.shift} px per epoch (zero fill)",
        "loss": "sparse_categorical_crossentropy",
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "train_accuracy_last_epoch": float(history.history["accuracy"][-1]),
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "train_seconds": round(train_seconds, 1),
        "weights_file": os.path.basename(args.out),
        "weights_sha256": digest,
        "pycnn_version": getattr(pycnn, "__version__", "unknown"),
        "command": "python tools/train_lenet5_mnist.py " + " ".join(sys.argv[1:]),
    }
    json_path = os.path.splitext(args.out)[0] + ".json"
    with open(json_path, "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out} and {json_path}")


if __name__ == "__main__":
    main()
