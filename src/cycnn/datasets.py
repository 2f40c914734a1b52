"""MNIST and Fashion-MNIST loaders (the four original IDX gzip files, standard library + NumPy).

``load_mnist()`` / ``load_fashion_mnist()`` return ``((x_train, y_train), (x_test, y_test))``
with ``x`` uint8 of shape (N, 1, 28, 28) and ``y`` int64 of shape (N,).

Where the files are looked for, in order (the first folder holding all four files wins):

1. ``root`` (the folder holding the files), when given;
2. ``$CYCNN_DATA/<name>`` when the ``CYCNN_DATA`` environment variable is set;
3. ``~/.cache/cycnn/<name>``;

with ``<name>`` ``mnist`` or ``fashion_mnist``. When none holds all four and ``download`` is
true, the missing files are fetched from the mirrors (``MNIST_MIRRORS`` /
``FASHION_MNIST_MIRRORS``, tried in order, or ``mirrors=``), checked against their MD5
(``MNIST_MD5`` / ``FASHION_MNIST_MD5``) and written atomically into the first of those folders
(root if given, else ``$CYCNN_DATA/<name>`` if set, else ``~/.cache/cycnn/<name>``).

Every file is checked (gzip integrity, IDX magic number, dimensions, exact byte count, image and
label counts agree, labels 0..9); a damaged file raises ``ValueError`` naming it.
"""
import gzip
import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
import zlib

import numpy as np

__all__ = [
    "load_mnist", "load_fashion_mnist", "read_idx_images", "read_idx_labels", "DownloadError",
    "MNIST_MIRRORS", "FASHION_MNIST_MIRRORS", "MNIST_MD5", "FASHION_MNIST_MD5",
    "DOWNLOAD_TIMEOUT",
]

DATA_ENV = "CYCNN_DATA"

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

#: Base URLs tried in order; a file's URL is ``base + file name``.
MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]
FASHION_MNIST_MIRRORS = [
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
]

MNIST_MD5 = {
    TRAIN_IMAGES: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    TRAIN_LABELS: "d53e105ee54ea40749a09fcbcd1e9432",
    TEST_IMAGES: "9fb629c4189551a2d022fa330f9573f3",
    TEST_LABELS: "ec29112dd5afa0611ce80d1b7f02629c",
}
FASHION_MNIST_MD5 = {
    TRAIN_IMAGES: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    TRAIN_LABELS: "25c81989df183df01b3e8a0aad5dffbe",
    TEST_IMAGES: "bef4ecab320f06d8554ea6380940ec79",
    TEST_LABELS: "bb300cfdad3c16e7a12a480ee83fd310",
}

#: Seconds allowed for connecting and for each read of a download.
DOWNLOAD_TIMEOUT = 30.0
#: No dataset file comes near this; a larger response is refused rather than filling the disk.
MAX_DOWNLOAD_BYTES = 256 * 2 ** 20

IMAGE_MAGIC = 0x00000803
LABEL_MAGIC = 0x00000801
ROWS = COLS = 28
NUM_CLASSES = 10

_CHUNK = 1 << 20


class DownloadError(OSError, RuntimeError):
    """Every mirror failed for a file (network error, HTTP error or MD5 mismatch)."""


# ----------------------------------------------------------------------------------- reading

def _read_gzip(path):
    """Decompressed bytes of a gzip file; ValueError naming it when damaged or empty."""
    with open(path, "rb") as f:  # missing / unreadable file: the OSError itself is clear
        raw = f.read()
    if not raw:
        raise ValueError(f"{path}: empty file (0 bytes); delete it and load again")
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise ValueError(
            f"{path}: damaged or truncated gzip file ({type(exc).__name__}: {exc}); "
            "delete it and load again") from None


def _parse_idx(path, data, magic, ndim):
    """(dims, payload offset) after checking the IDX header and the exact byte count."""
    header = 4 + 4 * ndim
    if len(data) < 4:
        raise ValueError(f"{path}: not an IDX file: only {len(data)} bytes after decompression")
    got = int.from_bytes(data[:4], "big")
    if got != magic:
        raise ValueError(f"{path}: bad IDX magic number 0x{got:08x}, expected 0x{magic:08x} "
                         f"({'images' if magic == IMAGE_MAGIC else 'labels'}, unsigned bytes, "
                         f"{ndim}-D)")
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header: {len(data)} bytes, expected at least "
                         f"{header}")
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    count = 1  # Python ints: no overflow however large the header claims
    for d in dims:
        count *= d
    expected = header + count
    if len(data) != expected:
        raise ValueError(
            f"{path}: size mismatch: header says dimensions {dims}, i.e. {expected} bytes "
            f"({header} + {count}), but the decompressed file has {len(data)} bytes")
    return dims, header


