"""Everything the `nnfast` command checks before it does any work: option values (argparse
types), combinations of options, output paths and formats, and the NNFAST_* environment.

A mistake found here is one line on stderr and exit status 2, before a data set is loaded, a
model is trained or a file is touched (argparse's convention for usage errors).
"""
from __future__ import annotations

import argparse
import math
import os

from nnfast.cli._data import IMAGE_SETS, NAMES, CLIError

MAX_SEED = 2**63 - 1  # Sequential's counter-based generator takes a signed 64-bit seed
MAX_UNITS = 2**24     # one --hidden layer; larger sizes are typos (2147483647), not models
MAX_PARAMS = 2**31    # a whole model: with gradients and Adam moments 32 GiB in float32
# (features, classes) of the named data sets, so their model size is known before loading
_SHAPES = {"digits": (64, 10), "mnist": (784, 10), "fashion-mnist": (784, 10)}
_IMAGE_SHAPES = {"digits": (8, 8, 1), "mnist": (28, 28, 1), "fashion-mnist": (28, 28, 1)}


def checked(kind, test, what):
    """An argparse type: ``kind(text)``, refused (with ``what`` was expected) unless ``test``."""
    def parse(text):
        try:
            value = kind(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    return parse


pos_int = checked(int, lambda v: v >= 1, "an integer >= 1")
threads = checked(int, lambda v: 1 <= v <= 256, "a thread count in [1, 256]")
seed = checked(int, lambda v: 0 <= v <= MAX_SEED, f"a seed in [0, {MAX_SEED}]")
pos_float = checked(float, lambda v: v > 0 and math.isfinite(v), "a number > 0")
fraction = checked(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")
open_fraction = checked(float, lambda v: 0 < v < 1, "a fraction in (0, 1)")


def hidden(text: str) -> list[int]:
    """'256,128' -> [256, 128]; 'none' (or '') -> no hidden layer. '0' is refused: a layer of
    0 units is a mistake, not a way to ask for a linear model."""
    if text.strip().lower() in ("", "none"):
        return []
    try:
        units = [int(t) for t in text.split(",")]
    except ValueError:
        units = []
    if not units or min(units) < 1 or max(units) > MAX_UNITS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of layer sizes in [1, {MAX_UNITS}], like "
            "256,128 (or 'none' for no hidden layer)")
    return units


def activation(text: str) -> str:
    from nnfast.layers import ACTIVATIONS

    if text not in ACTIVATIONS:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(ACTIVATIONS)}")
    return text


def label_column(text: str):
    try:
        return int(text)
    except ValueError:
        return text


# ------------------------------------------------------------------------- the environment

def check_environment() -> None:
    """Refuse bad NNFAST_* values (the library would warn and ignore some of them; a command
    line run stops instead, exit 2). Raises ValueError / CLIError naming the variable."""
    from nnfast import _threads, backends
    from nnfast.datasets._mnist import env_data_dir

    for var in ("NNFAST_NUM_THREADS", "OMP_NUM_THREADS"):
        _threads.env_threads(var)
    backends.get_backend()   # NNFAST_BACKEND, NNFAST_ISA, NNFAST_THREADING, NNFAST_SPIN_US
    env_data_dir()
    from nnfast.distributed._mpi import env_timeout

    try:
        env_timeout()        # the library's parser: 0 means never, as documented
    except ValueError as e:
        raise CLIError(str(e).removeprefix("nnfast.distributed: ")) from None
    raw = os.environ.get("NNFAST_DISTRIBUTED", "").strip().lower()
    if raw and raw not in ("0", "1", "false", "true", "no", "yes", "off", "on"):
        raise CLIError(f"NNFAST_DISTRIBUTED={raw!r}: expected 0 or 1 (or false/true, no/yes, "
                       "off/on)")


# -------------------------------------------------------------------- files the run reads

def input_file(opt: str, path: str) -> None:
    """``path`` is an existing, readable regular file. Pipes, FIFOs and devices (``/dev/stdin``,
    ``<(...)``) are refused as "not a regular file": loaders read a file more than once (its
    first bytes to tell the format, then the data), which a pipe cannot do; write the data to
    a file first (docs/cli.md)."""
    import stat

    if not path:
        raise CLIError(f"{opt} '': empty file name")
    if os.path.isdir(path):
        raise CLIError(f"{opt} {path}: is a directory, expected a file")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CLIError(f"{opt} {path}: no such file") from None
    except OSError as e:
        raise CLIError(f"{opt} {path}: {e.strerror}") from None
    if not stat.S_ISREG(mode):
        raise CLIError(f"{opt} {path}: not a regular file (a pipe, FIFO or device); nnfast "
                       "reads data and models from regular files only: save it to a file "
                       "first")
    if not os.access(path, os.R_OK):
        raise CLIError(f"{opt} {path}: not readable (permission denied)")


# ------------------------------------------------------------------ files the run writes

def plot_formats() -> dict:
    """File extensions matplotlib can write (without the dot) -> description."""
    from nnfast.cli._plots import _pyplot

    _pyplot()   # CLIError naming the extra when matplotlib is missing
    from matplotlib.backend_bases import FigureCanvasBase

    return FigureCanvasBase.get_supported_filetypes()


