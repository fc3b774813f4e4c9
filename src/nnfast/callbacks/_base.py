"""Callback, CallbackList, History, LambdaCallback: the hooks of Keras 3's
``keras.callbacks.Callback`` (keras/src/callbacks/callback.py, callback_list.py, history.py,
lambda_callback.py)."""
from __future__ import annotations

_BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin",
                "on_test_batch_end", "on_predict_batch_begin", "on_predict_batch_end")
HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_test_begin",
         "on_test_end", "on_predict_begin", "on_predict_end") + _BATCH_HOOKS


class Callback:
    """Base class; override any hook. Keras 3's ``keras.callbacks.Callback``.

    Hooks (all take ``logs=None``, a dict): ``on_train_begin/end``, ``on_epoch_begin/end(epoch)``,
    ``on_train_batch_begin/end(batch)`` (whose defaults call the older names
    ``on_batch_begin/end``, as in Keras), ``on_test_begin/end``,
    ``on_test_batch_begin/end(batch)`` (evaluate, and fit's validation at each epoch end),
    ``on_predict_begin/end``, ``on_predict_batch_begin/end(batch)`` (predict; the end hook's
    logs are ``{"outputs": that batch's rows}``); see nnfast/engine/hooks.py and
    docs/callbacks.md.

    fit calls ``set_model(model)`` and ``set_params(params)`` first; ``params`` holds
    ``epochs``, ``steps`` (batches per epoch), ``batch_size``, ``samples`` and ``verbose``
    (Keras: epochs, steps, verbose). A callback stops training by setting
    ``self.model.stop_training = True``: fit finishes the running batch, ends the epoch
    (validation, ``on_epoch_end``, History) and stops.

    ``root_only = True``: in distributed fit only rank 0 runs it (callbacks that write files).
    The built-in callbacks print through ``_print``, which is silent on ranks other than 0."""

    root_only = False

    def __init__(self):
        self.model = None
        self.params: dict = {}
        self._quiet = False

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def _print(self, msg: str) -> None:
        # distributed fit: one message per job, from rank 0 (getattr: subclasses that skip
        # Callback.__init__)
        if not getattr(self, "_quiet", False):
            print(msg, flush=True)

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_batch_begin(self, batch, logs=None): ...
    def on_batch_end(self, batch, logs=None): ...

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)   # the Keras 2 name, still honoured by Keras 3

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_begin(self, logs=None): ...
    def on_test_end(self, logs=None): ...
    def on_test_batch_begin(self, batch, logs=None): ...
    def on_test_batch_end(self, batch, logs=None): ...
    def on_predict_begin(self, logs=None): ...
    def on_predict_end(self, logs=None): ...
    def on_predict_batch_begin(self, batch, logs=None): ...
    def on_predict_batch_end(self, batch, logs=None): ...


def _overrides(cb, hook: str) -> bool:
    """Does ``cb`` do anything in ``hook``? (train batch hooks: also through on_batch_*)"""
    names = (hook, hook.replace("_train", "")) if hook.startswith("on_train_batch") else (hook,)
    return any(getattr(type(cb), n) is not getattr(Callback, n) or n in vars(cb) for n in names)


