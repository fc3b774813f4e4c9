"""Imported first by the benchmark scripts run as ``python benchmarks/NAME.py``: when the
source tree they live in holds a built extension (``python setup.py build_ext --inplace``),
that tree's nnfast is the one measured; otherwise the installed nnfast is. A tree without the
extension is skipped, so a benchmark never measures the pure-Python fallback by accident."""
import glob
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if glob.glob(os.path.join(ROOT, "nnfast", "_kernels*.so")) and ROOT not in sys.path:
    sys.path.insert(0, ROOT)