def output_file(opt: str, path: str, formats: dict | None = None) -> None:
    """``path`` can be created or replaced: its directory exists and is writable, it is not a
    directory, and (for plots) its extension is a format matplotlib writes. A symbolic link is
    checked at its final target (which is what gets replaced). ``/dev/stdout``, a FIFO or a
    device are written directly (nnfast/cli/_files.py), except by --save: a model file is only
    ever written whole to a regular file. ``-`` is standard output for --output."""
    from nnfast._atomic import resolve

    if not path:
        raise CLIError(f"{opt} '': empty file name")
    if opt == "--output" and path == "-":
        return
    if path == "-":     # elsewhere "-" would become a file named "-" in the working directory
        raise CLIError(f"{opt} -: standard output is only for --output; give a file name")
    try:
        target, direct = resolve(path, "refuse" if opt == "--save" else "write")
    except IsADirectoryError:
        raise CLIError(f"{opt} {path}: is a directory, expected a file name") from None
    except ValueError as e:
        raise CLIError(f"{opt} {e}") from None
    if direct:
        if not os.access(path, os.W_OK):
            raise CLIError(f"{opt} {path}: not writable (permission denied)")
    else:
        d = os.path.dirname(target)
        if not os.path.isdir(d):
            raise CLIError(f"{opt} {path}: directory {d} does not exist")
        if not os.access(d, os.W_OK | os.X_OK):
            raise CLIError(f"{opt} {path}: directory {d} is not writable")
    if formats is not None:
        ext = os.path.splitext(path)[1].lower().lstrip(".")
        if ext not in formats:
            raise CLIError(f"{opt} {path}: unknown image format {ext!r}; use one of "
                           f"{', '.join(sorted(formats))}")


def check_outputs(args, opts: tuple = ("save", "plot", "confusion", "output", "out")) -> None:
    """Every output option of ``args``: paths given and writable, plot formats known, no two
    the same."""
    given = {o: getattr(args, o) for o in opts if getattr(args, o, None) is not None}
    formats = plot_formats() if {"plot", "confusion"} & {o for o, p in given.items() if p} \
        else None
    for opt, path in given.items():
        output_file(f"--{opt}", path, formats if opt in ("plot", "confusion") else None)
    seen = {}
    for opt, path in given.items():
        real = path if path == "-" else os.path.realpath(path)
        if real in seen:
            raise CLIError(f"--{seen[real]} and --{opt} name the same file {path}")
        seen[real] = opt
    inp = getattr(args, "input", None)
    if inp and getattr(args, "output", None) not in (None, "-") and \
            os.path.realpath(inp) == os.path.realpath(args.output):
        raise CLIError(f"--output {args.output} is the --input file; it would be overwritten")


# ------------------------------------------------------------- combinations of options

_ONLY_FOR = {   # option -> (data sets it applies to, as said in the message)
    "data_dir": (("mnist", "fashion-mnist"), "mnist and fashion-mnist"),
    "download": (("mnist", "fashion-mnist"), "mnist and fashion-mnist"),
    "samples": (("admissions",), "admissions"),
    "test_split": (("file",), "data files (the named data sets have a fixed test set)"),
    "label_column": (("csv",), ".csv data files"),
}


def dataset_kind(spec: str) -> str:
    if spec in NAMES:
        return spec
    return "csv" if spec.lower().endswith(".csv") else "file"


def check_data_options(args) -> None:
    """Options that would be silently ignored for this --dataset are refused."""
    kind = dataset_kind(args.dataset)
    for opt, (kinds, where) in _ONLY_FOR.items():
        value = getattr(args, opt, None)
        if value is None or value is False:
            continue
        if kind not in kinds and not (kind == "csv" and "file" in kinds):
            raise CLIError(f"--{opt.replace('_', '-')} applies only to {where}, not to "
                           f"--dataset {args.dataset}")
    if args.command == "evaluate" and args.seed is not None and kind in ("digits", "mnist",
                                                                          "fashion-mnist"):
        raise CLIError(f"--seed applies only to data files and admissions (their test split), "
                       f"not to --dataset {args.dataset}, whose test set is fixed")
    if kind not in NAMES:
        if not os.path.lexists(args.dataset):
            raise CLIError(f"dataset {args.dataset!r} is neither a known name "
                           f"({', '.join(NAMES)}) nor an existing .npz/.csv/.npy file")
        input_file("--dataset", args.dataset)
    if args.data_dir == "":
        raise CLIError("--data-dir '': empty directory name")
    if args.data_dir is not None and os.path.exists(args.data_dir) \
            and not os.path.isdir(args.data_dir):
        raise CLIError(f"--data-dir {args.data_dir}: not a directory")


