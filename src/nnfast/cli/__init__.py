"""Command line: `nnfast train | evaluate | predict | info`.

Errors a user can fix (bad option, missing file, data set not found) print one line to stderr
and exit with code 2; `--debug` shows the traceback instead. Ctrl-C exits with 130.
"""
from __future__ import annotations

import argparse
import json
import sys

from nnfast.cli._data import NAMES, CLIError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2)."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(EXIT_USAGE)


def _checked(kind, test, what):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    return parse


_pos_int = _checked(int, lambda v: v >= 1, "an integer >= 1")
_nonneg_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
_pos_float = _checked(float, lambda v: v > 0 and v != float("inf"), "a number > 0")
_fraction = _checked(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")
_open_fraction = _checked(float, lambda v: 0 < v < 1, "a fraction in (0, 1)")


def _hidden(text: str) -> list[int]:
    """'256,128' -> [256, 128]; '' or 'none' -> no hidden layer."""
    if text.strip().lower() in ("", "none", "0"):
        return []
    try:
        units = [int(t) for t in text.split(",")]
    except ValueError:
        units = []
    if not units or min(units) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of layer sizes >= 1, like 256,128")
    return units


def _label_column(text: str):
    try:
        return int(text)
    except ValueError:
        return text


def _add_common(p):
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    p.add_argument("--json", action="store_true", help="print one JSON result line")
    p.add_argument("--backend", choices=("c", "python"), help="kernel backend")
    p.add_argument("--threads", type=_pos_int, help="number of threads (default: all CPUs)")


def _add_data(p):
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="digits", metavar="NAME|PATH",
                   help=f"{' | '.join(NAMES)} or a .npz/.csv/.npy file (default: digits, "
                        "embedded in the package)")
    g.add_argument("--data-dir", metavar="DIR",
                   help="directory searched first for the MNIST/Fashion-MNIST IDX files")
    g.add_argument("--download", action="store_true",
                   help="download MNIST/Fashion-MNIST when not found locally")
    g.add_argument("--test-split", type=_open_fraction, default=0.2,
                   help="fraction of a data file held out as test set (seeded; default 0.2)")
    g.add_argument("--label-column", type=_label_column, default=-1,
                   help="CSV label column, index or header name (default: last)")
    g.add_argument("--samples", type=_pos_int, default=1000,
                   help="admissions: number of training samples (default 1000)")


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="nnfast", description="Fast CPU neural networks.")
    p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    info = sub.add_parser("info", help="show version, threads, CPU features and kernel path")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)

    t = sub.add_parser("train", help="train an MLP classifier (default: embedded digits)",
                       description="Train an MLP classifier and report test accuracy.")
    _add_data(t)
    g = t.add_argument_group("model")
    g.add_argument("--hidden", type=_hidden, default=[128], metavar="N,N,...",
                   help="hidden layer sizes (default 128; 'none' for a linear model)")
    g.add_argument("--activation", default="relu", help="hidden activation (default relu)")
    g.add_argument("--dropout", type=_fraction, default=0.0, help="dropout after each hidden")
    g.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    g = t.add_argument_group("training")
    g.add_argument("--epochs", type=_nonneg_int,
                   help="epochs (default: digits 30, mnist/fashion-mnist 10, admissions 60, "
                        "files 20)")
    g.add_argument("--batch-size", type=_pos_int, default=32)
    g.add_argument("--lr", type=_pos_float, default=1e-3, help="learning rate (default 1e-3)")
    g.add_argument("--optimizer", default="adam",
                   choices=("adam", "adamw", "sgd", "rmsprop", "adagrad"))
    g.add_argument("--seed", type=int, help="seed for weights, shuffles, dropout and splits")
    g.add_argument("--validation-split", type=_fraction, default=0.0,
                   help="fraction of the training data used for validation (default 0)")
    g.add_argument("--early-stopping", type=_pos_int, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without improvement of val_loss "
                        "(loss without a validation split); restores the best weights")
    g.add_argument("--distributed", action="store_true",
                   help="data-parallel over the MPI job (run as: mpirun -n N nnfast train "
                        "--distributed ...); --batch-size is per rank; rank 0 prints and "
                        "writes the outputs")
    g = t.add_argument_group("output")
    g.add_argument("--save", metavar="FILE.nnf", help="save the trained model")
    g.add_argument("--plot", metavar="FILE.png", help="loss and accuracy per epoch")
    g.add_argument("--confusion", metavar="FILE.png", help="test-set confusion matrix")
    _add_common(t)

    e = sub.add_parser("evaluate", help="evaluate a saved model on a data set's test split")
    e.add_argument("--model", required=True, metavar="FILE.nnf")
    _add_data(e)
    e.add_argument("--seed", type=int, help="seed for the test split of data files")
    e.add_argument("--confusion", metavar="FILE.png", help="test-set confusion matrix")
    e.add_argument("--distributed", action="store_true",
                   help="each rank of the MPI job evaluates a shard of the test set (run as: "
                        "mpirun -n N nnfast evaluate --distributed ...); rank 0 prints")
    _add_common(e)

    r = sub.add_parser("predict", help="predict classes for the rows of a .npy/.csv file")
    r.add_argument("--model", required=True, metavar="FILE.nnf")
    r.add_argument("--input", required=True, metavar="X.npy|X.csv")
    r.add_argument("--output", metavar="PREDS.csv",
                   help="write class and probabilities as CSV (default: classes to stdout)")
    r.add_argument("--distributed", action="store_true",
                   help="each rank of the MPI job predicts a shard of the rows (run as: "
                        "mpirun -n N nnfast predict --distributed ...); rank 0 writes")
    _add_common(r)

    b = sub.add_parser("bench", help="compare nnfast with NumPy, PyTorch and scikit-learn",
                       description="matmul GFLOP/s, training seconds per epoch and inference "
                                   "latency, side by side in one run at matched thread counts")
    b.add_argument("--quick", action="store_true", help="fewer shapes, samples and repeats")
    b.add_argument("--threads", type=_pos_int, action="append",
                   help="thread count to measure at (repeatable; default 1 and all CPUs)")
    b.add_argument("--only", choices=("matmul", "train", "infer"), action="append",
                   help="run only these parts (repeatable)")
    b.add_argument("--out", metavar="REPORT.md", help="also write the report as Markdown")
    b.add_argument("--plot", metavar="BENCH.png", help="bar chart of the ratios")
    b.add_argument("--keep-openblas-env", action="store_true",
                   help="do not re-run without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE")
    b.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return p


def _cmd_bench(args, argv) -> int:
    from nnfast.cli import bench

    if not args.keep_openblas_env:
        bench.strip_openblas_env(argv)
    if args.plot:
        from nnfast.cli._plots import _pyplot
        _pyplot()  # fail before measuring when matplotlib is missing
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


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _build_parser().parse_args(argv)
    debug = args.debug or "--debug" in argv
    try:
        return _run(args, argv)
    except BrokenPipeError:
        # stdout closed early (e.g. `| head`): not an error worth a message
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        if debug:
            raise
        sys.stderr.write("nnfast: interrupted\n")
        return 130
    except (CLIError, ValueError, OSError) as e:
        # OSError covers FileNotFoundError (data set not found, with the hint) and
        # DownloadError; ValueError is what the library raises for bad input.
        if debug:
            raise
        msg = " ".join(str(e).split()) or type(e).__name__
        sys.stderr.write(f"nnfast {args.command}: error: {msg}\n")
        return EXIT_USAGE
    except Exception as e:
        if debug:
            raise
        sys.stderr.write(f"nnfast {args.command}: internal error: {type(e).__name__}: {e} "
                         "(rerun with --debug for the traceback)\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
