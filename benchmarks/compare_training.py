"""Training speed of the reference MNIST network: cycnn against the same network in PyTorch.

    python benchmarks/compare_training.py [--data DIR] [--steps 200] [--threads 2] [--batch-size 64]

Both frameworks train the same architecture (conv 32@5x5 'same'+ReLU, maxpool 2, conv 64@5x5
'same'+ReLU, maxpool 2, flatten, dense 1000+ReLU, dense 10; Adam 1e-3; cross-entropy on logits)
on the same MNIST batches. Steps are interleaved (one cycnn step, one torch step, ...) after a
warm-up, so both see the same machine load; the script prints the median step time, images/s and
the implied time per 60,000-image epoch, and the ratio. Real MNIST from --data / CYCNN_DATA, or
random data with --synthetic.
"""
import argparse
import statistics
import sys
import time

import numpy as np

import cycnn
from cycnn import layers as L


def cycnn_model():
    model = cycnn.Sequential([
        L.Conv2D(32, 5, padding="same", activation="relu"), L.MaxPool2D(2),
        L.Conv2D(64, 5, padding="same", activation="relu"), L.MaxPool2D(2),
        L.Flatten(), L.Dense(1000, activation="relu"), L.Dense(10),
    ], input_shape=(1, 28, 28))
    model.compile(optimizer=cycnn.optim.Adam(1e-3), loss="cross_entropy")
    return model


def cycnn_step(model):
    def step(x, y):
        out = model.forward(x, training=True)
        _, dout = model.loss.value_and_grad(out, y)
        model.backward(dout)
        model.optimizer.step(model.params, model.grads)
    return step


def torch_step(torch):
    nn = torch.nn
    net = nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 1000), nn.ReLU(), nn.Linear(1000, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        opt.step()
    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="folder with the MNIST IDX files")
    parser.add_argument("--synthetic", action="store_true", help="random data instead of MNIST")
    parser.add_argument("--steps", type=int, default=200, help="timed steps per framework")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=cycnn.get_num_threads())
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)

    try:
        import torch
    except ImportError:
        torch = None
    cycnn.seed(0)
    cycnn.set_num_threads(args.threads)
    if torch is not None:
        torch.manual_seed(0)
        torch.set_num_threads(args.threads)

    if args.synthetic:
        rng = np.random.default_rng(0)
        x_all = rng.random((args.batch_size * 50, 1, 28, 28), dtype=np.float32)
        y_all = rng.integers(0, 10, len(x_all)).astype(np.int64)
    else:
        (x_u8, y_all), _ = cycnn.datasets.load_mnist(args.data, download=False)
        x_all = (x_u8 / np.float32(255)).astype(np.float32)
    n_batches = len(x_all) // args.batch_size

    contenders = {"cycnn": cycnn_step(cycnn_model())}
    if torch is not None:
        contenders["torch"] = torch_step(torch)
    times = {name: [] for name in contenders}
    for i in range(args.warmup + args.steps):
        b = i % n_batches
        x = x_all[b * args.batch_size:(b + 1) * args.batch_size]
        y = y_all[b * args.batch_size:(b + 1) * args.batch_size]
        for name, step in contenders.items():
            t0 = time.perf_counter()
            step(x, y)
            if i >= args.warmup:
                times[name].append(time.perf_counter() - t0)

    print(f"reference network, batch {args.batch_size}, {args.threads} thread(s), "
          f"{args.steps} interleaved steps each; cycnn {cycnn.__version__} "
          f"({cycnn.build_info()['simd']})" + (f", torch {torch.__version__}" if torch else ""))
    print(f"{'framework':10s} {'median ms/step':>15s} {'images/s':>10s} {'s/epoch (60k)':>14s}")
    medians = {}
    for name, ts in times.items():
        medians[name] = statistics.median(ts)
        rate = args.batch_size / medians[name]
        print(f"{name:10s} {medians[name] * 1e3:15.1f} {rate:10.0f} {60000 / rate:14.1f}")
    if "torch" in medians:
        print(f"cycnn / torch time per step: {medians['cycnn'] / medians['torch']:.2f}")
    if torch is None:
        print("(PyTorch not installed: pip install torch==2.13.0 for the side-by-side)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
