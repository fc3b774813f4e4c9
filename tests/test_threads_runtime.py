"""The process-wide thread count at run time: threadpoolctl lists and limits nnfast; the
default count follows cgroup quotas and MPI ranks per node; a fork after threads were used;
several Python threads training and predicting at once."""
import multiprocessing
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import nnfast
from nnfast import _cpus, _threads, backends
from nnfast.layers import Dense

needs_compiled = pytest.mark.skipif(not backends.compiled_available(),
                                    reason="compiled extension not built")
THREAD_VARS = ("NNFAST_NUM_THREADS", "OMP_NUM_THREADS", "OMPI_COMM_WORLD_LOCAL_SIZE",
               "MPI_LOCALNRANKS", "NNFAST_BACKEND", "NNFAST_THREADING")


def run_py(code, **env):
    """`python -c code` with the thread-related variables of this process removed, then env."""
    full = {k: v for k, v in os.environ.items()
            if k not in THREAD_VARS and not k.startswith("SLURM_")}
    full.update(env)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


# ----------------------------------------------------------------------------- threadpoolctl
@pytest.fixture
def tpc():
    return pytest.importorskip("threadpoolctl", minversion="3.5")


def nnfast_entries(tpc):
    return [d for d in tpc.threadpool_info() if d["user_api"] == "nnfast"]


def blas_threads(tpc):
    return sorted(d["num_threads"] for d in tpc.threadpool_info() if d["user_api"] == "blas")


def test_threadpool_info_lists_nnfast(tpc, backend):
    entries = nnfast_entries(tpc)
    if not backends.compiled_available():
        assert entries == []  # no library to match
        return
    from nnfast._native import _kernels
    assert len(entries) == 1, entries
    d = entries[0]
    assert d["internal_api"] == "nnfast-" + _kernels.get_threading()
    assert d["num_threads"] == nnfast.get_num_threads()
    assert d["version"] == nnfast.__version__
    assert d["prefix"] == "_kernels"
    assert os.path.samefile(d["filepath"], _kernels.__file__)


@needs_compiled
def test_threadpool_limits_limits_nested_and_restores(tpc, backend, threads):
    from nnfast._native import _kernels
    threads(3)
    with tpc.threadpool_limits(1):
        assert (nnfast.get_num_threads(), _kernels.get_num_threads()) == (1, 1)
        assert [d["num_threads"] for d in nnfast_entries(tpc)] == [1]
        assert nnfast.info()["threads_source"] == "threadpoolctl"
        with tpc.threadpool_limits(2, user_api="nnfast"):
            assert (nnfast.get_num_threads(), _kernels.get_num_threads()) == (2, 2)
            with tpc.threadpool_limits({"nnfast": 4}):
                assert nnfast.get_num_threads() == 4
            assert nnfast.get_num_threads() == 2
        assert nnfast.get_num_threads() == 1
    assert (nnfast.get_num_threads(), _kernels.get_num_threads()) == (3, 3)


@needs_compiled
def test_user_api_selects_nnfast_only(tpc, threads):
    threads(3)
    blas = blas_threads(tpc)
    with tpc.threadpool_limits(1, user_api="blas"):
        assert nnfast.get_num_threads() == 3
    with tpc.threadpool_limits(2, user_api="nnfast"):
        assert nnfast.get_num_threads() == 2
        assert blas_threads(tpc) == blas
    controller = tpc.ThreadpoolController()
    from nnfast._native import _kernels
    internal = "nnfast-" + _kernels.get_threading()
    assert [d["user_api"] for d in controller.select(internal_api=internal).info()] == ["nnfast"]
    with controller.select(user_api="nnfast").limit(limits=1):
        assert nnfast.get_num_threads() == 1
    assert nnfast.get_num_threads() == 3


@needs_compiled
def test_threadpool_limits_of_zero_keeps_one_thread(tpc, threads):
    threads(3)
    with tpc.threadpool_limits(0, user_api="nnfast"):  # threadpoolctl itself checks nothing
        assert nnfast.get_num_threads() == 1
    assert nnfast.get_num_threads() == 3


LIST_NNFAST = ("import threadpoolctl as t, nnfast; "
               "print(*[d['internal_api'] for d in t.threadpool_info() "
               "if d['user_api'] == 'nnfast'], 'end')")


