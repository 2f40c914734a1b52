"""2x2 stride-2 max_pool2d forward + backward: cycnn vs reference vs torch (see conftest.py)."""
from cycnn.bench import SHAPES

BENCH_OPS = ("maxpool_fwd_bwd",)


def test_maxpool(run_bench, impl, op, shape, threads):
    y, dx = run_bench(impl, op, shape)
    assert tuple(y.shape[2:]) == SHAPES[shape].out_hw()
