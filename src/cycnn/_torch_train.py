"""PyTorch twin of the reference network, run in a process of its own by the training benchmarks.

    python -P path/to/_torch_train.py --data BATCHES.npz --threads T [--steps K] [--warmup W]
                                      [--epoch TRAIN_TEST.npz] [--seed S]

This file imports only NumPy and torch -- never cycnn -- so that torch's OpenMP runtime is the
only one in its process (two runtimes in one process spin against each other). It is started by
``python -m cycnn.bench --profile`` and ``benchmarks/compare_training.py`` with ``-P`` (so the
package folder is not put on ``sys.path``) and prints one JSON line:

* timing (``--data``, an .npz with float32 ``x`` (N, 1, 28, 28) and int64 ``y``): after ``W``
  warm-up steps, ``K`` training steps over the batches of 64 in order (wrapping around) are timed
  one by one; prints ``{"step_s": [...], "total_s": ..., "cpu_s": ...}`` (process CPU time).
* one epoch (``--epoch``, an .npz with ``x_train``, ``y_train``, ``x_test``, ``y_test`` and
  ``order``, the shuffled training order): trains one epoch in that order, then prints the test
  accuracy and the epoch's images/s.

Network: conv 32@5x5 pad 2 + ReLU, maxpool 2, conv 64@5x5 pad 2 + ReLU, maxpool 2, flatten,
linear 3136->1000 + ReLU, linear 1000->10; Adam(1e-3); cross-entropy on logits.
"""
import argparse
import json
import sys
import time

import numpy as np


def build(torch, seed=0):
    torch.manual_seed(seed)
    nn = torch.nn
    net = nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 1000), nn.ReLU(), nn.Linear(1000, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss
    return net, step


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--data")
    p.add_argument("--epoch")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0, help="torch.manual_seed for the initial weights")
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    net, step = build(torch, args.seed)
    bs = args.batch_size
    if args.data:
        with np.load(args.data, allow_pickle=False) as f:
            x, y = torch.from_numpy(f["x"]), torch.from_numpy(f["y"])
        n_batches = len(x) // bs
        times = []
        t_all, c_all = time.perf_counter(), time.process_time()
        for i in range(args.warmup + args.steps):
            b = i % n_batches
            xb, yb = x[b * bs:(b + 1) * bs], y[b * bs:(b + 1) * bs]
            if i == args.warmup:
                t_all, c_all = time.perf_counter(), time.process_time()
            t0 = time.perf_counter()
            step(xb, yb)
            times.append(time.perf_counter() - t0)
        total, cpu = time.perf_counter() - t_all, time.process_time() - c_all
        print(json.dumps({"step_s": times[args.warmup:], "total_s": total, "cpu_s": cpu,
                          "torch": torch.__version__}))
    else:
        with np.load(args.epoch, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
        x = torch.from_numpy(data["x_train"])
        y = torch.from_numpy(data["y_train"])
        order = torch.from_numpy(data["order"])
        t0 = time.perf_counter()
        net.train()
        for start in range(0, len(order), bs):
            index = order[start:start + bs]
            step(x[index], y[index])
        seconds = time.perf_counter() - t0
        net.eval()
        correct = 0
        with torch.no_grad():
            xt, yt = torch.from_numpy(data["x_test"]), torch.from_numpy(data["y_test"])
            for start in range(0, len(xt), 1000):
                pred = net(xt[start:start + 1000]).argmax(1)
                correct += int((pred == yt[start:start + 1000]).sum())
        print(json.dumps({"images_per_s": len(order) / seconds, "seconds": seconds,
                          "test_accuracy": correct / len(xt), "torch": torch.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
