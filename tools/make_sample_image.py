"""Regenerate pycnn/data/camera_128.npz, the sample photo shipped with pycnn.

Source: camera.png (512 x 512, 8-bit grayscale, CC0 by the photographer Lav Varshney,
from scikit-image's data folder), as stored in the project's shared data folder.
The image is reduced to 128 x 128 by averaging each 4 x 4 block of pixels (no
cropping, no other change) and saved as a compressed NumPy archive holding one
uint8 array named "image", so pycnn can load it with numpy alone
(numpy.load(..., allow_pickle=False)). Pillow is needed only here, to decode the PNG.

Usage: python tools/make_sample_image.py [SOURCE_PNG] [OUTPUT_NPZ]
"""

import hashlib
import pathlib
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = pathlib.Path("/work/shared/data/images/camera.png")
DEFAULT_OUTPUT = REPO / "pycnn" / "data" / "camera_128.npz"
# SHA-256 of camera.png as listed in the shared data README; guards against a different file.
SOURCE_SHA256 = "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a"
BLOCK = 4


def downscale(image, block):
    """Average non-overlapping block x block tiles; round half up to uint8."""
    h, w = image.shape
    if h % block or w % block:
        raise ValueError(f"make_sample_image: image size must be a multiple of {block}; got {image.shape}")
    tiles = image.astype(np.float64).reshape(h // block, block, w // block, block)
    return np.floor(tiles.mean(axis=(1, 3)) + 0.5).astype(np.uint8)


def main(argv=None):
    args = sys.argv[1:] if argv is None else list(argv)
    source = pathlib.Path(args[0]) if args else DEFAULT_SOURCE
    output = pathlib.Path(args[1]) if len(args) > 1 else DEFAULT_OUTPUT

    from PIL import Image  # only this one-off step needs Pillow

    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if digest != SOURCE_SHA256:
        raise SystemExit(f"make_sample_image: {source} has SHA-256 {digest}, expected {SOURCE_SHA256}")
    with Image.open(source) as img:
        if img.mode != "L":
            raise SystemExit(f"make_sample_image: expected an 8-bit grayscale PNG; got mode {img.mode!r}")
        pixels = np.asarray(img, dtype=np.uint8)
    small = downscale(pixels, BLOCK)
    output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(output, image=small)
    print(f"wrote {output}: shape {small.shape}, dtype {small.dtype}, "
          f"sha256 of pixels {hashlib.sha256(small.tobytes()).hexdigest()}")


if __name__ == "__main__":
    main()
