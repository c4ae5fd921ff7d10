"""``python -m pycnn.demo``: edge detection on a real photo, then LeNet-5's shapes and parameters.

Part 1 filters the shipped sample photo with the lecture's hand-made edge kernels — what
one filter of a first convolutional layer does — and draws the Sobel edge map as ASCII
art. Part 2 walks Tutorial 1's LeNet-5 through its layers twice: with the output-size
formula (:func:`pycnn.geometry.conv_output_size`) and with real ``pycnn.ops`` calls on
random data, printing the shapes and the parameter counts of each layer.

``--out DIR`` also saves the photo and its edge maps as PNG files (needs matplotlib).
"""

import argparse
import pathlib
import sys

import numpy as np

from pycnn import filters, ops
from pycnn.geometry import conv_output_size
from pycnn.imaging import correlate2d, sample_image

# Darkest to brightest; a space is "no edge".
ASCII_RAMP = " .:-=+*#%@"


def ascii_art(image, width=64):
    """Render a non-negative map as text, `width` characters wide.

    Each character covers a block of pixels (twice as tall as wide, since terminal
    characters are about twice as tall as they are wide) and shows the block's mean,
    scaled so the 99th percentile of the block means is the brightest character.
    """
    h, w = image.shape
    bw = max(1, w // width)
    bh = 2 * bw
    rows, cols = h // bh, w // bw
    blocks = image[:rows * bh, :cols * bw].reshape(rows, bh, cols, bw).mean(axis=(1, 3))
    top = np.percentile(blocks, 99)
    scaled = np.clip(blocks / top, 0.0, 1.0) if top > 0 else np.zeros_like(blocks)
    levels = np.round(scaled * (len(ASCII_RAMP) - 1)).astype(int)
    return ["".join(ASCII_RAMP[v] for v in row) for row in levels]


def edge_detection(image):
    """Part 1: the lecture's edge kernels on the sample photo; returns maps to save."""
    pixels = image.astype(np.float64)
    print("1. Edge detection with hand-made 3x3 kernels (what one Conv2D filter computes)")
    print("   Lecture example: a 6x6 image, left half 10, right half 0, filtered with [[1, 0, -1]] x 3 "
          "('valid'):")
    toy = np.zeros((6, 6))
    toy[:, :3] = 10
    for row in correlate2d(toy, filters.vertical_edge(), mode="valid"):
        print("     " + " ".join(f"{v:3.0f}" for v in row))
    print("   -> the bright stripe of 30s marks the vertical edge.")
    print()
    print("   On the sample photo ('valid' cross-correlation, pixel values 0-255):")
    print(f"   {'kernel':<16} {'output shape':<14} {'mean |response|':>16} {'max |response|':>15}")
    maps = {}
    for name in ["vertical_edge", "horizontal_edge", "sobel_x", "sobel_y", "laplacian"]:
        response = filters.apply(pixels, name, mode="valid")
        maps[name] = np.abs(response)
        print(f"   {name:<16} {str(response.shape):<14} {np.abs(response).mean():16.2f} "
              f"{np.abs(response).max():15.1f}")
    edges = filters.edge_map(image, method="sobel")
    maps["sobel_magnitude"] = edges
    print(f"   {'sobel magnitude':<16} {str(edges.shape):<14} {edges.mean():16.2f} {edges.max():15.1f}"
          "   (sqrt(gx^2 + gy^2), same size)")
    print()
    lines = ascii_art(edges)
    print(f"   Sobel edge map, {len(lines[0])} x {len(lines)} characters (brighter character = stronger edge):")
    for line in lines:
        print("   |" + line + "|")
    print()
    return maps


def lenet_walkthrough(rng):
    """Part 2: LeNet-5 (Tutorial 1) shapes by formula and by real ops calls, with parameter counts."""
    print("2. LeNet-5 (Tutorial 1) on a 28x28x1 image: output shapes by formula and by running pycnn.ops")
    print(f"   {'layer':<28} {'formula':<30} {'shape by formula':<17} {'shape from ops':<15} {'params':>7}")
    x = rng.standard_normal((1, 28, 28, 1)).astype(np.float32)
    shape = (28, 28, 1)
    total = 0
    all_agree = True

    def report(layer, formula, expected, actual, params):
        nonlocal total, all_agree
        total += params
        agree = tuple(expected) == tuple(actual)
        all_agree &= agree
        print(f"   {layer:<28} {formula:<30} {str(tuple(expected)):<17} {str(tuple(actual)):<15} {params:>7,}"
              + ("" if agree else "   MISMATCH"))

    def conv(filters_, size, padding):
        nonlocal x, shape
        kernel = rng.standard_normal((size, size, shape[2], filters_)).astype(np.float32) * 0.1
        bias = np.zeros(filters_, np.float32)
        h, w = conv_output_size(shape[:2], size, padding=padding)
        formula = (f"ceil({shape[0]}/1) = {h}" if padding == "same"
                   else f"({shape[0]} - {size})/1 + 1 = {h}")
        x = ops.conv2d(x, kernel, bias, padding=padding)
        shape = (h, w, filters_)
        report(f"Conv2D {filters_}, {size}x{size}, {padding}", formula, shape, x.shape[1:],
               kernel.size + bias.size)

    def pool(size):
        nonlocal x, shape
        h, w = conv_output_size(shape[:2], size, strides=size)
        x = ops.avg_pool2d(x, size)
        formula = f"({shape[0]} - {size})/{size} + 1 = {h}"
        shape = (h, w, shape[2])
        report(f"AveragePooling2D {size}x{size}", formula, shape, x.shape[1:], 0)

    def dense(units):
        nonlocal x, shape
        kernel = rng.standard_normal((shape[0], units)).astype(np.float32) * 0.1
        bias = np.zeros(units, np.float32)
        x = ops.dense(x, kernel, bias)
        formula = f"{shape[0]} x {units} + {units}"
        shape = (units,)
        report(f"Dense {units}", formula, shape, x.shape[1:], kernel.size + bias.size)

    conv(6, 5, "same")
    pool(2)
    conv(16, 5, "valid")
    pool(2)
    flat = int(np.prod(shape))
    x = x.reshape(x.shape[0], -1)
    formula = " x ".join(str(v) for v in shape) + f" = {flat}"
    shape = (flat,)
    report("Flatten", formula, shape, x.shape[1:], 0)
    dense(120)
    dense(84)
    dense(10)
    print(f"   Total params: {total:,}")
    print("   Formula and ops agree on every shape." if all_agree else "   Formula and ops DISAGREE (see above).")
    return all_agree


def save_pngs(image, maps, out_dir):
    """Write the photo and the edge maps as grayscale PNGs, if matplotlib is installed."""
    try:
        from matplotlib import image as mpimage  # no pyplot: works without a display
    except ImportError:
        print(f"Note: matplotlib is not installed, so no PNG files were written to {out_dir} "
              "(pip install matplotlib to get them).")
        return []
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, array in [("sample_image", image.astype(np.float64))] + list(maps.items()):
        path = out_dir / f"{name}.png"
        mpimage.imsave(path, array, cmap="gray")
        written.append(path)
    print(f"Saved {len(written)} PNG files to {out_dir}: " + ", ".join(p.name for p in written))
    return written


def train_lenet(epochs):
    """Tutorial 1's cell, unchanged but for the import: LeNet-5 trained on the bundled MNIST sample."""
    from pycnn import datasets, utils
    from pycnn.layers import AveragePooling2D, Conv2D, Dense, Flatten
    from pycnn.models import Sequential

    print("3. Tutorial 1: LeNet-5 trained on the bundled MNIST sample (4,000 train / 1,000 test digits)")
    (x_train, y_train), (x_test, y_test) = datasets.mnist.load_data(subset="sample")
    x_train = (x_train / 255.0).astype("float32")[..., None]
    x_test = (x_test / 255.0).astype("float32")[..., None]
    utils.set_random_seed(0)
    model = Sequential()
    model.add(Conv2D(filters=6, kernel_size=(5, 5), activation="relu", input_shape=(28, 28, 1), padding="same"))
    model.add(AveragePooling2D(pool_size=(2, 2), strides=2))
    model.add(Conv2D(16, (5, 5), activation="relu", padding="valid"))
    model.add(AveragePooling2D(pool_size=(2, 2), strides=2))
    model.add(Flatten())
    model.add(Dense(120, activation="relu"))
    model.add(Dense(84, activation="relu"))
    model.add(Dense(10, activation="softmax"))
    model.summary()
    model.compile(optimizer="Adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, utils.to_categorical(y_train, 10), batch_size=128, epochs=epochs, verbose=2, shuffle=True)
    loss, accuracy = model.evaluate(x_test, utils.to_categorical(y_test, 10), verbose=0)
    predicted = model.predict(x_test[:12], verbose=0).argmax(axis=1)
    print(f"   test accuracy on the 1,000 sample digits: {accuracy:.4f} (loss {loss:.4f})")
    print(f"   first 12 test digits: {' '.join(map(str, y_test[:12]))}")
    print(f"   predicted:            {' '.join(map(str, predicted))}")
    return accuracy


def main(argv=None):
    """Run the demo; returns 0 on success (the process exit code)."""
    parser = argparse.ArgumentParser(prog="python -m pycnn.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", metavar="DIR", help="also save the photo and its edge maps as PNGs here "
                                                     "(needs matplotlib)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs for the LeNet-5 training part "
                                                                   "(0 skips it; default 5)")
    args = parser.parse_args(argv)
    if args.epochs < 0:
        parser.error(f"--epochs must be >= 0; got {args.epochs}")

    image = sample_image()
    print("pycnn demo")
    print(f"Sample image: 'cameraman' (CC0, Lav Varshney), shape {image.shape}, dtype {image.dtype}, "
          f"pixel values {image.min()}..{image.max()}")
    print()
    maps = edge_detection(image)
    agree = lenet_walkthrough(np.random.default_rng(0))
    if args.epochs:
        print()
        train_lenet(args.epochs)
    if args.out is not None:
        print()
        save_pngs(image, maps, args.out)
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
