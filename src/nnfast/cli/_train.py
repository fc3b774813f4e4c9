"""CLI commands that use a model: train, evaluate, predict."""
from __future__ import annotations

import csv
import json
import os
import sys
import time

import numpy as np

from nnfast.cli._data import DEFAULT_EPOCHS, CLIError, load_dataset

OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop",
              "adagrad": "Adagrad"}


def _out(args, text: str) -> None:
    if not args.quiet and not args.json:
        print(text, flush=True)


def _preflight_outputs(args) -> None:
    """Fail on unwritable outputs or missing matplotlib before spending time on training."""
    for opt in ("save", "plot", "confusion", "output"):
        path = getattr(args, opt, None)
        if path:
            d = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(d):
                raise CLIError(f"--{opt} {path}: directory {d} does not exist")
    if getattr(args, "plot", None) or getattr(args, "confusion", None):
        from nnfast.cli._plots import _pyplot

        _pyplot()


def _setup_runtime(args) -> None:
    import nnfast

    if getattr(args, "backend", None):
        nnfast.set_backend(args.backend)
    if getattr(args, "threads", None):
        nnfast.set_num_threads(args.threads)


def _data(args):
    return load_dataset(args.dataset, data_dir=args.data_dir, download=args.download,
                        seed=args.seed, test_split=args.test_split, samples=args.samples,
                        label_column=args.label_column, progress=not args.quiet)


def _build_model(args, n_features: int, n_classes: int):
    import nnfast
    from nnfast import layers, optimizers

    model = nnfast.Sequential(dtype=args.dtype, seed=args.seed)
    first = True
    for units in args.hidden:
        kw = {"input_dim": n_features} if first else {}
        model.add(layers.Dense(units, activation=args.activation, **kw))
        first = False
        if args.dropout > 0:
            model.add(layers.Dropout(args.dropout))
    kw = {"input_dim": n_features} if first else {}
    model.add(layers.Dense(n_classes, activation="softmax", **kw))
    opt = getattr(optimizers, OPTIMIZERS[args.optimizer])(learning_rate=args.lr)
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _epoch_timer():
    from nnfast.callbacks import Callback

    class EpochTimer(Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []
            self._t0 = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._t0)

    return EpochTimer()


def _predict_classes(model, x: np.ndarray) -> np.ndarray:
    p = np.asarray(model.predict(x, batch_size=1024))
    if p.ndim == 2 and p.shape[1] > 1:
        return p.argmax(axis=1)
    return (p.reshape(len(p)) >= 0.5).astype(np.int64)


def _confusion(args, model, data) -> None:
    from nnfast.cli._plots import confusion_matrix, plot_confusion

    n = len(data.classes)
    pred = _predict_classes(model, data.x_test)
    if pred.max(initial=0) >= n:
        n = int(pred.max()) + 1
    names = data.classes + [str(c) for c in range(len(data.classes), n)]
    plot_confusion(confusion_matrix(data.y_test, pred, n), names, args.confusion,
                   title=f"{data.name} test set")


def cmd_train(args) -> int:
    return _maybe_distributed(args, "train", _train)


def _maybe_distributed(args, command: str, run) -> int:
    """``run(args)`` on every rank of the MPI job with --distributed (rank 0 alone prints and
    writes files), else once."""
    args.rank = 0
    if not getattr(args, "distributed", False):
        return run(args)
    from nnfast import distributed

    rank, size = distributed.init()
    args.ranks, args.rank = size, rank
    if rank != 0:
        args.quiet, args.json = True, False
        for opt in ("save", "plot", "confusion", "output"):
            if hasattr(args, opt):
                setattr(args, opt, None)
    try:
        return run(args)
    except distributed.DistributedError as e:
        if rank == 0:   # every rank raised the same error: say it once
            sys.stderr.write(f"nnfast {command}: error: {e}\n")
        return 1
    except Exception as e:
        if getattr(e, "_nnfast_collective", False):
            raise
        # this rank alone failed (e.g. its data): the others would wait for it forever
        sys.stderr.write(f"nnfast {command}: rank {rank}: error: "
                         f"{distributed.describe_exception(e)}; aborting all {size} ranks\n")
        distributed.abort(1)
        raise


