"""Hostile and damaged model files (issue 8 section 2): a file costs what it holds. Declared
shapes are checked against the stored arrays before anything is allocated, no random
initialisation happens on load, no pickle, no zip bombs, bounded JSON."""
import json
import struct
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import cycnn
from cycnn import layers
from cycnn.models import Input, Model, Sequential, load_model, saving

SMALL = 16 << 20   # bytes: any successful or failed load here must stay far below this peak


def _arrays(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _write(path, arrays, header=None):
    if header is not None:
        arrays = dict(arrays, __cycnn__=np.frombuffer(json.dumps(header).encode(), np.uint8))
    with open(path, "wb") as f:        # np.savez on a path would append .npz
        np.savez(f, **arrays)


def _header(arrays):
    return json.loads(arrays["__cycnn__"].tobytes())


def _load_costs(path):
    """(exception raised by load_model, seconds, peak bytes traced)."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        load_model(path)
        error = None
    except Exception as exc:  # noqa: BLE001  (returned to the caller to check)
        error = exc
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return error, seconds, peak


@pytest.fixture
def small_file(tmp_path):
    cycnn.seed(0)
    model = Sequential([layers.Conv2D(2, 3, activation="relu"), layers.Flatten(),
                        layers.Dense(4), layers.Dense(3)], input_shape=(1, 6, 6))
    model.compile("adam", "cross_entropy")
    path = tmp_path / "small.cyc"
    model.save(path)
    return path, model


def test_huge_dense_declared_next_to_small_arrays_fails_fast(small_file, tmp_path):
    path, _ = small_file
    arrays = _arrays(path)
    header = _header(arrays)
    header["config"]["layers"][2]["config"]["units"] = 3_000_000   # 3e6 x 32 floats = 384 MB
    hostile = tmp_path / "dense.cyc"
    _write(hostile, arrays, header)
    error, seconds, peak = _load_costs(hostile)
    assert isinstance(error, ValueError), error
    assert "layers.2.params.kernel" in str(error) and "(3000000, 32)" in str(error)
    assert peak < SMALL, f"load allocated {peak} bytes before failing"
    assert seconds < 1.0, f"load took {seconds:.2f} s before failing"


def test_huge_conv_in_a_graph_fails_fast(tmp_path):
    x = Input((3, 8, 8))
    model = Model(x, layers.Dense(2)(layers.Flatten()(layers.Conv2D(2, 3)(x))))
    path = tmp_path / "g.cyc"
    model.save(path)
    arrays = _arrays(path)
    header = _header(arrays)
    conv = header["config"]["layers"][0]["config"]
    conv["filters"], conv["kernel_size"] = 100_000, [1000, 1000]   # 3e11 floats declared
    header["config"]["graph"]["inputs"][0]["shape"] = [3, 2000, 2000]
    _write(tmp_path / "conv.cyc", arrays, header)
    error, seconds, peak = _load_costs(tmp_path / "conv.cyc")
    assert isinstance(error, ValueError), error
    assert "(100000, 3, 1000, 1000)" in str(error)
    assert peak < SMALL and seconds < 1.0, (peak, seconds)


def test_npy_header_declaring_more_than_the_member_holds_is_refused(small_file, tmp_path):
    path, _ = small_file
    hostile = tmp_path / "npy.cyc"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(hostile, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            member = src.read(info)
            if info.filename == "layers.0.params.kernel.npy":
                # the .npy header says (2, 1, 3, 3); make it claim 4 GB (valid CRC, same length)
                assert b"(2, 1, 3, 3)" in member
                member = member.replace(b"(2, 1, 3, 3)", b"(999999999,)")
            dst.writestr(info.filename, member)
    error, seconds, peak = _load_costs(hostile)
    assert isinstance(error, ValueError) and "declares shape (999999999,)" in str(error), error
    assert peak < SMALL


def test_compressed_members_and_lying_zip_sizes_are_refused(small_file, tmp_path):
    path, _ = small_file
    arrays = _arrays(path)
    bomb = tmp_path / "bomb.cyc"
    with open(bomb, "wb") as f:
        np.savez_compressed(f, **arrays, zeros=np.zeros(50_000_000, np.uint8))  # 50 MB -> 50 kB
    error, _, peak = _load_costs(bomb)
    assert isinstance(error, ValueError) and "compressed" in str(error), error
    assert peak < SMALL
    # a central-directory entry that claims 4 GB uncompressed for a stored member
    raw = bytearray(path.read_bytes())
    at = raw.index(b"PK\x01\x02")
    raw[at + 24:at + 28] = struct.pack("<I", 0xFFFFFFF0)
    (tmp_path / "sizes.cyc").write_bytes(bytes(raw))
    error, _, peak = _load_costs(tmp_path / "sizes.cyc")
    assert isinstance(error, ValueError), error
    assert peak < SMALL


def test_object_arrays_json_limits_and_unknown_classes(small_file, tmp_path, monkeypatch):
    path, _ = small_file
    arrays = _arrays(path)
    header = _header(arrays)
    pickled = tmp_path / "pickled.cyc"
    with open(pickled, "wb") as f:
        np.savez(f, **arrays, evil=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="not numbers"):
        load_model(pickled)
    nested = tmp_path / "nested.cyc"
    deep = b"[" * 100_000 + b"]" * 100_000
    _write(nested, dict(arrays, __cycnn__=np.frombuffer(deep, np.uint8)))
    with pytest.raises(ValueError, match="nested.cyc"):
        load_model(nested)
    monkeypatch.setattr(saving, "MAX_HEADER_BYTES", 100)
    with pytest.raises(ValueError, match="more than the 100 allowed"):
        load_model(path)
    monkeypatch.undo()
    _write(tmp_path / "cls.cyc", arrays, dict(header, class_name="Evil"))
    with pytest.raises(ValueError, match="'Evil'"):
        load_model(tmp_path / "cls.cyc")
    bad_layer = json.loads(json.dumps(header))
    bad_layer["config"]["layers"][0]["class_name"] = "os.system"
    _write(tmp_path / "layer.cyc", arrays, bad_layer)
    with pytest.raises(ValueError, match="unknown layer class"):
        load_model(tmp_path / "layer.cyc")


def test_every_truncation_and_byte_flip_gives_value_error(small_file, tmp_path):
    path, model = small_file
    raw = path.read_bytes()
    target = tmp_path / "cut.cyc"
    rng = np.random.default_rng(0)
    cuts = sorted(set(rng.integers(1, len(raw), 40).tolist()))
    for cut in cuts:
        target.write_bytes(raw[:cut])
        with pytest.raises(ValueError):
            load_model(target)
    loaded = 0
    for pos in rng.integers(0, len(raw), 40).tolist():
        flipped = bytearray(raw)
        flipped[pos] ^= 0x5A
        target.write_bytes(bytes(flipped))
        try:
            load_model(target)   # a flip in unused padding may leave a valid file
            loaded += 1
        except ValueError:
            pass
    assert loaded < 40


def test_loading_skips_random_initialisation(small_file, monkeypatch):
    path, model = small_file
    from cycnn import initializers

    def refuse(*args, **kwargs):
        raise AssertionError("an initializer ran during load_model")
    for name in ("he_uniform", "glorot_uniform", "zeros", "ones"):
        monkeypatch.setitem(initializers._REGISTRY, name, refuse)
    state = cycnn.get_rng().bit_generator.state
    loaded = load_model(path)
    assert cycnn.get_rng().bit_generator.state == state
    x = np.random.default_rng(1).random((3, 1, 6, 6), dtype=np.float32)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_version_2_header_lists_shapes_and_class(small_file):
    path, model = small_file
    header = _header(_arrays(path))
    assert header["version"] == 2 and header["class_name"] == "Sequential"
    assert header["arrays"]["layers.0.params.kernel"] == {"shape": [2, 1, 3, 3],
                                                          "dtype": "float32"}
    with zipfile.ZipFile(path) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}


def test_optimizer_state_must_match_the_parameters(small_file, tmp_path):
    path, model = small_file
    model.fit(np.zeros((4, 1, 6, 6), np.float32), np.zeros(4, np.int64), epochs=1, verbose=0)
    model.save(path)
    arrays = _arrays(path)
    assert "optimizer.exp_avg.0" in arrays
    arrays["optimizer.exp_avg.0"] = np.zeros((2, 1, 3, 4), np.float32)
    header = _header(arrays)
    header["arrays"]["optimizer.exp_avg.0"]["shape"] = [2, 1, 3, 4]
    _write(tmp_path / "opt.cyc", arrays, header)
    with pytest.raises(ValueError, match="optimizer.exp_avg.0 has shape"):
        load_model(tmp_path / "opt.cyc")
