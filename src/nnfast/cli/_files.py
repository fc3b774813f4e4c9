"""Every file the `nnfast` command writes goes through here (model files through model.save):
whole or not at all, under a temporary name of its own, with the umask's mode
(nnfast/_atomic.py), and recorded so an interrupted run can say what it had already written.

A symbolic link is written through (its target is replaced, the link kept). ``/dev/stdout``,
``/dev/fd/N``, a FIFO or a device are written directly, not atomically: that is what naming
them asks for (``--output /dev/stdout``); ``-`` is standard output for --output."""
from __future__ import annotations

import csv
import os
import sys

from nnfast._atomic import atomic_write

STDOUT = "-"
WRITTEN: list[str] = []   # paths written by this run, in order


def record(path: str) -> None:
    WRITTEN.append(os.fspath(path))


def write_text(path: str, text: str) -> None:
    with atomic_write(path, "w", "write", encoding="utf-8", newline="") as f:
        f.write(text)
    record(path)


def write_csv(path: str, header: list, rows) -> None:
    """RFC 4180 quoting, but ``\\n`` line ends (csv's default is ``\\r\\n``, which shows up as
    stray ``\\r`` in every POSIX tool reading the file). ``path`` ``-`` is standard output."""
    if path == STDOUT:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
        sys.stdout.flush()   # a closed pipe is reported here, inside main's handler
        return
    with atomic_write(path, "w", "write", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    record(path)


def save_figure(fig, path: str, dpi: int) -> None:
    """``fig.savefig`` into a temporary file; the format is the extension's (checked before the
    run by cli/_args.py)."""
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    with atomic_write(path, "wb", "write") as f:
        fig.savefig(f, format=fmt, dpi=dpi)
    record(path)
