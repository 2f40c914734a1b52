"""conv2d forward and forward + backward: cycnn vs cycnn.reference vs torch (see conftest.py)."""
BENCH_OPS = ("conv_fwd", "conv_fwd_bwd")


def test_conv(run_bench, impl, op, shape, threads):
    outputs = run_bench(impl, op, shape)
    assert len(outputs) == (1 if op == "conv_fwd" else 4)
