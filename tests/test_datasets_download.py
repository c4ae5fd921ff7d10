"""Downloads against a local HTTP server on 127.0.0.1, and the CIFAR-10 binary archive reader.

The server serves real MNIST files from the shared data folder (or small generated IDX
files when it is absent); every case checks that nothing is written outside the cache
and that no temporary ``*.part`` file is left behind.
"""
import gzip
import hashlib
import http.server
import io
import os
import struct
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from pycnn.datasets import IntegrityError, cifar10, mnist
from pycnn.datasets._download import RemoteFile

# The shared data folder sits next to the repository (../shared/data); PYCNN_SHARED_DATA overrides.
SHARED = Path(os.environ.get("PYCNN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


class _Handler(http.server.BaseHTTPRequestHandler):
    routes = {}   # path -> (body, behaviour)

    def do_GET(self):
        if self.path not in self.routes:
            self.send_error(404)
            return
        body, behaviour = self.routes[self.path]
        self.send_response(200)
        if behaviour == "truncated":          # a complete response that is simply too short
            body = body[: len(body) // 2]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if behaviour == "interrupted":        # promise everything, close halfway
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass   # clients that hang up early (after a size mismatch) are expected


@pytest.fixture
def server():
    _Handler.routes = {}
    httpd = _QuietServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """tmp_path/cache is the cache; everything else under tmp_path must stay untouched."""
    monkeypatch.setenv("PYCNN_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PYCNN_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outside").mkdir()
    return tmp_path


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*"))


def _assert_clean(root):
    """Only the cache folder was added under root, and it holds no temporary files."""
    outside = [p for p in _tree(root) if not p.startswith("cache") and p != "outside"]
    assert outside == [], f"written outside the cache: {outside}"
    assert not list((Path(root) / "outside").iterdir())
    parts = [p for p in _tree(Path(root) / "cache") if p.endswith(".part")] if (Path(root) / "cache").exists() else []
    assert parts == []


def _mnist_test_files():
    """Real MNIST test files when available, else small valid IDX files (their own digests)."""
    names = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    if (SHARED / "mnist").is_dir():
        return {n: (SHARED / "mnist" / n).read_bytes() for n in names}, True
    rng = np.random.default_rng(0)
    images = struct.pack(">IIII", 0x803, 5, 28, 28) + rng.integers(0, 256, 5 * 784, dtype=np.uint8).tobytes()
    labels = struct.pack(">II", 0x801, 5) + bytes([1, 2, 3, 4, 5])
    return {names[0]: gzip.compress(images), names[1]: gzip.compress(labels)}, False


def _serve_mnist(monkeypatch, base, files, real, behaviour=None, corrupt=None):
    specs = {}
    for name, spec in mnist.FILES.items():
        if name in files:
            body = files[name]
            if corrupt == name:
                body = body[:-10] + bytes(10)
            _Handler.routes[f"/mnist/{name}"] = (body, behaviour if corrupt in (None, name) else None)
            sha = spec.sha256 if real else hashlib.sha256(files[name]).hexdigest()
            size = spec.size if real else len(files[name])
            specs[name] = RemoteFile(name, (f"{base}/mnist/{name}",), sha256=sha, size=size)
        else:
            specs[name] = spec
    monkeypatch.setattr(mnist, "FILES", specs)


def test_download_success_is_verified_cached_and_reused(server, sandbox, monkeypatch, capsys):
    httpd, base = server
    files, real = _mnist_test_files()
    _serve_mnist(monkeypatch, base, files, real)
    x, y = mnist.load_data(subset="test")
    assert x.dtype == np.uint8 and x.shape[1:] == (28, 28) and len(x) == len(y)
    if real:
        assert x.shape == (10000, 28, 28)
    cached = sandbox / "cache" / "mnist" / "t10k-images-idx3-ubyte.gz"
    assert cached.read_bytes() == files["t10k-images-idx3-ubyte.gz"]
    assert "Downloading mnist/t10k-images-idx3-ubyte.gz" in capsys.readouterr().err   # progress output
    _assert_clean(sandbox)
    # Second load comes from the cache even with the server gone.
    _Handler.routes.clear()
    x2, _ = mnist.load_data(subset="test")
    np.testing.assert_array_equal(x, x2)


def test_checksum_mismatch_leaves_nothing(server, sandbox, monkeypatch):
    httpd, base = server
    files, real = _mnist_test_files()
    _serve_mnist(monkeypatch, base, files, real, corrupt="t10k-labels-idx1-ubyte.gz")
    with pytest.raises(IntegrityError, match=r"t10k-labels-idx1-ubyte.gz.*sha256 .* expected, got .*temporary file was deleted"):
        mnist.load_data(subset="test")
    assert not (sandbox / "cache" / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()
    _assert_clean(sandbox)


def test_truncated_transfer_is_rejected(server, sandbox, monkeypatch):
    httpd, base = server
    files, real = _mnist_test_files()
    _serve_mnist(monkeypatch, base, files, real, behaviour="truncated", corrupt=None)
    with pytest.raises(IntegrityError, match=r"(size|bytes).*expected|expected .*bytes"):
        mnist.load_data(subset="test")
    assert not (sandbox / "cache" / "mnist" / "t10k-images-idx3-ubyte.gz").exists()
    _assert_clean(sandbox)


def test_interrupted_transfer_is_a_connection_error(server, sandbox, monkeypatch):
    httpd, base = server
    files, real = _mnist_test_files()
    _serve_mnist(monkeypatch, base, files, real, behaviour="interrupted")
    with pytest.raises(ConnectionError) as info:
        mnist.load_data(subset="test")
    msg = str(info.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and "Place each file at" in msg
    assert str(sandbox / "cache" / "mnist") in msg
    assert not (sandbox / "cache" / "mnist" / "t10k-images-idx3-ubyte.gz").exists()
    _assert_clean(sandbox)


def test_offline_error_names_every_missing_file(sandbox, monkeypatch):
    monkeypatch.setattr(mnist, "FILES", {
        name: RemoteFile(name, ("http://127.0.0.1:9/" + name,), spec.sha256, spec.md5, spec.size)
        for name, spec in mnist.FILES.items()})
    with pytest.raises(ConnectionError) as info:
        mnist.load_data()
    msg = str(info.value)
    for name, spec in mnist.FILES.items():
        assert name in msg and spec.sha256 in msg
    _assert_clean(sandbox)


def test_corrupt_cached_file_is_replaced_by_a_fresh_download(server, sandbox, monkeypatch):
    httpd, base = server
    files, real = _mnist_test_files()
    _serve_mnist(monkeypatch, base, files, real)
    folder = sandbox / "cache" / "mnist"
    folder.mkdir(parents=True)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    x, y = mnist.load_data(subset="test")
    assert (folder / "t10k-labels-idx1-ubyte.gz").read_bytes() == files["t10k-labels-idx1-ubyte.gz"]


def test_unwritable_cache_names_pycnn_home(sandbox, monkeypatch):
    if os.geteuid() == 0:
        blocker = sandbox / "blocker"
        blocker.write_text("a file where the cache folder should be")
        monkeypatch.setenv("PYCNN_HOME", str(blocker / "cache"))
    else:
        ro = sandbox / "ro"
        ro.mkdir(mode=0o500)
        monkeypatch.setenv("PYCNN_HOME", str(ro / "cache"))
    monkeypatch.setattr(mnist, "FILES", {
        name: RemoteFile(name, ("http://127.0.0.1:9/" + name,), spec.sha256, spec.md5, spec.size)
        for name, spec in mnist.FILES.items()})
    with pytest.raises(PermissionError, match="PYCNN_HOME"):
        mnist.load_data(subset="test")


# ---------------------------------------------------------- CIFAR-10 archives
def _batch(n, first_label, rng):
    """n records in the official binary format: label byte + R, G, B planes of 32x32."""
    labels = (np.arange(n) + first_label) % 10
    planes = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    records = np.concatenate([labels.astype(np.uint8)[:, None], planes.reshape(n, -1)], axis=1)
    return records.tobytes(), labels, planes.transpose(0, 2, 3, 1)


def _add(tf, name, data=b"", kind=tarfile.REGTYPE, linkname="", size=None):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = len(data) if size is None else size
    tf.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def _archive(path, replace=None, extra=()):
    """An official-layout binary archive with 3 records per batch; ``replace`` swaps one member."""
    rng = np.random.default_rng(1)
    expected = {}
    with tarfile.open(path, "w:gz", compresslevel=1) as tf:
        _add(tf, "cifar-10-batches-bin/batches.meta.txt", b"airplane\nautomobile\n")
        for i, member in enumerate(cifar10.TRAIN_MEMBERS + cifar10.TEST_MEMBERS):
            name = f"cifar-10-batches-bin/{member}"
            data, labels, images = _batch(3, i, rng)
            expected[member] = (images, labels)
            if replace is not None and replace[0] == member:
                replace[1](tf, name)
            else:
                _add(tf, name, data)
        for adder in extra:
            adder(tf)
    return expected


def _pin(monkeypatch, path):
    """Pin the archive digest to a test archive (the official one is checked the same way)."""
    body = Path(path).read_bytes()
    monkeypatch.setattr(cifar10, "ARCHIVE", RemoteFile(
        "cifar-10-binary.tar.gz", (), md5=hashlib.md5(body).hexdigest(), size=len(body)))


def test_cifar_binary_archive_parser_matches_the_official_layout(tmp_path, monkeypatch):
    path = tmp_path / "cifar-10-binary.tar.gz"
    expected = _archive(path)
    _pin(monkeypatch, path)
    (x_train, y_train), (x_test, y_test) = cifar10.load_data(path=path)
    assert x_train.shape == (15, 32, 32, 3) and y_train.shape == (15, 1) and y_train.dtype == np.uint8
    want_x = np.concatenate([expected[m][0] for m in cifar10.TRAIN_MEMBERS])
    want_y = np.concatenate([expected[m][1] for m in cifar10.TRAIN_MEMBERS])
    np.testing.assert_array_equal(x_train, want_x)
    np.testing.assert_array_equal(y_train[:, 0], want_y)
    np.testing.assert_array_equal(x_test, expected["test_batch.bin"][0])
    # Independent byte-level check: record 1 of data_batch_2 = archive image 4; the green
    # plane starts 1 + 1024 bytes into the record.
    with tarfile.open(path) as tf:
        raw = tf.extractfile("cifar-10-batches-bin/data_batch_2.bin").read()
    record = raw[3073:2 * 3073]
    assert record[0] == y_train[4, 0]
    assert record[1 + 1024 + 5 * 32 + 7] == x_train[4, 5, 7, 1]
    assert record[1 + 2048 + 31 * 32 + 0] == x_train[4, 31, 0, 2]
    with pytest.raises(IntegrityError, match="md5"):
        monkeypatch.setattr(cifar10, "ARCHIVE", RemoteFile("cifar-10-binary.tar.gz", (), md5="0" * 32))
        cifar10.load_data(path=path)


HOSTILE = {
    "dotdot": dict(extra=[lambda tf: _add(tf, "../evil", b"pwned")]),
    "absolute": dict(extra=[lambda tf: _add(tf, "/tmp/pycnn_abs_evil", b"pwned")]),
    "symlink": dict(replace=("data_batch_1.bin",
                             lambda tf, name: _add(tf, name, kind=tarfile.SYMTYPE, linkname="/etc/passwd"))),
    "hardlink": dict(replace=("data_batch_2.bin",
                              lambda tf, name: _add(tf, name, kind=tarfile.LNKTYPE, linkname="../x"))),
    "fifo": dict(replace=("test_batch.bin", lambda tf, name: _add(tf, name, kind=tarfile.FIFOTYPE))),
    "huge": dict(replace=("data_batch_3.bin",
                          lambda tf, name: _add(tf, name, bytes(cifar10.MAX_BATCH_BYTES + cifar10.RECORD_BYTES)))),
    "ragged": dict(replace=("data_batch_4.bin", lambda tf, name: _add(tf, name, bytes(3073 * 2 + 5)))),
    "missing": dict(replace=("data_batch_5.bin", lambda tf, name: None)),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_downloaded_into_the_cache_is_refused(case, server, sandbox, monkeypatch):
    httpd, base = server
    built = sandbox / "outside" / "build.tar.gz"
    _archive(built, **HOSTILE[case])
    body = built.read_bytes()
    built.unlink()
    _Handler.routes["/cifar-10-binary.tar.gz"] = (body, None)
    monkeypatch.setattr(cifar10, "ARCHIVE", RemoteFile(
        "cifar-10-binary.tar.gz", (f"{base}/cifar-10-binary.tar.gz",),
        md5=hashlib.md5(body).hexdigest(), size=len(body)))
    if case in ("dotdot", "absolute"):
        (x_train, _), _ = cifar10.load_data()   # unknown members are ignored, never written
        assert x_train.shape == (15, 32, 32, 3)
    else:
        pattern = {"symlink": "must be a regular file; got a symlink",
                   "hardlink": "must be a regular file; got a hard link",
                   "fifo": "must be a regular file; got a special file",
                   "huge": "must be at most 30,730,000 bytes",
                   "ragged": "positive multiple of 3073",
                   "missing": "must contain cifar-10-batches-bin/data_batch_5.bin"}[case]
        with pytest.raises(IntegrityError, match=pattern):
            cifar10.load_data()
    _assert_clean(sandbox)
    assert not Path("/tmp/pycnn_abs_evil").exists() and not (sandbox.parent / "evil").exists()
    assert _tree(sandbox / "cache") == ["cifar10", "cifar10/cifar-10-binary.tar.gz"]


def test_truncated_archive_is_an_integrity_error(tmp_path, monkeypatch):
    path = tmp_path / "cifar-10-binary.tar.gz"
    _archive(path)
    path.write_bytes(path.read_bytes()[:-200])
    _pin(monkeypatch, path)    # even with a matching digest the parser refuses it
    with pytest.raises(IntegrityError, match="not a readable tar.gz archive|truncated|must contain"):
        cifar10.load_data(path=path)
