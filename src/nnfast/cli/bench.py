"""`nnfast bench`: the standard comparison, measured side by side in one process.

Every figure is a median over repeats, with nnfast and its competitors interleaved in the same
run at the same thread count (nnfast.set_num_threads, threadpoolctl for NumPy's BLAS,
torch.set_num_threads). Ratios are what to compare across machines; absolute times are not.
"""
from __future__ import annotations

import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np

import nnfast

MATMUL_SHAPES = [(64, 784, 256), (128, 784, 256), (32, 784, 256), (128, 128, 10),
                 (512, 512, 512), (1024, 1024, 1024)]
QUICK_SHAPES = [(64, 784, 256), (128, 784, 256), (128, 128, 10), (512, 512, 512)]
NET = (784, 256, 128, 10)


def strip_openblas_env(argv) -> None:
    """Re-exec without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: some machines set them to dodge
    old OpenBLAS bugs, and they slow a current NumPy, which would flatter our ratios."""
    if any(v in os.environ for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")):
        env = {k: v for k, v in os.environ.items()
               if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        os.execve(sys.executable, [sys.executable, "-m", "nnfast", "bench", *argv], env)


class _Limits:
    """Pin NumPy's BLAS, torch and nnfast to the same thread count."""

    def __init__(self, n: int):
        self.n, self.ctl, self.torch_before = n, None, None

    def __enter__(self):
        try:
            from threadpoolctl import threadpool_limits
            self.ctl = threadpool_limits(self.n)
        except ImportError:
            warnings.warn("threadpoolctl is not installed: NumPy's BLAS thread count is not "
                          "matched (pip install 'nnfast[bench]')", RuntimeWarning, stacklevel=2)
        torch = _optional("torch")
        if torch is not None:
            self.torch_before = torch.get_num_threads()
            torch.set_num_threads(self.n)
        self.nn_before = nnfast.get_num_threads()
        nnfast.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        nnfast.set_num_threads(self.nn_before)
        if self.ctl is not None:
            self.ctl.restore_original_limits()
        torch = _optional("torch")
        if torch is not None and self.torch_before:
            torch.set_num_threads(self.torch_before)


def _optional(name):
    if name in sys.modules:
        return sys.modules[name]
    try:
        return __import__(name)
    except ImportError:
        return None


def _interleaved(fns: dict, repeats: int, min_time: float = 0.02) -> dict:
    """Median seconds per call of each function, calls interleaved so drift hits all equally.

    Nothing pauses between libraries and no untimed call precedes a timed run: each library's
    first call after another's meets that library's still spinning threads, as in a user's
    program (docs/threading.md)."""
    loops = {}
    for name, fn in fns.items():
        fn()
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < min_time:
            fn()
            n += 1
        loops[name] = max(1, n)
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(loops[name]):
                fn()
            samples[name].append((time.perf_counter() - t0) / loops[name])
    return {name: statistics.median(v) for name, v in samples.items()}


def bench_matmul(threads: int, quick: bool) -> list:
    rng = np.random.default_rng(0)
    torch = _optional("torch")
    rows = []
    for m, k, n in (QUICK_SHAPES if quick else MATMUL_SHAPES):
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        fns = {"nnfast": lambda a=a, b=b: nnfast.matmul(a, b),
               "numpy": lambda a=a, b=b: np.matmul(a, b)}
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            fns["torch"] = lambda ta=ta, tb=tb: torch.matmul(ta, tb)
        with _Limits(threads):
            t = _interleaved(fns, repeats=5 if quick else 11)
        flops = 2.0 * m * k * n
        row = {"shape": f"{m}x{k}x{n}", "threads": threads}
        row.update({f"{name} GFLOP/s": flops / sec / 1e9 for name, sec in t.items()})
        row["vs numpy"] = t["numpy"] / t["nnfast"]
        if "torch" in t:
            row["vs torch"] = t["torch"] / t["nnfast"]
        rows.append(row)
    return rows


def _training_data(quick: bool):
    n = 6000 if quick else 60000
    try:
        from nnfast.datasets import load_fashion_mnist
        (x, y), _ = load_fashion_mnist()
        return x[:n].reshape(len(x[:n]), -1).astype(np.float32), y[:n], "Fashion-MNIST"
    except (ImportError, FileNotFoundError, OSError, ValueError):
        rng = np.random.default_rng(0)
        x = rng.random((n, NET[0]), dtype=np.float32)
        y = rng.integers(0, NET[-1], n)
        return x, y, "synthetic data of Fashion-MNIST's shape (Fashion-MNIST not installed)"


def _nnfast_epoch(x, y, backend: str):
    from nnfast import Sequential
    from nnfast.layers import Dense

    def run():
        with nnfast.use_backend(backend):
            model = Sequential([Dense(NET[1], activation="relu", input_dim=NET[0]),
                                Dense(NET[2], activation="relu"),
                                Dense(NET[3], activation="softmax")])
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            model.fit(x, y, epochs=1, batch_size=128, verbose=0, seed=0)
    return run


def _torch_epoch(torch, x, y):
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

    def run():
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(NET[0], NET[1]), torch.nn.ReLU(),
                                  torch.nn.Linear(NET[1], NET[2]), torch.nn.ReLU(),
                                  torch.nn.Linear(NET[2], NET[3]))
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 128):
            idx = perm[i:i + 128]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    return run


