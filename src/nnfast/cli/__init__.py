"""Command line: `nnfast train | evaluate | predict | info | bench`.

Exit status (POSIX shells, argparse):
  0    success
  1    a failure that is not a usage mistake: download failed, disk full, internal error
  2    a usage mistake, found before any work: bad option or combination, missing or
       unreadable file, unknown format, bad NNFAST_* environment variable, bad data
  130  interrupted by Ctrl-C (SIGINT; 128 + 2): says so; writes no output it had not finished
  143  terminated (SIGTERM; 128 + 15), the same way
  141  stdout closed by its reader (`nnfast predict ... | head -1`; 128 + SIGPIPE, what the
       shell reports for any tool stopped that way): silent
Errors are one line on stderr; `--debug` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from nnfast._version import __version__
from nnfast.cli import _args as A
from nnfast.cli._data import NAMES, CLIError

EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_PIPE = 1, 2, 130, 143, 141
# user-fixable: the library's bad-input errors and files that are missing or refused
_USAGE_ERRORS = (CLIError, ValueError, TypeError, FileNotFoundError, IsADirectoryError,
                 NotADirectoryError, PermissionError)


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that `finally` blocks remove temporary files.
    A BaseException, as KeyboardInterrupt: no `except Exception` swallows it."""


class _Stderr:
    """sys.stderr, noting whether the last write left a line open. A SIGTERM can land inside a
    progress bar's close, between its last display and its newline; the one-line message that
    follows must still start a line of its own."""

    def __init__(self, stream):
        self._stream, self.line_open = stream, False

    def write(self, text):
        if text:
            self.line_open = not text.endswith("\n")
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2)."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(EXIT_USAGE)


def _add_common(p):
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    p.add_argument("--json", action="store_true", help="print one JSON result line")
    p.add_argument("--backend", choices=("c", "python"), help="kernel backend")
    p.add_argument("--threads", type=A.threads,
                   help="number of threads, 1 to 256 (default: the CPUs available)")


def _add_data(p):
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="digits", metavar="NAME|PATH",
                   help=f"{' | '.join(NAMES)} or a .npz/.csv/.npy file (default: digits, "
                        "embedded in the package)")
    g.add_argument("--data-dir", metavar="DIR",
                   help="mnist/fashion-mnist: directory searched first for the IDX files "
                        "(and where --download saves them)")
    g.add_argument("--download", action="store_true", default=None,
                   help="mnist/fashion-mnist: download when not found locally")
    g.add_argument("--test-split", type=A.open_fraction,
                   help="data files: fraction held out as test set (default 0.2; the "
                        "split is seeded by --seed, else by 0)")
    g.add_argument("--label-column", type=A.label_column,
                   help=".csv files: label column, index or header name (default: last)")
    g.add_argument("--samples", type=A.pos_int,
                   help="admissions: number of training samples (default 1000)")


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="nnfast", description="Fast CPU neural networks.",
                epilog="exit status: 0 success, 1 failure, 2 usage error, 130 interrupted")
    p.add_argument("--version", action="version", version=f"nnfast {__version__}")
    p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    info = sub.add_parser("info", help="show version, threads, CPU features and kernel path")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)

    t = sub.add_parser("train", help="train an MLP or CNN classifier (default: embedded digits)",
                       description="Train an MLP (--model dense) or a LeNet-class CNN "
                                   "(--model cnn) classifier and report test accuracy.")
    _add_data(t)
    g = t.add_argument_group("model")
    g.add_argument("--model", choices=("dense", "cnn"), default="dense",
                   help="dense: an MLP (the default); cnn: on digits, mnist or fashion-mnist "
                        "only, images (H, W, 1) through conv 5x5x6 'same' - maxpool 2 - "
                        "conv 5x5x16 'same' - maxpool 2 - flatten - dense head (--hidden, "
                        "default 120,84) - softmax")
    g.add_argument("--hidden", type=A.hidden, metavar="N,N,...",
                   help="hidden Dense layer sizes (default 128, with --model cnn 120,84; "
                        "'none' for none: a linear model with --model dense)")
    g.add_argument("--activation", type=A.activation, metavar="NAME",
                   help="hidden activation, with --model cnn also of the convolutions "
                        "(default relu): " + ", ".join(_activations()))
    g.add_argument("--dropout", type=A.fraction, default=0.0,
                   help="dropout rate after each hidden Dense layer, in [0, 1)")
    g.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    g = t.add_argument_group("training")
    g.add_argument("--epochs", type=A.pos_int,
                   help="epochs (default: digits 30, mnist/fashion-mnist 10, admissions 60, "
                        "files 20)")
    g.add_argument("--batch-size", type=A.pos_int, default=32)
    g.add_argument("--lr", type=A.pos_float, default=1e-3, help="learning rate (default 1e-3)")
    g.add_argument("--optimizer", default="adam",
                   choices=("adam", "adamw", "sgd", "rmsprop", "adagrad"))
    g.add_argument("--seed", type=A.seed,
                   help="seed for weights, shuffles, dropout and splits (default: drawn at "
                        "random and printed; data splits then use 0)")
    g.add_argument("--validation-split", type=A.fraction, default=0.0,
                   help="fraction of the training data used for validation (default 0)")
    g.add_argument("--early-stopping", type=A.pos_int, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without improvement of val_loss "
                        "(loss without a validation split); restores the best weights")
    g.add_argument("--distributed", action="store_true",
                   help="data-parallel over the MPI job (run as: mpirun -n N nnfast train "
                        "--distributed ...); --batch-size is per rank; rank 0 prints and "
                        "writes the outputs")
    g = t.add_argument_group("output")
    g.add_argument("--save", metavar="FILE.nnf", help="save the trained model")
    g.add_argument("--plot", metavar="FILE.png",
                   help="loss and accuracy per epoch (format from the extension: png, pdf, "
                        "svg, ...)")
    g.add_argument("--confusion", metavar="FILE.png", help="test-set confusion matrix")
    _add_common(t)

    e = sub.add_parser("evaluate", help="evaluate a saved model on a data set's test split")
    e.add_argument("--model", required=True, metavar="FILE.nnf")
    _add_data(e)
    e.add_argument("--seed", type=A.seed,
                   help="seed for the test split of data files and admissions (default 0): "
                        "the one train used")
    e.add_argument("--confusion", metavar="FILE.png", help="test-set confusion matrix")
    e.add_argument("--distributed", action="store_true",
                   help="each rank of the MPI job evaluates a shard of the test set (run as: "
                        "mpirun -n N nnfast evaluate --distributed ...); rank 0 prints")
    _add_common(e)

    r = sub.add_parser("predict", help="predict classes for the rows of a .npy/.csv file")
    r.add_argument("--model", required=True, metavar="FILE.nnf")
    r.add_argument("--input", required=True, metavar="X.npy|X.csv",
                   help="samples of the model's input shape: an .npy array (n_samples, ...) "
                        "or a .csv with one sample per row")
    r.add_argument("--output", metavar="PREDS.csv",
                   help="write class and probabilities as CSV ('-': stdout; a symlink is written "
                        "through, /dev/stdout or a FIFO directly; default: classes to stdout)")
    r.add_argument("--distributed", action="store_true",
                   help="each rank of the MPI job predicts a shard of the rows (run as: "
                        "mpirun -n N nnfast predict --distributed ...); rank 0 writes")
    _add_common(r)

    b = sub.add_parser("bench", help="compare nnfast with NumPy, PyTorch and scikit-learn",
                       description="matmul GFLOP/s, training seconds per epoch and inference "
                                   "latency, side by side in one run at matched thread counts")
    b.add_argument("--quick", action="store_true", help="fewer shapes, samples and repeats")
    b.add_argument("--threads", type=A.threads, action="append",
                   help="thread count to measure at (repeatable; default 1 and all CPUs)")
    b.add_argument("--only", choices=("matmul", "train", "infer"), action="append",
                   help="run only these parts (repeatable)")
    b.add_argument("--out", metavar="REPORT.md", help="also write the report as Markdown")
    b.add_argument("--plot", metavar="BENCH.png", help="bar chart of the ratios")
    b.add_argument("--keep-openblas-env", action="store_true",
                   help="do not re-run without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE")
    b.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return p


