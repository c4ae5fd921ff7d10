"""Augmentation throughput: pycnn's ImageDataGenerator against Keras's legacy one.

    python -m pycnn.preprocessing.benchmark [--images 5000] [--keras-images 500] [--threads N]

Full configuration (the issue's): rotation 15 degrees, shifts 0.1, shear 10 degrees, zoom
0.1, horizontal flip, channel shift 10, on 32x32x3 float32 images in batches of 128
(CIFAR-10 from ``$PYCNN_DATA_DIR`` when it holds them, else random pixels; it never
downloads).  Keras runs only when it imports (with SciPy); the ratio is printed when
both ran.
"""
import argparse
import os
import time

import numpy as np

CONFIG = dict(rotation_range=15, width_shift_range=0.1, height_shift_range=0.1, shear_range=10,
              zoom_range=0.1, horizontal_flip=True, channel_shift_range=10.0)


def _images(n):
    """CIFAR-10 images from $PYCNN_DATA_DIR when it has them (never downloads), else random pixels."""
    from pycnn.datasets import cifar10
    data_dir = os.environ.get("PYCNN_DATA_DIR")
    if data_dir and cifar10._find_in_folder(data_dir) is not None:
        (x, _), _ = cifar10.load_data(path=data_dir)
        reps = -(-n // len(x))
        return np.concatenate([x] * reps)[:n].astype(np.float32)
    return np.random.default_rng(0).uniform(0, 255, (n, 32, 32, 3)).astype(np.float32)


def _rate(generator, x, batch_size=128):
    it = generator.flow(x, batch_size=batch_size, shuffle=True, seed=0)
    start = time.perf_counter()
    for _ in range(len(it)):
        next(it)
    return len(x) / (time.perf_counter() - start)


def run(images=5000, keras_images=500, threads=None):
    """Return {"pycnn": images/s, "keras": images/s or None}."""
    from pycnn import _engine
    from pycnn.preprocessing.image import ImageDataGenerator

    if threads is not None:
        _engine.set_num_threads(threads)
    x = _images(images)
    result = {"pycnn": _rate(ImageDataGenerator(**CONFIG), x), "keras": None,
              "threads": _engine.get_num_threads()}
    if keras_images < 1:
        result["keras_error"] = "skipped (--keras-images 0)"
        return result
    try:
        os.environ.setdefault("KERAS_BACKEND", "torch")
        import warnings
        from keras.src.legacy.preprocessing.image import ImageDataGenerator as KerasGenerator
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result["keras"] = _rate(KerasGenerator(**CONFIG), x[:keras_images])
    except Exception as exc:   # Keras is optional: any import or runtime failure just skips it
        result["keras_error"] = f"{type(exc).__name__}: {exc}"
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--keras-images", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    r = run(args.images, args.keras_images, args.threads)
    print(f"pycnn ImageDataGenerator ({r['threads']} threads): {r['pycnn']:,.0f} images/s (32x32x3)")
    if r["keras"]:
        print(f"Keras legacy ImageDataGenerator:       {r['keras']:,.0f} images/s")
        print(f"speed-up: {r['pycnn'] / r['keras']:.1f}x")
    else:
        print(f"Keras legacy ImageDataGenerator: not run ({r.get('keras_error', 'not installed')})")


if __name__ == "__main__":
    main()
