"""``python -m cycnn.bench --inference``: model.predict next to ONNX Runtime and PyTorch.

Method. Every contender runs in its own process (``python -m cycnn._bench_inference --worker
NAME``), so that no two thread pools (cycnn's OpenMP, ONNX Runtime's, PyTorch's) share a process.
The worker builds the network with cycnn under a fixed seed -- so every process holds the same
weights -- and hands those weights to its engine:

* ``cycnn``: ``model.predict(x, batch_size=len(x))``, the ordinary call;
* ``ort``: an ONNX graph written with the ``onnx.helper`` API straight from cycnn's weights
  (Conv/Relu/MaxPool/Flatten/Gemm; no torch exporter needed), run by onnxruntime's CPU provider
  with ``intra_op_num_threads`` threads and every graph optimisation on;
* ``torch``: the same network as ``torch.nn`` modules with the same weights, eager, under
  ``torch.no_grad()``, ``torch.set_num_threads``.

The workers run one after another, in rotated order over ``--rounds`` rounds (A B C, B C A, ...).
A worker warms up, then times single calls per batch size for about ``--seconds`` and reports
the median; the table shows the median over rounds. Each worker also returns its outputs for a
fixed batch, and the parent prints the largest difference from cycnn's.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

NETS = ("mnist", "vgg")
CONTENDERS = ("cycnn", "ort", "torch")
INPUT_SHAPES = {"mnist": (1, 28, 28), "vgg": (3, 32, 32)}


def build_net(name):
    """The benchmark network ``name`` as a built cycnn Sequential with seeded weights (biases
    drawn too, so a wrong bias path shows in the output check)."""
    import cycnn
    from cycnn import layers as L

    cycnn.seed(1234)
    if name == "mnist":   # the reference network (examples/mnist.py)
        stack = [L.Conv2D(32, 5, padding="same", activation="relu"), L.MaxPool2D(2),
                 L.Conv2D(64, 5, padding="same", activation="relu"), L.MaxPool2D(2),
                 L.Flatten(), L.Dense(1000, activation="relu"), L.Dense(10)]
    elif name == "vgg":   # a small VGG-style 3x3 stack on 3x32x32: the convolutions dominate
        stack = [L.Conv2D(32, 3, padding="same", activation="relu"),
                 L.Conv2D(32, 3, padding="same", activation="relu"), L.MaxPool2D(2),
                 L.Conv2D(64, 3, padding="same", activation="relu"),
                 L.Conv2D(64, 3, padding="same", activation="relu"), L.MaxPool2D(2),
                 L.Conv2D(128, 3, padding="same", activation="relu"), L.MaxPool2D(2),
                 L.Flatten(), L.Dense(256, activation="relu"), L.Dense(10)]
    else:
        raise ValueError(f"net must be one of {NETS}, got {name!r}")
    model = cycnn.Sequential(stack, input_shape=INPUT_SHAPES[name])
    rng = np.random.default_rng(99)
    for layer in model.layers:
        if "bias" in layer.params:
            layer.params["bias"] = rng.uniform(-0.1, 0.1, layer.params["bias"].shape).astype(
                np.float32)
    return model


def net_flops(model):
    """Multiply-add FLOPs of one image (2 per MAC), convolutions and dense layers."""
    total = 0
    for layer in model.layers:
        kernel = layer.params.get("kernel")
        if kernel is None:
            continue
        out = np.prod(layer.output_shape[1:]) if kernel.ndim == 4 else 1
        total += 2 * kernel.size * int(out)
    return total


def _layer_steps(model):
    """(kind, layer, activation name) for each layer of the benchmark networks."""
    from cycnn import layers as L
    steps = []
    for layer in model.layers:
        act = getattr(layer, "activation", None)
        act_name = None if act is None else type(act).__name__
        if act_name not in (None, "ReLU"):
            raise ValueError(f"the benchmark converters know only ReLU, got {act_name}")
        if isinstance(layer, L.Conv2D):
            steps.append(("conv", layer, act_name))
        elif isinstance(layer, L.MaxPool2D):
            steps.append(("maxpool", layer, None))
        elif isinstance(layer, L.Flatten):
            steps.append(("flatten", layer, None))
        elif isinstance(layer, L.Dense):
            steps.append(("dense", layer, act_name))
        else:
            raise ValueError(f"the benchmark converters do not know {type(layer).__name__}")
    return steps


def _conv_pads(layer):
    from cycnn._args import conv_padding
    _, _, pads, _ = conv_padding(layer.padding, layer.input_shape[1:], layer.kernel_size,
                                 layer.stride, layer.dilation)
    return pads   # ((top, bottom), (left, right))


def onnx_model(model):
    """An onnx ModelProto of ``model`` built with onnx.helper, weights copied from cycnn."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    cur = "input"
    for i, (kind, layer, act) in enumerate(_layer_steps(model)):
        out = f"t{i}"
        if kind == "conv":
            (pt, pb), (pl, pr) = _conv_pads(layer)
            inits.append(numpy_helper.from_array(layer.params["kernel"], f"w{i}"))
            ins = [cur, f"w{i}"]
            if "bias" in layer.params:
                inits.append(numpy_helper.from_array(layer.params["bias"], f"b{i}"))
                ins.append(f"b{i}")
            nodes.append(helper.make_node("Conv", ins, [out], pads=[pt, pl, pb, pr],
                                          strides=list(layer.stride),
                                          dilations=list(layer.dilation),
                                          kernel_shape=list(layer.kernel_size)))
        elif kind == "maxpool":
            (ph, pw) = layer.padding if isinstance(layer.padding, tuple) else (layer.padding,) * 2
            nodes.append(helper.make_node("MaxPool", [cur], [out],
                                          kernel_shape=list(layer.pool_size),
                                          strides=list(layer.stride or layer.pool_size),
                                          pads=[ph, pw, ph, pw]))
        elif kind == "flatten":
            nodes.append(helper.make_node("Flatten", [cur], [out], axis=1))
        elif kind == "dense":
            inits.append(numpy_helper.from_array(layer.params["kernel"], f"w{i}"))
            ins = [cur, f"w{i}"]
            if "bias" in layer.params:
                inits.append(numpy_helper.from_array(layer.params["bias"], f"b{i}"))
                ins.append(f"b{i}")
            nodes.append(helper.make_node("Gemm", ins, [out], transB=1))
        cur = out
        if act == "ReLU":
            nodes.append(helper.make_node("Relu", [cur], [f"{out}r"]))
            cur = f"{out}r"
    graph = helper.make_graph(
        nodes, "cycnn_bench",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                       ["N"] + list(model.input_shape))],
        [helper.make_tensor_value_info(cur, TensorProto.FLOAT,
                                       ["N"] + list(model.output_shape))], initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = min(proto.ir_version, 9)
    onnx.checker.check_model(proto)
    return proto


