"""How one :class:`nnfast.Sequential` is shared by threads (docs/model.md, "Threads").

- Inference (evaluate, predict) takes a workspace of its own from the model's pool
  (nnfast/workspace.py), so calls running at once never share an activation array.
- ``WeightsLock``: writers of the parameters (the optimizer step, set_weights, restoring weights)
  run under a lock (``lock.write(fn)``) and bump a counter when they finish. Readers take no
  lock: a reader keeps its result when no writer held the lock at its end and the counter did
  not move around it, else it runs once more holding the lock. So a forward pass sees the
  weights of one whole step, never a half-updated buffer, and readers never wait for each other.
- ``TrainingGuard``: one thread trains a model at a time. fit (and compile, set_weights) hold
  it; holding it from a second thread raises RuntimeError at once instead of waiting or
  corrupting the weights and optimizer state. The holding thread may hold it again (a callback
  calling set_weights inside fit).

The lock-free read relies on the GIL ordering the counter's reads and writes around the kernels
(CPython with a GIL, as built for here).
"""
from __future__ import annotations

import contextlib
import threading


class WeightsLock:
    """``lock.write(fn, *args)`` for a write of the parameters, ``lock.read(fn, *args)`` for a
    reader."""

    __slots__ = ("lock", "version")

    def __init__(self):
        self.lock = threading.Lock()
        self.version = 0          # writes finished so far

    def write(self, fn, *args):
        """fn(*args) holding the lock. The lock is taken by ``with`` on the C lock itself, so an
        exception from a signal handler (Ctrl-C, a timeout) can never leave it held: a Python
        ``__enter__`` that called acquire() left it held when the handler raised right after
        the acquire (every later predict then blocked forever)."""
        with self.lock:
            try:
                return fn(*args)
            finally:
                self.version += 1

    def read(self, fn, *args):
        """fn(*args), computed from parameters no writer changed meanwhile: at most twice."""
        version = self.version
        result = fn(*args)
        if self.lock.locked() or self.version != version:  # a write overlapped: redo it, held
            with self.lock:
                result = fn(*args)
        return result


class TrainingGuard:
    """Held by the one thread that trains (or otherwise changes) a model."""

    def __init__(self):
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._owner_name = self._what = ""
        self._depth = 0

    def held_here(self) -> str | None:
        """What the calling thread holds the model for ("fit", ...), None when it holds
        nothing (a callback inside fit sees "fit")."""
        with self._lock:
            return self._what if self._owner == threading.get_ident() else None

    @contextlib.contextmanager
    def hold(self, model, what: str):
        me = threading.get_ident()
        with self._lock:
            if self._owner is not None and self._owner != me:
                doing = "training" if self._what == "fit" else f"being changed ({self._what})"
                raise RuntimeError(
                    f"{what}: model {model.name!r} is already {doing} in another thread "
                    f"({self._owner_name!r}); one model trains in one thread at a time. Wait for "
                    f"that call to return, or train a copy (save() and nnfast.load_model(), or a "
                    f"new model given set_weights(get_weights())). predict and evaluate may run "
                    f"meanwhile.")
            if self._owner is None:
                self._owner, self._owner_name, self._what = (
                    me, threading.current_thread().name, what)
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None
