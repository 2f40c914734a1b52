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

The workers are started once per network, each with its own thread pool of ``--threads``
threads, and stay up while the parent asks them, one JSON line at a time, for blocks of timed
calls (the kernel benchmark's protocol, :mod:`cycnn._workers`). The host's speed drifts
in phases of tens of seconds, so the contenders take turns rather than timing one after
another. For each batch size every worker warms up, then rounds follow: in each round every
contender has one turn -- a pause of ``SETTLE_S`` (the previous worker's OpenMP threads stop
spinning) and then a block of calls lasting about ``TURN_S`` -- in an order that rotates from
round to round (:func:`turn_order`) while cycnn and ORT always take adjacent turns. Rounds go on
until every contender has ``--seconds`` of timed calls, and at least ``--rounds`` of them. The
table gives each contender's median call, and as "cycnn / ORT time" the median over rounds of
the ratio of the two block medians of that round (:func:`paired_ratio`): both were measured
within a fraction of a second of each other, on the same machine state, so a slow phase of the
host cancels out of the ratio instead of landing on one contender. Each worker also returns its
outputs for a fixed batch, and the parent prints the largest difference from cycnn's.
"""
import argparse
import statistics
import sys
import time

import numpy as np

from cycnn._workers import SETTLE_S, Worker, WorkerError, serve, time_calls

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


# One turn: a block of calls lasting about TURN_S. A call of batch 256 takes 50-200 ms (more for
# PyTorch on one thread), so a block of 0.15 s still holds a few calls and its median drops a
# call that the scheduler preempted, while the SETTLE_S pause before it stays a small part of the
# turn; a round (three turns, about half a second) stays well inside one of the host's load
# phases, which last tens of seconds, so the two contenders of a pair see the same machine.
TURN_S = 0.15
WARM_S = 0.1       # warm-up per batch size: at least this long and WARM_CALLS calls
WARM_CALLS = 3


def _worker_main(contender):
    """Serve one contender over stdin/stdout (requests: setup, warm, time; see run)."""
    state = {}

    def handle(cmd):
        if cmd["cmd"] == "setup":       # build the network and the engine, run the check batch
            state.clear()
            model = build_net(cmd["net"])
            state["run"] = run = _runner(contender, model, cmd["threads"])
            state["shape"] = model.input_shape
            check_x = np.random.default_rng(7).standard_normal(
                (16,) + model.input_shape).astype(np.float32)
            return {"check": np.asarray(run(check_x), dtype=np.float32).tolist(),
                    "flops": net_flops(model)}
        if cmd["cmd"] == "warm":        # make this batch size's input and warm up on it
            batch = int(cmd["batch"])
            x = np.random.default_rng(batch).standard_normal(
                (batch,) + state["shape"]).astype(np.float32)
            run = state["run"]
            state["call"] = lambda: run(x)
            times, t0 = [], time.perf_counter()
            while len(times) < WARM_CALLS or time.perf_counter() - t0 < WARM_S:
                times += time_calls(state["call"], 1)
            return {"per_call": statistics.median(times[1:])}
        if cmd["cmd"] == "time":
            return {"times": time_calls(state["call"], int(cmd["reps"]))}
        return {"error": f"unknown command {cmd['cmd']!r}"}

    return serve(handle)


def turn_order(names, r):
    """The contenders' order in round ``r``: rotated from round to round as the kernel
    benchmark's ``_rotate`` does, except that cycnn and ORT form one unit, so that they always
    take adjacent turns; which of the two goes first flips after every full rotation."""
    paired = "cycnn" in names and "ort" in names
    units = [("cycnn", "ort") if paired and n == "cycnn" else (n,)
             for n in names if not (paired and n == "ort")]
    shift = r % len(units)
    flip = (r // len(units)) % 2
    return [n for unit in units[shift:] + units[:shift] for n in (unit[::-1] if flip else unit)]


def paired_ratio(num_blocks, den_blocks):
    """Median over rounds of median(num block) / median(den block): ``num_blocks[r]`` and
    ``den_blocks[r]`` are the call times (seconds) of round r's turns of the two contenders."""
    if len(num_blocks) != len(den_blocks) or not num_blocks:
        raise ValueError(f"need the same number (> 0) of rounds for both contenders, got "
                         f"{len(num_blocks)} and {len(den_blocks)}")
    return statistics.median(statistics.median(a) / statistics.median(b)
                             for a, b in zip(num_blocks, den_blocks))


def _measure_batch(workers, batch, min_rounds, seconds, out):
    """Warm up every worker on ``batch``, then time them in rounds of turns (see the module
    docstring); returns {name: [[seconds of each call] per round]}. A worker that fails is
    reported, closed and removed from ``workers``."""
    def drop(name, exc):
        out(f"{name} failed at batch {batch}: {exc}")
        workers.pop(name).close()

    reps = {}
    for name in list(workers):
        try:
            per_call = workers[name].ask(cmd="warm", batch=batch)["per_call"]
        except WorkerError as exc:
            drop(name, exc)
            continue
        turn = min(TURN_S, seconds)      # a tiny budget (a smoke run) gets short turns
        reps[name] = max(1, round(turn / per_call)) if per_call > 0 else 1
    blocks = {name: [] for name in workers}
    r = 0
    while workers and (r < min_rounds or min(sum(map(sum, blocks[n])) for n in workers) < seconds):
        for name in turn_order(list(workers), r):
            time.sleep(SETTLE_S)
            try:
                blocks[name].append(workers[name].ask(cmd="time", reps=reps[name])["times"])
            except WorkerError as exc:
                drop(name, exc)
                del blocks[name]
        r += 1
    return blocks


def _available(contender):
    mods = {"cycnn": ["cycnn"], "ort": ["onnxruntime", "onnx"], "torch": ["torch"]}[contender]
    import importlib.util
    return all(importlib.util.find_spec(m) is not None for m in mods)


def run(nets=NETS, batches=(1, 16, 256), threads=2, rounds=7, seconds=1.0,
        contenders=CONTENDERS, out=print):
    """Run the comparison and print one table per network. Returns {net: {"median": {contender:
    {batch: seconds}}, "ratio": {batch: cycnn/ORT paired ratio}, "rounds": {batch: rounds}}}."""
    for c in contenders:
        if not _available(c):
            out(f"{c}: not installed, skipped")
    contenders = [c for c in contenders if _available(c)]
    results = {}
    for net in nets:
        workers, checks, flops = {}, {}, None
        try:
            for c in contenders:   # one persistent worker per contender and network
                workers[c] = Worker(c, module="cycnn._bench_inference",
                                     env={"OMP_NUM_THREADS": str(threads)})
                try:
                    ans = workers[c].ask(cmd="setup", net=net, threads=threads)
                except WorkerError as exc:
                    out(f"{c} failed on {net}: {exc}")
                    workers.pop(c).close()
                    continue
                checks[c] = np.asarray(ans["check"], dtype=np.float32)
                flops = ans["flops"]
            blocks = {b: _measure_batch(workers, b, rounds, seconds, out) for b in batches}
        finally:
            for w in workers.values():
                w.close()
        names = [c for c in contenders if all(c in blocks[b] for b in batches)]
        med = {c: {b: statistics.median(t for block in blocks[b][c] for t in block)
                   for b in batches} for c in names}
        ratio = ({b: paired_ratio(blocks[b]["cycnn"], blocks[b]["ort"]) for b in batches}
                 if "cycnn" in names and "ort" in names else {})
        results[net] = {"median": med, "ratio": ratio,
                        "rounds": {b: max(map(len, blocks[b].values()), default=0)
                                   for b in batches}}
        if names:
            _table(net, med, ratio, batches, flops, threads, checks, min(TURN_S, seconds), out)
    return results


def _table(net, med, ratio, batches, flops, threads, checks, turn, out):
    names = {"cycnn": "cycnn predict", "ort": "ONNX Runtime", "torch": "PyTorch eager"}
    cols = list(med)
    out("")
    out(f"{net}: {flops / 1e6:.1f} MFLOP per image, float32, {threads} threads, each contender "
        f"in its own process, taking turns in blocks of ~{turn:g} s, medians")
    head = "| batch | " + " | ".join(names[c] for c in cols)
    if ratio:
        head += " | cycnn / ORT time (median of paired per-round ratios)"
    out(head + " |")
    out("|---" * (len(cols) + 1 + bool(ratio)) + "|")
    for b in batches:
        cells = []
        for c in cols:
            t = med[c][b]
            cell = f"{t * 1e3:.3f} ms" if b == 1 else f"{t * 1e3:.2f} ms ({b / t:,.0f} img/s)"
            cells.append(cell + f", {b * flops / t / 1e9:.0f} GFLOP/s" if b > 1 else cell)
        line = f"| {b} | " + " | ".join(cells)
        if ratio:
            line += f" | {ratio[b]:.2f}"
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
    p.add_argument("--rounds", type=int, default=7,
                   help="at least this many rounds of turns per batch size")
    p.add_argument("--seconds", type=float, default=1.0,
                   help="timed calls per contender and batch size, in seconds")
    p.add_argument("--contenders", default=",".join(CONTENDERS))
    p.add_argument("--worker", choices=CONTENDERS, help=argparse.SUPPRESS)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.worker:
        return _worker_main(args.worker)
    try:
        batches = [int(b) for b in args.batches.split(",")]
        if min(batches) < 1:
            raise ValueError
    except ValueError:
        raise SystemExit(f"--batches must be positive ints, got {args.batches!r}") from None
    for flag, value, low in (("--threads", args.threads, 1), ("--rounds", args.rounds, 1),
                             ("--seconds", args.seconds, 0)):
        if not value >= low or value > 1e6:
            raise SystemExit(f"{flag} must be in [{low}, 1e6], got {value}")
    nets = [n for n in args.nets.split(",") if n]
    bad = [n for n in nets if n not in NETS]
    if bad:
        raise SystemExit(f"--nets must name some of {NETS}, got {bad}")
    contenders = [c for c in args.contenders.split(",") if c]
    if any(c not in CONTENDERS for c in contenders):
        raise SystemExit(f"--contenders must name some of {CONTENDERS}, got {contenders}")
    shown = sys.argv[1:] if argv is None else argv
    print(f"python -m cycnn.bench --inference {' '.join(shown)}".rstrip())
    run(nets, batches, args.threads, args.rounds, args.seconds, contenders)
    return 0


if __name__ == "__main__":
    sys.exit(main())