def torch_module(model):
    """A torch.nn.Sequential of ``model`` with the same weights."""
    import torch
    mods = []
    for kind, layer, act in _layer_steps(model):
        if kind == "conv":
            (pt, pb), (pl, pr) = _conv_pads(layer)
            kern = layer.params["kernel"]
            if pt != pb or pl != pr:
                mods.append(torch.nn.ZeroPad2d((pl, pr, pt, pb)))
                pt = pl = 0
            m = torch.nn.Conv2d(kern.shape[1], kern.shape[0], tuple(kern.shape[2:]),
                                stride=layer.stride, padding=(pt, pl), dilation=layer.dilation,
                                bias="bias" in layer.params)
        elif kind == "maxpool":
            m = torch.nn.MaxPool2d(layer.pool_size, stride=layer.stride or layer.pool_size,
                                   padding=layer.padding)
        elif kind == "flatten":
            m = torch.nn.Flatten()
        else:
            kern = layer.params["kernel"]
            m = torch.nn.Linear(kern.shape[1], kern.shape[0], bias="bias" in layer.params)
        if kind in ("conv", "dense"):
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(layer.params["kernel"]))
                if "bias" in layer.params:
                    m.bias.copy_(torch.from_numpy(layer.params["bias"]))
        mods.append(m)
        if act == "ReLU":
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods).eval()