@needs_compiled
@pytest.mark.parametrize("first", ["nnfast", "threadpoolctl"])
@pytest.mark.parametrize("backend_name", ["c", "python"])
def test_registered_whichever_is_imported_first(tpc, first, backend_name):
    lazy = "import sys, nnfast; assert 'threadpoolctl' not in sys.modules; "
    code = (lazy if first == "nnfast" else "import threadpoolctl; ") + LIST_NNFAST
    assert run_py(code, NNFAST_BACKEND=backend_name) == ["nnfast-pool", "end"]


@needs_compiled
def test_internal_api_names_the_openmp_runtime(tpc):
    from nnfast._native import _kernels
    if not _kernels.runtime_info()["openmp"]:
        pytest.skip("built without OpenMP")
    assert run_py(LIST_NNFAST, NNFAST_THREADING="openmp") == ["nnfast-openmp", "end"]


def test_import_without_threadpoolctl():
    code = ("import sys; sys.modules['threadpoolctl'] = None\n"
            "import nnfast\n"
            "try:\n    import threadpoolctl\nexcept ImportError:\n    print('ImportError')\n"
            "print(nnfast.get_num_threads() >= 1)")
    assert run_py(code) == ["ImportError", "True"]


def test_without_the_extension_threadpoolctl_still_works(tpc):
    code = ("import sys, warnings; sys.modules['nnfast._native._kernels'] = None\n"
            "warnings.simplefilter('ignore')\n"
            "import nnfast, threadpoolctl as t\n"
            "nnfast.set_num_threads(3)\n"
            "with t.threadpool_limits(1):\n"
            "    print(nnfast.get_backend(), nnfast.get_num_threads())\n"
            "print([d for d in t.threadpool_info() if d['user_api'] == 'nnfast'])")
    assert run_py(code) == ["python", "3", "[]"]


# ----------------------------------------------------------------------------- default count
def fake_cgroup(tmp_path, proc_lines, files):
    """A /proc/self/cgroup with `proc_lines` and a cgroup mount holding `files`
    ({relative path: content}); returns (root, proc_cgroup) for cgroup_cpu_quota."""
    root = tmp_path / "sys-fs-cgroup"
    root.mkdir()
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("".join(line + "\n" for line in proc_lines))
    return str(root), str(proc)


V1 = ["12:memory:/job/rank0", "4:cpu,cpuacct:/job/rank0", "1:name=systemd:/job"]


@pytest.mark.parametrize("proc_lines, files, expected", [
    # v2: the process's own cgroup, its parents, up to the root
    (["0::/a/b"], {"a/b/cpu.max": "150000 100000", "a/cpu.max": "max 100000",
                   "cpu.max": "max 100000"}, 1.5),
    (["0::/a/b"], {"a/b/cpu.max": "400000 100000", "a/cpu.max": "200000 100000"}, 2.0),
    (["0::/a/b"], {"a/b/cpu.max": "max 100000", "a/cpu.max": "max 100000"}, None),
    (["0::/a/b"], {"a/b/cpu.max": "300000 100000", "cpu.max": "100000 50000"}, 2.0),
    (["0::/"], {"cpu.max": "250000 100000"}, 2.5),               # inside a cgroup namespace
    (["0::/../../other"], {"cpu.max": "100000 100000", "other/cpu.max": "1 100000"}, 1.0),
    (["0::/a"], {"a/cpu.max": "garbage", "cpu.max": "300000 100000"}, 3.0),
    (["0::/a"], {}, None),
    # v1: the cpu controller's hierarchy, mounted as cpu,cpuacct or cpu
    (V1, {"cpu,cpuacct/job/rank0/cpu.cfs_quota_us": "50000",
          "cpu,cpuacct/job/rank0/cpu.cfs_period_us": "100000"}, 0.5),
    (V1, {"cpu,cpuacct/job/rank0/cpu.cfs_quota_us": "-1",
          "cpu,cpuacct/job/rank0/cpu.cfs_period_us": "100000",
          "cpu,cpuacct/job/cpu.cfs_quota_us": "300000",
          "cpu,cpuacct/job/cpu.cfs_period_us": "100000"}, 3.0),
    (["2:cpuacct:/x", "1:cpu:/x"], {"cpu/x/cpu.cfs_quota_us": "200000",
                                    "cpu/x/cpu.cfs_period_us": "100000",
                                    "cpu/cpu.cfs_quota_us": "-1",
                                    "cpu/cpu.cfs_period_us": "100000"}, 2.0),
    (V1, {"cpu,cpuacct/job/rank0/cpu.cfs_quota_us": "-1",
          "cpu,cpuacct/job/rank0/cpu.cfs_period_us": "100000"}, None),
    # hybrid: both hierarchies, the smaller quota wins
    (["0::/s", "3:cpu:/s"], {"s/cpu.max": "400000 100000", "cpu/s/cpu.cfs_quota_us": "100000",
                             "cpu/s/cpu.cfs_period_us": "100000"}, 1.0),
], ids=["v2-leaf", "v2-parent", "v2-none", "v2-root", "v2-namespace", "v2-outside-namespace",
        "v2-garbage", "v2-no-files", "v1-leaf", "v1-parent", "v1-cpu-mount", "v1-none",
        "hybrid"])
