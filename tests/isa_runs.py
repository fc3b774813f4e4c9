"""Run a script on one kernel path in a fresh interpreter (NNFAST_ISA is read at import), for
tests that compare a path's bits case by case: the script prints one JSON object."""
import json
import os
import subprocess
import sys

import pytest

ISAS = ["generic", "avx2", "avx512"]


def run_on_isa(isa: str, script: str, arg) -> dict:
    """The JSON the script printed with NNFAST_ISA=isa and json.dumps(arg) as its argv[1];
    skips the test when this CPU lacks the path."""
    from nnfast._native import _kernels
    if isa != "generic" and isa.replace("512", "512f") not in _kernels.cpu_features():
        pytest.skip(f"this CPU has no {isa}")
    # the compiled kernels' paths are the subject, whatever backend the suite runs on
    env = dict(os.environ, NNFAST_ISA=isa, NNFAST_BACKEND="c")
    r = subprocess.run([sys.executable, "-c", script, json.dumps(arg)], capture_output=True,
                       text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)
