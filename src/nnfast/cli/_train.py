"""CLI commands that use a model: train, evaluate, predict."""
from __future__ import annotations

import json
import math
import secrets
import sys
import time

import numpy as np

from nnfast.cli import _models as M
from nnfast.cli._data import DEFAULT_EPOCHS, load_dataset
from nnfast.cli._files import record, write_csv


def _out(args, text: str) -> None:
    if not args.quiet and not args.json:
        print(text, flush=True)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training; the message says how far it got."""


def _setup_runtime(args) -> None:
    import nnfast

    if getattr(args, "backend", None):
        nnfast.set_backend(args.backend)
    if getattr(args, "threads", None):
        nnfast.set_num_threads(args.threads)


def _data(args, seed=None, as_images=False):
    """The data set; ``seed`` (default --seed) seeds the split of data files and admissions;
    ``as_images``: the named image sets as (N, H, W, 1)."""
    return load_dataset(args.dataset, data_dir=args.data_dir, download=bool(args.download),
                        as_images=as_images,
                        seed=args.seed if seed is None else seed,
                        test_split=0.2 if args.test_split is None else args.test_split,
                        samples=1000 if args.samples is None else args.samples,
                        label_column=-1 if args.label_column is None else args.label_column,
                        progress=not args.quiet)


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
    _setup_runtime(args)
    import nnfast

    # no --seed: draw one, print it, so the weights, shuffles and dropout can be had again
    # (data splits keep seed 0 then, so train and evaluate without --seed agree)
    seed = secrets.randbelow(2**31) if args.seed is None else args.seed
    data = _data(args, as_images=args.model == "cnn")
    epochs = args.epochs if args.epochs is not None else DEFAULT_EPOCHS[data.kind]
    n_classes = max(len(data.classes), int(data.y_train.max()) + 1)
    from nnfast.cli._args import check_model_size

    hidden = M.hidden_sizes(args)
    if args.model == "cnn":   # exact now that the data's shape is known
        check_model_size(hidden, M.cnn_flat_features(data.sample_shape), n_classes,
                         args.dtype, "the model", M.cnn_conv_params(data.sample_shape[-1]),
                         args.model)
    else:
        check_model_size(hidden, math.prod(data.sample_shape), n_classes, args.dtype,
                         "the model")
    model = M.build_model(args, data.sample_shape, n_classes, seed)
    arch = M.architecture(args, data.sample_shape, n_classes)
    _out(args, f"dataset  {data.describe()}")
    n_threads = nnfast.get_num_threads()
    act = f"{args.activation or 'relu'}" if hidden or args.model == "cnn" \
        else "linear (no hidden layer)"
    _out(args, f"model    {arch} {act}, {args.optimizer} lr {args.lr:g}, "
               f"batch {_batch(args)}, {args.dtype}, backend {nnfast.get_backend()}, "
               f"{n_threads} thread{'' if n_threads == 1 else 's'}")
    split = "" if args.seed is not None or data.kind in ("digits", "mnist", "fashion-mnist") \
        else " (data split: seed 0)"
    _out(args, f"seed     {seed}{' (drawn)' if args.seed is None else ''}{split}")

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
        order = np.random.default_rng(seed).permutation(len(x_train))
        x_train, y_train = x_train[order], y_train[order]
    t0 = time.perf_counter()
    try:
        hist = model.fit(x_train, y_train, epochs=epochs, batch_size=args.batch_size,
                    validation_split=args.validation_split, callbacks=callbacks,
                    verbose=0 if args.quiet else 1, seed=seed,
                    distributed=getattr(args, "distributed", False))
    except KeyboardInterrupt:
        raise Interrupted(f"after {len(timer.seconds)} of {epochs} epochs") from None
    train_seconds = time.perf_counter() - t0
    history = {k: [float(v) for v in vs] for k, vs in hist.history.items()}
    result = model.evaluate(data.x_test, data.y_test, batch_size=1024)
    epochs_run = len(timer.seconds)
    per_epoch = float(np.median(timer.seconds)) if timer.seconds else 0.0

    if args.save:
        model.save(args.save)
        record(args.save)
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
            "threads": nnfast.get_num_threads(), "dtype": args.dtype, "seed": seed,
            "history": history,
            "files": {k: getattr(args, k) for k in ("save", "plot", "confusion")
                      if getattr(args, k)},
        }))
    return 0


def _batch(args) -> str:
    ranks = getattr(args, "ranks", 1)
    return f"{args.batch_size}" if ranks == 1 else f"{args.batch_size} per rank x {ranks} ranks"


def _load_model(path: str):
    import nnfast

    return nnfast.load_model(path)   # the path was checked with the other options


def cmd_evaluate(args) -> int:
    return _maybe_distributed(args, "evaluate", _evaluate)


def _evaluate(args) -> int:
    _setup_runtime(args)
    model = _load_model(args.model)
    # a model taking (H, W, 1) images (nnfast train --model cnn) is fed the named image sets
    # in that shape; any other model gets them flat, as before
    shape = model.input_shape if model.built else model._declared_input_shape()
    data = _data(args, seed=0 if args.seed is None else args.seed,
                 as_images=shape is not None and len(shape) == 3 and shape[-1] == 1)
    from nnfast.engine.inputs import features

    features(model, data.x_test, "evaluate", f"--dataset {args.dataset}")
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
    from nnfast.engine.inputs import features

    _setup_runtime(args)
    model = _load_model(args.model)
    # the rule of model.predict, worded for the option (nothing is flattened for the user)
    x = features(model, load_features(args.input), "predict", f"--input {args.input}")
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
        write_csv(args.output, header, rows)
        if args.output != "-":   # stdout holds the CSV itself
            _out(args, f"wrote    {len(rows)} predictions: {args.output}")
    if args.json:   # with --output too: a JSON run always ends with its one result line
        print(json.dumps({"command": "predict", "n": len(rows),
                          **({"output": args.output} if args.output else
                             {"predictions": classes.tolist()})}))
    elif not args.output:
        sys.stdout.write("".join(f"{r[0]}\n" for r in rows))
        sys.stdout.flush()   # a closed pipe is reported here, inside main's handler
    return 0
