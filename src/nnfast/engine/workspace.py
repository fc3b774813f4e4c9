"""Per-model workspace: every array a forward/backward pass needs, allocated once.

Arrays are allocated for ``capacity`` rows on first request and handed out as row slices
``base[:n]``, which are C-contiguous views; the views themselves are cached per ``n``. So the
full batches of an epoch and its shorter last batch share one allocation, and after the first
batch of each size a training step allocates no array at all (tests/test_model_engine.py checks
this with tracemalloc). A larger batch size replaces the workspace.

A model keeps its workspaces in a ``WorkspacePool``: every pass (a fit, an evaluate, a predict)
takes one for its whole duration and gives it back, so passes running at once in several
threads never share an array, while one thread cycles through the same workspace as before.
"""
from __future__ import annotations

import numpy as np


class Workspace:
    def __init__(self, layers: list, capacity: int, dtype, first_trainable: int | None):
        self.layers = layers
        self.capacity = int(capacity)
        self.dtype = np.dtype(dtype)
        self.first_trainable = first_trainable
        self._base: dict = {}
        self._views: dict = {}
        self._layer_views: dict = {}
        self.acts: list = [None] * (len(layers) + 1)   # layer inputs/outputs of the last step

    def rows(self, key, n: int, tail: tuple = (), dtype=None) -> np.ndarray:
        """The first ``n`` rows of the array ``key`` of per-row shape ``tail`` (cached view).

        A key asked for with another tail or dtype than its cached view (a recompile from
        sparse labels to one-hot targets: "yb") gets a new array, never the old view."""
        dtype = self.dtype if dtype is None else dtype
        view = self._views.get((key, n))
        # the checks are a tuple compare and a dtype compare: this runs several times a step
        if view is not None and view.shape[1:] == tail and view.dtype == dtype:
            return view
        tail, dtype = tuple(tail), np.dtype(dtype)
        base = self._base.get(key)
        if base is None or base.shape[1:] != tail or base.dtype != dtype:
            base = self._base[key] = np.empty((self.capacity,) + tail, dtype=dtype)
            self._views = {k: v for k, v in self._views.items() if k[0] != key}
            self._layer_views.clear()
        view = self._views[(key, n)] = base[:n]
        return view

    def need_dx(self, i: int) -> bool:
        """Layer i must produce a gradient for its input iff a trainable layer precedes it."""
        return self.first_trainable is not None and i > self.first_trainable

    def layer_buffers(self, n: int, training: bool) -> list:
        """For each layer, {name: view of n rows} of the arrays it asked for.

        The layers are asked again at every call and the cached views reused only when they
        ask for the same arrays: what a layer needs can change after build (a callback
        switching an activation from None to relu adds its pre-activation "z"). Asking costs
        a small dict per layer, comparing them one list compare."""
        shapes = [layer.workspace_shapes(self.need_dx(i) and training, training)
                  for i, layer in enumerate(self.layers)]
        cached = self._layer_views.get((n, training))
        if cached is not None and cached[0] == shapes:
            return cached[1]
        views = [{name: self.rows((i, name), n, tail) for name, tail in s.items()}
                 for i, s in enumerate(shapes)]
        self._layer_views[(n, training)] = (shapes, views)
        return views

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._base.values())


class WorkspacePool:
    """The idle workspaces of one model; as many exist as passes have ever run at once.

    A pool rather than one lock per model: the kernels run without the GIL, so with a pool N
    threads predicting through one model run N kernels at once, where a lock would hold them to
    one call at a time. Taking and giving back costs a list pop and append (about 0.2 us; batch-1
    predict of 784-256-128-10 takes 60-80 us, the same before and after within the noise:
    docs/model.md, "Threads", has the measurements). Per-thread workspaces (threading.local) would
    cost the same but keep one workspace for every thread that ever predicted.
    """

    def __init__(self, layers: list, dtype, first_trainable: int | None):
        self.layers, self.dtype, self.first_trainable = layers, dtype, first_trainable
        self._idle: list = []

    def take(self, rows: int) -> Workspace:
        """An idle workspace of at least ``rows`` rows, or a new one; give it back after."""
        try:
            ws = self._idle.pop()        # atomic: two threads never get the same one
        except IndexError:
            ws = None
        if ws is None or ws.capacity < rows:
            ws = Workspace(self.layers, rows, self.dtype, self.first_trainable)
        return ws

    def give(self, ws: Workspace) -> None:
        self._idle.append(ws)