def test_cgroup_quota_of_own_cgroup_and_parents(tmp_path, proc_lines, files, expected):
    root, proc = fake_cgroup(tmp_path, proc_lines, files)
    assert _cpus.cgroup_cpu_quota(root, proc) == expected


def test_cgroup_quota_unreadable_proc_file(tmp_path):
    assert _cpus.cgroup_cpu_quota(str(tmp_path), str(tmp_path / "missing")) is None


@pytest.fixture
def eight_cpus(monkeypatch):
    monkeypatch.setattr(_cpus, "affinity_cpus", lambda: 8)


QUOTA_3 = (["0::/job"], {"job/cpu.max": "300000 100000"})
QUOTA_1_5 = (["0::/job"], {"job/cpu.max": "150000 100000"})
NO_QUOTA = (["0::/job"], {})


@pytest.mark.parametrize("env, cgroup, expected", [
    ({}, NO_QUOTA, (8, "affinity")),
    ({}, QUOTA_3, (3, "cgroup")),
    ({}, QUOTA_1_5, (2, "cgroup")),
    ({}, (["0::/job"], {"job/cpu.max": "1200000 100000"}), (8, "affinity")),
    ({"OMPI_COMM_WORLD_LOCAL_SIZE": "4"}, NO_QUOTA, (2, "mpi-local-ranks")),
    ({"OMPI_COMM_WORLD_LOCAL_SIZE": "3"}, NO_QUOTA, (2, "mpi-local-ranks")),
    ({"OMPI_COMM_WORLD_LOCAL_SIZE": "16"}, NO_QUOTA, (1, "mpi-local-ranks")),
    ({"OMPI_COMM_WORLD_LOCAL_SIZE": "1"}, NO_QUOTA, (8, "affinity")),
    ({"OMPI_COMM_WORLD_LOCAL_SIZE": "2"}, QUOTA_3, (1, "mpi-local-ranks")),
    ({"MPI_LOCALNRANKS": "4"}, NO_QUOTA, (2, "mpi-local-ranks")),
    ({"OMPI_COMM_WORLD_LOCAL_SIZE": "2", "MPI_LOCALNRANKS": "8"}, NO_QUOTA,
     (4, "mpi-local-ranks")),
    ({"OMPI_COMM_WORLD_LOCAL_SIZE": "x", "MPI_LOCALNRANKS": "8"}, NO_QUOTA,
     (1, "mpi-local-ranks")),
    ({"SLURM_STEP_ID": "0", "SLURM_NTASKS_PER_NODE": "4"}, NO_QUOTA, (2, "mpi-local-ranks")),
    ({"SLURM_STEP_ID": "0", "SLURM_TASKS_PER_NODE": "4(x2),1"}, NO_QUOTA,
     (2, "mpi-local-ranks")),
    ({"SLURM_STEP_ID": "0", "SLURM_TASKS_PER_NODE": "4(x2),2", "SLURM_NODEID": "2"}, NO_QUOTA,
     (4, "mpi-local-ranks")),
    ({"SLURM_STEP_ID": "0", "SLURM_TASKS_PER_NODE": "4(x2),1", "SLURM_NODEID": "2"}, NO_QUOTA,
     (8, "affinity")),
    ({"SLURM_STEP_ID": "0", "SLURM_STEP_TASKS_PER_NODE": "1", "SLURM_NTASKS_PER_NODE": "4"},
     NO_QUOTA, (8, "affinity")),                          # srun -n 1 inside a 4-per-node job
    ({"SLURM_NTASKS_PER_NODE": "4", "SLURM_TASKS_PER_NODE": "4"}, NO_QUOTA,
     (8, "affinity")),                                    # the batch script: one process
    ({"NNFAST_NUM_THREADS": "5", "OMP_NUM_THREADS": "3", "OMPI_COMM_WORLD_LOCAL_SIZE": "4"},
     QUOTA_3, (5, "NNFAST_NUM_THREADS")),
    ({"OMP_NUM_THREADS": "3,2", "MPI_LOCALNRANKS": "4"}, QUOTA_1_5, (3, "OMP_NUM_THREADS")),
    ({"OMP_NUM_THREADS": "16", "SLURM_STEP_ID": "0", "SLURM_NTASKS_PER_NODE": "4"}, NO_QUOTA,
     (16, "OMP_NUM_THREADS")),
])
def test_default_threads(tmp_path, eight_cpus, env, cgroup, expected):
    root, proc = fake_cgroup(tmp_path, *cgroup)
    assert _threads.default_threads(env, root, proc) == expected