def _runner(contender, model, threads):
    """A function x (float32 NCHW) -> output array for the contender."""
    if contender == "cycnn":
        import cycnn
        cycnn.set_num_threads(threads)
        return lambda x: model.predict(x, batch_size=len(x))
    if contender == "ort":
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(onnx_model(model).SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        return lambda x: sess.run(None, {name: x})[0]
    if contender == "torch":
        import torch
        torch.set_num_threads(threads)
        net = torch_module(model)

        def run(x):
            with torch.no_grad():
                return net(torch.from_numpy(x)).numpy()
        return run
    raise ValueError(f"contender must be one of {CONTENDERS}, got {contender!r}")


def worker(contender, net, batches, threads, seconds):
    """Time ``contender`` on ``net``: {batch: median seconds per call}, plus check outputs."""
    model = build_net(net)
    run = _runner(contender, model, threads)
    rng = np.random.default_rng(7)
    check_x = rng.standard_normal((16,) + model.input_shape).astype(np.float32)
    check = np.asarray(run(check_x), dtype=np.float32)
    times = {}
    for batch in batches:
        x = rng.standard_normal((batch,) + model.input_shape).astype(np.float32)
        t0 = time.perf_counter()
        for _ in range(3):          # warm up (buffers, plans, thread pools)
            run(x)
        est = max((time.perf_counter() - t0) / 3, 1e-6)
        reps = int(min(2000, max(7, seconds / est)))
        samples = []
        for _ in range(reps):
            t0 = time.perf_counter()
            run(x)
            samples.append(time.perf_counter() - t0)
        times[batch] = statistics.median(samples)
    return {"contender": contender, "net": net, "times": times, "check": check.tolist(),
            "flops": net_flops(model)}


def _spawn(contender, net, batches, threads, seconds):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "cycnn._bench_inference", "--worker", contender, "--net", net,
           "--batches", ",".join(map(str, batches)), "--threads", str(threads),
           "--seconds", str(seconds)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"contender": contender, "error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _available(contender):
    mods = {"cycnn": ["cycnn"], "ort": ["onnxruntime", "onnx"], "torch": ["torch"]}[contender]
    import importlib.util
    return all(importlib.util.find_spec(m) is not None for m in mods)


def run(nets=NETS, batches=(1, 16, 256), threads=2, rounds=2, seconds=1.0,
        contenders=CONTENDERS, out=print):
    """Run the comparison and print one table per network; returns the results."""
    contenders = [c for c in contenders if _available(c)]
    results = {}
    for net in nets:
        per = {c: [] for c in contenders}
        checks = {}
        for r in range(rounds):
            order = contenders[r % len(contenders):] + contenders[:r % len(contenders)]
            for c in order:
                res = _spawn(c, net, batches, threads, seconds)
                if "error" in res:
                    out(f"{c} failed on {net}: {res['error']}")
                    continue
                per[c].append(res["times"])
                checks[c] = np.asarray(res["check"], dtype=np.float32)
                flops = res["flops"]
        med = {c: {b: statistics.median(t[str(b)] for t in per[c]) for b in batches}
               for c in contenders if per[c]}
        results[net] = med
        _table(net, med, batches, flops, threads, checks, out)
    return results


def _table(net, med, batches, flops, threads, checks, out):
    names = {"cycnn": "cycnn predict", "ort": "ONNX Runtime", "torch": "PyTorch eager"}
    cols = list(med)
    out("")
    out(f"{net}: {flops / 1e6:.1f} MFLOP per image, float32, {threads} threads, each contender "
        f"in its own process, medians")
    head = "| batch | " + " | ".join(names[c] for c in cols)
    if "ort" in med and "cycnn" in med:
        head += " | cycnn / ORT time"
    out(head + " |")
    out("|---" * (len(cols) + 1 + ("ort" in med and "cycnn" in med)) + "|")
    for b in batches:
        cells = []
        for c in cols:
            t = med[c][b]
            cell = f"{t * 1e3:.3f} ms" if b == 1 else f"{t * 1e3:.2f} ms ({b / t:,.0f} img/s)"
            cells.append(cell + f", {b * flops / t / 1e9:.0f} GFLOP/s" if b > 1 else cell)
        line = f"| {b} | " + " | ".join(cells)
        if "ort" in med and "cycnn" in med:
            line += f" | {med['cycnn'][b] / med['ort'][b]:.2f}"
        out(line + " |")
    if "cycnn" in checks:
        for c, arr in checks.items():
            if c != "cycnn":
                err = float(np.max(np.abs(arr - checks["cycnn"])))
                out(f"  outputs: max |{c} - cycnn| = {err:.2e}")


def build_parser():
    p = argparse.ArgumentParser(prog="python -m cycnn.bench --inference",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--nets", default=",".join(NETS), help=f"comma list of {NETS}")
    p.add_argument("--batches", default="1,16,256")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seconds", type=float, default=1.0, help="timing budget per batch size")
    p.add_argument("--contenders", default=",".join(CONTENDERS))
    p.add_argument("--worker", choices=CONTENDERS, help=argparse.SUPPRESS)
    p.add_argument("--net", choices=NETS, help=argparse.SUPPRESS)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        batches = [int(b) for b in args.batches.split(",")]
        if min(batches) < 1:
            raise ValueError
    except ValueError:
        raise SystemExit(f"--batches must be positive ints, got {args.batches!r}") from None
    if args.worker:
        res = worker(args.worker, args.net, batches, args.threads, args.seconds)
        print(json.dumps(res))
        return 0
    nets = [n for n in args.nets.split(",") if n]
    bad = [n for n in nets if n not in NETS]
    if bad:
        raise SystemExit(f"--nets must name some of {NETS}, got {bad}")
    contenders = [c for c in args.contenders.split(",") if c]
    if any(c not in CONTENDERS for c in contenders):
        raise SystemExit(f"--contenders must name some of {CONTENDERS}, got {contenders}")
    print(f"python -m cycnn.bench --inference {' '.join(argv or sys.argv[1:])}".rstrip())
    run(nets, batches, args.threads, args.rounds, args.seconds, contenders)
    return 0


if __name__ == "__main__":
    sys.exit(main())
