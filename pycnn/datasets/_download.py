"""Finding, verifying and downloading dataset files.

A dataset file is looked up, in this order, in
  1. an explicit ``path=`` (a file or a directory; authoritative: nothing else is tried),
  2. the directory named by ``PYCNN_DATA_DIR``,
  3. the cache (``$PYCNN_HOME``, else ``$XDG_CACHE_HOME/pycnn``, else ``~/.cache/pycnn``),
  4. a download into the cache.
Inside a directory a file may sit directly or in the dataset's sub-folder
(``<dir>/mnist/train-images-idx3-ubyte.gz``, the layout of the shared data folder).

Every file with a published digest is verified before anything parses it.  A download
streams into a temporary file in the cache folder, is hashed while streaming and is
moved into place with ``os.replace`` only when the digest matches; on any failure the
temporary file is deleted, so the cache never holds a half-written file.
"""
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pycnn.errors import IntegrityError

_CHUNK = 1 << 16
_TIMEOUT_S = 30


@dataclass(frozen=True)
class RemoteFile:
    """One dataset file: its name, where it is published and how to verify it.

    ``sha256`` is the pinned digest; ``md5`` is used only where the publisher gives no
    sha256 (Fashion-MNIST's training files, the CIFAR-10 binary archive).  ``size`` is
    the exact byte count when known.
    """
    name: str
    urls: tuple
    sha256: str = None
    md5: str = None
    size: int = None

    def digest_text(self):
        if self.sha256:
            return f"sha256 {self.sha256}"
        if self.md5:
            return f"md5 {self.md5}"
        return "no published checksum"


def cache_dir():
    """The pycnn cache root: ``$PYCNN_HOME``, else ``$XDG_CACHE_HOME/pycnn``, else ``~/.cache/pycnn``."""
    home = os.environ.get("PYCNN_HOME")
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "pycnn"
    return Path.home() / ".cache" / "pycnn"


def _candidates(directory, subdir, name):
    directory = Path(directory).expanduser()
    return [directory / subdir / name, directory / name]


def _hash_file(path):
    import hashlib   # hashlib, like the network modules below, loads only when a file is checked
    sha, md5 = hashlib.sha256(), hashlib.md5()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), md5.hexdigest(), size


def _mismatch(spec, sha, md5, size):
    """The reason a file with these digests is not ``spec``, or None when it matches."""
    if spec.size is not None and size != spec.size:
        return f"size {spec.size:,} bytes expected, got {size:,}"
    if spec.sha256 and sha != spec.sha256:
        return f"sha256 {spec.sha256} expected, got {sha}"
    if spec.md5 and md5 != spec.md5:
        return f"md5 {spec.md5} expected, got {md5}"
    return None


def verify(dataset, spec, path):
    """Raise IntegrityError unless the file at ``path`` matches the pinned digest and size."""
    sha, md5, size = _hash_file(path)
    reason = _mismatch(spec, sha, md5, size)
    if reason:
        raise IntegrityError(
            f"{dataset}: {spec.name} at {path} is corrupt or not the official file: {reason} "
            f"(delete or replace it; a damaged copy is never parsed)")


class _Progress:
    """A one-line download bar on stderr, redrawn at most 10 times a second."""

    def __init__(self, label, total):
        self.label, self.total = label, total
        self.done = 0
        self.last = 0.0
        self.tty = sys.stderr.isatty()
        if not self.tty:
            size = f"{total / 1e6:.1f} MB" if total else "unknown size"
            print(f"Downloading {label} ({size})", file=sys.stderr, flush=True)

    def update(self, n):
        self.done += n
        now = time.monotonic()
        if self.tty and now - self.last >= 0.1:
            self.last = now
            self._draw()

    def _draw(self):
        if self.total:
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(30 * frac)
            text = (f"\r{self.label} [{bar:<30}] {100 * frac:5.1f}% "
                    f"{self.done / 1e6:.1f}/{self.total / 1e6:.1f} MB")
        else:
            text = f"\r{self.label} {self.done / 1e6:.1f} MB"
        sys.stderr.write(text)
        sys.stderr.flush()

    def close(self):
        if self.tty:
            self._draw()
            sys.stderr.write("\n")
        else:
            print(f"Downloaded {self.label} ({self.done / 1e6:.1f} MB)", file=sys.stderr, flush=True)


def _make_cache_folder(folder):
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise PermissionError(
            f"datasets: cache folder {folder} must be writable; got {exc.strerror or exc} "
            f"(set PYCNN_HOME to a writable folder)") from exc
    if not os.access(folder, os.W_OK):
        raise PermissionError(
            f"datasets: cache folder {folder} must be writable; got a read-only folder "
            f"(set PYCNN_HOME to a writable folder)")