def _physical_memory() -> int | None:
    """Bytes of RAM (POSIX sysconf), None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_model_size(hidden: list, features: int, classes: int, dtype: str,
                     what: str, extra: int = 0, model: str = "dense") -> None:
    """The MLP features-hidden...-classes (plus ``extra`` parameters: a CNN's convolutions,
    whose output gives ``features``) fits: at most MAX_PARAMS parameters, and its weights,
    gradients and two optimizer moments (4 copies) fit in the machine's RAM. Otherwise
    NumPy's MemoryError ("Unable to allocate 520 GiB") would come after the data was loaded.
    ``what`` names the model in the message."""
    import numpy as np

    sizes = [features, *hidden, classes]
    n = extra + sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
    arch = "-".join(map(str, sizes))
    if model == "cnn":
        arch = f"with the dense head {arch}"
    if n > MAX_PARAMS:
        raise CLIError(f"--hidden {','.join(map(str, hidden))}: {what} {arch} has {n} "
                       f"parameters; at most {MAX_PARAMS} (2**31) are supported")
    need, ram = 4 * n * np.dtype(dtype).itemsize, _physical_memory()
    if ram is not None and need > ram:
        raise CLIError(f"--hidden {','.join(map(str, hidden))}: {what} {arch} needs "
                       f"{need / 2**30:.1f} GiB for its {dtype} weights, gradients and "
                       f"optimizer state; this machine has {ram / 2**30:.1f} GiB")


def _in_dtype(opt: str, value: float, dtype: str, fraction: bool = False) -> None:
    """``value`` keeps its meaning in the model's dtype: it rounds neither to inf (or, for a
    ``fraction`` such as a dropout rate, to 1) nor to 0 or a subnormal (float32 flushes
    1e-320 to 0: an --lr that silently trains nothing). A fraction may be exactly 0."""
    import numpy as np

    if fraction and value == 0:
        return
    kind = np.dtype(dtype).type
    tiny, big = kind(np.finfo(kind).tiny), kind(np.finfo(kind).max)   # shortest repr: str()
    with np.errstate(over="ignore", under="ignore"):
        stored = kind(value)
    if tiny <= stored and (stored < 1 if fraction else stored <= big):
        return
    what = ("inf" if np.isinf(stored) else "1" if fraction and stored >= 1 else
            "0" if stored == 0 else "a subnormal number")
    want = f"0 or a fraction in [{tiny!s}, 1)" if fraction else f"a number in [{tiny!s}, {big!s}]"
    hint = " (or --dtype float64)" if dtype == "float32" else ""
    raise CLIError(f"{opt} {value!r} rounds to {what} in {dtype}; expected {want}{hint}")


def check_model_options(args) -> None:
    from nnfast.cli import _models as M

    if args.model == "cnn" and args.dataset not in IMAGE_SETS:
        what = "a data file" if dataset_kind(args.dataset) in ("file", "csv") else \
            "a data set of feature rows"
        raise CLIError(f"--model cnn needs images and applies only to --dataset "
                       f"{', '.join(IMAGE_SETS)}; --dataset {args.dataset} is {what} (train "
                       "it with --model dense)")
    hidden = M.hidden_sizes(args)
    if not hidden:
        if args.dropout:
            raise CLIError("--dropout needs a hidden layer; --hidden none has none")
        if args.activation is not None and args.model == "dense":
            raise CLIError("--activation needs a hidden layer; --hidden none has none")
    _in_dtype("--lr", args.lr, args.dtype)
    _in_dtype("--dropout", args.dropout, args.dtype, fraction=True)
    if args.model == "cnn":
        shape = _IMAGE_SHAPES[args.dataset]
        check_model_size(hidden, M.cnn_flat_features(shape), 10, args.dtype, "the model",
                         M.cnn_conv_params(shape[-1]), "cnn")
        return
    # a data file's feature and class counts are known only once it is loaded (checked again
    # then, exactly); 1 feature and 2 classes bound its size from below
    features, classes = _SHAPES.get(args.dataset, (1, 2))
    check_model_size(hidden, features, classes, args.dtype,
                     "the model" if args.dataset in _SHAPES else "the smallest model")


def check_distributed(args) -> None:
    """--distributed under an MPI launcher (or NNFAST_DISTRIBUTED=1) needs mpi4py."""
    if not getattr(args, "distributed", False):
        return
    from nnfast.distributed._mpi import launched

    how = launched()
    if how is None:
        return   # one process, no MPI: mpi4py is not used
    try:
        import mpi4py  # noqa: F401  (only the package: MPI itself initialises in init())
    except ImportError:
        why = ("NNFAST_DISTRIBUTED=1 asks for MPI" if how.startswith("forced") else
               f"this process was started by an MPI launcher ({how})")
        raise CLIError(f"--distributed: {why} but mpi4py is not installed; install it "
                       'with: pip install "nnfast[mpi]"') from None


def check_args(args) -> None:
    """All checks of a parsed command line that need no data (before any work)."""
    if args.command in ("train", "evaluate"):
        check_data_options(args)
    if args.command == "train":
        check_model_options(args)
    check_distributed(args)
    if args.command in ("evaluate", "predict"):
        input_file("--model", args.model)
    if args.command == "predict":
        input_file("--input", args.input)
    check_outputs(args)
