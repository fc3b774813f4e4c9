"""Inference of one ONNX file two ways: imported into nnfast, and on ONNX Runtime.

    python benchmarks/onnx_inference.py                  # 1 and 2 threads, 200 repeats
    python benchmarks/onnx_inference.py --quick          # 1 thread, 20 repeats (smoke run)

The file: a PyTorch 784-256-128-10 relu network with a softmax head, exported with
``torch.onnx.export(dynamo=False)`` and a dynamic batch dimension; without PyTorch the same
network is written by nnfast's own exporter (the table says which). nnfast runs
``nnfast.from_onnx(file).predict(x, batch_size=batch)``; ONNX Runtime runs
``InferenceSession(file).run`` with ``intra_op_num_threads`` and ``inter_op_num_threads=1``
at the same thread count nnfast gets. For batch 1 and batch 256, the two are called in
interleaved rounds of the same run (load from other processes hits both alike) and the table
prints the median seconds per call, rows per second, and the ratio of the medians
(nnfast / ONNX Runtime: below 1 means nnfast is faster). Outputs are checked to agree first.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np

import nnfast

LAYERS = (784, 256, 128, 10)


def write_file(path: str) -> str:
    """Write the benchmark network to path; returns which exporter wrote it."""
    try:
        import torch
    except ImportError:
        from nnfast.layers import Dense
        m = nnfast.Sequential([Dense(256, "relu", input_dim=784), Dense(128, "relu"),
                               Dense(10, "softmax")], seed=0)
        m.build()
        m.to_onnx(path)
        return "nnfast.to_onnx (PyTorch not installed)"
    torch.manual_seed(0)
    nn = torch.nn
    net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                        nn.Linear(128, 10), nn.Softmax(dim=1)).eval()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 784),), path, dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "batch"}})
    return f"torch.onnx.export(dynamo=False), torch {torch.__version__}"


def medians(fns, repeats: int, warmup: int = 3) -> list:
    """Median wall seconds of each function, calls interleaved round by round."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, t in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def run(threads: int, repeats: int, path: str) -> list:
    import onnxruntime as ort
    nnfast.set_num_threads(threads)
    model = nnfast.from_onnx(path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    rows = []
    for batch in (1, 256):
        x = np.random.default_rng(batch).random((batch, LAYERS[0]), dtype=np.float32)
        np.testing.assert_allclose(model.predict(x, batch_size=batch),
                                   sess.run(None, {name: x})[0], rtol=1e-4, atol=1e-6)
        t_nn, t_ort = medians([lambda x=x, b=batch: model.predict(x, batch_size=b),
                               lambda x=x: sess.run(None, {name: x})], repeats)
        rows.append((batch, threads, t_nn, t_ort))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1 thread, 20 repeats")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 200)")
    p.add_argument("--threads", default=None, help="comma-separated thread counts (1,2)")
    args = p.parse_args(argv)
    try:
        import onnxruntime
    except ImportError:
        print('needs ONNX Runtime: pip install "nnfast[bench]"', file=sys.stderr)
        return 2
    repeats = args.repeats or (20 if args.quick else 200)
    threads = [int(t) for t in (args.threads or ("1" if args.quick else "1,2")).split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mlp.onnx")
        source = write_file(path)
        print(f"784-256-128-10 relu/softmax, float32, file from {source}; nnfast "
              f"{nnfast.__version__}, onnxruntime {onnxruntime.__version__}; medians of "
              f"{repeats} interleaved rounds")
        print(f"{'batch':>5} {'threads':>7} {'nnfast ms':>10} {'ORT ms':>10} "
              f"{'nnfast rows/s':>14} {'ORT rows/s':>12} {'nnfast/ORT':>10}")
        for n in threads:
            for batch, t, t_nn, t_ort in run(n, repeats, path):
                print(f"{batch:>5} {t:>7} {t_nn * 1e3:>10.4f} {t_ort * 1e3:>10.4f} "
                      f"{batch / t_nn:>14.0f} {batch / t_ort:>12.0f} {t_nn / t_ort:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