def test_bad_environment_value_warns_and_falls_through(tmp_path, eight_cpus):
    root, proc = fake_cgroup(tmp_path, *QUOTA_3)
    env = {"NNFAST_NUM_THREADS": "zero", "OMP_NUM_THREADS": "0", "MPI_LOCALNRANKS": "3"}
    with pytest.warns(RuntimeWarning) as record:
        assert _threads.default_threads(env, root, proc) == (1, "mpi-local-ranks")
    assert [str(w.message) for w in record] == [
        "nnfast: ignoring NNFAST_NUM_THREADS='zero': expected an integer in [1, 256]",
        "nnfast: ignoring OMP_NUM_THREADS='0': expected an integer in [1, 256]"]


SHOW = ("import nnfast\n"
        "i = nnfast.info()\n"
        "if nnfast.backends.compiled_available():\n"
        "    from nnfast._native import _kernels\n"
        "    c = _kernels.get_num_threads()\n"
        "else:\n"
        "    c = i['threads']\n"
        "print(i['threads'], i['threads_source'], c)")  # c: the count the C layer was given


@pytest.mark.parametrize("env, source", [
    ({"OMPI_COMM_WORLD_LOCAL_SIZE": "2"}, "mpi-local-ranks"),
    ({"MPI_LOCALNRANKS": "2"}, "mpi-local-ranks"),
    ({"SLURM_STEP_ID": "0", "SLURM_PROCID": "1", "SLURM_NTASKS_PER_NODE": "2"},
     "mpi-local-ranks"),
    ({"SLURM_STEP_ID": "0", "SLURM_TASKS_PER_NODE": "2(x3)", "SLURM_NODEID": "1"},
     "mpi-local-ranks"),
    ({"SLURM_NTASKS_PER_NODE": "2", "SLURM_PROCID": "0"}, None),  # batch script
    ({}, None),
    ({"OMPI_COMM_WORLD_LOCAL_SIZE": "2", "NNFAST_NUM_THREADS": "3"}, "NNFAST_NUM_THREADS"),
    ({"MPI_LOCALNRANKS": "2", "OMP_NUM_THREADS": "3"}, "OMP_NUM_THREADS"),
    ({"NNFAST_NUM_THREADS": "5", "OMP_NUM_THREADS": "3"}, "NNFAST_NUM_THREADS"),
])
def test_default_threads_at_import(env, source):
    cpus = _cpus.available_cpus()
    expected = {"mpi-local-ranks": max(1, cpus // 2), "NNFAST_NUM_THREADS": int(
        env.get("NNFAST_NUM_THREADS", 0)), "OMP_NUM_THREADS": 3, None: cpus}[source]
    if source is None:  # the machine's own rule
        source = "cgroup" if cpus < _cpus.affinity_cpus() else "affinity"
    assert run_py(SHOW, **env) == [str(expected), source, str(expected)]


