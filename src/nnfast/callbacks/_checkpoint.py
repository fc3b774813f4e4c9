"""ModelCheckpoint (Keras 3's keras/src/callbacks/model_checkpoint.py)."""
from __future__ import annotations

import os
import string

import numpy as np

from nnfast import _warn
from nnfast.callbacks._monitor import _Monitor, check_bool, check_int, check_number


def _check_filepath(filepath: str) -> None:
    """Refuse, before training, a path no epoch could be saved to: empty, or a format string
    that cannot format (``{epoch:bad}``; Keras finds out after the first epoch). Fields are
    tried with epoch/batch 1 and 0.0 for the logs' numbers."""
    if not filepath:
        raise ValueError("ModelCheckpoint: filepath must not be empty")
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(filepath) if f}
        filepath.format(**{n: (1 if n in ("epoch", "batch") else 0.0) for n in names})
    except (ValueError, IndexError, KeyError, AttributeError, TypeError) as exc:
        raise ValueError(f"ModelCheckpoint: filepath {filepath!r} is not a usable format "
                         f"string ({exc})") from None


class ModelCheckpoint(_Monitor):
    """Save the model every epoch (or every ``save_freq`` batches), or only when ``monitor``
    improved (Keras 3's ``ModelCheckpoint``).

    ``filepath`` may hold format fields filled from the logs and ``epoch`` (1-based), and
    ``batch`` (1-based) with ``save_freq`` as an integer, e.g.
    ``"ckpt-{epoch:02d}-{val_loss:.2f}.nnf"``; its directory is created if missing. Each save
    is atomic (see Sequential.save). In distributed fit only rank 0 saves.

    Parameters (Keras 3's, same defaults): ``monitor="val_loss"``; ``verbose=0`` (1: a line
    per decision, Keras' wording); ``save_best_only=False`` (save only when ``monitor``
    improved on the best so far; when it is missing from the logs, warn and save, as Keras);
    ``mode="auto"`` (as EarlyStopping); ``save_freq="epoch"`` or a positive number of
    batches; ``initial_value_threshold=None`` (the value to beat at first). The best value is
    kept across fits, as in Keras: the file holds the best model any fit produced.
    ``saved`` lists every path written.

    Differs from Keras: no ``save_weights_only`` (nnfast has no weights-only file format);
    any file name is accepted (Keras demands ``.keras``); a format field missing from the
    logs raises ``ValueError`` naming it (Keras: ``KeyError``).
    """

    root_only = True

    def __init__(self, filepath, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, mode: str = "auto", save_freq="epoch",
                 initial_value_threshold: float | None = None):
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(
                save_freq, (int, np.integer)) or save_freq < 1):
            raise ValueError(f"ModelCheckpoint: save_freq must be 'epoch' or an integer >= 1, "
                             f"got {save_freq!r}")
        if not isinstance(filepath, (str, bytes, os.PathLike)):
            raise TypeError(f"ModelCheckpoint: filepath must be a str, bytes or os.PathLike "
                            f"path, got {filepath!r}")
        filepath = os.fsdecode(os.fspath(filepath))   # bytes too, as open() takes
        _check_filepath(filepath)
        verbose = check_int("ModelCheckpoint", "verbose", verbose, bool_ok=True)
        initial_value_threshold = check_number("ModelCheckpoint", "initial_value_threshold",
                                               initial_value_threshold, none_ok=True)
        super().__init__(monitor, mode, 0.0)
        self.filepath = filepath
        self.save_best_only = check_bool("ModelCheckpoint", "save_best_only", save_best_only)
        self.save_freq = save_freq
        self.verbose = verbose
        self.best = initial_value_threshold
        self.saved: list[str] = []
        self._epoch = 0
        self._batches_since_save = 0
        self._last_batch = None

    def on_train_begin(self, logs=None):
        if self.save_best_only:
            self._resolve_mode()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        # batches since the last save, across epoch ends (Keras' count)
        new_epoch = self._last_batch is None or batch <= self._last_batch
        self._batches_since_save += batch + 1 if new_epoch else batch - self._last_batch
        self._last_batch = batch
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save(self._epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, None, logs)

    def _path(self, epoch, batch, logs) -> str:
        fields = dict(logs or {})
        fields["epoch"] = epoch + 1
        if batch is not None:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except KeyError as e:
            raise ValueError(f"ModelCheckpoint: filepath {self.filepath!r} names the field "
                             f"{e.args[0]!r}, which is not in the logs (available: "
                             f"{', '.join(sorted(fields))})") from None

    def _should_save(self, epoch, logs, path) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                self._print(f"Epoch {epoch + 1}: saving model to {path}")
            return True
        value = (logs or {}).get(self.monitor)
        if value is None:
            _warn.warn(f"ModelCheckpoint: can save best model only with {self.monitor!r} "
                       f"available (logs: {', '.join(sorted(logs or {}))}); saving",
                       RuntimeWarning)
            return True
        best = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(value, self.best):
            if self.verbose > 0:
                self._print(f"Epoch {epoch + 1}: {self.monitor} improved from {best} to "
                            f"{value:.5f}, saving model to {path}")
            self.best = value
            return True
        if self.verbose > 0:
            self._print(f"Epoch {epoch + 1}: {self.monitor} did not improve from {best}")
        return False

    def _save(self, epoch, batch, logs) -> None:
        path = self._path(epoch, batch, logs)
        if self._should_save(epoch, logs, path):
            directory = os.path.dirname(path)
            if directory:
                os.makedirs(directory, exist_ok=True)
            self.model.save(path)
            self.saved.append(path)