def download(dataset, spec, url, dest, progress=True):
    """Stream ``url`` into ``dest`` (a path in the cache), verifying ``spec`` on the way.

    Raises IntegrityError for a digest or size mismatch and ConnectionError when the
    transfer fails; in both cases nothing is left in the cache.
    """
    # The network stack (ssl alone is several ms) is imported here, not with pycnn.datasets.
    import hashlib
    import http.client
    import ssl
    import tempfile
    import urllib.error
    import urllib.request
    network_errors = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError,
                      ssl.SSLError)
    dest = Path(dest)
    _make_cache_folder(dest.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    sha, md5, received = hashlib.sha256(), hashlib.md5(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as resp:
                    length = resp.headers.get("Content-Length")
                    length = int(length) if length and length.isdigit() else None
                    if spec.size is not None and length is not None and length != spec.size:
                        raise IntegrityError(
                            f"{dataset}: {spec.name} from {url} has {length:,} bytes; "
                            f"expected {spec.size:,} (wrong file or mirror)")
                    bar = _Progress(f"{dataset}/{spec.name}", length) if progress else None
                    while chunk := resp.read(_CHUNK):
                        sha.update(chunk)
                        md5.update(chunk)
                        out.write(chunk)
                        received += len(chunk)
                        if spec.size is not None and received > spec.size:
                            raise IntegrityError(
                                f"{dataset}: {spec.name} from {url} is larger than the "
                                f"expected {spec.size:,} bytes; the temporary file was deleted")
                        if bar:
                            bar.update(len(chunk))
            except network_errors as exc:   # a full disk etc. propagates as itself
                reason = getattr(exc, "reason", None) or exc
                raise ConnectionError(
                    f"{dataset}: cannot download {url} ({type(exc).__name__}: {reason}; "
                    f"transfer stopped after {received:,} bytes)") from exc
            if length is not None and received != length:
                raise ConnectionError(
                    f"{dataset}: download of {url} was interrupted: {received:,} of {length:,} "
                    f"bytes received; the temporary file was deleted")
            if bar:
                bar.close()
            out.flush()
            os.fsync(out.fileno())
        reason = _mismatch(spec, sha.hexdigest(), md5.hexdigest(), received)
        if reason:
            raise IntegrityError(
                f"{dataset}: {spec.name} from {url}: {reason}; the temporary file was deleted")
        # os.replace swaps the directory entry, so a symlink planted at dest is replaced,
        # never followed.
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return dest


def locate(dataset, subdir, specs, path=None, progress=True):
    """Find (downloading if needed) every file of ``specs``; returns ``{name: Path}``.

    With an explicit ``path`` only that file or folder is searched.  Otherwise the
    ``PYCNN_DATA_DIR`` folder, then the cache, then the network are tried.  A file that
    cannot be found or downloaded is reported with its checksum and where to put it.
    """
    found, missing = {}, []
    cache_sub = cache_dir() / subdir
    for spec in specs:
        if path is not None:
            p = Path(path).expanduser()
            options = [p] if p.is_file() and p.name == spec.name else _candidates(p, subdir, spec.name)
            hit = next((c for c in options if c.is_file()), None)
            if hit is None:
                missing.append(spec)
                continue
            verify(dataset, spec, hit)
            found[spec.name] = hit
            continue
        data_dir = os.environ.get("PYCNN_DATA_DIR")
        hit = None
        if data_dir:
            hit = next((c for c in _candidates(data_dir, subdir, spec.name) if c.is_file()), None)
            if hit is not None:
                verify(dataset, spec, hit)
        if hit is None:
            cached = cache_sub / spec.name
            if cached.is_file():
                try:
                    verify(dataset, spec, cached)
                    hit = cached
                except IntegrityError:
                    # A damaged cache entry is replaced by a fresh download (Keras does the same).
                    os.unlink(cached)
        if hit is None:
            missing.append(spec)
        else:
            found[spec.name] = hit

    if missing and path is not None:
        names = "; ".join(f"{s.name} ({s.digest_text()})" for s in missing)
        raise FileNotFoundError(
            f"{dataset}: path={str(path)!r} must hold {names}; got no such file there "
            f"(looked in {path} and {Path(path) / subdir}; omit path= to use PYCNN_DATA_DIR, "
            f"the cache or a download)")

    failures = []
    for spec in missing:
        last = None
        for url in spec.urls:
            try:
                found[spec.name] = download(dataset, spec, url, cache_sub / spec.name, progress)
                last = None
                break
            except (ConnectionError, IntegrityError) as exc:
                last = exc
        if last is not None:
            failures.append((spec, last))

    if failures:
        integrity = [exc for _, exc in failures if isinstance(exc, IntegrityError)]
        lines = "\n".join(
            f"  - {spec.name} ({spec.digest_text()}): {exc}" for spec, exc in failures)
        help_text = (
            f"{dataset}: could not obtain {len(failures)} file(s):\n{lines}\n"
            f"Place each file at {cache_sub}/<name> (or in $PYCNN_DATA_DIR/{subdir}/, or pass "
            f"path=) and retry.")
        if integrity:
            raise IntegrityError(help_text)
        raise ConnectionError(help_text)
    return found