def test_set_num_threads_is_the_source_afterwards(threads):
    threads(1)
    assert nnfast.info()["threads_source"] == "set_num_threads"


# ----------------------------------------------------------------------------- fork
def operands(seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((256, 784), dtype=np.float32),
            rng.standard_normal((784, 512), dtype=np.float32))


def product_in_child(seed):
    from nnfast._native import _kernels
    return (nnfast.matmul(*operands(seed)), nnfast.get_num_threads(),
            _kernels.runtime_info()["pool_workers"])


@pytest.fixture
def backend_restored():
    before = nnfast.get_backend()
    yield
    nnfast.set_backend(before)


@needs_compiled
@pytest.mark.parametrize("runtime", ["pool", "openmp"])
def test_fork_after_threads_were_used(runtime, threads, backend_restored):
    if runtime == "openmp":
        pytest.skip("libgomp is not fork-safe once its threads have run: a forked child's "
                    "first parallel region waits for threads the child does not have; with "
                    "NNFAST_THREADING=openmp use the 'spawn' or 'forkserver' start method")
    from nnfast._native import _kernels
    previous = _kernels.get_threading()
    _kernels.set_threading(runtime)
    try:
        nnfast.set_backend("c")  # restored by the fixture below; inherited by the children
        threads(2)
        a, b = operands(0)
        expected = nnfast.matmul(a, b)
        assert _kernels.runtime_info()["pool_workers"] >= 1  # the parent's pool is running
        np.testing.assert_allclose(expected, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3)
        seeds = [0, 1, 0, 1]
        with multiprocessing.get_context("fork").Pool(2) as pool:
            results = pool.map_async(product_in_child, seeds).get(timeout=120)
        for seed, (product, n, workers) in zip(seeds, results):
            assert n == 2
            assert workers >= 1  # the child built a pool of its own and used it
            np.testing.assert_array_equal(product, nnfast.matmul(*operands(seed)))
        np.testing.assert_array_equal(nnfast.matmul(a, b), expected)
    finally:
        _kernels.set_threading(previous)


# ----------------------------------------------------------------------------- Python threads
def digits_model(seed):
    model = nnfast.Sequential([Dense(32, "relu", input_dim=64), Dense(10, "softmax")],
                              seed=seed)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def train(seed, x, y):
    model = digits_model(seed)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    return model


def run_in_threads(fn, count):
    """fn(i) on `count` threads started together; their results, or the first error."""
    results, errors = [None] * count, []
    barrier = threading.Barrier(count)

    def work(i):
        try:
            barrier.wait(timeout=60)
            results[i] = fn(i)
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(count)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in workers), "a thread did not finish"
    if errors:
        raise errors[0]
    return results


@pytest.fixture(scope="module")
def digits():
    return nnfast.datasets.load_digits()


def blas_threads_if_known():
    try:
        import threadpoolctl
    except ImportError:
        return None
    return blas_threads(threadpoolctl)


def test_threads_training_their_own_models(digits, threads):
    threads(2)
    (x, y), _ = digits
    alone = [train(seed, x, y).get_weights() for seed in range(4)]
    blas = blas_threads_if_known()
    together = run_in_threads(lambda i: train(i, x, y).get_weights(), 4)
    assert blas_threads_if_known() == blas  # fit's BLAS limit is restored once all are done
    for a, b in zip(alone, together):
        assert len(a) == len(b) == 4
        for wa, wb in zip(a, b):
            np.testing.assert_array_equal(wa, wb)
    assert not all(np.array_equal(alone[0][0], w[0]) for w in alone[1:])  # seeds differ


def test_threads_predicting_with_their_own_models(digits, threads):
    threads(2)
    (x, y), (x_test, _) = digits
    models = [train(seed, x, y) for seed in range(4)]
    alone = [m.predict(x_test, batch_size=64) for m in models]
    together = run_in_threads(lambda i: [models[i].predict(x_test, batch_size=64)
                                         for _ in range(3)], 4)
    for expected, runs in zip(alone, together):
        for got in runs:
            np.testing.assert_array_equal(got, expected)
