"""The Sequential model: layers, one flat parameter buffer, compile settings.

The training loop lives in nnfast/engine/training.py, the file format in
nnfast/engine/saving.py, the workspace in nnfast/engine/workspace.py, how threads share a model
in nnfast/engine/locks.py.

>>> import numpy as np, nnfast
>>> from nnfast.layers import Dense
>>> model = nnfast.Sequential([Dense(8, activation="relu", input_dim=2), Dense(1, "sigmoid")],
...                           seed=0)
>>> model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
>>> model.count_params()
33
"""
from __future__ import annotations

import math
import re

import numpy as np

from nnfast import layers as _layers
from nnfast import losses as _losses
from nnfast import metrics as _metrics
from nnfast import optimizers as _optimizers
from nnfast.engine import inference as _inference
from nnfast.engine import layer_owner
from nnfast.engine.checks import check_alphas, seed_value
from nnfast.engine.locks import TrainingGuard, WeightsLock
from nnfast.engine.summary import print_summary
from nnfast.engine.weights import checked_weights, layer_params
from nnfast.engine.workspace import Workspace, WorkspacePool

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Sequential:
    """A stack of layers trained with :meth:`fit`.

    Parameters
    ----------
    layers : list of layers, optional
    dtype : "float32" (default) or "float64"; inputs are converted to it once.
    seed : int, optional. Initial weights, shuffles and dropout masks derive from it; without
        one a random seed is drawn at build time (and saved with the model).

    A model whose first layer declares its input (``Dense(4, input_dim=3)`` or
    ``input_shape=(3,)``) is built at construction, as a Keras 3 model with a known input shape
    is: ``built`` is True and ``get_weights``, ``set_weights``, ``count_params`` and ``summary``
    work before any fit. Otherwise the model is built by ``build(input_shape)`` (per-sample
    shape, ``(3,)``; Keras takes ``(None, 3)``: a leading None is accepted too) or by the first
    fit/predict/evaluate, from the data. Raises ValueError at construction when the declared
    input does not fit the layers (Keras raises there too).
    """

    def __init__(self, layers=None, dtype="float32", seed: int | None = None,
                 name: str = "sequential"):
        try:
            self._dtype = np.dtype(dtype)
        except TypeError:
            self._dtype = None
        if self._dtype not in _DTYPES:
            raise ValueError(f"Sequential: dtype must be 'float32' or 'float64', got {dtype!r}")
        self.seed = seed_value(seed, "Sequential")
        self.name = name
        self.layers: list = []
        self.optimizer = None
        self.loss = None
        self.metrics: list = []
        self.history = None
        self.stop_training = False
        self.built = False
        self.input_shape: tuple | None = None
        self._params = self._grads = None
        self._workspaces: WorkspacePool | None = None   # built with the model
        self._weights = WeightsLock()      # writers of _params hold it (see engine/locks.py)
        self._training = TrainingGuard()   # fit, compile, set_weights: one thread at a time
        self._step = 0            # training steps done (dropout counter, saved)
        self._epoch = 0           # epochs done (shuffle counter, saved)
        self._regularized: list = []
        self._structure = 0       # bumped by every change of layers, build or compile
        self._plan_cache = None   # (key, inference plan): nnfast/engine/plan.py
        try:
            for layer in layers or []:
                self._append(layer, "Sequential")
            if self._declared_input_shape() is not None:
                self.build()
        except BaseException:
            layer_owner.release(self, self.layers)   # a model never made keeps no layer
            raise

    # ------------------------------------------------------------------ structure
    def add(self, layer) -> None:
        """Append a layer.

        On a built model (Keras 3 does the same) the model is rebuilt with the new layer: the
        weights of the layers already there are kept, the new layer is initialised as it would
        have been had it been there from the start (its draws depend on the seed and its
        position only), and the optimizer's state restarts from zero for the new parameter
        buffer. An unbuilt model whose first layer now declares its input is built. Raises
        RuntimeError while another thread fits the model, TypeError for a non-layer, ValueError
        for a layer instance already in this model or in another one (nnfast layers are not
        shared between models, unlike Keras': see nnfast/engine/layer_owner.py), or one that
        does not fit the output shape.
        """
        with self._training.hold(self, "add"):
            if self.built:
                self._add_to_built(layer)
                return
            self._append(layer, "Sequential.add")
            if self._declared_input_shape() is not None:
                self.build()

    def _add_to_built(self, layer) -> None:
        layer_owner.check_layer(self, layer, "Sequential.add")
        layer.compute_output_shape(self.output_shape)   # fails before anything changes
        check_alphas([layer], self.dtype, "Sequential.add")
        kept = [np.array(p) for lay in self.layers for p in layer_params(lay)]

        def rebuild():
            self._append(layer, "Sequential.add")
            self.built = False
            self._build(self.input_shape)   # the shapes were checked above: nothing can fail
            targets = [p for lay in self.layers[:-1] for p in layer_params(lay)]
            for src, dst in zip(kept, targets):
                dst[...] = src

        self._weights.write(rebuild)

    def _append(self, layer, fn: str) -> None:
        layer_owner.check_layer(self, layer, fn)
        layer_owner.claim(self, layer)
        if layer.name is None:
            # Keras' snake_case: MaxPooling2D -> max_pooling2d, BatchNormalization ->
            # batch_normalization (Dense -> dense as before)
            base = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", type(layer).__name__).lower()
            names = {lay.name for lay in self.layers}
            layer.name = base if base not in names else next(
                f"{base}_{i}" for i in range(1, len(names) + 2) if f"{base}_{i}" not in names)
        self.layers.append(layer)
        self._update_head()

    def _declared_input_shape(self) -> tuple | None:
        return self.layers[0].input_shape if self.layers else None

    def infer_output_shape(self, input_shape: tuple) -> tuple:
        """Per-sample output shape for a per-sample input shape, checking each layer."""
        if not self.layers:
            raise ValueError("Sequential: the model has no layers; add some first")
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
        return shape

    @property
    def dtype(self) -> np.dtype:
        """The model's float dtype, ``numpy.dtype('float32')`` or ``float64``: of its weights,
        gradients, optimizer state and outputs. Fixed at construction and read-only, as
        Keras 3's ``Layer.dtype`` (a property without a setter): assigning it raises
        AttributeError, since the weights, the optimizer state and the plans are laid out in
        it. For another dtype, build a new ``Sequential(..., dtype=...)`` and copy the weights
        with ``set_weights(other.get_weights())``."""
        return self._dtype

    @dtype.setter
    def dtype(self, value) -> None:
        raise AttributeError(
            f"Sequential.dtype is read-only (it is {self._dtype}; assigned {value!r}): the "
            "dtype is fixed at construction, as Keras 3's Layer.dtype. Build a new "
            "Sequential(..., dtype=...) and copy the weights with "
            "set_weights(model.get_weights())")

    @property
    def output_shape(self) -> tuple | None:
        return self.layers[-1].output_shape if self.built else None

    def build(self, input_shape=None) -> None:
        """Allocate and initialise the parameters for per-sample ``input_shape``.

        ``input_shape`` may carry Keras' leading batch dimension ``None``: ``(None, 3)`` is
        ``(3,)``. Without it, the first layer's declared input is used. On a built model, a
        shape other than the one it was built for raises ValueError (as in Keras 3); the same
        shape, or none, does nothing.
        """
        if input_shape is not None:
            input_shape = tuple(input_shape)
            if input_shape and input_shape[0] is None:
                input_shape = input_shape[1:]
        if self.built:
            if input_shape is not None and tuple(input_shape) != self.input_shape:
                raise ValueError(
                    f"Sequential.build: model {self.name!r} is already built for per-sample "
                    f"input shape {self.input_shape}; it cannot be built for {input_shape}")
            return
        # threads predicting on an unbuilt model build it once
        self._weights.write(lambda: self.built or self._build(input_shape))

    def _build(self, input_shape) -> None:
        shape = input_shape or self._declared_input_shape()
        if shape is None:
            raise ValueError("Sequential.build: the input shape is unknown; pass input_dim= to "
                             "the first layer, call build(input_shape) or fit the model")
        shape = tuple(int(d) for d in shape)
        self.infer_output_shape(shape)
        check_alphas(self.layers, self.dtype, "Sequential.build")
        if self.seed is None:
            self.seed = int(np.random.SeedSequence().entropy % (2**63))
        self.input_shape = shape
        for layer in self.layers:
            shape = layer.build(shape)
        sizes = [[math.prod(s) for _, s in layer.param_shapes()] for layer in self.layers]
        total = sum(sum(s) for s in sizes)
        self._params = np.zeros(total, dtype=self.dtype)
        self._grads = np.zeros(total, dtype=self.dtype)
        # non-trainable weights (moving statistics): a buffer of their own, out of the optimizer's
        self._state = np.zeros(sum(layer.count_state() for layer in self.layers), self.dtype)
        state_offset = 0
        for layer in self.layers:
            views = []
            for _, s in layer.state_shapes():
                views.append(self._state[state_offset:state_offset + math.prod(s)].reshape(s))
                state_offset += math.prod(s)
            layer.bind_state(views)
            layer.init_state()
        offset = 0
        for i, (layer, layer_sizes) in enumerate(zip(self.layers, sizes)):
            views_p, views_g = [], []
            for (_, s), size in zip(layer.param_shapes(), layer_sizes):
                views_p.append(self._params[offset:offset + size].reshape(s))
                views_g.append(self._grads[offset:offset + size].reshape(s))
                offset += size
            layer.bind(views_p, views_g)
            layer.init_params(np.random.default_rng([self.seed, i]))
            if isinstance(layer, _layers.Dropout) and layer.seed is None:
                layer.seed = int(np.random.SeedSequence([self.seed, i, 1]).generate_state(
                    1, np.uint64)[0] >> np.uint64(1))
        self._regularized = [lay for lay in self.layers
                             if getattr(lay, "kernel_regularizer", None) is not None]
        self._workspaces = WorkspacePool(self.layers, self.dtype, self.first_trainable)
        self._structure += 1
        self.built = True
        if self.optimizer is not None:
            self.optimizer.build(total, self.dtype)
        self._bind_metrics()

    @property
    def first_trainable(self) -> int | None:
        return next((i for i, layer in enumerate(self.layers) if layer.has_params), None)

    def workspace(self, rows: int) -> Workspace:
        """A workspace of at least ``rows`` rows for a caller that runs passes itself (tests,
        benchmarks); it is the caller's alone. fit, evaluate and predict take theirs from
        the model's pool and give them back."""
        return self._workspaces.take(rows)

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer="adam", loss="sparse_categorical_crossentropy",
                metrics=None) -> None:
        """Choose the optimizer (name or nnfast.optimizers instance), loss and metrics.

        Raises RuntimeError while another thread fits the model, and from inside fit or
        train_on_batch (a callback): fit's epoch holds the metrics, the prepared targets and
        the step of the compile it started with (**differs from Keras 3**, whose torch
        trainer then fails at the next batch on its discarded train function). An evaluate
        running meanwhile in another thread may mix the old and the new loss: compile before
        sharing the model."""
        running = self._training.held_here()
        if running in ("fit", "train_on_batch"):
            raise RuntimeError(
                f"compile: cannot recompile model {self.name!r} while {running} runs (called "
                f"from a callback?): that {running} keeps the loss, metrics and targets it "
                f"started with. Set model.stop_training = True in the callback and compile "
                f"after {running} returns, then fit again.")
        with self._training.hold(self, "compile"):
            self._compile(optimizer, loss, metrics)

    def _compile(self, optimizer, loss, metrics) -> None:
        opt = _optimizers.get(optimizer)
        opt.check_dtype(self.dtype)     # before anything changes, built or not
        loss_obj = _losses.get(loss)
        if isinstance(metrics, str):
            metrics = [metrics]
        mets = [_metrics.get(m) for m in (metrics or [])]
        for m in mets:
            m.check_loss(loss_obj)
        self.optimizer, self.loss, self.metrics = opt, loss_obj, mets
        if self.built:
            opt.build(self._params.size, self.dtype)
        self._update_head()
        self._bind_metrics()

    @property
    def compiled(self) -> bool:
        return self.loss is not None

    @property
    def fused_head(self) -> str | None:
        """"softmax"/"sigmoid" when the last activation is folded into the loss."""
        last = self.layers[-1] if self.layers else None
        return last.activation if last is not None and last.fused_head else None

    def _update_head(self) -> None:
        # after every add and compile: what the layers compute changed, a cached plan is stale
        self._structure += 1
        head = self.loss.head if self.loss is not None else None
        for i, layer in enumerate(self.layers):
            layer.fused_head = (i == len(self.layers) - 1 and head is not None
                                and getattr(layer, "activation", None) == head)

    def _bind_metrics(self) -> None:
        if self.built and self.loss is not None:
            for m in self.metrics:
                m.bind(self.loss, self.output_shape, self.fused_head)

    # ------------------------------------------------------------------ training API
    def fit(self, x, y=None, epochs: int = 1, batch_size: int | None = None,
            validation_split: float = 0.0, validation_data=None, shuffle: bool = True,
            callbacks=None, verbose: int = 1, seed: int | None = None, distributed: bool = False,
            sample_weight=None, class_weight=None, steps_per_epoch: int | None = None,
            validation_steps: int | None = None):
        """Train; returns the :class:`nnfast.callbacks.History` (see nnfast/engine/training.py).

        ``distributed=True``: data-parallel over the MPI job this process was launched in
        (``mpirun -n N``); ``batch_size`` is then per rank (see nnfast/distributed/__init__.py).

        ``x`` may be an iterable of ``(x, y)`` / ``(x, y, sample_weight)`` batches (a generator,
        a PyDataset-like object, a list of tuples), with ``steps_per_epoch``, and
        ``validation_data`` arrays ``(x_val, y_val[, w_val])`` or an iterable of batches read for
        ``validation_steps`` batches (a tuple holding tuples is ValueError: ambiguous); y and
        batch_size are then left out (see nnfast/engine/iterables.py and docs/model.md). With
        arrays, ``batch_size`` None means 32 and the two step counts must stay None.

        Weighting, as in Keras 3:

        - ``sample_weight``: array (n,) of finite weights >= 0, one per row of x (not all 0).
        - ``class_weight``: dict {class index: weight} for the cross-entropy losses; a row's
          class is its label (sparse), the argmax of its target row (categorical) or its
          rounded 0/1 target (binary, one output). Classes left out weigh 1. With both, a
          row's weight is the product. Training rows only (not validation).
        - The loss of a batch of N rows is ``Σ_i w_i·l_i / N`` (Keras' "sum_over_batch_size":
          N divides, not Σ w, so weights scale the gradient), and its exact gradient is used.
          Metrics are weighted: ``Σ_i w_i·m_i / Σ_i w_i`` (Keras' weighted_metrics).
        - ``validation_data`` may be ``(x_val, y_val, sample_weight_val)``; ``validation_split``
          takes the last rows with their sample weights. Shuffling and ``distributed`` move the
          weights with their rows. The arrays passed in are never modified.

        >>> import numpy as np, nnfast
        >>> from nnfast.layers import Dense
        >>> m = nnfast.Sequential([Dense(2, "softmax", input_dim=3)], seed=0)
        >>> m.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
        >>> x, y = np.ones((4, 3)), np.array([0, 1, 1, 1])
        >>> h = m.fit(x, y, verbose=0, sample_weight=[3, 1, 1, 1], class_weight={1: 0.5})
        """
        from nnfast.engine import iterables, training
        kw = dict(epochs=epochs, batch_size=batch_size, validation_split=validation_split,
                  validation_data=validation_data, shuffle=shuffle, callbacks=callbacks,
                  verbose=verbose, seed=seed, distributed=distributed,
                  sample_weight=sample_weight, class_weight=class_weight)
        try:
            if iterables.is_batches(x):
                return iterables.fit(self, x, y, steps_per_epoch=steps_per_epoch,
                                     validation_steps=validation_steps, **kw)
            iterables.array_args("fit", x, y, steps_per_epoch=steps_per_epoch,
                                 validation_steps=validation_steps)
            kw["batch_size"] = 32 if batch_size is None else batch_size
            return training.fit(self, x, y, **kw)
        finally:
            # fit honoured any layer attribute a callback changed: so does the next predict
            _inference._plan.forget(self)

    def evaluate(self, x, y=None, batch_size: int | None = None, verbose: int = 0,
                 sample_weight=None, distributed: bool = False, steps: int | None = None,
                 callbacks=None) -> dict:
        """{"loss": ..., metric: ...} over the whole of x, y (dropout off).

        ``callbacks``: a list of :class:`nnfast.callbacks.Callback`; their ``on_test_*`` hooks
        run as in Keras 3 (nnfast/engine/hooks.py, docs/callbacks.md); TypeError otherwise.

        With ``sample_weight`` (n,): loss ``Σ_i w_i·l_i / n`` (plus any weight penalty) and
        metrics ``Σ_i w_i·m_i / Σ_i w_i``, as Keras' evaluate with weighted metrics.

        ``distributed=True`` (every rank of an MPI job calls it with the same arguments): each
        rank evaluates its contiguous shard of the rows, one Allreduce sums the shards, and
        every rank returns the same dict, equal to the one-process result up to the order of
        the sums. In one process it is the same as ``distributed=False``; under a launcher
        without mpi4py it raises ImportError, as fit does (see nnfast/distributed/__init__.py)."""
        from nnfast.engine import inference, iterables
        if iterables.is_batches(x):   # an iterable of batches: ``steps`` of them, or one pass
            return iterables.evaluate(self, x, y, batch_size, verbose, sample_weight,
                                      distributed, steps, callbacks)
        iterables.array_args("evaluate", x, y, steps=steps)
        return inference.evaluate(self, x, y, batch_size=32 if batch_size is None else batch_size,
                                  verbose=verbose, sample_weight=sample_weight,
                                  distributed=distributed, callbacks=callbacks)

    def predict(self, x, batch_size: int | None = None, verbose: int = 0,
                distributed: bool = False, steps: int | None = None,
                callbacks=None) -> np.ndarray:
        """Model outputs (probabilities when the last activation is softmax/sigmoid).

        ``callbacks``: their ``on_predict_*`` hooks run as in Keras 3 (see evaluate).

        ``verbose=1`` shows a progress bar over the batches (0: silent; 2 is accepted, as in
        fit, and prints nothing for predict).

        ``distributed=True``: each rank of the MPI job predicts its contiguous shard of the
        rows and every rank returns the whole (n, outputs) array (one Allgatherv), the same
        as one process would (see nnfast/distributed/__init__.py for when bit for bit)."""
        if type(x) is not np.ndarray or steps is not None:   # an exact ndarray is array data
            from nnfast.engine import iterables
            if iterables.is_batches(x):   # batches x, (x,) or (x, y[, w]); outputs concatenated
                return iterables.predict(self, x, batch_size, verbose, distributed, steps,
                                         callbacks)
            iterables.array_args("predict", x, steps=steps)
        return _inference.predict(self, x, batch_size=32 if batch_size is None else batch_size,
                                 verbose=verbose, distributed=distributed, callbacks=callbacks)

    def __call__(self, x, training=None) -> np.ndarray:
        """Outputs for a batch x, as Keras 3's ``model(x)``, returned as a NumPy array.

        x: (n, *input_shape), any numeric dtype (converted to the model dtype once, as
        predict does); returns (n, *output_shape) in the model dtype, the same bits as
        ``predict(x)`` for any batch_size. One call of the inference plan (docs/model.md,
        "Inference plan"), no batching, no callbacks. ``training``: None or False; True
        raises ValueError (nnfast runs dropout in training mode inside fit only; Keras would
        apply it), another type TypeError. Other errors as predict's.
        """
        return _inference.call(self, x, training)

    def predict_on_batch(self, x) -> np.ndarray:
        """Outputs for one batch x (n, *input_shape) as a NumPy array (n, *output_shape) of the
        model dtype, as Keras 3's ``predict_on_batch``: no batching, no callbacks, no bar;
        errors as predict's. The same bits as ``predict(x)`` and ``model(x)``."""
        return _inference.call(self, x, None, "predict_on_batch")

    def _layer_config_changed(self) -> None:
        """A layer's activation, alpha or epsilon was assigned (nnfast/_layer_base.py): the
        next predict builds its plan from the layers as they are now."""
        _inference._plan.forget(self)

    def _plan(self):
        """The cached inference plan (nnfast/engine/plan.py), rebuilt when stale; None for
        layers it cannot express. The model must be built."""
        return _inference._plan.get(self)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict=False):
        """One optimizer step on x, y; the batch's loss (and metrics) as Keras 3 returns them
        (nnfast/engine/on_batch.py has the forms, shapes and errors)."""
        from nnfast.engine import on_batch
        try:
            return on_batch.train_on_batch(self, x, y, sample_weight, class_weight, return_dict)
        finally:
            _inference._plan.forget(self)   # as fit: predict runs the layers it trained

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """Loss (and metrics) of x, y as one batch, no update (nnfast/engine/on_batch.py)."""
        from nnfast.engine import on_batch
        return on_batch.test_on_batch(self, x, y, sample_weight, return_dict)

    def get_layer(self, name: str | None = None, index: int | None = None):
        """The layer called ``name``, or at position ``index`` (which wins when both are given),
        as Keras 3's ``Model.get_layer``. Raises ValueError when neither is given, when no
        layer has that name (the message lists the names), or when the index is out of
        range; TypeError for an index that is not an int."""
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
                raise TypeError(f"get_layer: index must be an int, got {index!r}")
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"get_layer: index {index} is out of range: the model has "
                                 f"{len(self.layers)} layers")
            return self.layers[index]
        if name is None:
            raise ValueError("get_layer: provide either a layer name or a layer index")
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"get_layer: no layer named {name!r}; the layers are "
                         f"{[lay.name for lay in self.layers]}")

    # ------------------------------------------------------------------ weights
    def count_params(self) -> int:
        """Number of parameters, the non-trainable ones (moving statistics) included as in
        Keras. Raises ValueError on a model not built yet (as Keras 3 does):
        one whose first layer declares its input is built at construction."""
        self._require_built("count_params")
        return int(self._params.size + self._state.size)

    def get_weights(self) -> list:
        """Copies of every parameter array, layer by layer (W then b), all from one step when
        another thread is fitting the model."""
        self._require_built("get_weights")
        return self._weights.read(
            lambda: [np.array(p) for layer in self.layers for p in layer_params(layer)])

    def set_weights(self, weights) -> None:
        """Copy arrays (as from get_weights) into the parameters; checks everything first.

        Threads predicting meanwhile see the old or the new weights in each batch, never a mix;
        while another thread fits the model this raises RuntimeError."""
        self._require_built("set_weights")
        with self._training.hold(self, "set_weights"):
            self._set_weights(weights)

    def _set_weights(self, weights) -> None:
        targets = [p for layer in self.layers for p in layer_params(layer)]
        arrays = checked_weights(weights, targets)

        def copy_in():
            for w, t in zip(arrays, targets):
                t[...] = w

        self._weights.write(copy_in)

    def _require_built(self, fn: str) -> None:
        if not self.built:
            raise ValueError(f"{fn}: the model is not built yet; fit it, call build(input_shape) "
                             "or give the first layer input_dim=")

    # ------------------------------------------------------------------ files and display
    def save(self, path) -> None:
        """Write the model to one file, atomically (see nnfast/engine/saving.py)."""
        from nnfast.engine import saving
        saving.save_model(self, path)

    def __reduce__(self):
        # pickle and copy.deepcopy go through the model file (as Keras 3's do): the weights,
        # the compile settings and the optimizer state; not the history or the workspaces
        from nnfast.engine import saving
        return _from_bytes, (saving.to_bytes(self),)

    def to_onnx(self, path, opset: int = 17) -> None:
        """Write the built model as ONNX (extra ``onnx``): input "input" (N, *input_shape) and
        output "output" in the model's dtype, dynamic batch N, opset 13-21. Every layer maps to
        standard operators (Conv2D -> Conv, pooling -> MaxPool / AveragePool / ReduceMean,
        BatchNormalization in inference mode, ...); images stay channels-last (N, H, W, C) at
        the input and output, as Keras, with Transposes to ONNX's channels-first around the
        image operators (as tf2onnx). The operators and differences: docs/onnx.md.
        ValueError: unbuilt, bad opset, a float64 model with Conv2D or AveragePooling2D (ONNX
        Runtime has no double Conv / AveragePool). TypeError: path not str/PathLike."""
        from nnfast.onnx import _export
        _export.write_onnx(self, path, opset)

    def summary(self, print_fn=print) -> None:
        """Print each layer with its output shape and parameter count (Keras' layout, shorter);
        before the model is built, from the declared input shape where there is one."""
        print_summary(self, print_fn)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": str(self.dtype), "seed": self.seed,
                "layers": [{"class": type(lay).__name__, "config": lay.get_config()}
                           for lay in self.layers]}

    @classmethod
    def from_config(cls, config: dict) -> Sequential:
        """A new model from ``get_config()``'s dict, as Keras 3's ``Sequential.from_config``:
        new layers of the same classes and settings, the same name, dtype and seed; new
        weights, built when the first layer declares its input shape, not compiled. Raises
        ValueError for an unknown layer class or setting (the layers' own checks)."""
        return cls([_layers.from_config(entry) for entry in config["layers"]],
                   dtype=config["dtype"], seed=config["seed"], name=config["name"])

    def __repr__(self):
        return f"Sequential([{', '.join(map(repr, self.layers))}], dtype={str(self.dtype)!r})"


def _from_bytes(data: bytes) -> Sequential:
    from nnfast.engine import saving
    return saving.from_bytes(data, Sequential)


def load_model(path) -> Sequential:
    """Read a model written by :meth:`Sequential.save` (the format: nnfast/engine/saving.py).

    Raises ValueError naming the file and the problem for truncated, corrupted, foreign or
    newer-format files; FileNotFoundError when there is no file.

    >>> import nnfast                                             # doctest: +SKIP
    >>> same = nnfast.load_model("digits.nnf")                    # doctest: +SKIP
    """
    from nnfast.engine import saving
    return saving.read_model(path, Sequential)

