"""Inference latency of one 784-256-128-10 relu/softmax network, float32, against the anchors.

    python benchmarks/latency.py                 # batch 1 and 256, 1 and 2 threads, 2000 rounds
    python benchmarks/latency.py --quick         # 1 thread, 20 rounds (smoke run)

Columns, median microseconds per call over interleaved rounds (every contender is called once
per round, so load from other processes hits all alike; in a new random order each round, so
none always follows the same other runtime):

- nnfast ``predict(x, batch_size=batch)``, ``model(x)``, ``predict_on_batch(x)`` and the raw
  plan (``model._plan().forward(x, out)``: the one C call, no input conversion);
- ONNX Runtime on ``model.to_onnx`` (intra-op threads = the thread count, inter-op 1);
- PyTorch (``torch.set_num_threads``, ``inference_mode``), NumPy (``x @ W + b``, BLAS held to the
  thread count through threadpoolctl when installed), and JAX ``jit`` when importable (XLA picks
  its own thread count: its column is the same at 1 and 2 threads).

Batch 256 also prints the raw plan's share of the measured FMA peak (benchmarks/peak.py):
2·N·(784·256 + 256·128 + 128·10) flops over its median time, over the peak at that thread count.
Outputs are checked to agree before anything is timed.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time

import _tree  # noqa: F401  (the source tree's nnfast when it is built in place)
import numpy as np
from peak import measured_peak

import nnfast
from nnfast.layers import Dense

LAYERS = (784, 256, 128, 10)
FLOPS_PER_ROW = 2 * sum(a * b for a, b in zip(LAYERS, LAYERS[1:]))


def medians(fns: dict, repeats: int, warmup: int = 5) -> dict:
    """Median wall seconds of each function, calls interleaved round by round in a new random
    order each round (seeded): a call right after another runtime's (its threads spinning on,
    its data in the caches) costs up to 2.5x (a batch-1 plan: 19 us alone, 44 us after
    PyTorch's), so no column may always follow the same one (predict, first in every round
    after JAX's, measured 55-90 us against 21 us alone)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    order = list(fns.items())
    rng = random.Random(0)
    for _ in range(repeats):
        rng.shuffle(order)
        for name, fn in order:
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def contenders(model, x, threads: int, onnx_path: str | None) -> tuple[dict, list]:
    """{name: zero-argument callable returning the outputs}, and notes on what was left out."""
    Ws = [(np.asarray(lay.W), np.asarray(lay.b)) for lay in model.layers]
    plan, out = model._plan(), np.empty((len(x), LAYERS[-1]), np.float32)
    fns = {"predict": lambda: model.predict(x, batch_size=len(x)), "model(x)": lambda: model(x),
           "on_batch": lambda: model.predict_on_batch(x),
           "plan": lambda: plan.forward(x, out)}
    notes = []
    if onnx_path is not None:
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        fns["ORT"] = lambda: sess.run(None, {name: x})[0]
    else:
        notes.append("ONNX Runtime: not installed (pip install 'nnfast[bench]')")
    try:
        import torch
        torch.set_num_threads(threads)
        nn = torch.nn
        net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                            nn.Linear(128, 10), nn.Softmax(dim=1)).eval()
        with torch.no_grad():
            for lin, (W, b) in zip(net[::2], Ws):
                lin.weight.copy_(torch.from_numpy(W.T.copy()))
                lin.bias.copy_(torch.from_numpy(b))
        xt = torch.from_numpy(x)

        def run_torch():
            with torch.inference_mode():
                return net(xt).numpy()
        fns["torch"] = run_torch
    except ImportError:
        notes.append("PyTorch: not installed")

    def run_numpy():
        a = np.maximum(x @ Ws[0][0] + Ws[0][1], 0)
        a = np.maximum(a @ Ws[1][0] + Ws[1][1], 0)
        return _softmax(a @ Ws[2][0] + Ws[2][1])
    fns["numpy"] = run_numpy
    try:
        import jax
        import jax.numpy as jnp

        @jax.jit
        def forward(x, p):
            a = jax.nn.relu(x @ p[0][0] + p[0][1])
            a = jax.nn.relu(a @ p[1][0] + p[1][1])
            return jax.nn.softmax(a @ p[2][0] + p[2][1], axis=1)
        params, xj = [(jnp.asarray(W), jnp.asarray(b)) for W, b in Ws], jnp.asarray(x)
        fns["jax-jit"] = lambda: np.asarray(forward(xj, params).block_until_ready())
    except ImportError:
        notes.append("JAX: not installed")
    return fns, notes


def _blas_limit(threads: int):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1 thread, 20 rounds")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 2000)")
    p.add_argument("--threads", default=None, help="comma-separated thread counts (1,2)")
    p.add_argument("--batches", default="1,256", help="comma-separated batch sizes (1,256)")
    args = p.parse_args(argv)
    repeats = args.repeats or (20 if args.quick else 2000)
    threads = [int(t) for t in (args.threads or ("1" if args.quick else "1,2")).split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    model = nnfast.Sequential([Dense(256, "relu", input_dim=784), Dense(128, "relu"),
                               Dense(10, "softmax")], seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = os.path.join(tmp, "mlp.onnx")
        try:
            import onnxruntime  # noqa: F401
            model.to_onnx(onnx_path)
        except ImportError:
            onnx_path = None
        print(f"784-256-128-10 relu/softmax, float32; nnfast {nnfast.__version__} "
              f"({nnfast.info()['kernel_path']}); median us of {repeats} interleaved rounds")
        header = None
        for nt in threads:
            nnfast.set_num_threads(nt)
            peak = measured_peak(4, nt, 0.05 if args.quick else 1.0)
            for batch in batches:
                x = np.random.default_rng(batch).random((batch, LAYERS[0]), dtype=np.float32)
                with _blas_limit(nt):
                    fns, notes = contenders(model, x, nt, onnx_path)
                    want = model.predict(x)
                    for name, fn in fns.items():
                        np.testing.assert_allclose(np.asarray(fn()), want, rtol=1e-4, atol=1e-6,
                                                   err_msg=name)
                    t = medians(fns, repeats)
                if header is None:
                    header = list(fns)
                    print(f"{'batch':>5} {'threads':>7} "
                          + " ".join(f"{n:>9}" for n in header) + f" {'plan %peak':>10}")
                    for note in notes:
                        print(f"  ({note})")
                share = batch * FLOPS_PER_ROW / t["plan"] / (peak * 1e9) * 100
                print(f"{batch:>5} {nt:>7} "
                      + " ".join(f"{t[n] * 1e6:>9.1f}" for n in header)
                      + f" {share:>9.0f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
