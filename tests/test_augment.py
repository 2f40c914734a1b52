"""cycnn.augment: random shift / crop / flip for NCHW batches."""
import numpy as np
import pytest

import cycnn
from cycnn.augment import Compose, RandomCrop, RandomFlip, RandomShift, crop, shift


def _batch(n=6, c=2, h=7, w=9, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(dtype)


ALL = [
    lambda: RandomShift(2),
    lambda: RandomShift((1, 3), fill=-1.0),
    lambda: RandomCrop((7, 9), padding=2),
    lambda: RandomFlip(0.5),
    lambda: Compose([RandomCrop((7, 9), padding=1), RandomFlip(), RandomShift(1)]),
]


@pytest.mark.parametrize("make", ALL)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shape_dtype_new_array_input_unchanged(make, dtype):
    x = _batch(dtype=dtype)
    x.flags.writeable = False  # any write to the input would raise
    before = x.copy()
    out = make()(x)
    assert out.shape == x.shape and out.dtype == dtype
    assert not np.shares_memory(out, x)
    np.testing.assert_array_equal(x, before)
    out[...] = 0  # the result is an ordinary writeable array


@pytest.mark.parametrize("make", ALL)
def test_deterministic_with_seed(make):
    x = _batch(n=32)
    cycnn.seed(123)
    a = make()(x)
    b = make()(x)
    cycnn.seed(123)
    c = make()(x)
    d = make()(x)
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(b, d)
    assert not np.array_equal(a, b)  # consecutive batches get different draws


@pytest.mark.parametrize("make", ALL)
def test_empty_batch(make):
    x = np.zeros((0, 2, 7, 9), np.float32)
    out = make()(x)
    assert out.shape == (0, 2, 7, 9) and out.dtype == np.float32


def test_shift_exact_pixels():
    x = np.arange(12, dtype=np.float64).reshape(1, 1, 3, 4)
    # down 1, left 1: out[r, c] = x[r - 1, c + 1]
    np.testing.assert_array_equal(shift(x, 1, -1)[0, 0], [[0, 0, 0, 0],
                                                         [1, 2, 3, 0],
                                                         [5, 6, 7, 0]])
    # up 1, right 2, fill -1
    np.testing.assert_array_equal(shift(x, -1, 2, fill=-1)[0, 0], [[-1, -1, 4, 5],
                                                                  [-1, -1, 8, 9],
                                                                  [-1, -1, -1, -1]])
    np.testing.assert_array_equal(shift(x, 0, 0), x)
    np.testing.assert_array_equal(shift(x, 3, 0), np.zeros_like(x))  # shifted out entirely
    np.testing.assert_array_equal(shift(x, 0, -9), np.zeros_like(x))


def test_shift_per_image_and_channel():
    x = np.arange(2 * 2 * 3 * 3, dtype=np.float32).reshape(2, 2, 3, 3)
    out = shift(x, [1, -1], [0, 1])
    for c in range(2):
        np.testing.assert_array_equal(out[0, c, 1:], x[0, c, :2])
        np.testing.assert_array_equal(out[0, c, 0], 0)
        np.testing.assert_array_equal(out[1, c, :2, 1:], x[1, c, 1:, :2])
        assert np.all(out[1, c, 2] == 0) and np.all(out[1, c, :, 0] == 0)


def test_random_shift_moves_content_as_stated():
    n, h, w, m = 200, 9, 9, 2
    x = np.zeros((n, 1, h, w), np.float32)
    x[:, 0, 4, 4] = 1.0
    x[:, 0, 0, 0] = 0.5  # a corner pixel that may be shifted out
    cycnn.seed(7)
    out = RandomShift(m, fill=0.0)(x)
    seen = set()
    for i in range(n):
        r, c = np.argwhere(out[i, 0] == 1.0)[0]
        dy, dx = r - 4, c - 4
        assert abs(dy) <= m and abs(dx) <= m
        seen.add((dy, dx))
        np.testing.assert_array_equal(out[i], shift(x[i:i + 1], dy, dx)[0])
    assert len(seen) == (2 * m + 1) ** 2  # every offset in range occurs


def test_random_shift_fill_and_zero_shift():
    x = np.ones((50, 1, 5, 5), np.float32)
    cycnn.seed(1)
    out = RandomShift(1, fill=-3.0)(x)
    assert set(np.unique(out)) <= {1.0, -3.0}
    assert np.any(out == -3.0)
    np.testing.assert_array_equal(RandomShift(0)(x), x)
    # asymmetric: only horizontal shifts
    out = RandomShift((0, 2), fill=-3.0)(x)
    vacated = out == -3.0
    np.testing.assert_array_equal(vacated.any(axis=2), vacated.all(axis=2))  # whole columns
    assert not np.any(out[:, :, :, 2] == -3.0)  # the centre column is never vacated


def test_crop_identity_when_no_padding_and_full_size():
    x = _batch(h=8, w=8)
    cycnn.seed(0)
    np.testing.assert_array_equal(RandomCrop(8)(x), x)
    np.testing.assert_array_equal(RandomCrop((8, 8), padding=0)(x), x)


def test_crop_shapes_and_windows():
    x = np.arange(4 * 1 * 6 * 8, dtype=np.float64).reshape(4, 1, 6, 8)
    cycnn.seed(3)
    out = RandomCrop((3, 5))(x)
    assert out.shape == (4, 1, 3, 5)
    for i in range(4):  # every output is some window of its own image
        found = any(np.array_equal(out[i, 0], x[i, 0, t:t + 3, l:l + 5])
                    for t in range(4) for l in range(4))
        assert found
    out = RandomCrop(4, padding=(1, 2), fill=-1.0)(x)
    assert out.shape == (4, 1, 4, 4)


def test_crop_with_padding_equals_shift():
    # RandomCrop(H, padding=p) is a shift by up to p pixels with the same fill.
    x = np.zeros((100, 1, 7, 7), np.float32)
    x[:, 0, 3, 3] = 1.0
    cycnn.seed(5)
    out = RandomCrop(7, padding=2, fill=0.0)(x)
    for i in range(100):
        r, c = np.argwhere(out[i, 0] == 1.0)[0]
        np.testing.assert_array_equal(out[i], shift(x[i:i + 1], r - 3, c - 3)[0])


def test_crop_function_exact():
    x = np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
    out = crop(x, [0, 2], [1, 0], (2, 3))
    np.testing.assert_array_equal(out[0, 0], x[0, 0, 0:2, 1:4])
    np.testing.assert_array_equal(out[1, 0], x[1, 0, 2:4, 0:3])
    with pytest.raises(ValueError, match="do not fit"):
        crop(x, [0, 3], 0, 2)


def test_flip():
    x = _batch()
    cycnn.seed(0)
    np.testing.assert_array_equal(RandomFlip(p=1.0)(x), x[..., ::-1])
    np.testing.assert_array_equal(RandomFlip(p=0.0)(x), x)
    out = RandomFlip(0.5)(_batch(n=200))
    xb = _batch(n=200)
    flipped = [np.array_equal(out[i], xb[i, ..., ::-1]) for i in range(200)]
    kept = [np.array_equal(out[i], xb[i]) for i in range(200)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 60 < sum(flipped) < 140


def test_compose_order_and_empty():
    x = _batch()
    cycnn.seed(0)
    out = Compose([RandomFlip(1.0), lambda b: b * 2])(x)
    np.testing.assert_array_equal(out, x[..., ::-1] * 2)
    out = Compose([])(x)
    np.testing.assert_array_equal(out, x)
    assert not np.shares_memory(out, x)
    assert not np.shares_memory(Compose([lambda b: b])(x), x)


def test_get_config():
    assert RandomShift(2).get_config() == {"class": "RandomShift", "max_shift": [2, 2], "fill": 0.0}
    assert RandomCrop((24, 20), padding=1, fill=0.5).get_config() == {
        "class": "RandomCrop", "size": [24, 20], "padding": [1, 1], "fill": 0.5}
    assert RandomFlip(0.25).get_config() == {"class": "RandomFlip", "p": 0.25}
    cfg = Compose([RandomShift(1), RandomFlip()]).get_config()
    assert cfg["class"] == "Compose"
    assert [t["class"] for t in cfg["transforms"]] == ["RandomShift", "RandomFlip"]


@pytest.mark.parametrize("make, text", [
    (lambda: RandomShift(-1), "-1"),
    (lambda: RandomShift(1.5), "1.5"),
    (lambda: RandomShift(True), "True"),
    (lambda: RandomShift((1, 2, 3)), r"\(1, 2, 3\)"),
    (lambda: RandomShift(1, fill="zero"), "'zero'"),
    (lambda: RandomCrop(0), "0"),
    (lambda: RandomCrop(None), "None"),
    (lambda: RandomCrop(8, padding=-2), "-2"),
    (lambda: RandomCrop((8, "8")), "'8'"),
    (lambda: RandomFlip(1.5), "1.5"),
    (lambda: RandomFlip(-0.1), "-0.1"),
    (lambda: RandomFlip("half"), "'half'"),
    (lambda: Compose([RandomFlip(), 3]), "3"),
    (lambda: Compose(RandomFlip()), "RandomFlip"),
])
def test_bad_constructor_args(make, text):
    with pytest.raises(ValueError, match=text):
        make()


def test_bad_batches():
    with pytest.raises(ValueError, match=r"4-D.*\(3, 4\)"):
        RandomShift(1)(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="larger than the padded"):
        RandomCrop(10, padding=1)(np.zeros((2, 1, 7, 7), np.float32))
    with pytest.raises(ValueError, match="ints"):
        shift(np.zeros((2, 1, 3, 3)), [1, 2, 3], 0)
    with pytest.raises(ValueError, match="ints"):
        shift(np.zeros((2, 1, 3, 3)), 0.5, 0)
