"""Imported first by the benchmark scripts run as ``python benchmarks/NAME.py``: when the
source tree they live in holds a built extension (``python setup.py build_ext --inplace`` puts
it in src/nnfast/_native/), that tree's nnfast (src/) is the one measured; otherwise the
installed nnfast is. A tree without the extension is skipped, so a benchmark never measures the
pure-Python fallback by accident."""
import glob
import os
import sys

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
if glob.glob(os.path.join(SRC, "nnfast", "_native", "_kernels*.so")) and SRC not in sys.path:
    sys.path.insert(0, SRC)
