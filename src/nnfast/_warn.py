"""Warnings that point at the user's code, not at the nnfast line that emits them.

``warnings.warn(..., stacklevel=n)`` needs the depth of the caller, which differs for a
callback run by fit, a batch source read by evaluate, or an estimator's fit: a fixed n points
into the library (the report names nnfast/callbacks/_base.py, which the user cannot act on,
and the warning registry de-duplicates per library line instead of per user call). ``warn``
walks the stack to the first frame outside the nnfast package and passes that depth (the
same as ``skip_file_prefixes`` on Python 3.12+, which 3.10 and 3.11 lack).

scikit-learn's MLP warnings (ConvergenceWarning, "Training interrupted by user.") point into
sklearn/neural_network/_multilayer_perceptron.py; nnfast's point at the user's ``fit`` call.
"""
from __future__ import annotations

import os
import sys
import warnings

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def user_stacklevel(depth: int = 1, skip: tuple = ()) -> int:
    """The ``stacklevel`` that names the first frame outside nnfast (and outside the directory
    prefixes in ``skip``), for a ``warnings.warn`` called from the frame ``depth`` levels up
    (1: the caller of this function)."""
    prefixes = (_PACKAGE,) + tuple(skip)
    frame = sys._getframe(depth)   # the frame that calls warnings.warn: its stacklevel 1
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(prefixes):
        frame = frame.f_back
        level += 1
    return level


def warn(message: str, category: type[Warning] = UserWarning, skip: tuple = ()) -> None:
    """``warnings.warn`` attributed to the user's frame: the first outside nnfast and ``skip``
    (the estimators pass scikit-learn's directory: their fit runs under its ``_fit_context``
    wrapper)."""
    warnings.warn(message, category, stacklevel=user_stacklevel(1, skip))
