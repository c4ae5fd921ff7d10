"""Fashion-MNIST (Xiao, Rasul, Vollgraf 2017; MIT licence, (c) Zalando SE).

``load_data()`` returns Keras's arrays: ``(x_train, y_train), (x_test, y_test)``, uint8,
``(60000, 28, 28)`` / ``(60000,)`` and ``(10000, 28, 28)`` / ``(10000,)``.

The shared data folder holds only the test set: ``load_data(subset="test")`` loads it
alone; ``load_data()`` then needs the training files too (cache or download) and, offline,
names each missing file with its checksum and where to put it.
"""
from pycnn.datasets._download import RemoteFile
from pycnn.datasets._idx import load_idx_dataset

class_names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

_MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

# The test files have sha256 digests of the official files (shared data README); for the
# training files the publisher gives only md5 (fashion-mnist README), so md5 + size pin them.
FILES = {s.name: s for s in (
    RemoteFile("train-images-idx3-ubyte.gz", (_MIRROR + "train-images-idx3-ubyte.gz",),
               md5="8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    RemoteFile("train-labels-idx1-ubyte.gz", (_MIRROR + "train-labels-idx1-ubyte.gz",),
               md5="25c81989df183df01b3e8a0aad5dffbe"),
    RemoteFile("t10k-images-idx3-ubyte.gz", (_MIRROR + "t10k-images-idx3-ubyte.gz",),
               sha256="346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
               md5="bef4ecab320f06d8554ea6380940ec79", size=4422102),
    RemoteFile("t10k-labels-idx1-ubyte.gz", (_MIRROR + "t10k-labels-idx1-ubyte.gz",),
               sha256="67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
               md5="bb300cfdad3c16e7a12a480ee83cd310", size=5148),
)}


def load_data(path=None, subset=None):
    """Load Fashion-MNIST as ``(x_train, y_train), (x_test, y_test)`` (uint8, Keras shapes).

    Args:
        path: a folder holding the IDX ``.gz`` files (directly or in ``fashion-mnist/``).
            Default: ``$PYCNN_DATA_DIR``, then the cache, then a download.
        subset: ``None`` for both splits; ``"train"`` or ``"test"`` for that ``(x, y)`` pair
            only, needing only its two files (e.g. the test-only shared data folder).
    """
    return load_idx_dataset("fashion_mnist", "fashion-mnist", FILES, path, subset)
