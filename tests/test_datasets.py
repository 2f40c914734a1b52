"""cycnn.datasets: IDX parsing, validation, lookup order and download (local HTTP server only)."""
import functools
import gzip
import hashlib
import http.server
import os
import re
import shutil
import socket
import threading
import time

import numpy as np
import pytest

from cycnn import datasets
from cycnn.datasets import (FILES, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS,
                            DownloadError, load_fashion_mnist, load_mnist)

DEFAULT_MNIST_MIRRORS = list(datasets.MNIST_MIRRORS)
DEFAULT_FASHION_MIRRORS = list(datasets.FASHION_MNIST_MIRRORS)
UNREACHABLE = "http://127.0.0.1:9/"  # discard port: connection refused, never the internet


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No test sees the real cache, $CYCNN_DATA or the public mirrors."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CYCNN_DATA", raising=False)
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", [UNREACHABLE])
    monkeypatch.setattr(datasets, "FASHION_MNIST_MIRRORS", [UNREACHABLE])
    return home


# ------------------------------------------------------------------------ synthetic files

def idx_bytes(magic, dims, payload):
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in dims)
    return header + bytes(payload)


def write_gz(path, raw):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw, mtime=0))
    return path


def write_set(folder, n_train=5, n_test=3, label=None, seed=0):
    """Four small valid IDX gzip files; returns the arrays they hold."""
    rng = np.random.default_rng(seed)
    out = {}
    for images, labels, n in ((TRAIN_IMAGES, TRAIN_LABELS, n_train),
                              (TEST_IMAGES, TEST_LABELS, n_test)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = (np.full(n, label, np.uint8) if label is not None
             else rng.integers(0, 10, size=n, dtype=np.uint8))
        write_gz(folder / images, idx_bytes(0x803, (n, 28, 28), x.tobytes()))
        write_gz(folder / labels, idx_bytes(0x801, (n,), y.tobytes()))
        out[images], out[labels] = x, y
    return out


def md5_of(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def check_synthetic(result, arrays):
    (x_train, y_train), (x_test, y_test) = result
    for x, y, images, labels in ((x_train, y_train, TRAIN_IMAGES, TRAIN_LABELS),
                                 (x_test, y_test, TEST_IMAGES, TEST_LABELS)):
        assert x.dtype == np.uint8 and y.dtype == np.int64
        np.testing.assert_array_equal(x[:, 0], arrays[images])
        np.testing.assert_array_equal(y, arrays[labels])


# ------------------------------------------------------------------------------ real files

def test_real_mnist(mnist_dir):
    t0 = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = load_mnist(mnist_dir, download=False)
    elapsed = time.perf_counter() - t0
    assert x_train.shape == (60000, 1, 28, 28) and x_test.shape == (10000, 1, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert x_train.dtype == x_test.dtype == np.uint8
    assert y_train.dtype == y_test.dtype == np.int64
    assert y_train.min() == 0 and y_train.max() == 9 and y_test.min() == 0 and y_test.max() == 9
    counts = np.bincount(y_train, minlength=10)
    assert counts.sum() == 60000
    assert counts.tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(y_test, minlength=10).tolist() == [980, 1135, 1032, 1010, 982, 892, 958,
                                                          1028, 974, 1009]
    assert y_train[:5].tolist() == [5, 0, 4, 1, 9] and y_test[:3].tolist() == [7, 2, 1]
    assert x_train.max() == 255 and x_train.min() == 0
    assert x_train[0, 0, 0].sum() == 0  # the top row of the first digit is background
    assert x_train.flags.writeable and x_train.flags.c_contiguous
    assert elapsed < 30  # np.frombuffer path; about half a second normally


def test_real_mnist_with_download_true_does_not_fetch(mnist_dir, capsys):
    # present files are used as they are; the (unreachable) mirrors are never contacted
    (x_train, _), _ = load_mnist(root=mnist_dir)
    assert x_train.shape == (60000, 1, 28, 28)
    assert "downloading" not in capsys.readouterr().err


def test_md5_table_matches_source_md(mnist_dir):
    for name in FILES:
        assert md5_of(mnist_dir / name) == datasets.MNIST_MD5[name]


# --------------------------------------------------------------------------- damaged files

def _truncated_gzip(folder):
    path = folder / TRAIN_IMAGES
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def _corrupt_gzip_body(folder):
    path = folder / TRAIN_LABELS
    data = bytearray(path.read_bytes())
    for i in range(12, len(data) - 8):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _not_gzip(folder):
    path = folder / TEST_LABELS
    path.write_bytes(idx_bytes(0x801, (3,), b"\x01\x02\x03"))
    return path


def _empty(folder):
    path = folder / TEST_IMAGES
    path.write_bytes(b"")
    return path


def _empty_gzip(folder):
    return write_gz(folder / TEST_IMAGES, b"")


def _bad_magic_labels(folder):
    return write_gz(folder / TRAIN_LABELS, idx_bytes(0x803, (5,), bytes(5)))


def _bad_magic_images(folder):
    return write_gz(folder / TRAIN_IMAGES, idx_bytes(0x0801, (5, 28, 28), bytes(5 * 784)))


def _wrong_dimension(folder):
    return write_gz(folder / TRAIN_IMAGES, idx_bytes(0x803, (5, 27, 28), bytes(5 * 27 * 28)))


def _size_short(folder):
    return write_gz(folder / TRAIN_IMAGES, idx_bytes(0x803, (5, 28, 28), bytes(5 * 784 - 1)))


def _size_long(folder):
    return write_gz(folder / TEST_LABELS, idx_bytes(0x801, (3,), bytes(4)))


def _truncated_header(folder):
    return write_gz(folder / TEST_IMAGES, idx_bytes(0x803, (3,), b""))


def _label_out_of_range(folder):
    return write_gz(folder / TRAIN_LABELS, idx_bytes(0x801, (5,), bytes([1, 2, 10, 3, 4])))


DAMAGE = {
    "truncated gzip": (_truncated_gzip, "gzip"),
    "corrupt gzip body": (_corrupt_gzip_body, "gzip"),
    "not gzip": (_not_gzip, "gzip"),
    "empty file": (_empty, "empty"),
    "empty gzip": (_empty_gzip, "only 0 bytes"),
    "bad magic labels": (_bad_magic_labels, "magic number 0x00000803, expected 0x00000801"),
    "bad magic images": (_bad_magic_images, "magic number 0x00000801, expected 0x00000803"),
    "wrong dimension": (_wrong_dimension, "27x28"),
    "size short": (_size_short, "size mismatch"),
    "size long": (_size_long, "size mismatch"),
    "truncated header": (_truncated_header, "truncated IDX header"),
    "label out of range": (_label_out_of_range, "label 10 at index 2"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_file_names_it(tmp_path, case):
    damage, text = DAMAGE[case]
    folder = tmp_path / "data"
    write_set(folder)
    path = damage(folder)
    with pytest.raises(ValueError) as info:
        load_mnist(folder, download=False)
    message = str(info.value)
    assert str(path) in message
    assert re.search(text, message), message


def test_image_label_count_mismatch(tmp_path):
    folder = tmp_path / "data"
    write_set(folder)
    write_gz(folder / TEST_LABELS, idx_bytes(0x801, (2,), bytes(2)))  # 3 images, 2 labels
    with pytest.raises(ValueError, match="3 images.*2 labels") as info:
        load_mnist(folder, download=False)
    assert str(folder / TEST_IMAGES) in str(info.value)
    assert str(folder / TEST_LABELS) in str(info.value)


def test_synthetic_roundtrip_and_zero_examples(tmp_path):
    arrays = write_set(tmp_path / "a", n_train=4, n_test=0)
    check_synthetic(load_mnist(tmp_path / "a", download=False), arrays)
    (_, _), (x_test, y_test) = load_fashion_mnist(tmp_path / "a", download=False)
    assert x_test.shape == (0, 1, 28, 28) and y_test.shape == (0,)


# ----------------------------------------------------------------------------- lookup order

def test_lookup_order(tmp_path, monkeypatch, isolated):
    root = tmp_path / "root"
    env = tmp_path / "env"
    cache = isolated / ".cache" / "cycnn" / "mnist"
    write_set(root, label=1)
    write_set(env / "mnist", label=2)
    write_set(cache, label=3)
    monkeypatch.setenv("CYCNN_DATA", str(env))

    def first_label(**kw):
        return int(load_mnist(download=False, **kw)[0][1][0])

    assert first_label(root=root) == 1
    assert first_label(root=str(root)) == 1
    assert first_label() == 2
    (root / TEST_LABELS).unlink()  # an incomplete folder is skipped
    assert first_label(root=root) == 2
    monkeypatch.delenv("CYCNN_DATA")
    assert first_label() == 3
    monkeypatch.setenv("CYCNN_DATA", str(tmp_path / "nothing-here"))
    assert first_label() == 3
    # the dataset name picks the sub-folder
    write_set(env / "fashion_mnist", label=7)
    monkeypatch.setenv("CYCNN_DATA", str(env))
    assert int(load_fashion_mnist(download=False)[1][1][0]) == 7


def test_missing_without_download(tmp_path, monkeypatch, isolated):
    monkeypatch.setenv("CYCNN_DATA", str(tmp_path / "env"))
    root = tmp_path / "root"
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(root, download=False)
    message = str(info.value)
    for folder in (root, tmp_path / "env" / "mnist", isolated / ".cache" / "cycnn" / "mnist"):
        assert str(folder) in message
    assert TRAIN_IMAGES in message and "download=False" in message
    assert not root.exists()  # nothing created


# -------------------------------------------------------------------------- local mirrors

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """(base URL, served folder): a ThreadingHTTPServer on 127.0.0.1, shut down afterwards."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _no_temp_files(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".part")] == []


def test_download_real_files_after_404_mirror(server, mnist_dir, tmp_path, capsys):
    base, served = server
    good = served / "good"
    good.mkdir()
    for name in FILES:
        try:
            os.symlink(mnist_dir / name, good / name)
        except OSError:
            shutil.copyfile(mnist_dir / name, good / name)
    target = tmp_path / "target"
    mirrors = [f"{base}/missing/", f"{base}/good"]  # 404 first; no trailing slash on the second
    (x_train, y_train), (x_test, y_test) = load_mnist(target, mirrors=mirrors, timeout=10)
    assert x_train.shape == (60000, 1, 28, 28) and x_test.shape == (10000, 1, 28, 28)
    assert y_train[0] == 5 and y_test[0] == 7
    for name in FILES:
        assert md5_of(target / name) == datasets.MNIST_MD5[name]
    assert _no_temp_files(target)
    err = capsys.readouterr().err
    assert "downloading" in err and "404" in err
    # the second call finds the files and downloads nothing
    load_mnist(target, mirrors=[UNREACHABLE], timeout=1)
    assert "downloading" not in capsys.readouterr().err


def _serve_synthetic(served, sub, monkeypatch, table="MNIST_MD5", **kw):
    arrays = write_set(served / sub, **kw)
    md5 = {name: md5_of(served / sub / name) for name in FILES}
    for name, value in md5.items():
        monkeypatch.setitem(getattr(datasets, table), name, value)
    return arrays, md5


def test_download_into_cycnn_data(server, tmp_path, monkeypatch):
    base, served = server
    arrays, _ = _serve_synthetic(served, "m", monkeypatch)
    monkeypatch.setenv("CYCNN_DATA", str(tmp_path / "env"))
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", [f"{base}/m/"])  # the module-level list
    check_synthetic(load_mnist(timeout=5), arrays)
    assert sorted(os.listdir(tmp_path / "env" / "mnist")) == sorted(FILES)


def test_download_into_home_cache_fashion(server, isolated, monkeypatch):
    base, served = server
    arrays, _ = _serve_synthetic(served, "f", monkeypatch, table="FASHION_MNIST_MD5", seed=4)
    monkeypatch.setattr(datasets, "FASHION_MNIST_MIRRORS", [f"{base}/f/"])
    check_synthetic(load_fashion_mnist(timeout=5), arrays)
    cache = isolated / ".cache" / "cycnn" / "fashion_mnist"
    assert sorted(os.listdir(cache)) == sorted(FILES)


def test_download_only_missing_files(server, tmp_path, monkeypatch):
    base, served = server
    arrays, _ = _serve_synthetic(served, "m", monkeypatch)
    target = tmp_path / "target"
    target.mkdir()
    shutil.copyfile(served / "m" / TRAIN_IMAGES, target / TRAIN_IMAGES)
    (served / "m" / TRAIN_IMAGES).unlink()  # would 404 if it were requested
    check_synthetic(load_mnist(target, mirrors=[f"{base}/m/"], timeout=5), arrays)


def test_wrong_md5_rejected_then_next_mirror(server, tmp_path, monkeypatch, capsys):
    base, served = server
    arrays, _ = _serve_synthetic(served, "good", monkeypatch)
    write_set(served / "evil", seed=99)  # same names, different content
    target = tmp_path / "target"
    check_synthetic(load_mnist(target, mirrors=[f"{base}/evil/", f"{base}/good/"], timeout=5),
                    arrays)
    assert "MD5 mismatch" in capsys.readouterr().err
    assert _no_temp_files(target)


def test_wrong_md5_everywhere_is_an_error_and_not_kept(server, tmp_path, monkeypatch):
    base, served = server
    _serve_synthetic(served, "m", monkeypatch)
    monkeypatch.setitem(datasets.MNIST_MD5, TEST_IMAGES, "0" * 32)
    target = tmp_path / "target"
    with pytest.raises(DownloadError) as info:
        load_mnist(target, mirrors=[f"{base}/m/"], timeout=5)
    message = str(info.value)
    assert "MD5 mismatch" in message and f"{base}/m/{TEST_IMAGES}" in message
    assert not (target / TEST_IMAGES).exists()
    assert _no_temp_files(target)


def test_all_mirrors_fail(server, tmp_path):
    base, _ = server
    with socket.socket() as s:  # a port with nothing listening: connection refused
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    mirrors = [f"{base}/nope/", dead]
    target = tmp_path / "target"
    t0 = time.perf_counter()
    with pytest.raises(DownloadError) as info:
        load_mnist(target, mirrors=mirrors, timeout=2)
    assert time.perf_counter() - t0 < 20
    assert isinstance(info.value, OSError) and isinstance(info.value, RuntimeError)
    message = str(info.value)
    assert f"{base}/nope/{TRAIN_IMAGES}" in message and "404" in message
    assert f"{dead}{TRAIN_IMAGES}" in message
    assert str(target) in message
    assert os.listdir(target) == []


def test_timeout_is_bounded(tmp_path):
    # accepts connections (kernel backlog) but never answers: the timeout must end the wait
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        t0 = time.perf_counter()
        with pytest.raises(DownloadError, match="timed out"):
            load_mnist(tmp_path / "t", mirrors=[url], timeout=0.5)
        assert time.perf_counter() - t0 < 10


def test_empty_mirror_list(tmp_path):
    with pytest.raises(DownloadError, match="empty"):
        load_mnist(tmp_path / "t", mirrors=[])


def test_default_mirrors_and_md5s():
    # captured at import, before the autouse fixture points them at 127.0.0.1
    assert DEFAULT_MNIST_MIRRORS[0].startswith("https://") and len(DEFAULT_MNIST_MIRRORS) >= 2
    assert DEFAULT_FASHION_MIRRORS and all(m.endswith("/") for m in DEFAULT_FASHION_MIRRORS)
    assert datasets.FASHION_MNIST_MD5[TRAIN_IMAGES] == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert all(re.fullmatch("[0-9a-f]{32}", v) for v in datasets.MNIST_MD5.values())