def read_idx_images(path):
    """uint8 array (N, 1, 28, 28) from an IDX3 gzip image file (magic 0x00000803)."""
    path = os.fspath(path)
    data = _read_gzip(path)
    (n, rows, cols), offset = _parse_idx(path, data, IMAGE_MAGIC, 3)
    if (rows, cols) != (ROWS, COLS):
        raise ValueError(f"{path}: images are {rows}x{cols}, expected {ROWS}x{COLS}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(n, 1, rows, cols).copy()


def read_idx_labels(path):
    """int64 array (N,) of labels 0..9 from an IDX1 gzip label file (magic 0x00000801)."""
    path = os.fspath(path)
    data = _read_gzip(path)
    (n,), offset = _parse_idx(path, data, LABEL_MAGIC, 1)
    labels = np.frombuffer(data, dtype=np.uint8, offset=offset)
    if n and labels.max() >= NUM_CLASSES:
        bad = int(np.argmax(labels >= NUM_CLASSES))
        raise ValueError(f"{path}: label {int(labels[bad])} at index {bad} is outside "
                         f"0..{NUM_CLASSES - 1}")
    return labels.astype(np.int64)


def _load_pair(folder, images_name, labels_name):
    images_path = os.path.join(folder, images_name)
    labels_path = os.path.join(folder, labels_name)
    x = read_idx_images(images_path)
    y = read_idx_labels(labels_path)
    if len(x) != len(y):
        raise ValueError(f"{images_path} holds {len(x)} images but {labels_path} holds "
                         f"{len(y)} labels")
    return x, y


# ---------------------------------------------------------------------------------- lookup

def _candidates(name, root):
    """Folders to look in, in order, each as (folder, why)."""
    out = []
    if root is not None:
        out.append((os.path.abspath(os.path.expanduser(os.fspath(root))), "root"))
    env = os.environ.get(DATA_ENV)
    if env:
        out.append((os.path.abspath(os.path.join(os.path.expanduser(env), name)),
                    f"${DATA_ENV}/{name}"))
    home_cache = os.path.join(os.path.expanduser("~"), ".cache", "cycnn", name)
    out.append((os.path.abspath(home_cache), f"~/.cache/cycnn/{name}"))
    return out


def _missing(folder):
    return [f for f in FILES if not os.path.isfile(os.path.join(folder, f))]


# -------------------------------------------------------------------------------- download

def _fetch(url, dest, md5, timeout):
    """Download ``url`` to ``dest`` atomically; raises on HTTP/network error or bad MD5."""
    folder = os.path.dirname(dest)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(dest) + ".", suffix=".part",
                               dir=folder)
    try:
        digest = hashlib.md5()
        size = 0
        with os.fdopen(fd, "wb") as out:
            request = urllib.request.Request(url, headers={"User-Agent": "cycnn-datasets"})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > MAX_DOWNLOAD_BYTES:
                        raise ValueError(f"response larger than {MAX_DOWNLOAD_BYTES} bytes")
                    digest.update(chunk)
                    out.write(chunk)
        got = digest.hexdigest()
        if md5 is not None and got != md5.lower():
            raise ValueError(f"MD5 mismatch: got {got}, expected {md5} ({size} bytes received)")
        os.replace(tmp, dest)
        tmp = None
        return size
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _download(name, folder, files, mirrors, md5_table, timeout):
    if isinstance(mirrors, str):
        mirrors = [mirrors]
    mirrors = list(mirrors)
    if not mirrors:
        raise DownloadError(f"cannot download {name}: the mirror list is empty")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the {name} data folder {folder}: {exc}") from None
    for fname in files:
        dest = os.path.join(folder, fname)
        failures = []
        for base in mirrors:
            url = base if base.endswith("/") else base + "/"
            url += fname
            print(f"cycnn: downloading {url} ...", file=sys.stderr, flush=True)
            try:
                size = _fetch(url, dest, md5_table.get(fname), timeout)
            except urllib.error.HTTPError as exc:
                failures.append(f"{url}: HTTP {exc.code} {exc.reason}")
            except urllib.error.URLError as exc:
                failures.append(f"{url}: {exc.reason}")
            except (OSError, ValueError, EOFError) as exc:  # timeouts, resets, bad MD5, ...
                failures.append(f"{url}: {type(exc).__name__}: {exc}")
            else:
                print(f"cycnn: saved {dest} ({size / 1e6:.1f} MB)", file=sys.stderr, flush=True)
                break
            print(f"cycnn:   failed: {failures[-1]}", file=sys.stderr, flush=True)
        else:
            raise DownloadError(
                f"could not download {fname} for {name}; tried {len(failures)} mirror(s):\n  "
                + "\n  ".join(failures)
                + f"\nPut the four files in {folder} (or pass root=, or set ${DATA_ENV})")


# ---------------------------------------------------------------------------------- public

def _load(name, root, download, mirrors, md5_table, timeout):
    candidates = _candidates(name, root)
    folder = next((c for c, _ in candidates if not _missing(c)), None)
    if folder is None:
        if not download:
            looked = "\n  ".join(f"{c} ({why}): missing {', '.join(_missing(c))}"
                                 for c, why in candidates)
            raise FileNotFoundError(
                f"{name} files not found and download=False; looked in:\n  {looked}")
        folder = candidates[0][0]
        _download(name, folder, _missing(folder), mirrors, md5_table,
                  DOWNLOAD_TIMEOUT if timeout is None else timeout)
    train = _load_pair(folder, TRAIN_IMAGES, TRAIN_LABELS)
    test = _load_pair(folder, TEST_IMAGES, TEST_LABELS)
    return train, test


def load_mnist(root=None, download=True, *, mirrors=None, timeout=None):
    """MNIST digits: ``((x_train, y_train), (x_test, y_test))``, x uint8 (N, 1, 28, 28), y int64.

    60000 training and 10000 test examples. ``root`` is the folder holding the four IDX gzip
    files; see the module docstring for the lookup order and the download. ``mirrors`` (a list
    of base URLs) overrides ``MNIST_MIRRORS``; ``timeout`` (seconds) overrides
    ``DOWNLOAD_TIMEOUT``.
    """
    return _load("mnist", root, download, MNIST_MIRRORS if mirrors is None else mirrors,
                 MNIST_MD5, timeout)


def load_fashion_mnist(root=None, download=True, *, mirrors=None, timeout=None):
    """Fashion-MNIST: same layout and return value as :func:`load_mnist`.

    ``mirrors`` overrides ``FASHION_MNIST_MIRRORS``; ``timeout`` overrides ``DOWNLOAD_TIMEOUT``.
    """
    return _load("fashion_mnist", root, download,
                 FASHION_MNIST_MIRRORS if mirrors is None else mirrors, FASHION_MNIST_MD5,
                 timeout)
