"""Build pycnn/data/mnist_sample.npz: the first 4,000 training and 1,000 test digits of MNIST.

Usage: python tools/make_mnist_sample.py [MNIST_DIR]   (default /work/shared/data/mnist)

The IDX files are verified against the official sha256 digests before use, so the
sample holds genuine MNIST digits in their original order.  Prints the sample's sha256,
which pycnn/datasets/mnist.py pins.
"""
import hashlib
import io
import sys
from pathlib import Path

import numpy as np

from pycnn.datasets import mnist

N_TRAIN, N_TEST = 4000, 1000


def main(source):
    (x_train, y_train), (x_test, y_test) = mnist.load_data(path=source)
    out = Path(__file__).resolve().parent.parent / "pycnn" / "data" / "mnist_sample.npz"
    buf = io.BytesIO()
    np.savez_compressed(buf, x_train=x_train[:N_TRAIN], y_train=y_train[:N_TRAIN],
                        x_test=x_test[:N_TEST], y_test=y_test[:N_TEST])
    out.write_bytes(buf.getvalue())
    print(f"{out}: {out.stat().st_size:,} bytes, sha256 {hashlib.sha256(buf.getvalue()).hexdigest()}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/mnist")
