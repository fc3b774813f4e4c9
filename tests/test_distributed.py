"""Data-parallel training over MPI: single-process units, then real ``mpirun -n 2`` runs.

The MPI tests write small scripts to tmp_path and run them under the launcher found beside this
Python or on PATH (see nnfast.distributed._mpi.find_launcher); each run has a timeout. They are
skipped with the reason when there is no launcher or no mpi4py (``pip install "nnfast[mpi]"``).
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nnfast
from nnfast import distributed
from nnfast.distributed import _mpi

# ----------------------------------------------------------------------------- shared code
COMMON = '''
import numpy as np
import nnfast
from nnfast import layers, optimizers
from nnfast.distributed import DistributedError

B = 16          # per-rank batch; the single-process reference uses 2 * B


def data(n=203, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 12)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 0.5)
    return x, y


OPTS = {"sgd": lambda: optimizers.SGD(0.1, momentum=0.9),
        "adam": lambda: optimizers.Adam(1e-2)}


def model(opt="sgd", units=16):
    m = nnfast.Sequential([layers.Dense(units, "relu", input_dim=12),
                           layers.Dense(3, "softmax")], seed=1)
    m.compile(optimizer=OPTS[opt](), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    return m


def outcome(fn):
    """What calling fn gave, as text: "no error", or the DistributedError or ValueError."""
    try:
        fn()
        return "no error"
    except DistributedError as e:
        return "DistributedError: " + str(e)
    except ValueError as e:
        return "ValueError: " + str(e)
'''

# (name, optimizer, samples, validation split): 183 training rows end on a 23-row global batch
# (split 12/11); 193 rows end on a 1-row batch (one rank has nothing to do).
CASES = [("sgd", "sgd", 203, 0.1), ("adam", "adam", 203, 0.1), ("tail1", "sgd", 193, 0.0)]


def _load_common(tmp_path):
    path = tmp_path / "common.py"
    path.write_text(COMMON)
    spec = importlib.util.spec_from_file_location("dp_common", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _mpi_skip_reason() -> str | None:
    if importlib.util.find_spec("mpi4py") is None:
        return 'mpi4py is not installed (pip install "nnfast[mpi]")'
    if _mpi.find_launcher() is None:
        return f'no mpiexec/mpirun beside {sys.executable} or on PATH (pip install "nnfast[mpi]")'
    return None


# predict: shards vs one process (bit for bit with the C kernels, see the batch test);
# evaluate: the shards move the batch boundaries, so the per-batch float32 dot products of
# the weighted metrics and Σ w regroup (the loss sums are double), and 1e-5 covers ≤ 32-term
# float32 sums; float64 models regroup double sums only.
PREDICT_TOL = {"float32": dict(rtol=1e-6, atol=1e-7), "float64": dict(rtol=1e-13, atol=1e-15)}
EVALUATE_RTOL = {"float32": 1e-5, "float64": 1e-12}


def needs_mpi(test):
    """A real ``mpirun`` job: skipped without MPI, and marked ``serial`` (run apart from
    pytest-xdist's workers, see pyproject.toml) because its ranks busy-poll in MPI's collectives
    and need a core each: next to another worker's tests they are starved, and the watchdog
    test's 3 s limit could then fire at an earlier step than the one that hangs."""
    skip = pytest.mark.skipif(_mpi_skip_reason() is not None, reason=str(_mpi_skip_reason()))
    return pytest.mark.serial(skip(test))


def _mpirun(tmp_path, body: str, *args, n: int = 2, timeout: float = 90, env=None):
    """Run ``body`` (after COMMON's imports are importable) on n ranks; returns
    (returncode, combined output). A job still running after ``timeout`` fails the test."""
    _load_common(tmp_path)
    script = tmp_path / "script.py"
    script.write_text("import sys, os\nsys.path.insert(0, os.path.dirname(__file__))\n"
                      "from common import *\n" + textwrap.dedent(body))
    cmd, extra = _mpi.launch_command(n, [sys.executable, str(script), *map(str, args)])
    full_env = {**os.environ, **extra, "NNFAST_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                "NNFAST_DIST_TIMEOUT": "60", "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
    try:
        proc = subprocess.run(cmd, cwd=tmp_path, env=full_env, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout
        pytest.fail(f"mpirun did not finish within {timeout} s; output so far:\n{out}")
    return proc.returncode, proc.stdout + proc.stderr


# ----------------------------------------------------------------------------- no MPI
def test_init_outside_mpi_does_not_import_mpi4py():
    code = ("import sys, nnfast, numpy as np\n"
            "from nnfast import distributed\n"
            "assert distributed.init() == (0, 1) and distributed.is_root()\n"
            "from nnfast import layers\n"
            "m = nnfast.Sequential([layers.Dense(2, input_dim=3)], seed=0)\n"
            "m.compile('sgd', 'mse')\n"
            "m.fit(np.ones((8, 3)), np.ones((8, 2)), verbose=0, distributed=True)\n"
            "m.evaluate(np.ones((8, 3)), np.ones((8, 2)), distributed=True)\n"
            "m.predict(np.ones((8, 3)), distributed=True)\n"
            "print('mpi4py' in sys.modules)\n")
    env = {k: v for k, v in os.environ.items() if _mpi.launched({k: v}) is None}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "False"


def test_missing_mpi4py_under_a_launcher_names_the_extra():
    code = ("import sys\nsys.modules['mpi4py'] = None\n"
            "from nnfast import distributed\ndistributed.init()\n")
    env = {**os.environ, "OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode != 0
    assert "ImportError" in out.stderr and 'pip install "nnfast[mpi]"' in out.stderr


@pytest.mark.parametrize("call", ["evaluate(x, x, distributed=True)",
                                  "predict(x, distributed=True)"])
def test_evaluate_predict_without_mpi4py_under_a_launcher_raise_as_fit_does(call):
    code = ("import sys\nsys.modules['mpi4py'] = None\nimport numpy as np, nnfast\n"
            "from nnfast import layers\n"
            "m = nnfast.Sequential([layers.Dense(2, input_dim=2)], seed=0)\n"
            "m.compile('sgd', 'mse')\nx = np.ones((4, 2))\n"
            f"m.{call}\n")
    env = {**os.environ, "OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode != 0
    assert "ImportError" in out.stderr and 'pip install "nnfast[mpi]"' in out.stderr


@pytest.mark.parametrize("env, expected", [
    ({}, None),
    ({"OMPI_COMM_WORLD_SIZE": "2"}, "Open MPI"),
    ({"PMI_SIZE": "4", "PMI_RANK": "1"}, "MPICH"),
    ({"PMIX_RANK": "0"}, "PMIx"),
    ({"SLURM_PROCID": "0", "SLURM_STEP_ID": "0", "SLURM_NTASKS": "4"}, "Slurm"),
    ({"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}, None),         # a batch script, one task
    ({"SLURM_PROCID": "0", "SLURM_NTASKS": "8"}, None),         # the batch step, not srun
    ({"OMPI_COMM_WORLD_SIZE": "2", "NNFAST_DISTRIBUTED": "0"}, None),
])
def test_launch_detection(env, expected):
    assert distributed.launched(env) == expected


@pytest.mark.parametrize("size", [1, 2, 3, 5])
@pytest.mark.parametrize("rows", [0, 1, 2, 7, 32, 33])
def test_shard_partitions_the_batch(size, rows):
    class World:
        mpi = False
    parts = []
    for r in range(size):
        w = World()
        w.rank, w.size = r, size
        parts.append(distributed.DataParallel(w).shard(10, 10 + rows))
    assert parts[0][0] == 10 and parts[-1][1] == 10 + rows
    assert all(parts[i][1] == parts[i + 1][0] for i in range(size - 1))
    sizes = [hi - lo for lo, hi in parts]
    assert max(sizes) - min(sizes) <= 1


def test_distributed_fit_in_one_process_equals_plain_fit(tmp_path):
    c = _load_common(tmp_path)
    x, y = c.data()
    a, b = c.model("adam"), c.model("adam")
    ha = a.fit(x, y, epochs=2, batch_size=c.B, validation_split=0.1, seed=3, verbose=0)
    hb = b.fit(x, y, epochs=2, batch_size=c.B, validation_split=0.1, seed=3, verbose=0,
               distributed=True)
    np.testing.assert_array_equal(a._params, b._params)
    assert ha.history.keys() == hb.history.keys()
    for key in ha.history:
        assert ha.history[key] == pytest.approx(hb.history[key], rel=1e-6), key


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predict_rows_do_not_depend_on_their_batch(dtype):
    """The claim distributed predict rests on: a row's outputs are the same whatever batch and
    offset it is computed in. Bit for bit with the C kernels; the NumPy reference backend's
    matmul (BLAS) may round a row differently in another batch shape, by about 1 ulp."""
    m = nnfast.Sequential([nnfast.layers.Dense(37, "relu", input_dim=29),
                           nnfast.layers.Dense(64, "tanh"), nnfast.layers.Dense(5, "softmax")],
                          seed=1, dtype=dtype)
    x = np.random.default_rng(0).normal(size=(203, 29))
    ref = m.predict(x, batch_size=203)
    parts = [m.predict(x, batch_size=bs) for bs in (1, 2, 7, 32, 101)]
    parts += [np.concatenate([m.predict(x[lo:hi], batch_size=16) for lo, hi in cuts])
              for cuts in ([(0, 1), (1, 102), (102, 203)], [(0, 68), (68, 135), (135, 203)])]
    for p in parts:
        if nnfast.get_backend() == "c":
            np.testing.assert_array_equal(p, ref)
        else:
            np.testing.assert_allclose(p, ref, **PREDICT_TOL[dtype])


def test_distributed_evaluate_predict_in_one_process_equal_plain(tmp_path):
    c = _load_common(tmp_path)
    x, y = c.data()
    m = c.model()
    w = np.random.default_rng(2).uniform(0, 2, len(x))
    for kw in ({}, {"sample_weight": w}):
        assert m.evaluate(x, y, batch_size=7, distributed=True, **kw) == \
            m.evaluate(x, y, batch_size=7, **kw)
    p = m.predict(x, batch_size=7, distributed=True)
    assert p.dtype == np.float32
    np.testing.assert_array_equal(p, m.predict(x, batch_size=7))
    for fn in (lambda: m.predict(x[:0], distributed=True),
               lambda: m.evaluate(x[:0], y[:0], distributed=True)):
        with pytest.raises(ValueError, match="empty"):
            fn()


# ----------------------------------------------------------------------------- under mpirun
EQUIVALENCE = '''
import json
from mpi4py import MPI
from nnfast import distributed
from nnfast.engine import plan as _plan
rank, size = distributed.init()
out = {}
for name, opt, n, split in json.loads(sys.argv[1]):
    x, y = data(n)
    m = model(opt)
    h = m.fit(x, y, epochs=3, batch_size=B, validation_split=split, seed=5, verbose=0,
              distributed=True)
    same = all(np.array_equal(p, m._params) for p in MPI.COMM_WORLD.allgather(m._params))
    out[name] = {"params": m._params.tolist(), "history": h.history, "same": same}
if rank == 0:
    json.dump(out, open("equivalence.json", "w"))
'''


@needs_mpi
def test_two_ranks_match_one_process_with_twice_the_batch(tmp_path):
    rc, output = _mpirun(tmp_path, EQUIVALENCE, json.dumps(CASES))
    assert rc == 0, output
    got = json.loads((tmp_path / "equivalence.json").read_text())
    c = _load_common(tmp_path)
    for name, opt, n, split in CASES:
        x, y = c.data(n)
        ref = c.model(opt)
        h = ref.fit(x, y, epochs=3, batch_size=2 * c.B, validation_split=split, seed=5,
                    verbose=0)
        assert got[name]["same"], f"{name}: the ranks ended with different weights"
        np.testing.assert_allclose(np.array(got[name]["params"], np.float32), ref._params,
                                   rtol=1e-5, atol=1e-6, err_msg=name)
        for key, values in h.history.items():
            np.testing.assert_allclose(got[name]["history"][key], values, rtol=1e-5,
                                       err_msg=f"{name} {key}")


WEIGHTED = '''
import json
from mpi4py import MPI
from nnfast import distributed
from nnfast.engine import plan as _plan
rank, size = distributed.init()
out = {}
for name, fit in weighted_fits().items():
    m = model("adam")
    h = fit(m, distributed=True)
    same = all(np.array_equal(p, m._params) for p in MPI.COMM_WORLD.allgather(m._params))
    out[name] = {"params": m._params.tolist(), "history": h.history, "same": same}
if rank == 0:
    json.dump(out, open("weighted.json", "w"))
'''

WEIGHTED_FITS = '''

def weighted_fits(batch=B):
    x, y = data(203)
    w = np.random.default_rng(7).uniform(0, 2, len(x))
    common = dict(epochs=2, batch_size=batch, seed=5, verbose=0, class_weight={0: 3.0})
    return {
        "validation_data": lambda m, **kw: m.fit(
            x[:180], y[:180], sample_weight=w[:180],
            validation_data=(x[180:], y[180:], w[180:]), **common, **kw),
        "validation_split": lambda m, **kw: m.fit(
            x, y, sample_weight=w, validation_split=0.1, shuffle=False, **common, **kw)}
'''


@needs_mpi
def test_two_ranks_shard_sample_weights_like_the_rows(tmp_path):
    """Weights (sample × class) go with their rows to each rank: two ranks with batch B train
    and report as one process with batch 2B."""
    rc, output = _mpirun(tmp_path, WEIGHTED_FITS + WEIGHTED)
    assert rc == 0, output
    got = json.loads((tmp_path / "weighted.json").read_text())
    c = _load_common(tmp_path)
    exec(WEIGHTED_FITS, vars(c))
    for name, fit in c.weighted_fits(batch=2 * c.B).items():
        ref = c.model("adam")
        h = fit(ref)
        assert got[name]["same"], f"{name}: the ranks ended with different weights"
        np.testing.assert_allclose(np.array(got[name]["params"], np.float32), ref._params,
                                   rtol=1e-5, atol=1e-6, err_msg=name)
        assert got[name]["history"].keys() == h.history.keys()
        for key, values in h.history.items():
            np.testing.assert_allclose(got[name]["history"][key], values, rtol=1e-5,
                                       err_msg=f"{name} {key}")


MISMATCH = '''
import json
from nnfast import distributed
rank, size = distributed.init()
x, y = data()
out = {}
def attempt(key, fn):
    out[key] = outcome(fn)
fit = dict(epochs=1, batch_size=B, verbose=0, distributed=True)
attempt("size", lambda: model().fit(x if rank == 0 else x[:-3], y if rank == 0 else y[:-3], **fit))
attempt("content", lambda: model().fit(x if rank == 0 else x + 1, y, **fit))
attempt("config", lambda: model(units=16 if rank == 0 else 17).fit(x, y, **fit))
attempt("optimizer", lambda: model("sgd" if rank == 0 else "adam").fit(x, y, **fit))
attempt("weights", lambda: model().fit(
    x, y, sample_weight=np.ones(len(x)) if rank == 0 else None, **fit))
attempt("bad arg on one rank",
        lambda: model().fit(x, y, **{**fit, "batch_size": B if rank == 0 else 0}))
attempt("bad arg everywhere", lambda: model().fit(x, y, **{**fit, "batch_size": 0}))
attempt("fine afterwards", lambda: model().fit(x, y, **fit))
if rank == 0:
    json.dump(out, open("mismatch.json", "w"))
'''


@needs_mpi
def test_mismatched_data_and_models_are_detected_at_start(tmp_path):
    rc, output = _mpirun(tmp_path, MISMATCH)
    assert rc == 0, output
    got = json.loads((tmp_path / "mismatch.json").read_text())
    assert got["size"].startswith("DistributedError") and "rank 1: samples" in got["size"]
    assert "200" in got["size"] and "203" in got["size"]
    assert "rank 1: x differs at sampled rows" in got["content"]
    assert "rank 1: model differs at layers[0].config.units: 17 (rank 0: 16)" in got["config"]
    assert "rank 1: model differs at optimizer" in got["optimizer"]
    assert "rank 1: sample weights differs: None (rank 0: {'shape': [203]" in got["weights"]
    assert "rank 1 failed: ValueError: fit: batch_size" in got["bad arg on one rank"]
    assert got["bad arg everywhere"].startswith("ValueError: fit: batch_size")
    assert got["fine afterwards"] == "no error"


STEP_ERROR = '''
from nnfast import distributed
rank, size = distributed.init()
x, y = data()
m = model()
if rank == 1:
    forward = m.layers[1].forward
    def failing(*args):
        if m._step == 4:
            raise ValueError("boom in forward")
        return forward(*args)
    m.layers[1].forward = failing
m.fit(x, y, epochs=2, batch_size=B, verbose=0, distributed=True)
print("finished", flush=True)
'''


@needs_mpi
def test_exception_in_a_step_stops_every_rank_naming_it(tmp_path):
    rc, output = _mpirun(tmp_path, STEP_ERROR)
    assert rc != 0
    assert "finished" not in output
    # both ranks raise the same DistributedError
    assert output.count("DistributedError: rank 1 failed: ValueError: boom in forward") == 2, \
        output


OUTSIDE_ERROR = '''
from nnfast import distributed
from nnfast.callbacks import LambdaCallback
rank, size = distributed.init()
x, y = data()
def on_epoch_end(epoch, logs):
    if rank == 1:
        raise RuntimeError("callback exploded")
model().fit(x, y, epochs=3, batch_size=B, verbose=0, distributed=True,
            callbacks=[LambdaCallback(on_epoch_end=on_epoch_end)])
print("finished", flush=True)
'''


@needs_mpi
def test_exception_outside_a_step_aborts_the_job(tmp_path):
    rc, output = _mpirun(tmp_path, OUTSIDE_ERROR)
    assert rc != 0 and "finished" not in output
    assert "rank 1 failed outside a synchronised step" in output, output
    assert "RuntimeError: callback exploded" in output


DEATH = '''
import signal, time
from nnfast import distributed
from nnfast.callbacks import LambdaCallback
rank, size = distributed.init()
x, y = data()
def on_batch_begin(batch, logs):
    if rank == 1 and batch == 3:
        how = sys.argv[1]
        if how == "exit":
            os._exit(3)
        if how == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if how == "hang":
            time.sleep(600)
net = model()
# the ranks enter fit together (an unwatched barrier), so the watchdog's 3 s in the "hang" run
# can only run out at the step rank 1 never reaches, not while a slow rank is still starting up
from mpi4py import MPI
MPI.COMM_WORLD.Barrier()
net.fit(x, y, epochs=2, batch_size=B, verbose=0, distributed=True,
        callbacks=[LambdaCallback(on_batch_begin=on_batch_begin)])
print("finished", flush=True)
'''


@needs_mpi
@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_a_dying_rank_ends_the_job(tmp_path, how):
    # The watchdog is set far above the limit: ending the job here is the launcher's doing.
    # (The 60 s timeout, far below it, is only a hang guard: _mpirun fails the test then.)
    rc, output = _mpirun(tmp_path, DEATH, how, env={"NNFAST_DIST_TIMEOUT": "120"},
                         timeout=60)
    assert rc != 0 and "finished" not in output


@needs_mpi
def test_a_hung_rank_is_caught_by_the_watchdog(tmp_path):
    rc, output = _mpirun(tmp_path, DEATH, "hang", env={"NNFAST_DIST_TIMEOUT": "3"},
                         timeout=60)
    assert rc != 0 and "finished" not in output
    assert "rank 0: gradient allreduce (step 4) waited more than 3 s" in output, output


RESUME = '''
import json
from mpi4py import MPI
from nnfast import distributed
from nnfast.callbacks import ModelCheckpoint
rank, size = distributed.init()
x, y = data()
# 1 -> 2: continue a single-process checkpoint on two ranks
m = nnfast.load_model("one_rank_epoch1.nnf")
m.fit(x, y, epochs=1, batch_size=B, seed=5, verbose=0, distributed=True)
# 2 -> 1: two ranks write a checkpoint (rank 0 only), then keep training
m2 = model("adam")
ckpt = ModelCheckpoint("two_ranks_epoch{epoch}.nnf", save_best_only=False)
m2.fit(x, y, epochs=1, batch_size=B, seed=5, verbose=0, distributed=True, callbacks=[ckpt])
m2.fit(x, y, epochs=1, batch_size=B, seed=5, verbose=0, distributed=True)
saved = MPI.COMM_WORLD.gather(len(ckpt.saved))
if rank == 0:
    json.dump({"one_to_two": m._params.tolist(),
               "two_ranks_2_epochs": m2._params.tolist(), "saved": saved},
              open("resume.json", "w"))
'''


@needs_mpi
def test_checkpoint_resume_across_rank_counts(tmp_path):
    c = _load_common(tmp_path)
    x, y = c.data()
    one = c.model("sgd")
    one.fit(x, y, epochs=1, batch_size=2 * c.B, seed=5, verbose=0)
    one.save(tmp_path / "one_rank_epoch1.nnf")
    one.fit(x, y, epochs=1, batch_size=2 * c.B, seed=5, verbose=0)
    rc, output = _mpirun(tmp_path, RESUME)
    assert rc == 0, output
    got = json.loads((tmp_path / "resume.json").read_text())
    assert got["saved"] == [1, 0], "only rank 0 writes checkpoints"
    np.testing.assert_allclose(np.array(got["one_to_two"], np.float32), one._params, rtol=1e-5,
                               atol=1e-6)
    resumed = nnfast.load_model(tmp_path / "two_ranks_epoch1.nnf")
    resumed.fit(x, y, epochs=1, batch_size=2 * c.B, seed=5, verbose=0)
    np.testing.assert_allclose(resumed._params, np.array(got["two_ranks_2_epochs"], np.float32),
                               rtol=1e-5, atol=1e-6)


@needs_mpi
def test_cli_train_distributed(tmp_path):
    cmd, extra = _mpi.launch_command(2, [sys.executable, "-m", "nnfast", "train", "--distributed",
                                         "--epochs", "2", "--seed", "1", "--json",
                                         "--save", str(tmp_path / "cli.nnf")])
    env = {**os.environ, **extra, "NNFAST_NUM_THREADS": "1", "NNFAST_DIST_TIMEOUT": "60"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=90, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, "only rank 0 prints the result"
    assert lines[0]["epochs"] == 2 and lines[0]["test_accuracy"] > 0.5
    assert nnfast.load_model(tmp_path / "cli.nnf").count_params() > 0


# ----------------------------------------------------------------------------- evaluate, predict
INFER = '''
import json
from mpi4py import MPI
from nnfast import distributed
from nnfast.engine import plan as _plan
rank, size = distributed.init()
comm = MPI.COMM_WORLD
out = {"backend": nnfast.get_backend(), "cases": {}}
def counting_plan(model, p, a, out=None, run=_plan.run):   # out=None: the serving path
    rows[0] += len(a)
    return run(model, p, a, out)
_plan.run = counting_plan                   # predict runs the inference plan
for dtype in ("float32", "float64"):
    m = nnfast.Sequential([layers.Dense(16, "relu", input_dim=12),
                           layers.Dense(3, "softmax")], seed=1, dtype=dtype)
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    m.fit(*data(), epochs=2, verbose=0, seed=3)      # not distributed: the same on every rank
    rows = [0]
    first = m.layers[0].forward
    def counting(a, *args):
        rows[0] += len(a)
        return first(a, *args)
    m.layers[0].forward = counting          # evaluate runs the layers one by one
    for n in (203, 2, 1):
        x, y = data(n, seed=n)
        w = np.random.default_rng(n).uniform(0, 2, n)
        w[0] = 0 if n > 1 else w[0]   # a zero weight, but not all zero
        for weighted in (False, True):
            kw = {"sample_weight": w} if weighted else {}
            p1, e1 = m.predict(x, batch_size=7), m.evaluate(x, y, batch_size=7, **kw)
            rows[0] = 0
            p2 = m.predict(x, batch_size=7, distributed=True)
            predicted, rows[0] = rows[0], 0
            e2 = m.evaluate(x, y, batch_size=7, distributed=True, **kw)
            same = all(np.array_equal(p, p2) and p.dtype == p2.dtype and e == e2
                       for p, e in comm.allgather((p2, e2)))
            out["cases"][f"{dtype} n={n} weighted={weighted}"] = {
                "dtype": dtype, "n": n, "p1": p1.tolist(), "p2": p2.tolist(),
                "p2 dtype": str(p2.dtype), "e1": e1, "e2": e2, "same on all ranks": same,
                "rows per rank": comm.allgather([predicted, rows[0]])}
if rank == 0:
    json.dump(out, open("infer.json", "w"))
'''


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])   # 3 ranks: uneven shards, and empty ones for n < 3
def test_distributed_evaluate_predict_match_one_process(tmp_path, ranks):
    rc, output = _mpirun(tmp_path, INFER, n=ranks)
    assert rc == 0, output
    got = json.loads((tmp_path / "infer.json").read_text())
    assert len(got["cases"]) == 12
    for name, case in got["cases"].items():
        dtype, n = case["dtype"], case["n"]
        assert case["same on all ranks"], name
        # each rank computed only its balanced shard (larger ones first), in predict and evaluate
        sizes = [n // ranks + (r < n % ranks) for r in range(ranks)]
        assert case["rows per rank"] == [[k, k] for k in sizes], name
        assert case["p2 dtype"] == dtype
        p1, p2 = np.array(case["p1"], dtype), np.array(case["p2"], dtype)
        assert p2.shape == (n, 3), name
        if got["backend"] == "c":
            np.testing.assert_array_equal(p2, p1, err_msg=name)
        else:
            np.testing.assert_allclose(p2, p1, **PREDICT_TOL[dtype], err_msg=name)
        assert case["e2"].keys() == case["e1"].keys() == {"loss", "accuracy"}, name
        for key, value in case["e1"].items():
            assert case["e2"][key] == pytest.approx(value, rel=EVALUATE_RTOL[dtype]), \
                f"{name} {key}"


INFER_ERRORS = '''
import json
from nnfast import distributed
from nnfast.engine import plan as _plan
rank, size = distributed.init()
x, y = data()
m = model()
out = {}
def attempt(key, fn):
    out[key] = outcome(fn)
def failing_on_rank_1(fn):
    def run(plan_run=_plan.run):
        if rank == 1:
            def boom(*args):
                raise RuntimeError("boom in forward")
            m.layers[1].forward = boom      # evaluate runs the layers one by one,
            _plan.run = boom                # predict the inference plan
        try:
            fn()
        finally:
            m.layers[1].__dict__.pop("forward", None)
            _plan.run = plan_run
    return run
one = x if rank == 0 else x[:-3]
attempt("evaluate rows", lambda: m.evaluate(one, y if rank == 0 else y[:-3], distributed=True))
attempt("evaluate y", lambda: m.evaluate(x, y if rank == 0 else (y + 1) % 3, distributed=True))
attempt("evaluate weights", lambda: m.evaluate(
    x, y, sample_weight=np.ones(len(x)) if rank == 0 else None, distributed=True))
attempt("predict rows", lambda: m.predict(one, distributed=True))
attempt("predict features", lambda: m.predict(x if rank == 0 else x[:, :11], distributed=True))
other = model()
if rank == 1:
    other.build((12,))
    other._params[0] += 1
attempt("model weights", lambda: other.predict(x, distributed=True))
attempt("empty evaluate", lambda: m.evaluate(x[:0], y[:0], distributed=True))
attempt("empty predict", lambda: m.predict(x[:0], distributed=True))
attempt("evaluate fails on rank 1", failing_on_rank_1(lambda: m.evaluate(x, y, distributed=True)))
attempt("predict fails on rank 1", failing_on_rank_1(lambda: m.predict(x, distributed=True)))
attempt("fine afterwards", lambda: (m.evaluate(x, y, distributed=True),
                                    m.predict(x, distributed=True)))
if rank == 0:
    json.dump(out, open("infer_errors.json", "w"))
'''


@needs_mpi
def test_distributed_evaluate_predict_disagreements_raise_on_every_rank(tmp_path):
    # a rank left waiting would hit the watchdog (20 s) and abort the job: rc != 0
    rc, output = _mpirun(tmp_path, INFER_ERRORS, env={"NNFAST_DIST_TIMEOUT": "20"})
    assert rc == 0, output
    got = json.loads((tmp_path / "infer_errors.json").read_text())
    start = "DistributedError: ranks disagree at the start of distributed "
    assert got["evaluate rows"].startswith(start + "evaluate: rank 1: samples differs: 200 "
                                           "(rank 0: 203)"), got["evaluate rows"]
    assert "rank 1: y differs at sampled rows" in got["evaluate y"]
    assert "rank 1: sample weights differs: None (rank 0: {'shape': [203]" in \
        got["evaluate weights"]
    assert got["predict rows"].startswith(start + "predict: rank 1: samples differs")
    assert got["predict features"].startswith(
        "DistributedError: rank 1 failed: ValueError: predict: x has samples of shape (11,), the "
        "model expects (12,)"), \
        got["predict features"]
    assert got["model weights"].startswith(start + "predict: rank 1: parameter checksum")
    assert got["empty evaluate"] == "ValueError: evaluate: x is empty (0 samples); nothing to do"
    assert got["empty predict"] == "ValueError: predict: x is empty (0 samples); nothing to do"
    for fn in ("evaluate", "predict"):
        assert got[f"{fn} fails on rank 1"].startswith(
            "DistributedError: rank 1 failed: RuntimeError: boom in forward"), got
        assert got[f"{fn} fails on rank 1"].endswith(f"(during {fn})")
    assert got["fine afterwards"] == "no error"


@needs_mpi
def test_cli_evaluate_and_predict_distributed(tmp_path):
    """3 ranks (uneven shards): one JSON line / one CSV from rank 0, as one process gives."""
    env = {**os.environ, "NNFAST_NUM_THREADS": "1", "NNFAST_DIST_TIMEOUT": "60"}
    model = str(tmp_path / "m.nnf")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(0, 16, (11, 64)))

    def run(n, *argv):
        cmd = [sys.executable, "-m", "nnfast", *argv, "--model", model]
        extra = {}
        if n:
            cmd, extra = _mpi.launch_command(n, cmd + ["--distributed"])
        proc = subprocess.run(cmd, cwd=tmp_path, env={**env, **extra}, capture_output=True,
                              text=True, timeout=90, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    subprocess.run([sys.executable, "-m", "nnfast", "train", "--epochs", "2", "--seed", "1",
                    "--quiet", "--save", model], env=env, check=True, timeout=90)
    one = [json.loads(s) for s in run(0, "evaluate", "--json").splitlines()]
    three = [json.loads(s) for s in run(3, "evaluate", "--json").splitlines()
             if s.startswith("{")]
    assert len(one) == len(three) == 1, "only rank 0 prints the result"
    assert three[0].keys() == one[0].keys()
    assert three[0]["accuracy"] == one[0]["accuracy"] > 0.5
    assert three[0]["loss"] == pytest.approx(one[0]["loss"], rel=EVALUATE_RTOL["float32"])
    run(0, "predict", "--input", "x.npy", "--output", "one.csv")
    run(3, "predict", "--input", "x.npy", "--output", "three.csv")
    one_csv = (tmp_path / "one.csv").read_text()
    assert len(one_csv.splitlines()) == 12
    assert (tmp_path / "three.csv").read_text() == one_csv
    assert run(3, "predict", "--input", "x.npy").split() == run(0, "predict", "--input",
                                                                "x.npy").split()