def _sklearn_epoch(x, y):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            MLPClassifier(hidden_layer_sizes=NET[1:-1], batch_size=128, max_iter=1,
                          random_state=0, shuffle=True).fit(x, y)
    return run


def _jax_epoch(x, y):
    from nnfast.cli._rivals import jax_trainer

    epoch, _ = jax_trainer((x, y, x[:1], y[:1]), NET, 128, 0)
    counter = iter(range(1 << 30))
    return lambda: epoch(next(counter))


def bench_training(threads: int, quick: bool) -> tuple:
    x, y, source = _training_data(quick)
    fns = {"nnfast": _nnfast_epoch(x, y, "c")}
    if _optional("jax") is not None:
        fns["jax"] = _jax_epoch(x, y)
    slow = {"numpy reference": _nnfast_epoch(x, y, "python")}
    torch = _optional("torch")
    if torch is not None:
        fns["torch"] = _torch_epoch(torch, x, y)
    if _optional("sklearn") is not None:
        slow["scikit-learn"] = _sklearn_epoch(x, y)
    with _Limits(threads):
        t = _interleaved(fns, repeats=3 if quick else 5, min_time=0)
        t.update(_interleaved(slow, repeats=1 if quick else 3, min_time=0))
    rows = [{"engine": name, "threads": threads, "s/epoch": sec,
             "nnfast speed-up": sec / t["nnfast"]} for name, sec in t.items()]
    return rows, f"{len(x)} samples of {source}"