def _activations():
    from nnfast.layers import ACTIVATIONS

    return ACTIVATIONS


def _cmd_bench(args, argv) -> int:
    from nnfast.cli import bench

    if not args.keep_openblas_env:
        bench.strip_openblas_env(argv)
    report = bench.run(quick=args.quick, threads=args.threads, out=args.out, plot=args.plot,
                       parts=tuple(args.only or ("matmul", "train", "infer")),
                       echo=lambda msg: print(msg, file=sys.stderr))
    print(report)
    return 0


def _run(args, argv) -> int:
    if args.command == "bench":
        return _cmd_bench(args, [a for a in argv if a != "bench"])
    if args.command == "info":
        from nnfast._info import format_info, info

        d = info()
        print(json.dumps(d) if args.json else format_info(d))
        return 0
    from nnfast.cli import _train

    return {"train": _train.cmd_train, "evaluate": _train.cmd_evaluate,
            "predict": _train.cmd_predict}[args.command](args)


def _on_sigterm(signum, frame):
    raise Terminated


def _interrupted(command: str, detail: str) -> str:
    from nnfast.cli._files import WRITTEN

    done = f"wrote {', '.join(WRITTEN)} before it" if WRITTEN else "no files written"
    return f"nnfast {command}: interrupted{detail}; {done}\n"


def main(argv=None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _build_parser().parse_args(argv)
    debug = args.debug or "--debug" in argv
    previous = None
    stderr = sys.stderr
    sys.stderr = tracked = _Stderr(stderr)
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:   # not the main thread (main() called from a test thread)
        pass
    try:
        A.check_environment()
        A.check_args(args)
        return _run(args, argv)
    except BrokenPipeError:
        # stdout closed early (e.g. `| head`): not an error worth a message; point stdout at
        # /dev/null so the interpreter's final flush does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE
    except KeyboardInterrupt as e:
        if debug:
            raise
        sys.stderr.write("\n" * tracked.line_open
                         + _interrupted(args.command, f" {e}" if str(e) else ""))
        return EXIT_INTERRUPTED
    except Terminated:
        if debug:
            raise
        sys.stderr.write("\n" * tracked.line_open + _interrupted(args.command, " (SIGTERM)"))
        return EXIT_TERMINATED
    except Exception as e:
        if debug:
            raise
        msg = " ".join(str(e).split()) or type(e).__name__
        # library errors start with their function ("predict: x has ..."): said once
        msg = msg.removeprefix(f"{args.command}: ")
        if isinstance(e, _USAGE_ERRORS):
            sys.stderr.write(f"nnfast {args.command}: error: {msg}\n")
            return EXIT_USAGE
        if isinstance(e, OSError):   # DownloadError, disk full, ...: not the command line
            sys.stderr.write(f"nnfast {args.command}: error: {msg}\n")
            return EXIT_FAILURE
        sys.stderr.write(f"nnfast {args.command}: internal error: {type(e).__name__}: {msg} "
                         "(rerun with --debug for the traceback)\n")
        return EXIT_FAILURE
    finally:
        sys.stderr = stderr
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