def _train(args) -> int:
    _preflight_outputs(args)
    _setup_runtime(args)
    import nnfast

    data = _data(args)
    epochs = args.epochs if args.epochs is not None else DEFAULT_EPOCHS[data.kind]
    n_classes = max(len(data.classes), int(data.y_train.max()) + 1)
    model = _build_model(args, data.x_train.shape[1], n_classes)
    arch = "-".join(str(u) for u in [data.x_train.shape[1], *args.hidden, n_classes])
    _out(args, f"dataset  {data.describe()}")
    n_threads = nnfast.get_num_threads()
    _out(args, f"model    {arch} {args.activation}, {args.optimizer} lr {args.lr:g}, "
               f"batch {_batch(args)}, {args.dtype}, backend {nnfast.get_backend()}, "
               f"{n_threads} thread{'' if n_threads == 1 else 's'}")

    timer = _epoch_timer()
    callbacks = [timer]
    if args.early_stopping:
        from nnfast.callbacks import EarlyStopping

        monitor = "val_loss" if args.validation_split > 0 else "loss"
        callbacks.append(EarlyStopping(monitor=monitor, patience=args.early_stopping,
                                       restore_best_weights=True))
    x_train, y_train = data.x_train, data.y_train
    if args.validation_split > 0:
        # fit() validates on the tail of the data (Keras semantics); shuffle once so the
        # tail is representative (the embedded digits keep the original, writer order)
        order = np.random.default_rng(0 if args.seed is None else args.seed).permutation(
            len(x_train))
        x_train, y_train = x_train[order], y_train[order]
    t0 = time.perf_counter()
    hist = model.fit(x_train, y_train, epochs=epochs, batch_size=args.batch_size,
                     validation_split=args.validation_split, callbacks=callbacks,
                     verbose=0 if args.quiet else 1, seed=args.seed,
                     distributed=getattr(args, "distributed", False))
    train_seconds = time.perf_counter() - t0
    history = {k: [float(v) for v in vs] for k, vs in hist.history.items()}
    result = model.evaluate(data.x_test, data.y_test, batch_size=1024)
    epochs_run = len(timer.seconds)
    per_epoch = float(np.median(timer.seconds)) if timer.seconds else 0.0

    if args.save:
        model.save(args.save)
    if args.plot:
        from nnfast.cli._plots import plot_curves

        plot_curves(history, args.plot, title=f"{data.name}, {arch}")
    if args.confusion:
        _confusion(args, model, data)

    _out(args, f"test     accuracy {result['accuracy']:.4f}   loss {result['loss']:.4f}")
    _out(args, f"time     {per_epoch:.3f} s per epoch (median of {epochs_run}), "
               f"{train_seconds:.2f} s training")
    for opt, what in (("save", "model"), ("plot", "curves"), ("confusion", "confusion")):
        if getattr(args, opt):
            _out(args, f"wrote    {what}: {getattr(args, opt)}")
    if args.json:
        print(json.dumps({
            "command": "train", "dataset": data.name, "architecture": arch,
            "n_train": len(data.x_train), "n_test": len(data.x_test),
            "test_accuracy": float(result["accuracy"]), "test_loss": float(result["loss"]),
            "epochs": epochs_run, "seconds_per_epoch": per_epoch,
            "train_seconds": train_seconds, "backend": nnfast.get_backend(),
            "threads": nnfast.get_num_threads(), "dtype": args.dtype, "history": history,
            "files": {k: getattr(args, k) for k in ("save", "plot", "confusion")
                      if getattr(args, k)},
        }))
    return 0


def _batch(args) -> str:
    ranks = getattr(args, "ranks", 1)
    return f"{args.batch_size}" if ranks == 1 else f"{args.batch_size} per rank x {ranks} ranks"


def _load_model(path: str):
    import nnfast

    if not os.path.isfile(path):
        raise CLIError(f"--model {path}: no such file")
    return nnfast.load_model(path)


def cmd_evaluate(args) -> int:
    return _maybe_distributed(args, "evaluate", _evaluate)


def _evaluate(args) -> int:
    _preflight_outputs(args)
    _setup_runtime(args)
    model = _load_model(args.model)
    data = _data(args)
    result = {k: float(v) for k, v in model.evaluate(
        data.x_test, data.y_test, batch_size=1024,
        distributed=getattr(args, "distributed", False)).items()}
    if args.confusion:   # rank 0 only (the others have no --confusion): not distributed
        _confusion(args, model, data)
    if args.json:
        print(json.dumps({"command": "evaluate", "model": args.model, "dataset": data.name,
                          "n_test": len(data.x_test), **result}))
    else:
        _out(args, f"dataset  {data.name} test set, {len(data.x_test)} samples")
        _out(args, "         " + "   ".join(f"{k} {v:.4f}" for k, v in result.items()))
    return 0


def cmd_predict(args) -> int:
    return _maybe_distributed(args, "predict", _predict)


def _predict(args) -> int:
    from nnfast.datasets import load_features

    _preflight_outputs(args)
    _setup_runtime(args)
    model = _load_model(args.model)
    x = load_features(args.input)
    x = x.reshape(len(x), -1)
    p = np.asarray(model.predict(x, batch_size=1024,
                                 distributed=getattr(args, "distributed", False)),
                   dtype=np.float64)
    if args.rank != 0:      # every rank has the whole result; rank 0 writes it
        return 0
    probs = p.reshape(len(p), -1)
    classes = probs.argmax(axis=1) if probs.shape[1] > 1 else (probs[:, 0] >= 0.5).astype(int)
    cols = [f"p{j}" for j in range(probs.shape[1])] if probs.shape[1] > 1 else ["p1"]
    header = ["prediction", *cols]
    rows = [[int(c), *(f"{v:.6g}" for v in row)] for c, row in zip(classes, probs)]
    if args.output:
        tmp = args.output + ".tmp"
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)
        os.replace(tmp, args.output)
        _out(args, f"wrote    {len(rows)} predictions: {args.output}")
    elif args.json:
        print(json.dumps({"command": "predict", "n": len(rows),
                          "predictions": classes.tolist()}))
    else:
        for r in rows:
            print(r[0])
    return 0