class CallbackList:
    """Calls a hook on every callback that does something in it, in order (Keras 3's
    ``keras.callbacks.CallbackList``, without its progress bar and History options).

    ``CallbackList(callbacks, model=model, **params)``: sets the model and params of each."""

    def __init__(self, callbacks=None, model=None, **params):
        self.callbacks = list(callbacks or [])
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"fit: callbacks must be nnfast.callbacks.Callback instances, "
                                f"got {type(cb).__name__}")
        self.model, self.params = None, {}
        if model is not None:
            self.set_model(model)
        self.set_params(params)
        self._index()

    def _index(self) -> None:
        for hook in HOOKS:
            # bound methods of the callbacks that override the hook: no calls for empty hooks
            setattr(self, "_" + hook, [getattr(cb, hook) for cb in self.callbacks
                                       if _overrides(cb, hook)])

    def append(self, callback) -> None:
        self.callbacks.append(callback)
        callback.set_model(self.model)
        callback.set_params(self.params)
        self._index()

    def set_model(self, model) -> None:
        self.model = model
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params: dict) -> None:
        self.params = params
        for cb in self.callbacks:
            cb.set_params(params)

    def _silence(self) -> None:
        """Distributed fit on a rank other than 0: the built-in callbacks print nothing."""
        for cb in self.callbacks:
            cb._quiet = True

    @property
    def wants_batch_logs(self) -> bool:
        return bool(self._on_train_batch_begin or self._on_train_batch_end)

    @property
    def wants_test_batch_logs(self) -> bool:
        """Does a callback read on_test_batch_end's logs (running metrics, computed only then)?"""
        return bool(self._on_test_batch_end)

    def _call(self, methods, *args):
        for method in methods:
            method(*args)

    def on_train_begin(self, logs=None):
        self._call(self._on_train_begin, logs)

    def on_train_end(self, logs=None):
        self._call(self._on_train_end, logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call(self._on_epoch_begin, epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call(self._on_epoch_end, epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call(self._on_train_batch_begin, batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call(self._on_train_batch_end, batch, logs)

    on_batch_begin, on_batch_end = on_train_batch_begin, on_train_batch_end   # Keras aliases

    def on_test_begin(self, logs=None):
        self._call(self._on_test_begin, logs)

    def on_test_end(self, logs=None):
        self._call(self._on_test_end, logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call(self._on_test_batch_begin, batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call(self._on_test_batch_end, batch, logs)

    def on_predict_begin(self, logs=None):
        self._call(self._on_predict_begin, logs)

    def on_predict_end(self, logs=None):
        self._call(self._on_predict_end, logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call(self._on_predict_batch_begin, batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call(self._on_predict_batch_end, batch, logs)


class History(Callback):
    """Records the epoch logs: ``history.history["loss"]`` is the list of epoch losses,
    ``history.epoch`` the epoch indices (reset at each fit, as in Keras 3). fit creates one
    per call and returns it (also ``model.history``)."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


def with_history(callbacks: list) -> tuple[list, History]:
    """The callbacks fit runs, and the History it returns: the user's own History when the list
    holds one (the last, as Keras 3's CallbackList keeps the last History it finds, so ``fit``
    returns the object the user passed), else a new one appended last so it records what the
    other callbacks add to the logs."""
    own = next((cb for cb in reversed(callbacks) if isinstance(cb, History)), None)
    if own is not None:
        return list(callbacks), own
    history = History()
    return list(callbacks) + [history], history


class LambdaCallback(Callback):
    """A callback from plain functions, Keras 3's ``LambdaCallback``:
    ``LambdaCallback(on_epoch_end=lambda epoch, logs: ..., on_train_batch_end=...)``.

    The positional order is Keras 3's: ``on_epoch_begin, on_epoch_end, on_train_begin,
    on_train_end, on_train_batch_begin, on_train_batch_end`` (so ``LambdaCallback(f)`` runs
    ``f(epoch, logs)`` at the start of each epoch). Any other hook name of :class:`Callback`
    is accepted by keyword, including the older ``on_batch_begin`` / ``on_batch_end`` (called
    for every training batch, as ``on_train_batch_*``).

    Raises ``ValueError`` for a name that is not a hook (Keras stores any keyword as an
    attribute; nnfast refuses it so a misspelt hook does not silently never run) and
    ``TypeError`` for a value that is not callable."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 **hooks):
        super().__init__()
        named = {"on_epoch_begin": on_epoch_begin, "on_epoch_end": on_epoch_end,
                 "on_train_begin": on_train_begin, "on_train_end": on_train_end,
                 "on_train_batch_begin": on_train_batch_begin,
                 "on_train_batch_end": on_train_batch_end}
        for name, fn in {**named, **hooks}.items():
            if name not in HOOKS + ("on_batch_begin", "on_batch_end"):
                raise ValueError(f"LambdaCallback: unknown hook {name!r}; expected one of "
                                 f"{', '.join(HOOKS + ('on_batch_begin', 'on_batch_end'))}")
            if fn is None:
                continue
            if not callable(fn):
                raise TypeError(f"LambdaCallback: {name} must be callable, got {fn!r}")
            setattr(self, name, fn)
