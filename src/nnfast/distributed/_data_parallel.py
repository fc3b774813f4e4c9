"""The hooks ``Sequential.fit(..., distributed=True)`` calls: see nnfast/distributed/__init__.py.

Order of calls in fit: ``run`` wraps the whole fit; after the argument checks and the build,
``setup`` checks that every rank has the same model and data and copies rank 0's weights,
optimizer state, counters and seed to all; per global batch ``shard`` gives this rank's rows and
``train_step`` computes, reduces and applies the gradient; per epoch ``end_epoch`` reduces the
validation results and checks that the weights are still identical everywhere.

This part sits below the engine and imports none of it: the engine hands in ``local``, the
object whose functions compute this rank's share (``compute_gradients``, ``add_metric_sums``,
``apply_gradients``, ``evaluate_sums``, ``regularization``, ``divide_no_nan``; see
nnfast/engine/training.py), as a callback is handed in.
"""
from __future__ import annotations

import hashlib
import json
import zlib

import numpy as np

from nnfast import metrics as _metrics
from nnfast.distributed import _mpi
from nnfast.distributed._mpi import DistributedError, _stderr, describe_exception, failure

# Tail of the reduced buffer, after the gradients (_WEIGHT: the rows' Σ w, metrics' divisor;
# _STOP, _INTERRUPT: how many ranks asked to stop, how many saw Ctrl-C, before this step).
_STATUS, _STOP, _INTERRUPT, _COUNT, _LOSS, _WEIGHT, _METRICS = 0, 1, 2, 3, 4, 5, 6


