"""Data-parallel training over MPI (mpi4py), launched with ``mpirun``/``mpiexec`` or ``srun``.

Every rank holds the whole data set and the same model. Each global batch of ``N·B`` rows (same
shuffle on every rank, from rank 0's seed) is cut into ``N`` disjoint slices of ``B`` rows; each
rank computes the gradient of its slice, scales it by ``rows / global rows`` and one in-place
``Allreduce`` (sum) over the model's flat gradient buffer turns it into the gradient of the
global batch, so every rank applies the same update as one process with batch ``N·B``.

The buffer reduced each step is the gradient buffer followed by a short tail: a failure flag,
a stop flag, the row count, loss·rows, the rows' total sample weight and weight·metric sums.
So one message per step also carries errors (a rank whose step raised sends the flag and every
rank raises :class:`DistributedError` naming it) and the epoch's metrics. Death of a rank is
the launcher's job (Open MPI and MPICH end the job when a rank dies; with ``srun`` use
``--kill-on-bad-exit=1``); an exception that escapes a rank outside a step calls ``MPI_Abort``;
a rank left waiting in a collective longer than ``NNFAST_DIST_TIMEOUT`` seconds (default 300,
0 = never) aborts the job.

Launch: ``mpirun -n 4 python train.py`` (Open MPI as root: ``--allow-run-as-root``; more ranks than
cores: ``--oversubscribe``), ``srun -n 4 --kill-on-bad-exit=1 python train.py`` under Slurm.
Requirements and limits: every rank passes the same data (checked at the start: sizes, shapes,
dtypes and a checksum of sampled rows) and builds the same model (architecture, optimizer, loss and
metrics are compared; seeds are taken from rank 0); callbacks must be the same on every rank and
decide from the logs they get, which are the same on every rank; callbacks with ``root_only =
True`` (``ModelCheckpoint``) run on rank 0 only. Dropout masks are drawn per rank from the same
seed and step, so networks with dropout do not reproduce a single-process run exactly; without
dropout they do, within float rounding. Sample and class weights are sharded with their rows,
so weighted training reproduces it too.
``evaluate(..., distributed=True)`` and ``predict(..., distributed=True)`` split the rows into
one contiguous shard per rank (fit's ``shard``: sizes differ by at most one, empty when there are
fewer rows than ranks) after the same start check (shapes, dtypes, sampled rows, model and a
checksum of its weights; a rank's argument error is raised on every rank). evaluate sums
(rows, Σ w, Σ w·loss, Σ w·metric) in one Allreduce: every rank returns the same dict, equal to
one process's up to the order of those sums (float32 models: relative 1e-5 at most, from the
per-batch float32 sums of weighted metrics; the loss sums are double). predict assembles the
rows with one Allgatherv: every rank gets the whole array in the model dtype, bit for bit the
one-process result with the C kernels (a row's outputs do not depend on its batch); the NumPy
reference backend's BLAS may differ by about 1 ulp. In one process (no launcher) both are the
plain calls; under a launcher without mpi4py they raise ImportError, as fit does.

>>> import nnfast
>>> from nnfast import distributed
>>> rank, size = distributed.init()        # (0, 1) outside mpirun: no MPI import
>>> # model.fit(x, y, batch_size=64, distributed=True)   # per-rank batch 64
>>> # if distributed.is_root(): model.save("model.nnf")
>>> # scores = model.evaluate(x_test, y_test, distributed=True)   # the same dict on every rank
"""
from __future__ import annotations

from nnfast.distributed._data_parallel import DataParallel
from nnfast.distributed._mpi import (
    DEFAULT_TIMEOUT,
    TIMEOUT_ENV,
    DistributedError,
    _world,
    describe_exception,
    launched,
)

__all__ = ["DEFAULT_TIMEOUT", "TIMEOUT_ENV", "DataParallel", "DistributedError",
           "abort", "describe_exception", "init", "is_root", "launched", "rank", "size"]


def init() -> tuple[int, int]:
    """Join the MPI job this process was launched in; returns ``(rank, size)``.

    Outside a launcher returns ``(0, 1)`` without importing mpi4py. Under one, imports mpi4py
    (ImportError naming ``nnfast[mpi]`` when missing), starts the collective watchdog and
    installs an excepthook that aborts the whole job on an uncaught exception, so one failing
    rank cannot leave the others waiting forever. Calling it again returns the same values."""
    w = _world()
    return w.rank, w.size


def rank() -> int:
    return _world().rank


def size() -> int:
    return _world().size


def is_root() -> bool:
    """True on rank 0 (and in a single process): the rank that prints and writes files."""
    return _world().rank == 0


def abort(code: int = 1) -> None:
    """End every rank of the job now (``MPI_Abort``); in a single process, exit with ``code``."""
    _world().abort(code)


def __dir__():  # tab completion shows the public names only, not np, math, ops ...
    return list(__all__)
