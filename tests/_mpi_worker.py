"""Run under ``mpiexec -n P`` (or alone) by tests/test_distributed.py.

    python _mpi_worker.py MODE OUT_DIR

MODE ``train``: one epoch of a small CNN on synthetic data with a fixed
seed, global batch 16 over 50 samples (the last batch holds 2 rows); saves every rank's weights
to OUT_DIR/weights-<rank>-of-<size>.npz and its History / evaluate numbers to JSON. MODE
``train_bn``: the same with a BatchNorm2D layer (batch statistics are per rank, so only the
ranks' agreement is checked, not equality with a single process).
MODE ``nan``: rank 1 feeds a NaN into its share of the second batch; every rank must stop with
an error instead of hanging. MODE ``callback``: a callback raises on rank 1 only.
"""
import json
import os
import sys

import numpy as np

import cycnn
from cycnn import distributed, layers, optim


def build(batchnorm):
    cycnn.seed(0)
    model = cycnn.Sequential([
        layers.Conv2D(4, 3, padding="same", activation="relu"),
        *([layers.BatchNorm2D()] if batchnorm else []),
        layers.MaxPool2D(2),
        layers.Flatten(),
        layers.Dense(5),
    ], input_shape=(1, 8, 8))
    model.compile(optimizer=optim.Adam(lr=1e-2), loss="cross_entropy", metrics=["accuracy"])
    return model


def data():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 5, 50)
    return x, y


def main():
    mode, out = sys.argv[1], sys.argv[2]
    if os.environ.get("PMI_RANK") is not None or os.environ.get("PMI_SIZE") is not None:
        distributed.init()
    rank, size = distributed.rank(), distributed.size()
    cycnn.set_num_threads(1)
    model = build(batchnorm=mode == "train_bn")
    if rank == 1:                 # ranks start from different weights: fit must broadcast
        model.set_weights([w + 1.0 for w in model.get_weights()])
    x, y = data()
    if mode in ("train", "train_bn"):
        if rank == 0:
            np.savez(os.path.join(out, "initial.npz"), *model.get_weights())
        cycnn.seed(3)            # the shuffling order
        history = model.fit(x, y, epochs=1, batch_size=16, validation_data=(x[:21], y[:21]),
                            verbose=0)
        result = {"history": {k: v for k, v in history.history.items()
                              if k not in ("time", "images_per_sec")},
                  "evaluate": model.evaluate(x[:23], y[:23], batch_size=4)}
        weights = model.get_weights()
        np.savez(os.path.join(out, f"weights-{rank}-of-{size}.npz"), *weights)
        with open(os.path.join(out, f"result-{rank}-of-{size}.json"), "w") as f:
            json.dump(result, f)
    elif mode == "nan":
        if rank == 1:
            x = x.copy()
            x[16 + 8:32] = np.nan    # rank 1's share of the second global batch
        model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    elif mode == "callback":
        class Boom(cycnn.models.callbacks.Callback):
            def on_batch_end(self, batch, logs=None):
                if rank == 1 and batch == 1:
                    raise RuntimeError("boom from a callback")
        model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0, callbacks=[Boom()])
    print(f"rank {rank} done", flush=True)


if __name__ == "__main__":
    main()