def shard(start: int, stop: int, rank: int, size: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous part of rows [start, stop): sizes differ by at most one, the
    larger parts first (so with fewer rows than ranks the last ranks get none)."""
    q, r = divmod(stop - start, size)
    lo = start + rank * q + min(rank, r)
    return lo, lo + q + (rank < r)


class DataParallel:
    """Data-parallel state for one ``fit`` (or distributed ``evaluate``/``predict``, named by
    ``fn`` in the errors) call on this rank.

    Attributes: ``rank``, ``size``, ``is_root`` (prints and writes files), ``stop_requested``
    (a rank asked to stop, as agreed in the last step), ``interrupted`` (a rank saw Ctrl-C),
    ``local`` (the engine's step functions, needed by ``train_step`` and ``end_epoch`` only).
    """

    def __init__(self, world=None, fn: str = "fit", local=None):
        self.fn = fn
        self.local = local
        self.world = world if world is not None else _mpi._world()
        self.rank, self.size = self.world.rank, self.world.size
        self.is_root = self.rank == 0
        self.stop_requested = self.interrupted = False
        self._phase = "checks"
        self._buf = self._tail = None
        self._step = 0

    # ------------------------------------------------------------------ fault wrapper
    def run(self, fit_fn, *args, **kwargs):
        """Call ``fit_fn(*args, dp=self, **kwargs)`` so a failure on one rank ends all of them:
        before ``setup`` the error is sent through the setup exchange; after it, an exception
        outside a reduced step aborts the job (the others would wait for this rank forever)."""
        try:
            return fit_fn(*args, dp=self, **kwargs)
        except DistributedError:
            raise
        except BaseException as exc:
            if self.size == 1 or getattr(exc, "_nnfast_collective", False):
                raise
            if self._phase == "checks":
                self._exchange(None, error=exc)   # raises on every rank
            _stderr(f"nnfast.distributed: rank {self.rank} failed outside a synchronised step "
                    f"({self._phase}): {describe_exception(exc)}; aborting all {self.size} ranks")
            self.world.abort(1)
            raise

    # ------------------------------------------------------------------ start
    def setup(self, model, x, y, val, *, epochs, batch_size, shuffle, callbacks, verbose, seed,
              weights=None):
        """Check that all ranks agree, then copy rank 0's state; returns
        ``(verbose, callbacks, train_seed)`` for this rank. ``weights`` and ``val[2]`` are the
        row weights (or None), sharded with the rows by the caller."""
        info = {"model": _model_doc(model), "dtype": str(model.dtype),
                "params": int(model._params.size), "epochs": epochs, "batch_size": batch_size,
                "shuffle": bool(shuffle),
                "callbacks": [type(cb).__name__ for cb in callbacks
                              if not getattr(cb, "root_only", False)],
                "samples": len(x), "x": _array_sig(x), "y": _array_sig(y),
                "sample weights": None if weights is None else _array_sig(weights),
                "validation samples": 0 if val is None else len(val[0]),
                "validation x": None if val is None else _array_sig(val[0]),
                "validation y": None if val is None else _array_sig(val[1]),
                "validation sample weights": None if val is None or val[2] is None
                else _array_sig(val[2])}
        self._exchange(info)
        self._phase = "setup"
        w = self.world
        train_seed = w.bcast(seed if seed is not None else model.seed, "setup: seed")
        model.seed = w.bcast(model.seed, "setup: seed")
        for layer, s in zip(model.layers, w.bcast([getattr(la, "seed", None)
                                                   for la in model.layers], "setup: seeds")):
            if s is not None:
                layer.seed = s
        opt = model.optimizer
        model._step, model._epoch, opt.iterations, opt.learning_rate = w.bcast(
            (model._step, model._epoch, opt.iterations, opt.learning_rate), "setup: counters")
        # a write: threads predicting meanwhile see before or after
        model._weights.write(w.bcast_array, model._params, "setup: parameter broadcast")
        for name in sorted(opt.state):
            w.bcast_array(opt.state[name], f"setup: optimizer state {name!r}")
        self._attach(model)
        self._phase = "training"
        if not self.is_root:
            verbose = 0
            callbacks = [cb for cb in callbacks if not getattr(cb, "root_only", False)]
        return verbose, callbacks, train_seed

    def _exchange(self, info, error=None):
        """Allgather each rank's description (or error); raise the same error on every rank
        if any rank failed or differs from rank 0."""
        msg = None if error is None else describe_exception(error)
        reports = self.world.allgather((self.rank, msg, info), "setup: configuration check")
        exc = failure([(r, m) for r, m, _ in reports], f"the checks at the start of {self.fn}")
        if exc is not None:
            if error is not None and all(m == msg for _, m, _ in reports):
                error._nnfast_collective = True   # the same error everywhere: raise it as is
                raise error
            raise exc from error
        base = reports[0][2]
        problems = [(r, f"rank {r}: {key} {_diff(other[key], base[key])}")
                    for r, _, other in reports[1:] for key in base if other[key] != base[key]]
        if problems:
            raise DistributedError(f"ranks disagree at the start of distributed {self.fn}: "
                                   + "; ".join(p for _, p in problems),
                                   ranks=sorted({r for r, _ in problems}))

    def _attach(self, model):
        """Move the gradients into a buffer with room for the tail: layers get new views in
        the same flat layout (param_shapes order), so the step reduces it without copying."""
        extra = _METRICS + _metrics.total_size(model.metrics)
        n = model._params.size
        buf = np.zeros(n + extra, dtype=model.dtype)
        buf[:n] = model._grads
        offset = 0
        for layer in model.layers:
            views_p, views_g = [], []
            for _, shape in layer.param_shapes():
                size = int(np.prod(shape, dtype=np.int64))
                views_p.append(model._params[offset:offset + size].reshape(shape))
                views_g.append(buf[offset:offset + size].reshape(shape))
                offset += size
            layer.bind(views_p, views_g)
        model._grads = buf[:n]
        self._buf, self._tail = buf, buf[n:]

    # ------------------------------------------------------------------ per step
    def shard(self, start: int, stop: int) -> tuple[int, int]:
        """This rank's contiguous part of rows [start, stop) (see :func:`shard`)."""
        return shard(start, stop, self.rank, self.size)

    def train_step(self, model, ws, xb, yb, n: int, n_global: int, stop: bool, wb=None,
                   interrupted: bool = False):
        """Gradient of this rank's ``n`` rows (row weights ``wb`` or None), one Allreduce, the
        update; returns the global ``(rows, loss·rows, Σ w, [Σ w·metric])`` of the step.

        ``stop``/``interrupted``: this rank wants to stop (a callback set ``stop_training``
        after the previous batch) or saw Ctrl-C. The flags ride in the same Allreduce; when
        any rank raised one, every rank drops this step (no update) and returns None, so all
        stop after the same batch, the one a single process would have stopped after.

        The local loss is Σ_local w·l / n; scaled by n / n_global and summed over the ranks it
        is Σ_global w·l / n_global, the loss of one process with the global batch."""
        local = self.local
        tail, grads = self._tail, model._grads
        tail[:] = 0
        error = None
        try:
            if n and not (stop or interrupted):
                loss, out = local.compute_gradients(model, ws, xb, yb, n, wb)
                if n != n_global:
                    grads *= grads.dtype.type(n / n_global)
                tail[_COUNT], tail[_LOSS] = n, loss * n
                sums = np.zeros(_metrics.total_size(model.metrics))
                tail[_WEIGHT] = local.add_metric_sums(model, sums, out, yb, ws, n, wb)
                tail[_METRICS:] = sums
            else:
                grads.fill(0)   # a last global batch smaller than the number of ranks, or stop
        except Exception as exc:  # noqa: BLE001  (any error is sent to the other ranks)
            error = exc
            tail[_STATUS] = 1
        tail[_STOP], tail[_INTERRUPT] = bool(stop), bool(interrupted)
        self._step += 1
        self.world.allreduce_sum(self._buf, f"gradient allreduce (step {self._step})")
        if tail[_STATUS]:
            self._raise_failure(error, f"training step {self._step}")
        self.stop_requested = bool(tail[_STOP] or tail[_INTERRUPT])
        self.interrupted = bool(tail[_INTERRUPT])
        if self.stop_requested:
            return None
        local.apply_gradients(model)
        return (round(float(tail[_COUNT])), float(tail[_LOSS]), float(tail[_WEIGHT]),
                [float(v) for v in tail[_METRICS:]])

    def agree_stop(self, stop: bool, interrupted: bool) -> tuple[bool, bool]:
        """Before an epoch: does any rank want to stop, did any see Ctrl-C? The same answer on
        every rank (one allgather of two flags per epoch)."""
        flags = self.world.allgather((bool(stop), bool(interrupted)), "stop agreement")
        self.interrupted = any(i for _, i in flags)
        self.stop_requested = self.interrupted or any(s for s, _ in flags)
        return self.stop_requested, self.interrupted

    def _raise_failure(self, error, what):
        msg = None if error is None else describe_exception(error)
        reports = self.world.allgather((self.rank, msg), f"failure report ({what})")
        raise failure(reports, what) from error

    # ------------------------------------------------------------------ per epoch
    def end_epoch(self, model, val, batch_size: int, ws=None, hooks=None) -> dict:
        """Validation over all ranks (each evaluates a slice, in fit's workspace ws) and a check
        that the weights are the same on every rank; returns the ``val_*`` logs (empty without
        validation data). hooks: the CallbackList whose on_test_batch_* run over this rank's
        slice, or None (local.evaluate_sums)."""
        local = self.local
        error, sums = None, None
        try:
            if val is not None:
                lo, hi = self.shard(0, len(val[0]))
                sums = local.evaluate_sums(model, val[0][lo:hi], val[1][lo:hi], batch_size,
                                           w=None if val[2] is None else val[2][lo:hi],
                                           ws=ws, hooks=hooks)
        except Exception as exc:  # noqa: BLE001  (any error is sent to the other ranks)
            error = exc
        msg = None if error is None else describe_exception(error)
        crc = zlib.crc32(model._params)
        reports = self.world.allgather((self.rank, msg, sums, crc), "end of epoch exchange")
        exc = failure([(r, m) for r, m, _, _ in reports], "validation")
        if exc is not None:
            raise exc from error
        diverged = [r for r, _, _, c in reports if c != reports[0][3]]
        if diverged:
            raise DistributedError(f"weights differ between rank 0 and rank(s) {diverged} after "
                                   "an epoch (the MPI reduction is not bitwise reproducible); "
                                   "please report this", ranks=diverged)
        if val is None:
            return {}
        count, weight, loss, *metrics = [sum(col) for col in zip(*(s for _, _, s, _ in reports))]
        logs = {"val_loss": loss / count + local.regularization(model)}
        logs.update({f"val_{k}": v for k, v in _metrics.results(
            model.metrics, np.asarray(metrics, np.float64), weight).items()})
        return logs


# ----------------------------------------------------------------------------- descriptions
def _without_seeds(obj):
    if isinstance(obj, dict):
        return {k: _without_seeds(v) for k, v in obj.items() if k != "seed"}
    if isinstance(obj, list):
        return [_without_seeds(v) for v in obj]
    return obj


def _model_doc(model) -> dict:
    """Architecture and compile settings, seeds left out (rank 0's are broadcast)."""
    opt = model.optimizer
    doc = {"layers": _without_seeds(model.get_config()["layers"]),
           "input_shape": list(model.input_shape),
           "loss": [type(model.loss).__name__, model.loss.get_config()],
           "optimizer": [type(opt).__name__, opt.get_config()],
           "metrics": [_metrics.serialize(m) for m in model.metrics]}
    return json.loads(json.dumps(doc, default=str))


def _array_sig(a: np.ndarray) -> dict:
    """Shape, dtype and a checksum of up to 64 evenly spaced rows (cheap, catches most
    differences between the ranks' copies of the data)."""
    idx = np.unique(np.linspace(0, len(a) - 1, num=min(len(a), 64)).astype(np.int64))
    digest = hashlib.sha1(np.ascontiguousarray(a[idx]).tobytes()).hexdigest()[:12]
    return {"shape": list(a.shape), "dtype": str(a.dtype), "sampled rows": digest}


def _diff(value, base, path: str = "") -> str:
    """The first place where ``value`` differs from rank 0's ``base``."""
    if isinstance(value, dict) and isinstance(base, dict):
        for k in list(base) + [k for k in value if k not in base]:
            if value.get(k) != base.get(k):
                return _diff(value.get(k), base.get(k), f"{path}.{k}" if path else str(k))
    if isinstance(value, list) and isinstance(base, list) and len(value) == len(base):
        for i, (v, b) in enumerate(zip(value, base)):
            if v != b:
                return _diff(v, b, f"{path}[{i}]")
    where = f" at {path}" if path else ""
    return f"differs{where}: {value!r} (rank 0: {base!r})"