def bench_inference(threads: int, quick: bool) -> list:
    from nnfast import Sequential
    from nnfast.layers import Dense

    rng = np.random.default_rng(0)
    model = Sequential([Dense(NET[1], activation="relu", input_dim=NET[0]),
                        Dense(NET[2], activation="relu"), Dense(NET[3], activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    torch = _optional("torch")
    rows = []
    for batch in (1, 256):
        x = rng.random((batch, NET[0]), dtype=np.float32)
        fns = {"nnfast": lambda x=x, bs=batch: model.predict(x, batch_size=bs, verbose=0)}
        if torch is not None:
            net = torch.nn.Sequential(torch.nn.Linear(NET[0], NET[1]), torch.nn.ReLU(),
                                      torch.nn.Linear(NET[1], NET[2]), torch.nn.ReLU(),
                                      torch.nn.Linear(NET[2], NET[3]), torch.nn.Softmax(dim=1))
            xt = torch.from_numpy(x)

            def torch_predict(net=net, xt=xt):
                with torch.inference_mode():
                    return net(xt).numpy()
            fns["torch"] = torch_predict
        fns.update({name: (lambda f=f, x=x: f(x))
                    for name, f in _rival_predictors(model, threads).items()})
        with _Limits(threads):
            t = _interleaved(fns, repeats=5 if quick else 15)
        row = {"batch": batch, "threads": threads,
               **{f"{k} µs": v * 1e6 for k, v in t.items()}}
        for rival in ("torch", "onnxruntime", "jax"):
            if rival in t:
                row[f"vs {rival}"] = t[rival] / t["nnfast"]
        rows.append(row)
    return rows


def _rival_predictors(model, threads: int) -> dict:
    """ONNX Runtime's and JAX's predict of the same model, where they are installed."""
    from nnfast.cli import _rivals

    fns = {}
    if _optional("onnxruntime") is not None and _optional("onnx") is not None:
        fns["onnxruntime"] = _rivals.ort_predictor(model, threads)
    if _optional("jax") is not None:
        fns["jax"] = _rivals.jax_predictor(model)
    return fns


def markdown_table(rows: list) -> str:
    if not rows:
        return ""
    cols = list(dict.fromkeys(k for r in rows for k in r))

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
        return str(v)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def machine_line() -> str:
    info = nnfast.info()
    blas = ""
    try:
        from threadpoolctl import threadpool_info
        libs = [f"{d.get('internal_api')} {d.get('version')} ({d.get('architecture')})"
                for d in threadpool_info() if d.get("user_api") == "blas"]
        blas = "; BLAS: " + ", ".join(libs) if libs else ""
    except ImportError:
        pass
    return (f"{platform.processor() or platform.machine()}, {info['available_cpus']} CPUs, "
            f"kernel path {info['kernel_path']}, nnfast {info['version']}, "
            f"numpy {np.__version__}{blas}")


def run(quick=False, threads=None, out=None, plot=None, parts=("matmul", "train", "infer"),
        echo=print) -> str:
    threads_list = threads or ([nnfast.get_num_threads()] if quick
                               else sorted({1, nnfast.get_num_threads()}))
    sections = [(f"# nnfast bench\n\nMachine: {machine_line()}\n"
                 "Medians over interleaved repeats; ratios > 1 mean nnfast is faster.\n")]
    results = {}
    titles = (("matmul", "matmul, float32"),
              ("train", "training, 784-256-128-10, Adam, batch 128"),
              ("infer", "inference latency, 784-256-128-10"))
    for part, title in titles:
        if part not in parts:
            continue
        rows, note = [], ""
        for n in threads_list:
            echo(f"running {part} at {n} thread(s)...")
            if part == "matmul":
                rows += bench_matmul(n, quick)
            elif part == "train":
                r, note = bench_training(n, quick)
                rows += r
            else:
                rows += bench_inference(n, quick)
        results[part] = rows
        sections.append(f"## {title}\n" + (f"\nData: {note}\n" if note else "") + "\n"
                        + markdown_table(rows) + "\n")
    report = "\n".join(sections)
    if out:
        from nnfast.cli._files import write_text

        write_text(out, report)
    if plot:
        _plot(results, plot)
    return report


def _plot(results: dict, path: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("--plot needs matplotlib: pip install 'nnfast[plot]'") from exc
    panels = [p for p in ("matmul", "train", "infer") if results.get(p)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, part in zip(axes[0], panels):
        rows = results[part]
        if part == "matmul":
            labels = [f"{r['shape']}\n{r['threads']}T" for r in rows]
            values = [r["vs numpy"] for r in rows]
            ax.set_title("matmul: speed-up over NumPy")
        elif part == "train":
            labels = [f"{r['engine']}\n{r['threads']}T" for r in rows]
            values = [r["nnfast speed-up"] for r in rows]
            ax.set_title("training: nnfast speed-up over each engine")
        else:
            labels = [f"batch {r['batch']}\n{r['threads']}T" for r in rows]
            values = [r.get("vs torch", 1.0) for r in rows]
            ax.set_title("inference: speed-up over PyTorch")
        ax.bar(range(len(values)), values, color="#3b7dd8")
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_xticks(range(len(values)), labels, fontsize=7)
        ax.set_ylabel("ratio (> 1: nnfast faster)")
    fig.tight_layout()
    from nnfast.cli._files import save_figure

    save_figure(fig, path, dpi=110)
    plt.close(fig)
