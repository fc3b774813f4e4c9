"""The CPUs this process really has: its affinity mask, the CPU quota of its own cgroup (and of
every parent cgroup), and its share of the node when an MPI launcher runs several ranks on it.

Plain functions of their inputs (environment, cgroup root) so tests can feed them fake ones.
"""
from __future__ import annotations

import math
import os
import re

CGROUP_ROOT = "/sys/fs/cgroup"        # where the cgroup hierarchies are mounted
PROC_SELF_CGROUP = "/proc/self/cgroup"  # which cgroup this process is in

# Ranks an MPI launcher started on this node, in the order they are trusted.
MPI_LOCAL_RANK_VARS = ("OMPI_COMM_WORLD_LOCAL_SIZE",  # Open MPI (mpirun)
                       "MPI_LOCALNRANKS")             # MPICH / Hydra
SLURM_TASKS_VARS = ("SLURM_STEP_TASKS_PER_NODE",      # srun: this step's tasks on each node
                    "SLURM_NTASKS_PER_NODE",          # --ntasks-per-node
                    "SLURM_TASKS_PER_NODE")           # "2(x3),1": per node, compressed


def affinity_cpus() -> int:
    """CPUs in this process's affinity mask (all CPUs where there is no such mask)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _levels(mount: str, path: str):
    """The directory of cgroup `path` under `mount`, then each parent up to `mount` itself.

    A path outside this cgroup namespace reads "/../x": only the mount (our root) is known."""
    parts = [p for p in path.split("/") if p]
    if ".." in parts:
        parts = []
    for i in range(len(parts), -1, -1):
        yield os.path.join(mount, *parts[:i])


def _v2_quota(directory: str) -> float | None:
    text = _read(os.path.join(directory, "cpu.max"))  # "max 100000" or "150000 100000"
    try:
        quota, period = text.split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (AttributeError, ValueError, ZeroDivisionError):
        return None


def _v1_quota(directory: str) -> float | None:
    try:
        quota = int(_read(os.path.join(directory, "cpu.cfs_quota_us")))   # -1: no quota
        period = int(_read(os.path.join(directory, "cpu.cfs_period_us")))
    except (TypeError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def cgroup_cpu_quota(root: str | None = None, proc_cgroup: str | None = None) -> float | None:
    """The CPU quota (in CPUs, maybe fractional) of this process's cgroup: the smallest over
    its own cgroup and every parent, in cgroup v2 (``cpu.max``) and v1 (``cpu.cfs_quota_us``
    over ``cpu.cfs_period_us`` of the cpu controller); None when there is none.

    ``root`` (default :data:`CGROUP_ROOT`) and ``proc_cgroup`` (default
    :data:`PROC_SELF_CGROUP`) point elsewhere for tests.
    """
    root = CGROUP_ROOT if root is None else root
    text = _read(PROC_SELF_CGROUP if proc_cgroup is None else proc_cgroup) or ""
    quotas = []
    for line in text.splitlines():
        hid, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if hid == "0" and controllers == "":      # v2: "0::/path"
            quotas += [_v2_quota(d) for d in _levels(root, path)]
        elif "cpu" in controllers.split(","):     # v1: "4:cpu,cpuacct:/path"
            for name in dict.fromkeys((controllers, "cpu,cpuacct", "cpu")):
                mount = os.path.join(root, name)
                if os.path.isdir(mount):
                    quotas += [_v1_quota(d) for d in _levels(mount, path)]
                    break
    quotas = [q for q in quotas if q is not None]
    return min(quotas) if quotas else None


def available_cpus(root: str | None = None, proc_cgroup: str | None = None) -> int:
    """CPUs this process may run on: the affinity mask, capped by a cgroup CPU quota (rounded
    up: 1.5 CPUs of quota allow 2 threads)."""
    n = affinity_cpus()
    quota = cgroup_cpu_quota(root, proc_cgroup)
    return max(1, min(n, math.ceil(quota)) if quota is not None else n)


def _slurm_tasks_here(value: str, node_id: str | None) -> int | None:
    """This node's entry of a Slurm per-node list such as "2(x3),1" (node SLURM_NODEID; the
    first node when that is unknown)."""
    counts = []
    for entry in value.split(","):
        m = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", entry)
        if m is None:
            return None
        counts += [int(m[1])] * int(m[2] or 1)
    i = int(node_id) if node_id and node_id.strip().isdigit() else 0
    return counts[i] if i < len(counts) else counts[0]


def mpi_local_ranks(environ=None) -> int:
    """How many ranks an MPI launcher runs on this node; 1 outside a launcher.

    Open MPI's OMPI_COMM_WORLD_LOCAL_SIZE, MPICH/Hydra's MPI_LOCALNRANKS, then Slurm's task
    layout, read only inside an ``srun`` step (SLURM_STEP_ID, as
    nnfast.distributed._mpi.launched does): a batch script sees the job's layout but is one
    process, and is not divided.
    """
    env = os.environ if environ is None else environ
    for var in MPI_LOCAL_RANK_VARS:
        raw = env.get(var, "").strip()
        if raw.isdigit() and int(raw) >= 1:
            return int(raw)
    if "SLURM_STEP_ID" in env:
        for var in SLURM_TASKS_VARS:
            n = _slurm_tasks_here(env.get(var, ""), env.get("SLURM_NODEID"))
            if n is not None and n >= 1:
                return n
    return 1
